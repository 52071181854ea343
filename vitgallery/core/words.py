"""How counts and lists of files read in messages, the same on every page and in the command line."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

FILES_NAMED = 3  # a status line names this many files, then says how many more


def count_text(n: int, noun: str) -> str:
    """'1 photo', '2 photos', '12,000 photos'."""
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def size_text(size: int, like: int | None = None) -> str:
    """A file size in words; with `like`, in the unit that size is said in, so that the sizes of one
    group's photos read side by side (0.08 MB beside 1.2 MB, not 80 kB)."""
    if max(size, like or 0) < 1e5:
        return f"{size / 1e3:.0f} kB"
    decimals = 1 if size >= 1e5 else 2 if size >= 1e4 else 3  # a 4 kB thumbnail read "0.00 MB"
    return f"{size / 1e6:.{decimals}f} MB"


def unreadable_text(problems: Sequence[tuple[Path, str]], *, named: int = FILES_NAMED) -> str:
    """'2 photos could not be read: a.jpg (not an image), b.jpg (truncated).': the first files named, so the
    user knows which to look at without a log; the rest counted."""
    if not problems:
        return ""
    shown = ", ".join(f"{path.name} ({why})" for path, why in problems[:named])
    more = f" and {len(problems) - named:,} more" if len(problems) > named else ""
    return f"{count_text(len(problems), 'photo')} could not be read: {shown}{more}."
