"""Errors a library raises for the user to act on (shared by the library, indexing and search)."""

from __future__ import annotations


class LibraryError(Exception):
    """A problem the user must act on (no library, wrong folder, empty library...)."""


class EmptyLibrary(LibraryError):
    """Nothing is embedded yet: the first index has not added a photo."""

    def __init__(self) -> None:
        super().__init__("the library is empty: index a folder first")


class QueryNeedsModel(LibraryError):
    """The query is not a stored photo of the library, so it must be embedded with the model."""
