"""Library: one photo root, its database, its index; indexing and search."""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from platformdirs import user_data_dir

from vitgallery.core.imageio import DecodeError, grey_keypoints, model_draft_size, open_image, working_copy
from vitgallery.core.index import IndexMismatch, VectorIndex, header_path
from vitgallery.core.models import Embedder, load_embedder, signature_model_and_precision
from vitgallery.core.pipeline import DecodeJob, decode_all, plan_resources
from vitgallery.core.quality import LEARNING_COPIES, Keypoints, LibraryWhitening, rerank, verify_pair
from vitgallery.core.refine import refined_query
from vitgallery.core.region import Region, region_image
from vitgallery.core.scan import FoundFile, fingerprint_file, root_is_available, scan_root
from vitgallery.core.store import EmbeddedFile, FileRow, SkippedFile, Store, StoredWhitening

log = logging.getLogger(__name__)

DB_NAME = "library.sqlite3"
INDEX_NAME = "index.hnsw"
INDEX_SAVE_INTERVAL_S = 60.0
# The search recipe measured in docs/quality.md: vectors whitened by what the library's own photos
# teach (each sampled photo against its mirror image and edited copies), then the top candidates
# verified by SIFT keypoints and re-ranked.
WHITENING_SAMPLE = 1000  # photos that teach the whitening (3 extra forward passes each)
WHITENING_MIN_PHOTOS = 8  # below this the library mean is mostly its photos themselves: plain cosine
WHITENING_SHRINK = 0.1
REFIT_CHANGE = 0.25  # refit once the library or the teaching sample changed by this share
RERANK_CANDIDATES = 50


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


def index_signature(model_signature: str | None, whitening_key: str | None) -> str:
    """What the index file's vectors are: the model's, through this whitening."""
    return f"{model_signature}|whitening:{whitening_key or 'none'}"


def _is_under(path: str, folders: list[str]) -> bool:
    return any(path == folder or path.startswith(folder + "/") for folder in folders)


class LibraryError(Exception):
    """A problem the user must act on (no library, wrong folder, empty library...)."""


class QueryNeedsModel(LibraryError):
    """The query is not a stored photo of the library, so it must be embedded with the model."""


@dataclass(frozen=True)
class IndexProgress:
    # "scanning", "embedding", "learning" (the teaching photos' mirrored and edited views), "fitting"
    # (the whitening, and the index rebuilt through it), "saving", "done"
    phase: str
    done: int
    total: int
    rate: float  # photos per second
    eta_s: float | None
    current_path: str | None


@dataclass
class IndexSummary:
    added: int = 0
    updated: int = 0
    moved: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped: int = 0
    skipped_reasons: dict[str, int] = field(default_factory=dict)
    teaching: int = 0  # photos embedded mirrored and edited this run, to teach the library's whitening
    offline: bool = False
    cancelled: bool = False
    seconds: float = 0.0

    def note_skip(self, reason: str) -> None:
        self.skipped += 1
        self.skipped_reasons[reason] = self.skipped_reasons.get(reason, 0) + 1


@dataclass(frozen=True)
class SearchHit:
    path: Path
    score: float  # what the ranking used, higher is more similar
    cosine: float
    inliers: int | None  # geometric-verification inliers, None when not verified
    file_id: int


@dataclass(frozen=True)
class LibraryStatus:
    root: Path
    library_dir: Path
    root_online: bool
    photos: int
    skipped: int
    model_signature: str | None
    index_size: int


QueryImage = Path | str | bytes | Image.Image


class Library:
    """Thread-safe for one indexer plus any number of searching threads."""

    def __init__(self, root: Path, library_dir: Path, store: Store):
        self.root = root
        self.library_dir = library_dir
        self.store = store
        self.notices: list[str] = []  # things the user should hear about (index rebuilt, root offline)
        self._index: VectorIndex | None = None
        self._whitening: LibraryWhitening | None = None  # what the vectors in self._index went through
        self._whitening_key: str | None = None
        self._index_dirty = False  # the in-memory index holds changes its file lacks
        self._index_lock = threading.Lock()

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
        with self._index_lock:
            if self._index is not None and self._index_dirty:
                self._save_index()
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

    # -- the index (a cache of the vectors in SQLite) ----------------------------------------------

    def _vector_index(self) -> VectorIndex | None:
        """The loaded index, rebuilt from SQLite when the file is missing, damaged or stale."""
        with self._index_lock:
            if self._index is not None:
                return self._index
            dim = self.store.get_meta("dim")
            if self.model_signature is None or dim is None:
                return None
            stored = self.store.whitening()
            self._whitening = None if stored is None else LibraryWhitening(stored.mean, stored.projection)
            self._whitening_key = None if stored is None else stored.key
            path = self.library_dir / INDEX_NAME
            try:
                self._index = VectorIndex.load(path, model_signature=self._index_signature(), dim=int(dim),
                                               generation=self.store.generation)
            except IndexMismatch as exc:
                if path.exists() or self.store.count_files():
                    self._notice(f"index file not usable ({exc}); rebuilding it from the database")
                self._discard_index_file()
                self._index = self._rebuild_index(int(dim))
            return self._index

    def _index_signature(self) -> str:
        return index_signature(self.model_signature, self._whitening_key)

    def _search_state(self) -> tuple[VectorIndex | None, LibraryWhitening | None]:
        """The index and the whitening its vectors went through, taken together (a refit swaps both)."""
        self._vector_index()
        with self._index_lock:
            return self._index, self._whitening

    def _discard_index_file(self) -> None:
        """Delete a rejected index file before the database changes again. After a power cut or a
        restored backup took the database back, new commits can bring its generation back to the one a
        stale file records; if this process then died before saving, the stale file would pass."""
        try:
            # The header is written last and checked first: without it the payload is void.
            header_path(self.library_dir / INDEX_NAME).unlink(missing_ok=True)
        except OSError as exc:
            log.warning("could not delete the stale index file: %s", exc)

    def _rebuild_index(self, dim: int) -> VectorIndex:
        index = self._build_index(dim, self._whitening, self._whitening_key)
        self._index_dirty = True
        return index

    def _build_index(self, dim: int, whitening: LibraryWhitening | None, key: str | None) -> VectorIndex:
        index = VectorIndex(dim, index_signature(self.model_signature, key), capacity=max(1024, self.store.count_files()))
        for ids, vectors in self.store.iter_vectors():
            index.add(ids, vectors if whitening is None else whitening.apply(vectors))
        return index

    def _add_vectors(self, ids: list[int], vectors: np.ndarray) -> None:
        with self._index_lock:
            index, whitening = self._index, self._whitening
        assert index is not None
        index.add(np.array(ids, dtype=np.int64), vectors if whitening is None else whitening.apply(vectors))
        self._index_dirty = True

    def _save_index(self) -> None:
        assert self._index is not None
        try:
            self._index.save(self.library_dir / INDEX_NAME, generation=self.store.generation)
            self._index_dirty = False
        except OSError as exc:
            # The index is only a cache: the database still has everything, the next start rebuilds.
            self._notice(f"could not save the index file ({exc}); it will be rebuilt on the next start")

    def _notice(self, message: str) -> None:
        log.warning(message)
        self.notices.append(message)

    # -- indexing ----------------------------------------------------------------------------------

    def index(self, embedder: Embedder, *, progress: Callable[[IndexProgress], None] | None = None,
              cancel: threading.Event | None = None, pause: threading.Event | None = None,
              batch_size: int | None = None, decode_workers: int | None = None) -> IndexSummary:
        """Bring the library up to date with the folder: embed new and changed photos, follow moved
        ones, drop deleted ones. Safe to cancel or kill at any point: each batch commits on its own."""
        started = time.monotonic()
        summary = IndexSummary()
        report = progress or (lambda p: None)
        cancel = cancel or threading.Event()

        if not root_is_available(self.root):
            summary.offline = True
            self._notice(f"{self.root} is missing or not mounted: nothing was removed from the library")
            return summary

        if self.model_signature != embedder.signature:
            if self.model_signature is not None:
                self._notice(f"model changed to {embedder.model_id}: every photo is embedded again")
            with self._index_lock:
                self._discard_index_file()
            self.store.start_new_model(embedder.signature, embedder.dim)
        if embedder.weights_file is not None:
            self.store.set_meta("weights_path", str(embedder.weights_file))  # later queries load the same file
            with self._index_lock:
                self._whitening, self._whitening_key = None, None
                self._index = VectorIndex(embedder.dim, self._index_signature())
                self._index_dirty = True
        index = self._vector_index()
        assert index is not None

        report(IndexProgress("scanning", 0, 0, 0.0, None, None))
        scan = scan_root(self.root)
        known = self.store.files()
        if not scan.files and known:
            summary.offline = True
            self._notice(f"{self.root} holds no photos now (unmounted?): nothing was removed from the library")
            return summary
        to_embed = self._plan(scan.files, known, index, summary, scan.unreachable)
        for rel, reason in scan.problems:  # listed with the skipped files, so the user can find them
            self.store.record_skipped(rel, 0, 0, reason)
            summary.note_skip(reason)
        plan = plan_resources(embedder.device.type)  # the split of cores measured by bench/throughput.py
        batch_size = batch_size or plan.batch_size
        decode_workers = plan.decode_workers if decode_workers is None else decode_workers
        self._embed(embedder, to_embed, summary, report, cancel, pause, batch_size, decode_workers)
        # Every photo is searchable first; then the library learns how to tell its photos apart.
        if not cancel.is_set():
            self._teach(embedder, summary, report, cancel, pause, batch_size, decode_workers)
        self._refresh_whitening(self.store.count_files(), report)

        report(IndexProgress("saving", len(to_embed), len(to_embed), 0.0, None, None))
        with self._index_lock:
            self._save_index()
        summary.seconds = time.monotonic() - started
        report(IndexProgress("done", len(to_embed), len(to_embed), 0.0, 0.0, None))
        return summary

    def _plan(self, found: list[FoundFile], known: dict[str, FileRow], index: VectorIndex,
              summary: IndexSummary, unreachable: list[str]) -> list[FoundFile]:
        """Sort found files into unchanged / moved / to embed; remove rows whose content is gone.

        An embedded content keeps its vector wherever it went: a moved or renamed file or folder, a
        file moved over another one, two swapped names, a file whose mtime alone changed."""
        found_paths = {f.path for f in found}
        skipped = self.store.skipped()
        stale_skips = [p for p in skipped if p not in found_paths]
        self.store.forget_skipped(stale_skips)

        candidates: list[FoundFile] = []
        for f in found:
            row = known.get(f.path)
            if row is not None and row.has_vector and row.size == f.size and row.mtime_ns == f.mtime_ns:
                summary.unchanged += 1
                continue
            skip = skipped.get(f.path)
            if skip is not None and skip.size == f.size and skip.mtime_ns == f.mtime_ns:
                summary.note_skip(skip.reason)  # retried only once the file changes
                continue
            candidates.append(f)

        offline = {path for path in known if path not in found_paths and _is_under(path, unreachable)}
        if offline:
            self._notice(f"{len(offline)} photos under {', '.join(sorted(unreachable))} cannot be reached now "
                         "(an unreadable folder, or a link to an unplugged drive): they stay in the library")
        # Rows whose content is no longer at their path; it may be at one of the candidates' paths.
        displaced = [row for path, row in known.items() if path not in found_paths and path not in offline]
        displaced += [known[f.path] for f in candidates if f.path in known]
        by_size: dict[int, list[FileRow]] = {}
        for row in displaced:
            if row.has_vector:
                by_size.setdefault(row.size, []).append(row)
        moves: dict[int, FoundFile] = {}  # row id -> where its content is now
        to_embed: list[FoundFile] = []
        for f in candidates:
            row = self._same_content(f, by_size.get(f.size, []), moves)
            if row is None:
                to_embed.append(f)
                continue
            moves[row.id] = f
            if row.path == f.path:
                summary.unchanged += 1
            else:
                summary.moved += 1

        taken = {f.path for f in moves.values()}
        gone = [row.id for row in displaced
                if row.id not in moves and (row.path not in found_paths or row.path in taken)]
        if gone or moves:
            with self.store.transaction():
                self.store.delete_files(gone)  # first: a moving row may take the path of a deleted one
                self.store.move_files([(row_id, f.path, f.size, f.mtime_ns) for row_id, f in moves.items()])
        if gone:
            index.remove(np.array(gone, dtype=np.int64))
            self._index_dirty = True
            summary.removed = len(gone)
        return to_embed

    def _same_content(self, f: FoundFile, rows: list[FileRow],
                      claimed: dict[int, FoundFile]) -> FileRow | None:
        rows = [row for row in rows if row.id not in claimed]
        if not rows:
            return None
        try:
            fingerprint = fingerprint_file(self.root / f.path)
        except OSError:
            return None
        return next((row for row in rows if row.fingerprint == fingerprint), None)

    def _embed(self, embedder: Embedder, files: list[FoundFile],
               summary: IndexSummary, report: Callable[[IndexProgress], None], cancel: threading.Event,
               pause: threading.Event | None, batch_size: int, decode_workers: int | None) -> None:
        known_before = set(self.store.files())
        total, done = len(files), 0
        started = time.monotonic()
        last_save = started
        batch: list[tuple[FoundFile, object]] = []

        def flush() -> None:
            nonlocal last_save
            if not batch:
                return
            vectors = embedder.embed_pixels(np.stack([photo.pixels for _, photo, _ in batch]))
            records = [EmbeddedFile(f.path, f.size, f.mtime_ns, fp, photo.width, photo.height, photo.taken_at,
                                    photo.sharpness, vec, photo.keypoints)
                       for (f, photo, fp), vec in zip(batch, vectors)]
            ids = self.store.add_embedded(records)
            self._add_vectors(ids, vectors)
            updated = sum(1 for f, _, _ in batch if f.path in known_before)
            summary.updated += updated
            summary.added += len(batch) - updated
            batch.clear()
            if time.monotonic() - last_save > INDEX_SAVE_INTERVAL_S:
                with self._index_lock:
                    self._save_index()
                last_save = time.monotonic()

        jobs = (DecodeJob(f, self.root / f.path) for f in files)
        for outcome in decode_all(jobs, embedder.input_size, workers=decode_workers,
                                  prefetch=max(2 * batch_size, 16)):
            f: FoundFile = outcome.job.key
            if outcome.error is not None:
                self.store.record_skipped(f.path, f.size, f.mtime_ns, outcome.error)
                summary.note_skip(outcome.error)
            else:
                batch.append((f, outcome.photo, outcome.fingerprint))
            done += 1
            if len(batch) >= batch_size:
                flush()
            if _step_done(IndexProgress("embedding", done, total, *_pace(done, total, started), f.path),
                          report, cancel, pause):
                summary.cancelled = True
                break
        flush()

    # -- the whitening learned from the library ---------------------------------------------------

    def _teach(self, embedder: Embedder, summary: IndexSummary, report: Callable[[IndexProgress], None],
               cancel: threading.Event, pause: threading.Event | None, batch_size: int,
               decode_workers: int | None) -> None:
        """Top up the photos that teach the whitening to a fixed random sample of up to WHITENING_SAMPLE:
        each is decoded again and embedded mirrored and in edited copies. Stopped early, it goes on
        next time."""
        photos = self.store.count_files()
        wanted = min(WHITENING_SAMPLE, photos) - self.store.count_learning_photos()
        if wanted <= 0 or photos < WHITENING_MIN_PHOTOS:
            return  # the usual case once a library has its sample: no listing of every photo
        untaught = self.store.files_without_learning_views()
        chosen = random.Random(photos).sample(untaught, min(wanted, len(untaught)))
        total, done = len(chosen), 0
        started = time.monotonic()
        batch: list[tuple[FileRow, np.ndarray]] = []

        def flush() -> None:
            if batch:
                views = embedder.embed_views(np.stack([pixels for _, pixels in batch]))
                self.store.add_learning_views([(row.id, vectors) for (row, _), vectors in zip(batch, views)])
                summary.teaching += len(batch)
                batch.clear()

        jobs = (DecodeJob(row, self.root / row.path, zlib.crc32(row.path.encode())) for row in chosen)
        for outcome in decode_all(jobs, embedder.input_size, workers=decode_workers,
                                  prefetch=max(2 * batch_size, 16)):
            row: FileRow = outcome.job.key
            # A photo changed or gone since it was embedded teaches nothing; the next run embeds it anew.
            if outcome.photo is not None and outcome.fingerprint == row.fingerprint:
                batch.append((row, outcome.photo))
            done += 1
            if len(batch) * (1 + LEARNING_COPIES) >= batch_size:
                flush()
            if _step_done(IndexProgress("learning", done, total, *_pace(done, total, started), row.path),
                          report, cancel, pause):
                summary.cancelled = True
                break
        flush()

    def _refresh_whitening(self, photos: int, report: Callable[[IndexProgress], None]) -> None:
        """Fit the whitening when there is none, or the library or its teaching sample changed by a
        quarter since the last fit; then rebuild the index through it."""
        if photos < WHITENING_MIN_PHOTOS:
            return
        own, other = self.store.learning_pairs()
        if not len(own):
            return
        stored = self.store.whitening()
        if stored is not None and _within(stored.photos, photos) and _within(stored.pairs, len(own)):
            return
        report(IndexProgress("fitting", 0, 0, 0.0, None, None))
        whitening = LibraryWhitening.fit_pairs(self.store.mean_vector()[None, :], own, other, shrink=WHITENING_SHRINK)
        key = hashlib.sha1(whitening.mean.tobytes() + whitening.projection.tobytes()).hexdigest()[:12]
        self.store.save_whitening(StoredWhitening(key, whitening.mean, whitening.projection, photos, len(own)))
        # Built beside the current index, which searches keep using until the swap.
        index = self._build_index(len(whitening.mean), whitening, key)
        with self._index_lock:
            self._discard_index_file()
            self._whitening, self._whitening_key, self._index = whitening, key, index
            self._index_dirty = True
        log.info("whitening fitted on %d pairs from %d photos; index rebuilt", len(own), photos)

    # -- search ------------------------------------------------------------------------------------

    def search(self, query: QueryImage, *, k: int = 20, embedder: Embedder | None = None,
               verify: bool = True, region: Region | None = None, like: Sequence[Path | str] = (),
               unlike: Sequence[Path | str] = ()) -> list[SearchHit]:
        """The k most similar photos, best first. A photo of this library uses its stored vector.

        The top RERANK_CANDIDATES by cosine (in the whitened space) are checked against the query's
        SIFT keypoints; geometrically verified ones move up (quality.rerank). `verify=False` skips it.
        `region`: search with that part of the query photo alone (it is embedded: needs the embedder).
        `like`, `unlike`: photos of this library marked "more like this" and "not this"; the query moves
        towards the first and away from the others (refine.refined_query), and "not this" ones are left out.
        A query that is a photo of the library is left out of its own results.
        """
        index, whitening = self._search_state()
        if index is None or len(index) == 0:
            raise LibraryError("the library is empty: index a folder first")
        if region is None:
            raw, own_id, keypoints = self._query_features(query, embedder, verify)
        else:
            raw, own_id, keypoints = self._region_features(query, region, embedder, verify)
        vector = raw if whitening is None else whitening.apply(raw[None, :])[0]
        left_out = set() if own_id is None else {own_id}
        if like or unlike:
            vector, unliked_ids = self._refined_vector(vector, like, unlike, whitening)
            left_out |= unliked_ids
        wanted = max(k, RERANK_CANDIDATES) if verify else k
        labels, sims = index.query(vector[None, :], wanted + len(left_out))
        rows = self.store.files_by_ids(labels[0])
        cosines = {int(label): float(sim) for label, sim in zip(labels[0], sims[0])
                   if int(label) not in left_out and int(label) in rows}
        ids = list(cosines)  # best first
        inliers: dict[int, int] = {}
        if keypoints is not None:
            stored = self.store.keypoints(ids[:RERANK_CANDIDATES])
            inliers = {label: verify_pair(keypoints, Keypoints.from_bytes(data)) for label, data in stored.items()}
        ranked, scores = rerank(np.array(ids, dtype=np.int64), np.array([cosines[i] for i in ids]),
                                np.array([inliers.get(i, 0) for i in ids]))
        return [SearchHit(self.root / rows[label].path, float(score), cosines[label], inliers.get(label), label)
                for label, score in zip(ranked[:k].tolist(), scores[:k].tolist())]

    def _query_features(self, query: QueryImage, embedder: Embedder | None,
                        with_keypoints: bool) -> tuple[np.ndarray, int | None, Keypoints | None]:
        """(raw vector, the query's own id when it is a photo of the library, keypoints when asked)."""
        if isinstance(query, (str, Path)):
            path = Path(query).expanduser().absolute()
            own = self._stored_row(path)
            if own is not None:
                stored = self.store.vectors([own.id]).get(own.id)
                if stored is not None:
                    data = self.store.keypoints([own.id]).get(own.id) if with_keypoints else None
                    return stored, own.id, None if data is None else Keypoints.from_bytes(data)
        self._check_query(query, embedder)
        image = query if isinstance(query, Image.Image) else open_image(
            query if isinstance(query, bytes) else Path(query), draft_size=model_draft_size(embedder.input_size))
        if image.width == 0 or image.height == 0:
            raise DecodeError("image is 0x0")
        vector, keypoints = self._embedded_query(image, embedder, with_keypoints)
        return vector, None, keypoints

    def _region_features(self, query: QueryImage, region: Region, embedder: Embedder | None,
                         with_keypoints: bool) -> tuple[np.ndarray, int | None, Keypoints | None]:
        """_query_features of a region of the query photo: always embedded, as a photo of its own."""
        self._check_query(query, embedder)
        own = self._stored_row(Path(query).expanduser().absolute()) if isinstance(query, (str, Path)) else None
        source = Path(query).expanduser() if isinstance(query, (str, Path)) else query
        vector, keypoints = self._embedded_query(region_image(source, region, embedder.input_size), embedder,
                                                 with_keypoints)
        return vector, None if own is None else own.id, keypoints

    def _check_query(self, query: QueryImage, embedder: Embedder | None) -> None:
        """Raise unless `query` can be embedded with `embedder` for this library."""
        if isinstance(query, (str, Path)) and not Path(query).expanduser().exists():
            raise LibraryError(f"no such file: {query}")
        if embedder is None:
            raise QueryNeedsModel("this query is not a photo of the library, so a model is needed to embed it")
        if embedder.signature != self.model_signature:
            raise LibraryError(f"the library was indexed with {self.model_signature}, not {embedder.signature}")

    @staticmethod
    def _embedded_query(image: Image.Image, embedder: Embedder,
                        with_keypoints: bool) -> tuple[np.ndarray, Keypoints | None]:
        """(raw vector, keypoints when asked) of a decoded query image."""
        image = working_copy(image)  # shrunk once for the model and the keypoints alike
        if not with_keypoints:
            return embedder.embed_images([image])[0], None
        # SIFT and the model both release the GIL: finding the keypoints beside the model's forward
        # pass takes them off the query's critical path when a core is free.
        gray = np.asarray(image.convert("L"))
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="vitgallery-query-keypoints") as pool:
            keypoints = pool.submit(grey_keypoints, gray)
            return embedder.embed_images([image])[0], keypoints.result()

    def _refined_vector(self, vector: np.ndarray, like: Sequence[Path | str], unlike: Sequence[Path | str],
                        whitening: LibraryWhitening | None) -> tuple[np.ndarray, set[int]]:
        """(the whitened query moved by the marked photos, the ids of those marked "not this")."""
        liked, unliked = self._marked_photos(like), self._marked_photos(unlike)

        def whitened(ids: list[int]) -> np.ndarray:
            if not ids:
                return np.zeros((0, len(vector)), np.float32)
            stored = self.store.vectors(ids)
            raw = np.stack([stored[i] for i in ids])
            return raw if whitening is None else whitening.apply(raw)

        return refined_query(vector, whitened(liked), whitened(unliked)), set(unliked)

    def _marked_photos(self, paths: Sequence[Path | str]) -> list[int]:
        """The ids of marked photos; LibraryError for one that is not (or no longer) a photo of the library."""
        ids = []
        for path in paths:
            row = self._stored_row(Path(path).expanduser().absolute())
            if row is None or not row.has_vector:
                raise LibraryError(f"{path} is not a photo of this library (or changed since it was indexed): "
                                   "only its photos can be marked")
            ids.append(row.id)
        return ids

    def _stored_row(self, path: Path) -> FileRow | None:
        try:
            rel = path.relative_to(self.root).as_posix()
        except ValueError:
            return None
        row = self.store.file_by_path(rel)
        if row is None:
            return None
        try:
            st = path.stat()
        except OSError:
            return row  # offline (an unplugged drive): its stored vector still stands for it
        return row if (row.size, row.mtime_ns) == (st.st_size, st.st_mtime_ns) else None

    # -- listing -----------------------------------------------------------------------------------

    def photos(self) -> list[FileRow]:
        return sorted(self.store.files().values(), key=lambda r: r.path)

    def skipped(self) -> list[SkippedFile]:
        return list(self.store.skipped().values())

    def status(self) -> LibraryStatus:
        index = self._vector_index()
        return LibraryStatus(self.root, self.library_dir, root_is_available(self.root), self.store.count_files(),
                             len(self.store.skipped()), self.model_signature, len(index) if index else 0)


def _within(reference: int, value: int) -> bool:
    return abs(value - reference) < REFIT_CHANGE * max(reference, 1)


def _pace(done: int, total: int, started: float) -> tuple[float, float | None]:
    """(photos per second so far, seconds left at that rate)."""
    elapsed = time.monotonic() - started
    rate = done / elapsed if elapsed > 0 else 0.0
    return rate, (total - done) / rate if rate else None


def _step_done(progress: IndexProgress, report: Callable[[IndexProgress], None], cancel: threading.Event,
               pause: threading.Event | None) -> bool:
    """Report one photo's progress and wait while paused; True when the run is to stop."""
    report(progress)
    while pause is not None and pause.is_set() and not cancel.is_set():
        cancel.wait(0.1)
    return cancel.is_set()
