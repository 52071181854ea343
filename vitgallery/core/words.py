"""How counts read in messages, the same on every page and in the command line."""

from __future__ import annotations


def count_text(n: int, noun: str) -> str:
    """'1 photo', '2 photos', '12,000 photos'."""
    return f"{n:,} {noun}" + ("" if n == 1 else "s")
