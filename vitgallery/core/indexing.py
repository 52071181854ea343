"""Indexing one library: bring its database and index up to date with the photo folder.

A run scans the folder, follows moved files by content, drops deleted ones, embeds new and changed
photos in batches (each committed on its own, so a cancel or a kill loses at most one batch). A fixed
random sample of up to WHITENING_SAMPLE photos teaches the library's whitening: new photos chosen for it
bring their teaching views (edited copies, the mirror image) from the decode that embeds them, photos
indexed earlier are topped up in a "learning" phase; the whitening learned from those pairs is refitted
when the library or the sample changed by a quarter (docs/quality.md measured the recipe,
docs/performance.md what teaching costs).
"""

from __future__ import annotations

import logging
import os
import random
import stat
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vitgallery.core.collector import collector_paused
from vitgallery.core.errors import LibraryError
from vitgallery.core.imageio import SUPPORTED_EXTENSIONS, DecodedPhoto, Teaching, still_unsupported
from vitgallery.core.index_cache import IndexCache
from vitgallery.core.models import Embedder, signature_change
from vitgallery.core.own_copies import own_copy_pairs
from vitgallery.core.pipeline import DecodeJob, decode_all, failure_may_pass, plan_resources
from vitgallery.core.preprocess import teaching_views_per_photo
from vitgallery.core.scan import (
    FoundFile,
    Listing,
    fingerprint_file,
    listed_or_scanned,
    root_is_available,
    scan_root,
)
from vitgallery.core.store import (
    EmbeddedFile,
    FileRow,
    SkippedFile,
    Store,
    StoredWhitening,
    mean_of,
    whitening_fingerprint,
)
from vitgallery.core.whitening import LibraryWhitening

log = logging.getLogger(__name__)

INDEX_SAVE_INTERVAL_S = 60.0
WHITENING_SAMPLE = 1000  # photos that teach the whitening (1-3 extra forward passes each, see preprocess)
WHITENING_MIN_PHOTOS = 8  # below this the library mean is mostly its photos themselves: plain cosine
WHITENING_SHRINK = 0.1
REFIT_CHANGE = 0.25  # refit once the library or the teaching sample changed by this share
# A run that finds more than half of the library's photos gone, and more than this many, keeps them
# until the user confirms (forget_missing): a drive unplugged or a folder replaced looks just like that.
MASS_LOSS_SHARE = 0.5
MASS_LOSS_MIN_PHOTOS = 20
# What the library knew of a photo the app's own action took out of the folder (Store.put_away_files)
# is kept this long for an undo, or a restore from the trash by hand, to bring back without the model:
# as long as a desktop trash keeps a file before emptying itself (GNOME's 30 days). Each full run drops
# what is older; a new model drops it all.
AWAY_KEPT_S = 30 * 24 * 3600


@dataclass(frozen=True)
class IndexProgress:
    # "waiting" (another run on the library, maybe another process's, goes first: Library._one_index_run);
    # "calibrating" (photos decoded to calibrate an int8 model, core/calibration.py) and "quantising"
    # (no count: 10-20 s) before a library's first OpenVINO int8 run; "scanning", "embedding",
    # "learning" (teaching views of photos indexed earlier), "fitting" (the whitening, and the index
    # rebuilt through it), "saving", "done"
    phase: str
    done: int
    total: int
    rate: float  # photos per second
    eta_s: float | None
    current_path: str | None
    # while embedding: the photos the library can find so far (a re-embedding for a new model starts
    # from none; a changed photo is not counted twice)
    photos_indexed: int | None = None


@dataclass
class IndexSummary:
    added: int = 0
    updated: int = 0
    moved: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped_files: list[tuple[str, str]] = field(default_factory=list)  # (path in the folder, reason), this run's
    teaching: int = 0  # photos whose teaching views were embedded this run (see imageio.Teaching)
    offline: bool = False
    missing_kept: int = 0  # photos gone from the folder, kept until the user says to forget them
    cancelled: bool = False
    seconds: float = 0.0

    @property
    def skipped(self) -> int:
        return len(self.skipped_files)

    @property
    def skipped_reasons(self) -> dict[str, int]:
        return dict(Counter(reason for _, reason in self.skipped_files))

    def note_skip(self, path: str, reason: str) -> None:
        self.skipped_files.append((path, reason))


Report = Callable[[IndexProgress], None]


def _is_under(path: str, folders: list[str]) -> bool:
    return any(path == folder or path.startswith(folder + "/") for folder in folders)


def bring_back(root: Path, store: Store, found: Iterable[FoundFile]) -> tuple[set[str], bool]:
    """The paths of `found` whose content the app's own action took away (Store.put_away_files), given
    back their rows as the library knew them: the same content, found by its fingerprint, never just a
    file at the same path; and whether each came back with its duplicate scan evidence. Only files of a
    size kept away are read."""
    sizes = store.away_sizes()
    returning = []
    for f in found:
        if f.size in sizes:
            try:
                returning.append((f.path, f.size, f.mtime_ns, fingerprint_file(root / f.path)))
            except OSError:
                continue  # gone again, or unreadable: the index sees to it
    if not returning:
        return set(), True
    paths, as_before = store.bring_back(returning)
    return set(paths), as_before


def embedded_as_is(f: FoundFile, row: FileRow | None) -> bool:
    """Whether the library holds this file's vector as the file is now: an index leaves it alone."""
    return row is not None and row.has_vector and (row.size, row.mtime_ns) == (f.size, f.mtime_ns)


def skipped_as_is(f: FoundFile, skip: SkippedFile | None) -> bool:
    """Whether the file was skipped as it is now, for a reason that trying again would not mend: an
    index skips it again."""
    return (skip is not None and (skip.size, skip.mtime_ns) == (f.size, f.mtime_ns)
            and not failure_may_pass(skip.reason) and still_unsupported(skip.reason))


@dataclass
class FolderPlan:
    """What an index does with a listing of the folder, before it writes anything (plan_changes)."""

    unchanged: int = 0  # embedded as they are, at the same path (a file whose mtime alone changed, too)
    moved: int = 0  # embedded contents found at another path: renamed or moved, their vectors kept
    skipped_again: list[tuple[str, str]] = field(default_factory=list)  # (path, reason): skipped as they are
    offline: set[str] = field(default_factory=set)  # paths under folders that cannot be reached now: kept
    moves: dict[int, FoundFile] = field(default_factory=dict)  # row id -> the file its content is at now
    to_embed: list[FoundFile] = field(default_factory=list)
    missing: list[FileRow] = field(default_factory=list)  # rows whose content is nowhere in the listing
    replaced: list[int] = field(default_factory=list)  # rows whose path another row's content moved onto


@dataclass
class ListingAgainstLibrary:
    """A listing of the folder with the files the library holds as they are set aside (set_aside_unchanged):
    what plan_changes needs to look at, which is usually nothing."""

    unchanged: int  # files embedded as they are (embedded_as_is)
    found: list[FoundFile]  # the rest of the listing
    known: dict[str, FileRow]  # the library's rows but those of the unchanged files, by path
    rows: int  # the library's rows, all of them


def set_aside_unchanged(store: Store, found: list[FoundFile]) -> ListingAgainstLibrary:
    """Compare a listing with the library by each file's path, size and mtime; read the rows of the rest
    only. plan_changes of what is left, its unchanged count raised by these, is its plan of the whole
    listing: a file embedded as it is plays no other part in it."""
    stamps, without_vector = store.file_stamps()
    unchanged = [f for f in found if f in stamps]  # a FoundFile is its (path, size, mtime_ns)
    rest = [f for f in found if f not in stamps] if len(unchanged) < len(found) else []
    other_ids = [stamps[stamp] for stamp in stamps.keys() - set(unchanged)] if len(unchanged) < len(stamps) else []
    others = store.files_by_ids(other_ids + without_vector) if other_ids or without_vector else {}
    return ListingAgainstLibrary(len(unchanged), rest, {row.path: row for row in others.values()},
                                 len(stamps) + len(without_vector))


def plan_changes(root: Path, found: list[FoundFile], known: dict[str, FileRow], skipped: dict[str, SkippedFile],
                 unreachable: list[str]) -> FolderPlan:
    """Sort a listing into unchanged / skipped again / moved / to embed, and the rows whose content is gone:
    one rule for an index run and for `vitgallery status`. An embedded content keeps its vector wherever it
    went (a moved or renamed file or folder, a file moved over another one, two swapped names, a file whose
    mtime alone changed), found by its size, then its content's fingerprint (only files of a size some
    displaced row has are read)."""
    plan = FolderPlan()
    found_paths = {f.path for f in found}
    candidates: list[FoundFile] = []
    for f in found:
        if embedded_as_is(f, known.get(f.path)):
            plan.unchanged += 1
        elif skipped_as_is(f, skip := skipped.get(f.path)):
            plan.skipped_again.append((f.path, skip.reason))
        else:
            candidates.append(f)
    plan.offline = {path for path in known if path not in found_paths and _is_under(path, unreachable)}
    # Rows whose content is no longer at their path; it may be at one of the candidates' paths.
    displaced = [row for path, row in known.items() if path not in found_paths and path not in plan.offline]
    displaced += [known[f.path] for f in candidates if f.path in known]
    by_size: dict[int, list[FileRow]] = {}
    for row in displaced:
        if row.has_vector:
            by_size.setdefault(row.size, []).append(row)
    for f in candidates:
        row = _same_content(root, f, by_size.get(f.size, []), plan.moves)
        if row is None:
            plan.to_embed.append(f)
            continue
        plan.moves[row.id] = f
        if row.path == f.path:
            plan.unchanged += 1
        else:
            plan.moved += 1
    taken = {f.path for f in plan.moves.values()}
    plan.missing = [row for row in displaced if row.id not in plan.moves and row.path not in found_paths]
    plan.replaced = [row.id for row in displaced if row.id not in plan.moves and row.path in taken]
    return plan


def _same_content(root: Path, f: FoundFile, rows: list[FileRow], claimed: dict[int, FoundFile]) -> FileRow | None:
    rows = [row for row in rows if row.id not in claimed]
    if not rows:
        return None
    try:
        fingerprint = fingerprint_file(root / f.path)
    except OSError:
        return None
    return next((row for row in rows if row.fingerprint == fingerprint), None)


def relative_to_root(root: Path, path: Path | str) -> str | None:
    """The path as a library stores it ('' for the root itself), or None when it is outside the root.
    "P/../P/a" is "P/a" (`vitgallery arrange ../photos` from a folder beside it), and a path through a
    link to the root (or from the root's link to its target) is the path it leads to."""
    path = Path(os.path.normpath(Path(path).expanduser().absolute()))
    try:
        rel = path.relative_to(root).as_posix()
    except ValueError:
        try:
            rel = Path(os.path.realpath(path)).relative_to(os.path.realpath(root)).as_posix()
        except ValueError:
            return None
    return "" if rel == "." else rel


class IndexRun:
    """One indexing run of a library; `run()` returns its summary."""

    def __init__(self, root: Path, store: Store, cache: IndexCache, embedder: Embedder, *,
                 notice: Callable[[str], None], progress: Report | None = None,
                 cancel: threading.Event | None = None, pause: threading.Event | None = None,
                 forget_missing: bool = False, listing: Listing | None = None) -> None:
        self.root = root
        self.store = store
        self.cache = cache
        self.embedder = embedder
        self.notice = notice
        self.report = progress or (lambda p: None)
        self.cancel = cancel or threading.Event()
        self.pause = pause
        self.forget_missing = forget_missing
        self.listing = listing  # the folder listed beside the run (run() lists it itself without)
        self.summary = IndexSummary()

    def run(self, batch_size: int | None = None, decode_workers: int | None = None) -> IndexSummary:
        started = time.monotonic()
        summary = self.summary
        if not root_is_available(self.root):
            summary.offline = True
            self.notice(f"{self.root} is missing or not mounted: nothing was removed from the library")
            return summary

        embedder = self.embedder
        before = self.store.get_meta("model_signature")
        if before != embedder.signature:
            if before is not None:
                self.notice(f"{signature_change(before, embedder.signature)}: every photo is embedded again")
            self.store.start_new_model(embedder.signature, embedder.dim)
            self.cache.start_model(embedder.dim)
        # The check makes a few objects a photo; at 100,000 photos each collector pass meanwhile walked
        # them all, holding the interpreter 50-100 ms from the window (docs/performance.md, point 5).
        with collector_paused():
            to_embed = self._check_folder()
        if to_embed is None:
            return summary
        batch_size = batch_size or plan_resources(embedder.device.type).batch_size
        self._embed(to_embed, batch_size, decode_workers, self._teach_while_embedding(to_embed))
        # What the first pass could not teach (a library indexed before, a cancelled run) is taught now.
        if not self.cancel.is_set():
            self._teach(batch_size, decode_workers)
        self._refresh_whitening(self.store.count_files())

        self.report(IndexProgress("saving", len(to_embed), len(to_embed), 0.0, None, None))
        self.cache.save_if_dirty()  # unchanged, the file is not written again (18 MB at 10,000 photos)
        summary.seconds = time.monotonic() - started
        self.report(IndexProgress("done", len(to_embed), len(to_embed), 0.0, 0.0, None))
        return summary

    def _check_folder(self) -> list[FoundFile] | None:
        """Drop damaged rows, list the folder and follow what changed in it: the files to embed, or None
        when the folder holds no photos now (nothing is removed then)."""
        summary = self.summary
        self._drop_damaged_rows()
        self.store.forget_away_files(time.time() - AWAY_KEPT_S)
        if not self.cache.ready_for_run():
            raise LibraryError("the library database lost its model settings: run `vitgallery repair`")
        if self.embedder.weights_file is not None:
            self.store.set_meta("weights_path", str(self.embedder.weights_file))  # later queries load the same file

        self.report(IndexProgress("scanning", 0, 0, 0.0, None, None))
        scan = listed_or_scanned(self.root, self.listing)
        listed = set_aside_unchanged(self.store, scan.files)
        if not scan.files and listed.rows:
            summary.offline = True
            self.notice(f"{self.root} holds no photos now (unmounted?): nothing was removed from the library")
            return None
        unreachable = scan.unreachable + self._vanished_mount_points(scan.mount_points)
        summary.unchanged += listed.unchanged
        to_embed = self._plan(scan.files, listed.found, listed.known, unreachable, rows=listed.rows)
        for rel, reason in scan.problems:  # listed with the skipped files, so the user can find them
            self.store.record_skipped(rel, 0, 0, reason)
            summary.note_skip(rel, reason)
        return to_embed

    def run_paths(self, paths: Iterable[Path | str], batch_size: int | None = None,
                  decode_workers: int | None = None) -> IndexSummary:
        """The run for these files and folders only (what a folder watcher saw change), without scanning
        the whole folder: new and changed photos embedded, deleted ones dropped, moved ones followed by
        their content. A path that is gone may have been a photo or a folder. Paths outside the root or
        hidden are ignored. Teaching, refitting and saving follow as in a full run."""
        started = time.monotonic()
        summary = self.summary
        if not root_is_available(self.root):
            summary.offline = True
            return summary
        model_signature = self.store.get_meta("model_signature")
        if model_signature != self.embedder.signature:
            raise LibraryError(f"the library was indexed with {model_signature}, not {self.embedder.signature}")
        self.cache.space()
        found, known, scope, unreachable = self._look_at(paths)
        to_embed = self._plan(found, found, known, unreachable, scope=scope)
        batch_size = batch_size or plan_resources(self.embedder.device.type).batch_size
        self._embed(to_embed, batch_size, decode_workers, self._teach_while_embedding(to_embed))
        if not self.cancel.is_set():
            self._teach(batch_size, decode_workers)
        self._refresh_whitening(self.store.count_files())
        self.cache.save_if_dirty()
        summary.seconds = time.monotonic() - started
        return summary

    def _look_at(self, paths: Iterable[Path | str]) -> tuple[list[FoundFile], dict[str, FileRow], set[str], list[str]]:
        """(photos found at or under the paths, library rows at or under them, every path concerned,
        folders that could not be read) for run_paths."""
        found: dict[str, FoundFile] = {}
        exact: set[str] = set()
        folders: list[str] = []
        unreachable: list[str] = []
        for path in paths:
            rel = relative_to_root(self.root, path)
            if rel is None or any(part.startswith(".") for part in rel.split("/") if part):
                continue
            full = self.root / rel
            if full.is_dir():
                scan = scan_root(full)
                prefix = f"{rel}/" if rel else ""
                found.update((prefix + f.path, FoundFile(prefix + f.path, f.size, f.mtime_ns)) for f in scan.files)
                unreachable += [prefix + u for u in scan.unreachable]
                folders.append(rel)
                continue
            exact.add(rel)
            try:
                st = full.stat()
            except OSError:
                folders.append(rel)  # gone: it may have been a folder of photos
                continue
            if full.suffix.lower() in SUPPORTED_EXTENSIONS and full.is_file():
                found[rel] = FoundFile(rel, st.st_size, st.st_mtime_ns)

        def concerned(stored_path: str) -> bool:
            return stored_path in exact or any(not folder or _is_under(stored_path, [folder]) for folder in folders)

        rows = self.store.files() if folders else {p: r for p in exact if (r := self.store.file_by_path(p))}
        known = {p: row for p, row in rows.items() if concerned(p)}
        scope = set(found) | set(known) | {p for p in self.store.skipped() if concerned(p)}
        return list(found.values()), known, scope, unreachable

    # -- what changed ------------------------------------------------------------------------------

    def _drop_damaged_rows(self) -> None:
        """Rows SQLite accepts but vitgallery cannot use (a damaged vector, a path leaving the folder)
        are dropped: their photos are simply embedded again by this run."""
        dropped = {what: count for what, count in self.store.drop_damaged_rows().items() if count}
        if dropped:
            self.notice("the library database had damaged rows: dropped "
                        + ", ".join(f"{count} {what}" for what, count in dropped.items()))

    def _vanished_mount_points(self, mount_points: list[str]) -> list[str]:
        """Mount points under the root seen before and not now: an unmounted drive leaves an empty
        folder (or none), whose photos are offline, not deleted. Remembers the ones seen now."""
        recorded = self.store.mount_points()
        vanished = [] if self.forget_missing else [path for path in recorded if path not in mount_points]
        if sorted(mount_points + vanished) != sorted(recorded):
            self.store.set_mount_points(mount_points + vanished)
        return vanished

    def _plan(self, listing: list[FoundFile], found: list[FoundFile], known: dict[str, FileRow],
              unreachable: list[str], *, scope: set[str] | None = None, rows: int | None = None) -> list[FoundFile]:
        """Sort found files into unchanged / moved / to embed (plan_changes); follow the moved rows and
        remove those whose content is gone. `found` and `known`: the listing and the rows concerned, less
        any set aside as unchanged (set_aside_unchanged); `rows`: how many rows are concerned in all
        (those of `known` if not given). `scope`: the only paths looked at (run_paths); None for the
        whole folder."""
        summary = self.summary
        rows = len(known) if rows is None else rows
        found_paths = {f.path for f in listing}
        skipped = self.store.skipped()
        stale_skips = [p for p in skipped if p not in found_paths and (scope is None or p in scope)]
        self.store.forget_skipped(stale_skips)

        plan = plan_changes(self.root, found, known, skipped, unreachable)
        summary.unchanged += plan.unchanged
        summary.moved += plan.moved
        for path, reason in plan.skipped_again:  # retried once the file changes, or its missing decoder comes
            summary.note_skip(path, reason)
        if plan.offline:
            self.notice(f"{len(plan.offline)} photos under {', '.join(sorted(unreachable))} cannot be reached now "
                        "(an unreadable folder, an unmounted drive or a link to an unplugged one): "
                        "they stay in the library")
        moves, to_embed = plan.moves, plan.to_embed
        missing = [row.id for row in plan.missing if not self._arrived_since_listing(row)]
        replaced = plan.replaced
        if not self.forget_missing and len(missing) > max(MASS_LOSS_SHARE * rows, MASS_LOSS_MIN_PHOTOS):
            self.notice(f"{len(missing)} of {rows} photos are gone from {self.root} at once (a drive "
                        "unplugged, a folder replaced?): they stay in the library until you say to forget them")
            summary.missing_kept = len(missing)
            missing = []
        gone = missing + replaced
        if gone or moves:
            with self.store.transaction():
                self.store.delete_files(gone)  # first: a moving row may take the path of a deleted one
                self.store.move_files([(row_id, f.path, f.size, f.mtime_ns) for row_id, f in moves.items()])
        if gone:
            self.cache.remove(gone)
            summary.removed = len(gone)
        back, _ = bring_back(self.root, self.store, to_embed)  # put back by hand, from the trash say
        summary.moved += len(back)
        return [f for f in to_embed if f.path not in back]

    def _arrived_since_listing(self, row: FileRow) -> bool:
        """Whether the file of a row not in the listing is there now, as the row knows it: an undo put
        it back after this run listed the folder, and gave it its row back (deleting that row lost what
        the undo brought back, and the next run embedded the photo again)."""
        try:
            st = (self.root / row.path).stat()
        except OSError:
            return False
        return stat.S_ISREG(st.st_mode) and st.st_size == row.size and st.st_mtime_ns == row.mtime_ns

    # -- embedding ---------------------------------------------------------------------------------

    def _embed(self, files: list[FoundFile], batch_size: int, decode_workers: int | None,
               teaching: set[str]) -> None:
        """Embed `files`; those in `teaching` also embed their teaching views, decoded with them."""
        if not files:  # the usual run, nothing new: 100,000 rows are not read again (0.9 s of the window's start)
            return
        summary, embedder = self.summary, self.embedder
        rows = self.store.files()
        known_before = set(rows)
        with_vector = {path for path, row in rows.items() if row.has_vector}
        indexed = len(with_vector)
        total, done = len(files), 0
        started = time.monotonic()
        last_save = started
        batch: list[tuple[FoundFile, object, str]] = []

        def flush() -> None:
            nonlocal last_save, indexed
            if not batch:
                return
            vectors = embedder.embed_pixels(np.stack([photo.pixels for _, photo, _ in batch]))
            records = [EmbeddedFile(f.path, f.size, f.mtime_ns, fp, photo.width, photo.height, photo.taken_at,
                                    photo.sharpness, vec, photo.keypoints, photo.looks)
                       for (f, photo, fp), vec in zip(batch, vectors)]
            ids = self.store.add_embedded(records)
            self.cache.add(ids, vectors)
            self._store_teaching_views([(i, photo) for i, (_, photo, _) in zip(ids, batch)])
            updated = sum(1 for f, _, _ in batch if f.path in known_before)
            summary.updated += updated
            summary.added += len(batch) - updated
            indexed += sum(f.path not in with_vector for f, _, _ in batch)  # a photo skipped before counts now
            batch.clear()
            if time.monotonic() - last_save > INDEX_SAVE_INTERVAL_S:
                self.cache.save()
                last_save = time.monotonic()

        views = teaching_views_per_photo(min(WHITENING_SAMPLE, self.store.count_files() + len(files)))
        if decode_workers is None:
            decode_workers = planned_decoders(embedder, len(files), len(teaching), views,
                                              sum(f.size for f in files) / max(1, len(files)))
        jobs = (DecodeJob(f, self.root / f.path, teaching=Teaching(_teaching_seed(f.path), views)
                          if f.path in teaching else None) for f in files)
        # closed here, not when the frame goes: a Ctrl+C in its clean-up would be printed and swallowed
        with closing(decode_all(jobs, embedder.input_size, workers=decode_workers,
                                prefetch=max(2 * batch_size, 16))) as outcomes:
            for outcome in outcomes:
                f: FoundFile = outcome.job.key
                if outcome.error is not None:
                    self.store.record_skipped(f.path, f.size, f.mtime_ns, outcome.error)
                    summary.note_skip(f.path, outcome.error)
                    if f.path in known_before and not failure_may_pass(outcome.error):
                        self._forget_unreadable(f.path)
                else:
                    batch.append((f, outcome.photo, outcome.fingerprint))
                done += 1
                if len(batch) >= batch_size or done == total:  # the last report counts every photo
                    flush()
                if self._step_done(IndexProgress("embedding", done, total, *_pace(done, total, started), f.path,
                                                 photos_indexed=indexed)):
                    break
        flush()

    def _forget_unreadable(self, path: str) -> None:
        """A photo that changed into something unreadable (truncated, damaged) is no longer the photo
        its vector stands for: it leaves search results while it is listed as skipped."""
        row = self.store.file_by_path(path)
        if row is not None:
            self.store.delete_files([row.id])
            self.cache.remove([row.id])

    # -- the whitening learned from the library ---------------------------------------------------

    def _teach_while_embedding(self, to_embed: list[FoundFile]) -> set[str]:
        """The new photos that fill the teaching sample as they are embedded: the decode worker makes
        their teaching views from the decode it does anyway, so teaching costs a forward pass per view."""
        photos = self.store.count_files() + len(to_embed)  # at most, once embedded
        wanted = min(WHITENING_SAMPLE, photos) - self.store.count_learning_photos()
        if wanted <= 0 or photos < WHITENING_MIN_PHOTOS or not to_embed:
            return set()
        return {f.path for f in random.Random(photos).sample(to_embed, min(wanted, len(to_embed)))}

    def _store_teaching_views(self, photos: list[tuple[int, DecodedPhoto]]) -> None:
        taught = [(file_id, photo.teaching_views) for file_id, photo in photos if photo.teaching_views is not None]
        if taught:
            vectors = self.embedder.embed_views(np.stack([views for _, views in taught]))
            self.store.add_learning_views([(file_id, v) for (file_id, _), v in zip(taught, vectors)])
            self.summary.teaching += len(taught)

    def _teach(self, batch_size: int, decode_workers: int | None) -> None:
        """Top up the photos that teach the whitening to a fixed random sample of up to WHITENING_SAMPLE
        from photos embedded earlier: each is decoded again for its teaching views. Stopped early, it
        goes on next time."""
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
                views = self.embedder.embed_views(np.stack([pixels for _, pixels in batch]))
                self.store.add_learning_views([(row.id, vectors) for (row, _), vectors in zip(batch, views)])
                self.summary.teaching += len(batch)
                batch.clear()

        views = teaching_views_per_photo(min(WHITENING_SAMPLE, photos))
        jobs = (DecodeJob(row, self.root / row.path, learning=Teaching(_teaching_seed(row.path), views))
                for row in chosen)
        if decode_workers is None:  # the device's split: on a GPU every core decodes
            decode_workers = plan_resources(self.embedder.device.type).decode_workers
        # closed here, not when the frame goes: a Ctrl+C in its clean-up would be printed and swallowed
        with closing(decode_all(jobs, self.embedder.input_size, workers=decode_workers,
                                prefetch=max(2 * batch_size, 16))) as outcomes:
            for outcome in outcomes:
                row: FileRow = outcome.job.key
                # A photo changed or gone since it was embedded teaches nothing; the next run embeds it anew.
                if outcome.photo is not None and outcome.fingerprint == row.fingerprint:
                    batch.append((row, outcome.photo))
                done += 1
                if len(batch) * views >= batch_size:
                    flush()
                if self._step_done(IndexProgress("learning", done, total, *_pace(done, total, started), row.path)):
                    break
        flush()

    def _refresh_whitening(self, photos: int) -> None:
        """Fit the whitening when there is none, or the library or its teaching sample changed by a
        quarter since the last fit; then rebuild the index through it. Photos the app's own action took
        away still count until they are forgotten: a resolve of many duplicates refitted it, so the
        kept scan was out of date (its cosines of another whitening), even after an undo."""
        if photos < WHITENING_MIN_PHOTOS:
            return
        own, other = self.store.learning_pairs()
        if not len(own):
            return
        stored = self.store.whitening()
        away_photos, away_pairs = self.store.away_counts()
        if (stored is not None and _within(stored.photos, photos + away_photos)
                and _within(stored.pairs, len(own) + away_pairs)):
            return
        self.report(IndexProgress("fitting", 0, 0, 0.0, None, None))
        vectors = list(self.store.iter_vectors())  # read once: for the mean, then to look for copies
        mean = mean_of(vectors)[None, :]
        whitening = LibraryWhitening.fit_pairs(mean, own, other, shrink=WHITENING_SHRINK)
        copies, copied = own_copy_pairs(self.store, whitening, vectors)  # the library's own copies teach it too
        if len(copies):
            whitening = LibraryWhitening.fit_pairs(mean, np.concatenate([own, copies]), np.concatenate([other, copied]),
                                                   shrink=WHITENING_SHRINK)
        key = whitening_fingerprint(whitening.mean, whitening.projection)
        self.cache.refit(whitening, StoredWhitening(key, whitening.mean, whitening.projection, photos + away_photos,
                                                    len(own) + away_pairs))
        log.info("whitening fitted on %d pairs from %d photos and %d pairs of its copies; index rebuilt",
                 len(own), photos, len(copies))

    # -- progress ----------------------------------------------------------------------------------

    def _step_done(self, progress: IndexProgress) -> bool:
        """Report one photo's progress and wait while paused; True when the run is to stop."""
        self.report(progress)
        while self.pause is not None and self.pause.is_set() and not self.cancel.is_set():
            self.cancel.wait(0.1)
        if self.cancel.is_set():
            self.summary.cancelled = True
        return self.cancel.is_set()


def planned_decoders(embedder: Embedder, photos: int, taught: int, views: int, photo_bytes: float) -> int:
    """The decode workers an index run of `photos` (`taught` of them with `views` teaching views each) plans:
    as many as keep the model busy, its passes counted."""
    return plan_resources(embedder.device.type, forward_ms=embedder.forward_cpu_ms,
                          passes=1 + views * taught / max(1, photos), photo_bytes=photo_bytes).decode_workers


def _teaching_seed(path: str) -> int:
    """The edits a photo is taught with follow its path, so a rerun teaches the same views (the OS's bytes:
    a name that is not UTF-8 is held with surrogate escapes)."""
    return zlib.crc32(os.fsencode(path))


def _within(reference: int, value: int) -> bool:
    return abs(value - reference) < REFIT_CHANGE * max(reference, 1)


def _pace(done: int, total: int, started: float) -> tuple[float, float | None]:
    """(photos per second so far, seconds left at that rate)."""
    elapsed = time.monotonic() - started
    rate = done / elapsed if elapsed > 0 else 0.0
    return rate, (total - done) / rate if rate else None
