"""IndexCache: a library's vector index, a cache of the vectors in SQLite, and the whitening they went through.

The database holds every photo's raw vector and the whitening the library learned; the index holds the
same vectors through that whitening. The cache loads the saved index file when its header matches the
database (model, whitening), else rebuilds it from the database; it saves it atomically (see
VectorIndex.save). A refit of the whitening builds a new index beside the current one and swaps both at
once, so searches never see vectors of one whitening with a query of another.

The index records the database generation it holds. Another process (the window and the CLI index the
same library) or a run killed before it saved leaves it behind the database: it then catches up, taking
the rows written after its generation and dropping the ids the database no longer has. It is saved
stamped with the generation it holds, never a later one, and never over a file saved from a later one.
A Qdrant collection (vector_store.py) is the same kind of cache: its header records the generation too,
and it catches up the same way.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vitgallery.core.index import IndexMismatch, header_path, read_header
from vitgallery.core.store import Store, StoredWhitening
from vitgallery.core.vector_store import (
    QDRANT,
    SearchIndex,
    VectorStoreSetting,
    load_index,
    new_index,
    saved_generation,
)
from vitgallery.core.whitening import LibraryWhitening

log = logging.getLogger(__name__)

INDEX_NAME = "index.hnsw"
CATCH_UP_CHUNK = 10_000  # vectors read from the database at a time while an index catches up


def index_signature(model_signature: str | None, whitening_key: str | None) -> str:
    """What the index file's vectors are: the model's, through this whitening."""
    return f"{model_signature}|whitening:{whitening_key or 'none'}"


@dataclass(frozen=True)
class SearchSpace:
    """The index and the whitening its vectors went through, taken together (a refit swaps both)."""

    index: SearchIndex  # hnswlib (VectorIndex) or Qdrant (QdrantIndex), by the library's setting
    whitening: LibraryWhitening | None

    def project(self, raw: np.ndarray) -> np.ndarray:
        """Raw model vectors (n, dim) into the space the index holds."""
        return raw if self.whitening is None else self.whitening.apply(raw)


class IndexCache:
    """The one owner of a library's search index: thread-safe for one indexer plus searching threads."""

    def __init__(self, library_dir: Path, store: Store, notice: Callable[[str], None],
                 vector_store: VectorStoreSetting | None = None) -> None:
        self._path = library_dir / INDEX_NAME
        self._vector_store = vector_store or VectorStoreSetting()  # hnswlib, or Qdrant (vector_store.py)
        self._store = store
        self._notice = notice
        self._index: SearchIndex | None = None
        self._whitening: LibraryWhitening | None = None
        self._whitening_key: str | None = None
        self._dirty = False  # the in-memory index holds changes its file lacks
        self._unusable_file = False  # the file's header is current but its payload could not be loaded
        self._lock = threading.Lock()

    def space(self) -> SearchSpace | None:
        """The search space, caught up with the database; None while the library has no model."""
        with self._lock:
            if self._index is None or self._index.generation != self._store.generation:
                self._refresh()
            return None if self._index is None else SearchSpace(self._index, self._whitening)

    def ready_for_run(self) -> bool:
        """Whether the database knows which model its vectors are of (an index run needs it). An hnswlib
        file that holds just what the database does is left unread until something needs it: a run
        with nothing to add never does, and loading 100,000 vectors holds the interpreter ~150 ms, a
        pause in the window (the app's start loads it behind its splash: load_if_current). A file that
        does not (behind the database, damaged, missing) is caught up or rebuilt now, in the run, and a
        Qdrant collection, which others may search, is caught up now too."""
        with self._lock:
            unread = self._index is None and self._current_file_on_disk()
        return unread or self.space() is not None

    def load_if_current(self) -> bool:
        """Load the saved hnswlib file now when it holds just what the database does (the same model,
        whitening and generation): the start does so before its window shows, so neither the window nor
        the first search waits for it. Anything else (no file, one behind the database, a Qdrant
        collection) is left for when the index is first needed, on a worker: catching up can take
        minutes. True when the index is in memory."""
        with self._lock:
            if self._index is not None:
                return True
            if not self._current_file_on_disk():
                return False
            try:
                self._index = self._saved_index()
                return True
            except IndexMismatch:
                self._unusable_file = True  # damaged: the next run rebuilds it
                return False

    def _current_file_on_disk(self) -> bool:
        """Whether an hnswlib file, not found damaged, holds the database's vectors as they are (its
        header says so; lock held)."""
        if self._vector_store.kind == QDRANT or not self._has_model() or self._unusable_file:
            return False
        try:
            header = read_header(self._path)
        except IndexMismatch:
            return False
        return header.model_signature == self._database_signature() and header.generation == self._store.generation

    def _has_model(self) -> bool:
        return self._model_signature() is not None and self._store.dim is not None

    def _refresh(self) -> None:
        """Load (or rebuild) the index when there is none or the model or whitening changed, then catch
        it up (lock held)."""
        if self._index is None or self._index.model_signature != self._database_signature():
            self._index = self._load()
        if self._index is not None:
            self._catch_up(self._index, self._whitening)

    def _database_signature(self) -> str:
        return self._signature(self._store.whitening_key())

    def _load(self) -> SearchIndex | None:
        """The saved index, or an empty one to fill when the file is not usable (lock held)."""
        dim = self._store.dim
        if not self._has_model():
            return None
        try:
            return self._saved_index()
        except IndexMismatch as exc:
            if self._path.exists():
                self._notice(f"index file not usable ({exc}); rebuilding it from the database")
            elif self._store.count_files():  # none at all (deleted, or `repair` made way for a new one)
                log.info("no index file in %s; building it from the database", self._path.parent)
            self._discard_file()
            self._dirty = True
            return self._new_index(dim, self._whitening_key)

    def _saved_index(self) -> SearchIndex:
        """The index file with the database's whitening (taken as the index's); IndexMismatch when it is
        unusable (lock held)."""
        stored = self._store.whitening()
        self._whitening = None if stored is None else LibraryWhitening(stored.mean, stored.projection)
        self._whitening_key = None if stored is None else stored.key
        index = load_index(self._vector_store, self._path, model_signature=self._signature(self._whitening_key),
                           dim=self._store.dim)
        if index.generation > self._store.generation:
            raise IndexMismatch(f"generation mismatch: file has {index.generation}, database has "
                                f"{self._store.generation} (restored from a backup, or a power cut)")
        return index

    def _model_signature(self) -> str | None:
        return self._store.get_meta("model_signature")

    def _signature(self, whitening_key: str | None) -> str:
        return index_signature(self._model_signature(), whitening_key)

    def _new_index(self, dim: int, whitening_key: str | None) -> SearchIndex:
        """An empty index of the library's vector store, sized for the library."""
        return new_index(self._vector_store, self._path.parent, dim, self._signature(whitening_key),
                         capacity=max(1024, self._store.count_files()))

    def _catch_up(self, index: SearchIndex, whitening: LibraryWhitening | None) -> None:
        """Give the index the vectors written after its generation and drop the rows deleted since;
        its labels end up exactly the database's rows with a usable vector, whatever the generations say."""
        changes = self._store.vector_changes(index.generation)
        labels = index.labels()
        gone = np.setdiff1d(labels, changes.live)
        wanted = np.union1d(changes.changed, np.setdiff1d(changes.live, labels))
        if len(gone):
            index.remove(gone)
        for start in range(0, len(wanted), CATCH_UP_CHUNK):
            vectors = self._store.vectors(wanted[start:start + CATCH_UP_CHUNK])  # damaged or deleted rows drop out
            if vectors:
                matrix = np.stack(list(vectors.values()))
                index.add(np.fromiter(vectors, np.int64, len(vectors)),
                          matrix if whitening is None else whitening.apply(matrix))
        if len(gone) or len(wanted):
            log.info("index caught up from generation %d to %d: %d vectors added, %d removed",
                     index.generation, changes.generation, len(wanted), len(gone))
            self._dirty = True
        index.generation = changes.generation

    def _build(self, dim: int, whitening: LibraryWhitening | None, key: str | None) -> SearchIndex:
        index = self._new_index(dim, key)
        self._catch_up(index, whitening)
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
            self._index = new_index(self._vector_store, self._path.parent, dim, self._signature(None))
            self._dirty = True

    def add(self, ids: list[int], raw_vectors: np.ndarray) -> None:
        """Add photos this process just committed (their raw vectors; the cache applies the whitening)."""
        self._own_change(added=(ids, raw_vectors))

    def remove(self, ids: list[int]) -> None:
        """Remove rows this process just deleted."""
        if ids:
            self._own_change(removed=ids)

    def _own_change(self, added: tuple[list[int], np.ndarray] | None = None,
                    removed: list[int] | None = None) -> None:
        """Apply this process's commit: directly when it is the only commit since the index's generation,
        else by catching up (another process committed too)."""
        with self._lock:
            if self._index is None:
                self._refresh()
            index, whitening = self._index, self._whitening
            assert index is not None, "start_model comes first"
            generation = self._store.generation
            if generation != index.generation + 1:
                self._refresh()
                return
            if removed:
                index.remove(np.array(removed, dtype=np.int64))
            if added is not None:
                ids, vectors = added
                index.add(np.array(ids, dtype=np.int64), vectors if whitening is None else whitening.apply(vectors))
            index.generation = generation
            self._dirty = True

    def refit(self, whitening: LibraryWhitening, stored: StoredWhitening) -> None:
        """Save a new whitening and swap in an index built through it. Built beside the current index,
        which searches keep using until the swap; the database gets the whitening at the swap, so
        searches see the two together."""
        index = self._build(len(whitening.mean), whitening, stored.key)
        with self._lock:
            self._store.save_whitening(stored)
            self._discard_file()
            self._whitening, self._whitening_key, self._index = whitening, stored.key, index
            self._catch_up(index, whitening)  # the whitening's own generation, and commits made meanwhile
            self._dirty = True

    def save(self) -> None:
        with self._lock:
            self._save()

    def save_if_dirty(self) -> None:
        with self._lock:
            if self._index is not None and self._dirty:
                self._save()

    def _save(self) -> None:
        """Save the index stamped with the generation it holds. A file another process saved from a
        later generation stays: this index would only take it back in time."""
        if self._index is None:
            return
        try:
            on_disk = saved_generation(self._path)
            if self._index.generation < on_disk <= self._store.generation:
                log.info("kept the index file of generation %d (this one holds %d)", on_disk,
                         self._index.generation)
                self._dirty = False
                return
        except IndexMismatch:
            pass  # none, or damaged: replaced
        try:
            self._index.save(self._path, generation=self._index.generation)
            self._dirty = False
        except OSError as exc:
            # The index is only a cache: the database still has everything, the next start rebuilds.
            self._notice(f"could not save the index file ({exc}); it will be rebuilt on the next start")
