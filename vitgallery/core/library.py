"""Library: one photo root, its database and its index; the one object clients (CLI, window) hold.

The parts live in their own modules: indexing.py (a run that brings the library up to date),
index_cache.py (the vector index, a cache of the database), search.py (queries and the re-rank).
Clients call only the public methods here.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_data_dir

from vitgallery.core.errors import LibraryError, QueryNeedsModel
from vitgallery.core.index_cache import INDEX_NAME, IndexCache, SearchSpace, index_signature
from vitgallery.core.indexing import IndexProgress, IndexRun, IndexSummary
from vitgallery.core.models import Embedder, load_embedder, signature_model_and_precision
from vitgallery.core.scan import root_is_available
from vitgallery.core.search import LibrarySearch, QueryImage, SearchHit
from vitgallery.core.store import FileRow, SkippedFile, Store

log = logging.getLogger(__name__)

__all__ = ["DB_NAME", "INDEX_NAME", "IndexProgress", "IndexSummary", "Library", "LibraryError",
           "LibraryStatus", "QueryNeedsModel", "SearchHit", "SearchSpace", "default_library_dir",
           "index_signature", "last_library_dir", "remember_last_library"]

DB_NAME = "library.sqlite3"


def default_library_dir(root: Path) -> Path:
    """A folder in the user data dir, keyed by the photo root; nothing goes into the photo folder."""
    root = root.expanduser().absolute()
    key = hashlib.sha1(str(root).encode()).hexdigest()[:16]
    return Path(user_data_dir("vitgallery", appauthor=False)) / "libraries" / f"{root.name or 'root'}-{key}"


def last_library_file() -> Path:
    """Where the window and the CLI both note the library used last."""
    return Path(user_data_dir("vitgallery", appauthor=False)) / "last_library"


def remember_last_library(library_dir: Path) -> None:
    path = last_library_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(str(library_dir))
    except OSError as exc:  # only the shortcut for later commands is lost
        log.warning("could not remember the library in %s (%s); pass --library next time", path, exc)


def last_library_dir() -> Path | None:
    """The library used last by the window or the CLI, if it still exists."""
    try:
        text = last_library_file().read_text().strip()
    except OSError:
        return None
    return Path(text) if text and (Path(text) / DB_NAME).exists() else None


@dataclass(frozen=True)
class LibraryStatus:
    root: Path
    library_dir: Path
    root_online: bool
    photos: int
    skipped: int
    model_signature: str | None
    index_size: int


class Library:
    """Thread-safe for one indexer plus any number of searching threads."""

    def __init__(self, root: Path, library_dir: Path, store: Store):
        self.root = root
        self.library_dir = library_dir
        self.store = store  # for the core's own parts (duplicates, actions); clients use the methods
        self.notices: list[str] = []  # things the user should hear about (index rebuilt, root offline)
        self._cache = IndexCache(library_dir, store, self._notice)
        self._search = LibrarySearch(root, store, self._cache)
        self._indexing = threading.Lock()  # one run at a time per Library object

    # -- opening -----------------------------------------------------------------------------------

    @classmethod
    def open(cls, photo_root: Path | str | None = None, library_dir: Path | str | None = None) -> Library:
        """Open (or create) the library of a photo root; with only library_dir, reopen an existing one."""
        if photo_root is None and library_dir is None:
            raise LibraryError("give a photo folder or a library folder")
        lib_dir = Path(library_dir).expanduser() if library_dir else default_library_dir(Path(photo_root))
        if not (lib_dir / DB_NAME).exists():
            if photo_root is None:
                raise LibraryError(f"no library in {lib_dir}; index a folder first: vitgallery index FOLDER")
            if not Path(photo_root).expanduser().is_dir():
                # A typo must not leave an empty library behind (an existing one may be offline: that is fine).
                raise LibraryError(f"no such folder: {photo_root}")
        store = Store(lib_dir / DB_NAME)
        recorded = store.get_meta("root")
        if photo_root is None:
            root = Path(recorded)
        else:
            root = Path(photo_root).expanduser().absolute()
            if recorded is None:
                store.set_meta("root", str(root))
            elif Path(recorded) != root:
                store.close()
                raise LibraryError(f"{lib_dir} is the library of {recorded}, not of {root}")
        return cls(root, lib_dir, store)

    def close(self) -> None:
        self._cache.save_if_dirty()
        self.store.close()

    # -- what the library holds and needs ---------------------------------------------------------

    @property
    def model_signature(self) -> str | None:
        return self.store.get_meta("model_signature")

    @property
    def weights_file(self) -> Path | None:
        """The local weights file the library was indexed with (None: the official download)."""
        recorded = self.store.get_meta("weights_path")
        return Path(recorded) if recorded else None

    def photo_count(self) -> int:
        return self.store.count_files()

    def load_embedder(self, *, device: str = "auto", weights: Path | str | None = None,
                      progress: bool = True) -> Embedder:
        """The model this library was indexed with, with the weights it was indexed with (or `weights`,
        the same file found elsewhere)."""
        signature = self.model_signature
        if signature is None:
            raise LibraryError("the library is empty: index a folder first")
        name, precision = signature_model_and_precision(signature)
        embedder = load_embedder(name, weights=weights or self.weights_file, device=device, precision=precision,
                                 progress=progress)
        if embedder.signature != signature:
            raise LibraryError(f"these weights differ from the ones the library was indexed with ({signature})")
        return embedder

    def search_space(self) -> SearchSpace | None:
        """The index and the whitening its vectors went through (None before anything was indexed)."""
        return self._cache.space()

    def _notice(self, message: str) -> None:
        log.warning(message)
        self.notices.append(message)

    # -- indexing and search -----------------------------------------------------------------------

    def index(self, embedder: Embedder, *, progress: Callable[[IndexProgress], None] | None = None,
              cancel: threading.Event | None = None, pause: threading.Event | None = None,
              batch_size: int | None = None, decode_workers: int | None = None) -> IndexSummary:
        """Bring the library up to date with the folder: embed new and changed photos, follow moved
        ones, drop deleted ones. Safe to cancel or kill at any point: each batch commits on its own."""
        with self._indexing:
            run = IndexRun(self.root, self.store, self._cache, embedder, notice=self._notice,
                           progress=progress, cancel=cancel, pause=pause)
            return run.run(batch_size, decode_workers)

    def search(self, query: QueryImage, *, k: int = 20, embedder: Embedder | None = None,
               verify: bool = True) -> list[SearchHit]:
        """The k most similar photos, best first. A photo of this library uses its stored vector (no
        embedder needed; any other query raises QueryNeedsModel without one). The top candidates are
        verified with SIFT keypoints and re-ranked; `verify=False` skips that."""
        return self._search.search(query, k=k, embedder=embedder, verify=verify)


    # -- listing -----------------------------------------------------------------------------------

    def photos(self) -> list[FileRow]:
        return sorted(self.store.files().values(), key=lambda r: r.path)

    def skipped(self) -> list[SkippedFile]:
        return list(self.store.skipped().values())

    def status(self) -> LibraryStatus:
        space = self._cache.space()
        return LibraryStatus(self.root, self.library_dir, root_is_available(self.root), self.store.count_files(),
                             len(self.store.skipped()), self.model_signature, len(space.index) if space else 0)
