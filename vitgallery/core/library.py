"""Library: one photo root, its database and its index; the one object clients (CLI, window) hold.

The parts live in their own modules: indexing.py (a run that brings the library up to date),
index_cache.py (the vector index, a cache of the database), search.py (queries and the re-rank).
Clients call only the public methods here.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from platformdirs import user_data_dir

try:
    import fcntl
except ImportError:  # Windows: index runs of two processes on one library are not kept apart
    fcntl = None

from vitgallery.core.calibration import calibrate_for_library, library_embedder, library_model_file
from vitgallery.core.duplicates import (
    ActionEntry,
    ActionPlace,
    ActionReport,
    Decision,
    DuplicateGroup,
    DuplicateMember,
    DuplicateProgress,
    DuplicateScan,
    GroupSelection,
    Separation,
    UserDecisions,
    chosen_keeps,
    decide,
    follow_own_removal,
    kept_scan_is_current,
    load_decisions,
    load_scan,
    outdated_scan_age,
    remember_keep,
    scan_duplicates,
    separate,
    separations,
    take_back,
)
from vitgallery.core.duplicates import actions as duplicate_actions
from vitgallery.core.errors import EmptyLibrary, LibraryError, QueryNeedsModel
from vitgallery.core.explain import Explanation, PhotoSource, explain_pair
from vitgallery.core.index_cache import INDEX_NAME, IndexCache, SearchSpace, index_signature
from vitgallery.core.indexing import (
    IndexProgress,
    IndexRun,
    IndexSummary,
    bring_back,
    embedded_as_is,
    plan_changes,
    relative_to_root,
    set_aside_unchanged,
)
from vitgallery.core.models import (
    MODELS,
    Embedder,
    load_embedder,
    signature_has_weights,
    signature_model_and_precision,
    signature_runtime,
    weights_checksum,
)
from vitgallery.core.photo_features import PhotoFeatures
from vitgallery.core.region import Region
from vitgallery.core.scan import (
    FoundFile,
    Listing,
    library_folder_name,
    photo_root_path,
    root_is_available,
    scan_root,
)
from vitgallery.core.search import LibrarySearch, QueryImage, SearchHit
from vitgallery.core.store import FileRow, SkippedFile, Store, StoreError
from vitgallery.core.vector_store import VectorStoreError, VectorStoreSetting

log = logging.getLogger(__name__)

__all__ = ["DB_NAME", "INDEX_NAME", "DiskChanges", "IndexProgress", "IndexSummary", "Library", "LibraryError",
           "LibraryStatus", "MovedLibrary", "QueryNeedsModel", "SearchHit", "SearchSpace", "default_library_dir",
           "index_signature", "last_library_dir", "library_followed_from", "moved_library",
           "remember_last_library"]

DB_NAME = "library.sqlite3"
INDEX_LOCK_NAME = "index.lock"


def default_library_dir(root: Path) -> Path:
    """A folder in the user data dir, keyed by the photo root; nothing goes into the photo folder."""
    return Path(user_data_dir("vitgallery", appauthor=False)) / "libraries" / library_folder_name(root)


def library_dir_under(location: Path, folder: Path) -> Path:
    """The library of `folder` under a location the user chose: one library folder per photo folder. A
    location that is itself the library of `folder` (as the setting was used before) stays its library."""
    folder = photo_root_path(folder)
    if _recorded_root(location) == folder:
        return location
    return location / library_folder_name(folder)


def known_photo_folder(folder: Path, location: Path | None = None) -> Path:
    """`folder` by the name its library knows it by, so that one folder has one library, not a second one
    embedding every photo again: a folder reached through a link (~/Pictures linking to a drive) whose
    target has a library is that target; a folder whose library was made through a link to it is that
    link. Any other folder keeps the name given. `location`: the library location from Settings."""
    folder = photo_root_path(folder)

    def has_library(name: Path) -> bool:
        return ((library_dir_under(location, name) if location else default_library_dir(name)) / DB_NAME).exists()

    if has_library(folder):
        return folder
    real = Path(os.path.realpath(folder))
    if real != folder and has_library(real):
        return real
    return _linked_root_of(real, location or default_library_dir(folder).parent) or folder


def _linked_root_of(real: Path, libraries: Path) -> Path | None:
    """The photo folder of a library among `libraries` (one library folder per photo folder) that was made
    through a link leading to `real` now: its recorded root, which the library is found by. Read only
    where a folder has no library under its own name or its target's: one small read per library."""
    try:
        candidates = sorted(libraries.iterdir())
    except OSError:
        return None
    for candidate in candidates:
        recorded = _recorded_root(candidate)
        # Named for its recorded root, else the recorded root would not lead back to this library folder.
        if (recorded is not None and recorded != real and candidate.name == library_folder_name(recorded)
                and Path(os.path.realpath(recorded)) == real):
            return recorded
    return None


def library_followed_from(library_dir: Path) -> Path | None:
    """Where the library that was in `library_dir` is now, when it followed its photos to another folder and
    its library folder was renamed for it (None: no such library beside it). An undo command printed
    before the move names the old folder."""
    if not library_dir.parent.is_dir():
        return None
    for candidate in sorted(library_dir.parent.iterdir()):
        try:
            former = json.loads(_peeked_meta(candidate, "former_roots") or "[]")
        except ValueError:
            continue
        if isinstance(former, list) and any(isinstance(root, str) and library_folder_name(root) == library_dir.name
                                            for root in former):
            return candidate
    return None


def _same_folder(first: Path, second: Path) -> bool:
    """Whether two names of folders lead to the same folder now (a link and its target)."""
    return os.path.realpath(first) == os.path.realpath(second)


def _recorded_root(library_dir: Path) -> Path | None:
    """The photo folder a library folder's database names (None: no library there, or not one that says)."""
    recorded = _peeked_meta(library_dir, "root")
    return None if recorded is None else Path(recorded)


def _peeked_meta(library_dir: Path, key: str) -> str | None:
    """A value of a library's meta table, read without opening the library for writing (None: no library
    there, or no such value)."""
    try:
        with closing(sqlite3.connect(f"{(library_dir / DB_NAME).absolute().as_uri()}?mode=ro", uri=True)) as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    except sqlite3.Error:  # none there, or not a library
        return None
    return None if row is None else os.fsdecode(row[0])


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


# A photo folder opened for the first time whose photos are those of a folder indexed before and gone
# since: MOVED_SAMPLE of that library's photos drawn at random, MOVED_FOUND_SHARE of them here.
MOVED_SAMPLE = 64
MOVED_FOUND_SHARE = 0.9


@dataclass(frozen=True)
class MovedLibrary:
    """The library of a photo folder that is gone, whose photos are in another folder: renamed or moved there."""

    library_dir: Path
    old_root: Path
    photos: int


def moved_library(folder: Path, library_dir: Path | None = None, *, own_too: bool = False) -> MovedLibrary | None:
    """Where `folder` has no library yet (at `library_dir`, else the default place): a library beside that
    place whose photo folder is no longer there and whose photos `folder` holds (the same relative paths
    and sizes), as when the folder was renamed or moved. Following it (Library.open with `repoint`) saves
    embedding every photo again. None when `folder` has a library with photos (unless `own_too`: the user
    asked to follow), or no such library is found; a library folder the user named (not one folder per
    photo folder) is not looked beside."""
    folder = photo_root_path(folder)
    own = library_dir or default_library_dir(folder)
    if own.name != library_folder_name(folder) or not own.parent.is_dir() or (not own_too and _photos_in(own)):
        return None
    found = [moved for candidate in sorted(own.parent.iterdir())
             if candidate != own and (candidate / DB_NAME).exists() and (moved := _moved_to(candidate, folder))]
    return max(found, key=lambda moved: moved.photos, default=None)


def _moved_to(library_dir: Path, folder: Path) -> MovedLibrary | None:
    """The library in `library_dir` if its photo folder is gone and its photos are in `folder`. Only a
    library whose folder is gone is opened; the others are read, not opened for writing (one being indexed
    by another process is not waited for)."""
    recorded = _recorded_root(library_dir)
    # An existing folder (an empty mount point of an unplugged drive, too) may still be the photos' place.
    if recorded is None or library_dir.name != library_folder_name(recorded) or recorded.exists():
        return None
    try:
        store = Store(library_dir / DB_NAME)
    except StoreError:
        return None  # damaged, or another version's: not ours to follow
    try:
        sample = store.sample_files(MOVED_SAMPLE)
        here = sum(_has_size(folder / row.path, row.size) for row in sample)
        if not sample or here < MOVED_FOUND_SHARE * len(sample):
            return None
        return MovedLibrary(library_dir, recorded, store.count_files())
    finally:
        store.close()


def _photos_in(library_dir: Path) -> int:
    """The photos a library folder holds (0 where there is none)."""
    if not (library_dir / DB_NAME).exists():
        return 0
    store = Store(library_dir / DB_NAME)
    try:
        return store.count_files()
    finally:
        store.close()


def _photos_only_in(library_dir: Path, other: Store) -> int:
    """How many photos the library in `library_dir` holds that `other` does not (by content)."""
    if not (library_dir / DB_NAME).exists():
        return 0
    store = Store(library_dir / DB_NAME)
    try:
        fingerprints = {row.fingerprint for row in store.files().values() if row.has_vector}
    finally:
        store.close()
    return len(fingerprints - other.paths_by_fingerprint(fingerprints).keys())


def _has_size(path: Path, size: int) -> bool:
    try:
        return path.stat().st_size == size
    except OSError:
        return False


def _follow_problem(store: Store, old_root: Path, new_root: Path) -> str | None:
    """Why a library should not follow its photos from `old_root` to `new_root`: the old folder is still
    there (a copy would take its index and undo history away from it), or the new one holds none of a
    sample of its photos (another folder altogether)."""
    if root_is_available(old_root):
        return (f"{old_root} is still there: a library follows a photo folder that was renamed or moved. To index "
                f"{new_root} as a folder of its own, leave out --repoint and --library")
    sample = store.sample_files(MOVED_SAMPLE)
    if sample and not any(_has_size(new_root / row.path, row.size) for row in sample):
        return (f"{new_root} holds none of {len(sample)} photos of {old_root} drawn at random: it is another "
                "folder, not that one renamed or moved. Leave out --repoint to index it as a folder of its own")
    return None


def _renamed_for_new_place(store: Store, lib_dir: Path, old_root: Path, new_root: Path) -> tuple[Store, Path]:
    """(store, library folder) of a library that follows its photos from `old_root` to `new_root`. A library
    folder named for its photo folder (the default place, or one per photo folder under a chosen location)
    is renamed for the new one, so that the window and the commands find it there; a library folder the
    user named keeps its name. A library already there that holds nothing this one lacks (an index of
    the new place, stopped) gives way; one with other photos stops the move."""
    if lib_dir.name != library_folder_name(old_root):
        return store, lib_dir
    target = lib_dir.with_name(library_folder_name(new_root))
    extra = _photos_only_in(target, store)
    store.close()
    if extra:
        raise LibraryError(f"{new_root} already has a library in {target}, with {extra} photos that the library of "
                           f"{old_root} lacks: to follow that one there instead, remove {target} first")
    if target.exists():
        shutil.rmtree(target)
    try:
        lib_dir.rename(target)
    except OSError as exc:
        raise LibraryError(f"could not move the library folder {lib_dir} to {target}, named for the photos' "
                           f"new place: {exc.strerror or exc}") from exc
    log.info("library %s moved to %s with its photos", lib_dir, target)
    return Store(target / DB_NAME), target


class DiskChanges(NamedTuple):
    """Photos of the folder the library does not hold as they are now (Library.changes_on_disk)."""

    new: int  # new or changed: the next index embeds them
    moved: int  # renamed or moved within the folder: the next index keeps their vectors
    gone: int  # gone from the folder (or another photo's content moved onto them)
    # (path, why) of what the listing cannot read and the library does not list yet (a pipe, a link to a
    # missing file, a folder it may not enter): the next index lists them with the skipped files
    unreadable: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class LibraryStatus:
    root: Path
    library_dir: Path
    root_online: bool
    photos: int
    skipped: int
    model_signature: str | None
    index_size: int
    indexing: bool  # an index run holds the library now (this process's or another's): counts still grow


class Library:
    """Thread-safe for one indexer plus any number of searching threads."""

    def __init__(self, root: Path, library_dir: Path, store: Store, vector_store: VectorStoreSetting):
        self.root = root
        self.library_dir = library_dir
        self.store = store  # for the core's own parts (duplicates, actions); clients use the methods
        self.notices: list[str] = []  # things the user should hear about (index rebuilt, root offline)
        self.followed_from: Path | None = None  # the photo folder's place before, when opening followed it here
        self.vector_store = vector_store  # as recorded in the database (Library.open)
        self._cache = IndexCache(library_dir, store, self._notice, self.vector_store)
        self._search = LibrarySearch(root, store, self._cache)
        self._indexing = threading.Lock()  # one run at a time per Library object
        # (an embedder given that needs calibration, the same with this library's own model): see _own_model
        self._own_model: tuple[Embedder, Embedder] | None = None

    # -- opening -----------------------------------------------------------------------------------

    @classmethod
    def open(cls, photo_root: Path | str | None = None, library_dir: Path | str | None = None, *,
             repoint: bool = False, vector_store: VectorStoreSetting | None = None) -> Library:
        """Open (or create) the library of a photo root; with only library_dir, reopen an existing one.
        `repoint`: the library's photo folder was renamed or moved to photo_root; follow it there.
        `vector_store` changes where its vectors are searched (recorded; the index is rebuilt there)."""
        if photo_root is None and library_dir is None:
            raise LibraryError("give a photo folder or a library folder")
        followed_from = None
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
            if recorded is None:
                store.close()
                raise LibraryError(f"{lib_dir} names no photo folder (its database is empty or damaged): index one "
                                   f"into it with `vitgallery index FOLDER --library {lib_dir}`")
            root = Path(recorded)
        else:
            root = photo_root_path(photo_root)
            if recorded is not None and Path(recorded) != root and not repoint and _same_folder(Path(recorded), root):
                root = Path(recorded)  # reached through a link (or the link's target): one library, its name kept
            if recorded is not None and Path(recorded) != root and not repoint:
                store.close()
                raise LibraryError(f"{lib_dir} is the library of {recorded}, not of {root}; if that folder was "
                                   f"renamed or moved to {root}, follow it: "
                                   f"`vitgallery index {root} --library {lib_dir} --repoint`")
            if recorded is not None and Path(recorded) != root:
                problem = _follow_problem(store, Path(recorded), root)
                if problem is not None:
                    store.close()
                    raise LibraryError(problem)
                store, lib_dir = _renamed_for_new_place(store, lib_dir, Path(recorded), root)
            if recorded is None or Path(recorded) != root:
                store.set_meta("root", str(root))
                if recorded is not None:
                    store.add_former_root(Path(recorded), root)  # its action log names files as they were there
                    followed_from = Path(recorded)
                    log.info("library %s now follows its photos from %s to %s", lib_dir, recorded, root)
        recorded_store = store.get_meta("vector_store") or str(VectorStoreSetting())
        if vector_store is not None and str(vector_store) != recorded_store:
            store.set_meta("vector_store", str(vector_store))
            recorded_store = str(vector_store)
        try:
            setting = VectorStoreSetting.parse(recorded_store)
        except VectorStoreError as exc:
            store.close()
            raise LibraryError(f"the library's vector store setting is damaged ({exc}): run `vitgallery repair`, "
                               "or index with --vector-store") from None
        library = cls(root, lib_dir, store, setting)
        library.followed_from = followed_from
        return library

    def close(self) -> None:
        if not self.store.read_only:  # a read-only library searches; its index file stays as it is
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

    def weights_for(self, model: str) -> Path | None:
        """The weights file the library was indexed with, for indexing it again with the same model:
        without it an offline machine would try to download the official weights."""
        signature, weights = self.model_signature, self.weights_file
        if signature is None or weights is None or signature_model_and_precision(signature)[0] != model:
            return None
        return weights if weights.is_file() else None

    def photo_count(self) -> int:
        return self.store.count_files()

    def load_embedder(self, *, device: str = "auto", weights: Path | str | None = None,
                      progress: bool = True) -> Embedder:
        """The model this library was indexed with, with the weights it was indexed with (or `weights`,
        the same file found elsewhere)."""
        signature = self.model_signature
        if signature is None:
            raise EmptyLibrary()
        name, precision = signature_model_and_precision(signature)
        embedder = load_embedder(name, weights=weights or self.weights_file, device=device, precision=precision,
                                 runtime=signature_runtime(signature), progress=progress,
                                 calibrated_model=library_model_file(self.library_dir, signature),
                                 trusted_signature=signature)
        if embedder.needs_calibration:
            raise LibraryError("the library was indexed with an OpenVINO int8 model it does not hold (calibrated "
                               "on synthetic pictures by an older vitgallery): index the folder again")
        if embedder.signature != signature:
            raise self._other_weights(name)
        return embedder

    def check_weights(self, weights: Path | str) -> None:
        """Refuse a weights file other than the one the library was indexed with (its checksum is in the
        model signature), said before a search: a query photo of the library is searched with its stored
        vector, so no model is read and other weights would go unsaid. The same weights found at another
        path are the library's (load_embedder uses them)."""
        signature = self.model_signature
        spec = MODELS.get(signature_model_and_precision(signature)[0]) if signature else None
        if spec is None or spec.weights_url is None:  # empty, unknown (load_embedder says so), or no weights file
            return
        if not signature_has_weights(signature, spec.name, weights_checksum(Path(weights).expanduser())):
            raise self._other_weights(spec.name, Path(weights))

    def _other_weights(self, name: str, given: Path | None = None) -> LibraryError:
        kept = self.weights_file
        return LibraryError(
            f"these weights{f' ({given})' if given is not None else ''} are not the ones the library was indexed "
            f"with ({name}" + (f", {kept}" if kept is not None else ", its official download")
            + "): search with those, or index the folder again into a new library (--library DIR) with these")

    def search_space(self) -> SearchSpace | None:
        """The index and the whitening its vectors went through (None before anything was indexed)."""
        return self._cache.space()

    def load_index_if_current(self) -> bool:
        """Load the index file now if it is up to date with the database (see IndexCache.load_if_current)."""
        return self._cache.load_if_current()

    def _notice(self, message: str) -> None:
        log.warning(message)
        self.notices.append(message)

    # -- indexing and search -----------------------------------------------------------------------

    def index(self, embedder: Embedder, *, progress: Callable[[IndexProgress], None] | None = None,
              cancel: threading.Event | None = None, pause: threading.Event | None = None,
              batch_size: int | None = None, decode_workers: int | None = None,
              forget_missing: bool = False, listing: Listing | None = None) -> IndexSummary:
        """Bring the library up to date with the folder: embed new and changed photos, follow moved
        ones, drop deleted ones. Safe to cancel or kill at any point: each batch commits on its own.

        Photos under a mount point that disappeared, and most of the library's photos gone at once,
        are kept (summary.missing_kept) unless `forget_missing` says to forget them. `listing`: the
        folder as listed beside this run (the window lists it for its grid), so it is not listed twice.

        An embedder that needs calibration (OpenVINO int8) gets the library's own model: the one it was
        indexed with, or one calibrated now on its photos (core/calibration.py, phases "calibrating" and
        "quantising")."""
        cancel = cancel or threading.Event()
        with self._one_index_run(progress, cancel) as free:
            if not free:
                return IndexSummary(cancelled=True)
            started = time.monotonic()  # the summary's time counts the calibration too
            given = embedder
            embedder = calibrate_for_library(embedder, self.root, self.library_dir, self.model_signature,
                                             report=progress or (lambda p: None), cancel=cancel, listing=listing)
            if embedder is None:
                return IndexSummary(cancelled=True, seconds=time.monotonic() - started)
            if given is not embedder:
                self._own_model = (given, embedder)
            run = IndexRun(self.root, self.store, self._cache, embedder, notice=self._notice,
                           progress=progress, cancel=cancel, pause=pause, forget_missing=forget_missing,
                           listing=listing)
            summary = run.run(batch_size, decode_workers)
            summary.seconds = time.monotonic() - started
            return summary

    def search(self, query: QueryImage, *, k: int = 20, embedder: Embedder | None = None,
               verify: bool = True, region: Region | None = None, like: Sequence[Path | str] = (),
               unlike: Sequence[Path | str] = ()) -> list[SearchHit]:
        """The k most similar photos, best first. A photo of this library uses its stored vector (no
        embedder needed; any other query raises QueryNeedsModel without one). The top candidates are
        verified with SIFT keypoints and re-ranked; `verify=False` skips that.

        `region` (core.region.Region): search with that part of the query alone (embedded, so it needs
        the embedder). `like`, `unlike`: photos of this library marked "more like this" and "not this":
        the query moves towards the first and away from the others, which leave the results."""
        return self._search.search(query, k=k, embedder=self._own_model_of(embedder), verify=verify,
                                   region=region, like=like, unlike=unlike)

    def explain(self, embedder: Embedder, query: PhotoSource, result: PhotoSource, *,
                attention: bool = False) -> Explanation:
        """Why `result` matches `query`, judged as this library's search judges the pair: in its whitened
        space where it has one (the duplicates check's weights are for whitened cosines), on the keypoints
        and grey copies it keeps of the photos of its folder (core.explain.explain_pair)."""
        space = self.search_space()
        whitened = space is not None and space.whitening is not None
        kept = [self.stored_features(photo) if isinstance(photo, Path) else None for photo in (query, result)]
        return explain_pair(embedder, query, result, attention=attention,
                            project=space.project if whitened else None, kept=kept)

    def stored_features(self, photo: Path) -> PhotoFeatures | None:
        """The keypoints and grey copies the library keeps of `photo`, a photo of its folder as it was
        indexed: what a search judged it on; None for any other image."""
        return self._search.stored_features(photo.expanduser().absolute())

    def _own_model_of(self, embedder: Embedder | None) -> Embedder | None:
        """The embedder indexing was given (OpenVINO int8 before calibration) with this library's own
        model, made once and kept: the caller may search with the object it indexed with."""
        if embedder is None or not embedder.needs_calibration:
            return embedder
        given, own = self._own_model or (None, None)
        if given is not embedder or own is None or own.signature != self.model_signature:
            own = library_embedder(embedder, self.library_dir, self.model_signature)
            self._own_model = (embedder, own)
        return own

    # -- organising (core/organise): given paths indexed, vectors in the search space ---------------

    def index_paths(self, embedder: Embedder, paths: Iterable[Path | str], *,
                    progress: Callable[[IndexProgress], None] | None = None, cancel: threading.Event | None = None,
                    batch_size: int | None = None, decode_workers: int | None = None) -> IndexSummary:
        """Bring the library up to date for these files and folders only (what a folder watcher saw
        change): see IndexRun.run_paths. One indexing run at a time, with `index` too. An embedder that
        needs calibration gets the library's own model (`index` made it)."""
        cancel = cancel or threading.Event()
        with self._one_index_run(progress, cancel) as free:
            if not free:
                return IndexSummary(cancelled=True)
            embedder = library_embedder(embedder, self.library_dir, self.model_signature)
            run = IndexRun(self.root, self.store, self._cache, embedder, notice=self._notice,
                           progress=progress, cancel=cancel)
            return run.run_paths(paths, batch_size, decode_workers)

    @contextmanager
    def _one_index_run(self, progress: Callable[[IndexProgress], None] | None,
                       cancel: threading.Event) -> Iterator[bool]:
        """One indexing run on a library at a time, across processes too (a lock file beside the database,
        released by the system when a process dies): two `vitgallery index` at once each embedded every
        photo. The second waits (phase "waiting"), then finds the work done. False: cancelled meanwhile."""
        with self._indexing:
            try:
                lock = open(self.library_dir / INDEX_LOCK_NAME, "a") if fcntl is not None else None
            except OSError:
                lock = None  # a library that cannot be written: the run says so in its own words
            if lock is None:
                yield True
                return
            with lock:
                said = False
                while True:
                    try:
                        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if not said and progress is not None:
                            progress(IndexProgress("waiting", 0, 0, 0.0, None, None))
                            said = True
                        if cancel.wait(0.25):
                            yield False
                            return
                yield True

    def relative_path(self, path: Path | str) -> str | None:
        """The path as the library stores it ('' for the root itself), or None when it is outside the root."""
        return relative_to_root(self.root, path)

    def search_vectors(self, under: Path | str | None = None) -> tuple[list[Path], np.ndarray]:
        """Every embedded photo (or those under the folder `under`), sorted by path, with its vector in
        the search space (the library's whitening, unit length). A photo deleted since it was indexed is
        left out while the folder is there (groups and orders name files one can open); with the folder
        unplugged, every photo the library knows stays."""
        prefix = "" if under is None else self.relative_path(under)
        if prefix is None:
            raise LibraryError(f"{under} is not inside the library's folder {self.root}")
        online = root_is_available(self.root)
        rows = sorted((row for row in self.store.files().values()
                       if row.has_vector and (not prefix or row.path == prefix or row.path.startswith(prefix + "/"))
                       and (not online or (self.root / row.path).is_file())),
                      key=lambda r: r.path)
        stored = self.store.vectors(row.id for row in rows)
        rows = [row for row in rows if row.id in stored]
        space = self._cache.space()
        if not rows or space is None:
            return [], np.zeros((0, int(self.store.get_meta("dim") or 0)), np.float32)
        return [self.root / row.path for row in rows], space.project(np.stack([stored[r.id] for r in rows]))

    def stored_vectors(self, paths: Iterable[Path]) -> dict[Path, np.ndarray]:
        """The model vectors the library holds for these paths: photos of the library unchanged since
        they were embedded (others are absent from the answer: they need the model)."""
        rows = {path: row for path in paths if (row := self._search.stored_row(Path(path).expanduser().absolute()))}
        stored = self.store.vectors(row.id for row in rows.values())
        return {path: stored[row.id] for path, row in rows.items() if row.id in stored}


    # -- listing -----------------------------------------------------------------------------------

    def photos(self) -> list[FileRow]:
        return sorted(self.store.files().values(), key=lambda r: r.path)

    def skipped(self) -> list[SkippedFile]:
        return list(self.store.skipped().values())

    def changes_on_disk(self) -> DiskChanges | None:
        """What the folder holds that the library does not know yet, by listing it: what the next index
        would do (plan_changes, the index's own rule). None while the folder is not there. A file skipped
        as it is now is no change, also where the next index tries it again (a permission, say: it is
        listed as skipped); nor is a photo under a folder that cannot be reached now (an unplugged drive):
        the index keeps it."""
        if not root_is_available(self.root):
            return None
        scan = scan_root(self.root)
        vanished_mounts = [path for path in self.store.mount_points() if path not in scan.mount_points]
        listed = set_aside_unchanged(self.store, scan.files)
        skipped = self.store.skipped()
        plan = plan_changes(self.root, listed.found, listed.known, skipped, scan.unreachable + vanished_mounts)
        unreadable = tuple((path, why) for path, why in scan.problems
                           if path not in skipped or skipped[path].reason != why)
        retried = sum(1 for f in plan.to_embed
                      if (skip := skipped.get(f.path)) is not None and (skip.size, skip.mtime_ns) == (f.size, f.mtime_ns))
        return DiskChanges(len(plan.to_embed) - retried, plan.moved, len(plan.missing) + len(plan.replaced), unreadable)

    def status(self) -> LibraryStatus:
        space = self._cache.space()
        return LibraryStatus(self.root, self.library_dir, root_is_available(self.root), self.store.count_files(),
                             len(self.store.skipped()), self.model_signature, len(space.index) if space else 0,
                             self.index_running())

    def index_running(self) -> bool:
        """Whether an index run holds the library now, in any process (its lock file is taken)."""
        if fcntl is None:
            return False
        try:
            with open(self.library_dir / INDEX_LOCK_NAME, "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released as the file closes
        except BlockingIOError:
            return True
        except OSError:
            return False  # a library that cannot be written has no index run either
        return False

    # -- duplicates: the scan, the user's decisions, bulk actions and their undo ------------------

    def duplicate_scan(self, *, progress: Callable[[DuplicateProgress], None] | None = None,
                       cancel: threading.Event | None = None) -> DuplicateScan:
        """Near-duplicate groups over the whole library, with the user's decisions applied. The scan is
        kept in the library: only the pairs of photos new or changed since the last one are verified."""
        return scan_duplicates(self, progress=progress, cancel=cancel)

    def duplicate_scan_is_current(self) -> bool:
        """Whether the last scan kept is of the library as it is (see last_duplicate_scan), read at once."""
        return kept_scan_is_current(self.store)

    def last_duplicate_scan(self) -> DuplicateScan | None:
        """The last scan kept in the library, at once (no photo is read), or None before any; its
        `up_to_date` says whether the library changed since and `age_s` how old it is."""
        return load_scan(self)

    def outdated_duplicate_scan_age(self) -> float | None:
        """Seconds since the last scan, where it was made by an earlier version of the check and
        last_duplicate_scan therefore gives None (the next scan checks every pair again)."""
        return outdated_scan_age(self.store)

    def decide(self, group: DuplicateGroup, decision: str) -> Decision:
        """Remember a whole group as "not_duplicates" or "keep_all" (hidden until it changes)."""
        return decide(self.store, group, decision)

    def separate(self, first: Iterable[DuplicateMember], second: Iterable[DuplicateMember]) -> Decision:
        """Remember that no photo of `first` is a duplicate of any of `second` (a pair, a photo taken
        out of its group, a group split in two)."""
        return separate(self.store, first, second)

    def take_back(self, decision: Decision) -> None:
        """Forget a decision `decide` or `separate` made (an undo)."""
        take_back(self.store, decision)

    def remember_keep(self, group: DuplicateGroup, keep: Iterable[Path] | None) -> None:
        """Remember the photos the user keeps of a group instead of the rule's (None: the rule's again);
        chosen_keeps gives them back while the group is the same photos."""
        remember_keep(self.store, group, keep)

    def chosen_keeps(self, groups: Iterable[DuplicateGroup]) -> dict[str, frozenset[Path]]:
        """Group key -> the photos the user chose to keep, for those of `groups` they chose in."""
        return chosen_keeps(self.store, groups)

    def forget_keep_choices(self) -> None:
        """Every group is kept by the rule again (the user chose another rule)."""
        self.store.forget_keep_choices()

    def duplicate_decisions(self) -> UserDecisions:
        """Everything decided so far, for a scan made before a decision (DuplicateScan.decisions, .separated)."""
        return load_decisions(self.store)

    def separations(self) -> list[Separation]:
        """The photos told apart (pairs, photos taken out, groups split), one entry a step, newest first."""
        return separations(self.store)

    def act(self, action: str, selections: Sequence[GroupSelection], target: Path | None = None,
            stop: threading.Event | None = None) -> ActionReport:
        """Run a bulk action (a name of duplicates.BULK_ACTIONS) on the photos not kept of `selections`.
        `stop` (here and below): set to end it after the file it is moving."""
        return self._follow(duplicate_actions.act(self._action_place(), action, selections, target, stop))

    def move_into_folders(self, moves: Sequence[tuple[Path, Path]], stop: threading.Event | None = None) -> ActionReport:
        """Move each photo into its folder ((photo, folder) pairs: sorting, a group into a folder): one
        logged action that `undo` puts back."""
        return self._follow(duplicate_actions.move_files(self._action_place(), moves, stop))

    def undo(self, action_id: int, origins: Sequence[Path] = (), stop: threading.Event | None = None) -> ActionReport:
        """Put back what an action moved, as far as the files are still where it put them: into the photo
        folder, and into `origins`, folders outside it that the caller itself moved them from."""
        return self._follow(duplicate_actions.undo(self._action_place(), action_id, origins, stop))

    def _follow(self, report: ActionReport) -> ActionReport:
        """The library follows the files an action moved, at once, as its next index would: a photo
        moved within the photo folder keeps its row (its vector, keypoints, scan evidence) under the new
        path; one moved out of it leaves the library, what was known of it kept aside (put_away_files).
        Otherwise searches would name files that are gone, and the next index would take a large move
        for an unplugged drive. A photo put back from outside (an undo) gets that back at once, without
        the model, under its id with its duplicate scan evidence where that id is still free (a current
        scan stays current then)."""
        if not report.moved_files:  # an exported list names the files it lists: none of them moved
            return report
        scan_current = kept_scan_is_current(self.store)
        moved, gone, arrived = [], [], []
        for source, destination in report.done:
            found = None if destination is None else self._found_at(destination)
            row = (rel := self.relative_path(source)) and self.store.file_by_path(rel)
            if not row:
                # a file the library still holds as it is (its move was killed, or a full disk kept the
                # library from noting it) has nothing to catch up: it was never "changed while away"
                if found is not None and not embedded_as_is(found, self.store.file_by_path(found.path)):
                    arrived.append(found)
            elif found is None:
                gone.append(row.id)
            else:
                moved.append((row.id, found.path, found.size, found.mtime_ns))
        for path in report.back_by_hand:  # in its place again before the undo: back in the library too
            found = self._found_at(path)
            if found is not None and not self.store.file_by_path(found.path):
                arrived.append(found)
        # A stale row under a new path (a file deleted since the last index) gives way to the moved one.
        stale = {row.id for _, path, _, _ in moved if (row := self.store.file_by_path(path))} - {m[0] for m in moved}
        try:
            self.store.put_away_files(gone)
            self.store.delete_files(stale)
            self.store.move_files(moved)
            back, as_before = bring_back(self.root, self.store, arrived)
            follow_own_removal(self.store, scan_current and as_before)
        except StoreError as exc:  # the files moved all the same: say so, and how the library catches up
            report.unnoted = str(exc)
            return report
        report.to_index = [self.root / f.path for f in arrived if f.path not in back]
        return report

    def _found_at(self, path: Path) -> FoundFile | None:
        """The file at `path` as the library would list it; None outside the photo folder, or gone."""
        rel = self.relative_path(path)
        try:
            stat = path.stat() if rel else None
        except OSError:
            return None
        return None if stat is None else FoundFile(rel, stat.st_size, stat.st_mtime_ns)

    def action_history(self, limit: int = 50) -> list[ActionEntry]:
        """The latest actions, newest first; an action a kill interrupted is settled first."""
        return duplicate_actions.action_history(self._action_place(), limit)

    def _action_place(self) -> ActionPlace:
        return ActionPlace(self.store, self.root, tuple(self.store.former_roots()))
