"""How counts and lists of files read in messages, the same on every page and in the command line."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

FILES_NAMED = 3  # a status line names this many files, then says how many more


def count_text(n: int, noun: str) -> str:
    """'1 photo', '2 photos', '12,000 photos'."""
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def unreadable_text(problems: Sequence[tuple[Path, str]], *, named: int = FILES_NAMED) -> str:
    """'2 photos could not be read: a.jpg (not an image), b.jpg (truncated).': the first files named, so the
    user knows which to look at without a log; the rest counted."""
    if not problems:
        return ""
    shown = ", ".join(f"{path.name} ({why})" for path, why in problems[:named])
    more = f" and {len(problems) - named:,} more" if len(problems) > named else ""
    return f"{count_text(len(problems), 'photo')} could not be read: {shown}{more}."
