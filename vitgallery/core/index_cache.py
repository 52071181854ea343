"""IndexCache: a library's vector index, a cache of the vectors in SQLite, and the whitening they went through.

The database holds every photo's raw vector and the whitening the library learned; the index holds the
same vectors through that whitening. The cache loads the saved index file when its header matches the
database (model, whitening, generation), else rebuilds it from the database; it saves it atomically
(see VectorIndex.save). A refit of the whitening builds a new index beside the current one and swaps
both at once, so searches never see vectors of one whitening with a query of another.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vitgallery.core.index import IndexMismatch, VectorIndex, header_path
from vitgallery.core.store import Store
from vitgallery.core.whitening import LibraryWhitening

log = logging.getLogger(__name__)

INDEX_NAME = "index.hnsw"


def index_signature(model_signature: str | None, whitening_key: str | None) -> str:
    """What the index file's vectors are: the model's, through this whitening."""
    return f"{model_signature}|whitening:{whitening_key or 'none'}"


@dataclass(frozen=True)
class SearchSpace:
    """The index and the whitening its vectors went through, taken together (a refit swaps both)."""

    index: VectorIndex
    whitening: LibraryWhitening | None

    def project(self, raw: np.ndarray) -> np.ndarray:
        """Raw model vectors (n, dim) into the space the index holds."""
        return raw if self.whitening is None else self.whitening.apply(raw)


class IndexCache:
    """The one owner of a library's VectorIndex: thread-safe for one indexer plus searching threads."""

    def __init__(self, library_dir: Path, store: Store, notice: Callable[[str], None]) -> None:
        self._path = library_dir / INDEX_NAME
        self._store = store
        self._notice = notice
        self._index: VectorIndex | None = None
        self._whitening: LibraryWhitening | None = None
        self._whitening_key: str | None = None
        self._dirty = False  # the in-memory index holds changes its file lacks
        self._lock = threading.Lock()

    def space(self) -> SearchSpace | None:
        """The loaded search space, rebuilt from SQLite when the file is missing, damaged or stale;
        None while the library has no model."""
        with self._lock:
            if self._index is None:
                self._load()
            return None if self._index is None else SearchSpace(self._index, self._whitening)

    def _load(self) -> None:
        dim = self._store.get_meta("dim")
        if self._model_signature() is None or dim is None:
            return
        stored = self._store.whitening()
        self._whitening = None if stored is None else LibraryWhitening(stored.mean, stored.projection)
        self._whitening_key = None if stored is None else stored.key
        try:
            self._index = VectorIndex.load(self._path, model_signature=self._signature(self._whitening_key),
                                           dim=int(dim), generation=self._store.generation)
        except IndexMismatch as exc:
            if self._path.exists() or self._store.count_files():
                self._notice(f"index file not usable ({exc}); rebuilding it from the database")
            self._discard_file()
            self._index = self._build(int(dim), self._whitening, self._whitening_key)
            self._dirty = True

    def _model_signature(self) -> str | None:
        return self._store.get_meta("model_signature")

    def _signature(self, whitening_key: str | None) -> str:
        return index_signature(self._model_signature(), whitening_key)

    def _build(self, dim: int, whitening: LibraryWhitening | None, key: str | None) -> VectorIndex:
        index = VectorIndex(dim, self._signature(key), capacity=max(1024, self._store.count_files()))
        for ids, vectors in self._store.iter_vectors():
            index.add(ids, vectors if whitening is None else whitening.apply(vectors))
        return index

    def _discard_file(self) -> None:
        """Delete a rejected index file before the database changes again. After a power cut or a
        restored backup took the database back, new commits can bring its generation back to the one a
        stale file records; if this process then died before saving, the stale file would pass."""
        try:
            # The header is written last and checked first: without it the payload is void.
            header_path(self._path).unlink(missing_ok=True)
        except OSError as exc:
            log.warning("could not delete the stale index file: %s", exc)

    def start_model(self, dim: int) -> None:
        """A new model: the old file is void and the index starts empty, without a whitening."""
        with self._lock:
            self._discard_file()
            self._whitening, self._whitening_key = None, None
            self._index = VectorIndex(dim, self._signature(None))
            self._dirty = True

    def add(self, ids: list[int], raw_vectors: np.ndarray) -> None:
        """Add freshly embedded photos (their raw vectors; the cache applies the whitening)."""
        space = self.space()
        assert space is not None, "start_model comes first"
        space.index.add(np.array(ids, dtype=np.int64), space.project(raw_vectors))
        self._dirty = True

    def remove(self, ids: list[int]) -> None:
        space = self.space()
        if space is not None and ids:
            space.index.remove(np.array(ids, dtype=np.int64))
            self._dirty = True

    def refit(self, whitening: LibraryWhitening, key: str) -> None:
        """Swap in a new whitening and an index built through it. Built beside the current index, which
        searches keep using until the swap."""
        dim = len(whitening.mean)
        index = self._build(dim, whitening, key)
        with self._lock:
            self._discard_file()
            self._whitening, self._whitening_key, self._index = whitening, key, index
            self._dirty = True

    def save(self) -> None:
        with self._lock:
            self._save()

    def save_if_dirty(self) -> None:
        with self._lock:
            if self._index is not None and self._dirty:
                self._save()

    def _save(self) -> None:
        if self._index is None:
            return
        try:
            self._index.save(self._path, generation=self._store.generation)
            self._dirty = False
        except OSError as exc:
            # The index is only a cache: the database still has everything, the next start rebuilds.
            self._notice(f"could not save the index file ({exc}); it will be rebuilt on the next start")
