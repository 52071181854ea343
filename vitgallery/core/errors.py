"""Errors a library raises for the user to act on (shared by the library, indexing and search)."""

from __future__ import annotations


class LibraryError(Exception):
    """A problem the user must act on (no library, wrong folder, empty library...)."""


class QueryNeedsModel(LibraryError):
    """The query is not a stored photo of the library, so it must be embedded with the model."""
