"""Scanning a whole library for near-duplicates: candidates from the index, then each pair verified.

1. Candidates: every photo's nearest neighbours in the library's vector index (never all pairs).
2. Verification: each pair compared (features.match_photos, look_likeness) with the features the
   library keeps of each photo since it was indexed (core.photo_features), on several threads. A photo
   is decoded only for a closer look, or when it was indexed before the library kept its features (it
   keeps them from then on); what is decoded waits in a temporary file (spill.py). Byte-identical
   photos are compared once per content (_verify).
3. Each pair's evidence gets a score (scoring.pair_scores); grouping at a threshold is left to the
   DuplicateScan, so a slider can regroup instantly.
4. The photos that can end up in a group are measured for the keep-best rule (quality.py), each
   content once.

The evidence is kept in the library: a later scan verifies only the candidate pairs not verified yet
(those of new or changed photos; a changed photo loses its evidence, a removed one its pairs), and
`load_scan` gives the last scan at once.
"""
from __future__ import annotations

import functools
import itertools
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np
from threadpoolctl import threadpool_limits

from vitgallery.core.duplicates.features import (
    NO_PAIR_MATCH,
    PairMatch,
    analyse_photo,
    look_likeness,
    match_closer,
    match_each,
    worth_a_closer_look,
)
from vitgallery.core.duplicates.groups import DuplicateScan
from vitgallery.core.duplicates.pairs import (
    EVIDENCE_COLUMNS,
    PairTable,
    evidence_row,
    pair_ids,
    pair_key,
    pair_keys,
)
from vitgallery.core.duplicates.quality import PhotoQuality, measure_quality
from vitgallery.core.duplicates.scoring import AFFINE_SAMPLE, LOWEST_THRESHOLD, keypoints_cannot_tell
from vitgallery.core.duplicates.spill import FEATURES_IN_MEMORY, SpilledFeatures
from vitgallery.core.imageio import DecodeError
from vitgallery.core.keypoints import KEYPOINT_COUNT
from vitgallery.core.photo_features import PhotoFeatures
from vitgallery.core.store import FileRow, Store

log = logging.getLogger(__name__)

NEIGHBOURS = 20  # candidates per photo, in each of the two neighbour lists
LOOK_FROM_WHITENED = 0.5  # pairs less alike in the whitened space are not slid (they cannot score 0.5)
CLOSER_FROM_WHITENED = 0.3  # nor matched on all their keypoints: with the default weights only 18+ inliers, all agreeing, lift them
PAIRS_PER_ROUND = 1024  # pairs verified between two looks at cancel (their photos' features in memory at once)
# What a scan measures, in a version: stored evidence of another version is measured again.
# 3: windows an overlay covers are left out of the agreement; 4, 5: a closer look with more keypoints;
# 6: under a map keypoints cannot verify, an overlap without texture agrees on nothing; 7: a plain
# gradient aligns with nothing either
EVIDENCE_VERSION = 7


class ScanError(Exception):
    """A scan that cannot go on (its working file cannot be written); the message says what to do."""


@dataclass(frozen=True)
class DuplicateProgress:
    phase: str  # "candidates", "keypoints", "verifying", "measuring", "done"
    done: int
    total: int


def candidate_pairs(ids: np.ndarray, vectors: np.ndarray, query: Callable[[np.ndarray, int], tuple],
                    k: int = NEIGHBOURS) -> np.ndarray:
    """Each photo with its k nearest neighbours: the pairs' keys (pairs.pair_keys, a < b), each once,
    sorted. As arrays: a library of 100,000 photos has over a million."""
    found = [np.empty(0, dtype=np.int64)]
    for start in range(0, len(ids), 1024):
        labels, _ = query(vectors[start:start + 1024], k + 1)
        own = np.repeat(ids[start:start + 1024], labels.shape[1])
        other = labels.reshape(-1)
        found.append(pair_keys(np.minimum(own, other), np.maximum(own, other))[own != other])
    return np.unique(np.concatenate(found))


def scan_duplicates(library, *, progress: Callable[[DuplicateProgress], None] | None = None,
                    cancel: threading.Event | None = None, k: int = NEIGHBOURS,
                    workers: int | None = None, features_in_memory: int = FEATURES_IN_MEMORY) -> DuplicateScan:
    """Verify the candidate pairs of a whole library (a `Library`) that no earlier scan verified, keep
    their evidence in the library, and return all it knows. Photos that vanished or changed since they
    were indexed are left out and listed in `problems`. Each photo's features wait in a temporary file
    beside the library (see SpilledFeatures); ScanError when it cannot be written. A cancelled scan
    keeps the pairs it verified: the next one goes on from there.

    Candidates are each photo's k nearest neighbours in the library's index, whose vectors went
    through the whitening the library learned from its own photos' edited copies (see Library): it
    damps what edits change and what all photos share (plain backgrounds), so an edited copy ranks
    above look-alikes.
    """
    report = progress or (lambda p: None)
    cancel = cancel or threading.Event()
    store: Store = library.store
    # what the scan is of, read before it starts: a change while it runs makes the next one needed
    generation, whitening_key = store.generation, _whitening_key(store)
    space = library.search_space()
    index, whitening = (space.index, space.whitening) if space is not None else (None, None)
    info = store.duplicate_scan_info()
    stale = info is not None and info.get("version") != EVIDENCE_VERSION  # measured another way: not used
    if stale and not store.read_only:
        store.forget_duplicate_scans()
    files = store.files_by_ids(index.labels()) if index is not None else {}
    scan = DuplicateScan(library.root, files, [], store.decisions(), frozenset(store.separated_pairs()))
    if index is None or len(files) < 2:
        return scan

    report(DuplicateProgress("candidates", 0, 1))
    chunks = list(store.iter_vectors())
    ids = np.concatenate([c[0] for c in chunks])
    vectors = np.concatenate([c[1] for c in chunks])
    keep = np.isin(ids, list(files))
    ids = ids[keep]
    whitened = vectors[keep] if whitening is None else whitening.apply(vectors[keep])
    del chunks, vectors
    cosines = functools.partial(_cosines, ids, whitened)

    stored = PairTable.from_rows([]) if stale else PairTable.from_grid(store.duplicate_pairs())
    stored = stored.take(np.isin(stored.a, ids) & np.isin(stored.b, ids))
    # a whitening refitted since moves the pairs' cosines: those pairs are scored and kept again
    now = cosines(stored.a, stored.b)
    refitted = np.abs(now - stored.columns["whitened"]) > 1e-6
    known = PairTable({**stored.columns, "whitened": np.where(refitted, now, stored.columns["whitened"])})
    todo = candidate_pairs(ids, whitened, index.query, k)
    todo = todo[~np.isin(todo, known.keys())]
    report(DuplicateProgress("candidates", 1, 1))

    stored_photos = {} if stale else store.duplicate_photos()
    scan.quality = {file_id: PhotoQuality.from_json(quality) for file_id, (_, quality) in stored_photos.items()
                    if quality is not None and file_id in files}
    problems: dict[int, str] = {}
    verified_pairs, cancelled = _verify(library, files, todo, cosines, problems, report, cancel, workers,
                                        features_in_memory)
    scan.pairs = PairTable.concat([known, verified_pairs])
    measured: dict[int, PhotoQuality] = {}
    if not cancelled:
        grouping = scan.pairs.take(scan.pairs.score >= LOWEST_THRESHOLD)  # the pairs a threshold can group
        wanted = sorted(set(np.union1d(grouping.a, grouping.b).tolist()) - scan.quality.keys() - problems.keys())
        cancelled = _measure(library.root, files, wanted, measured, problems, report, cancel, workers)
    scan.quality.update(measured)
    scan.cancelled = cancelled
    scan.problems = [(library.root / files[file_id].path, why) for file_id, why in sorted(problems.items())]

    photos = [(file_id, problems.get(file_id), None) for file_id in problems]
    photos += [(file_id, None, quality.to_json()) for file_id, quality in measured.items()]
    # photos read this time that could not be read before
    photos += [(file_id, None, None) for file_id, (problem, _) in stored_photos.items()
               if problem is not None and file_id in files and file_id not in problems and file_id not in measured]
    scan.scanned_at = time.time()
    if not store.read_only:  # a read-only library (it still searches) scans without keeping the scan
        store.save_duplicate_scan(
            itertools.chain(known.take(refitted).iter_rows(), verified_pairs.iter_rows()), photos,
            {"at": scan.scanned_at, "generation": generation, "version": EVIDENCE_VERSION,
             "whitening": whitening_key, "complete": not cancelled})
    if not cancelled:
        report(DuplicateProgress("done", len(todo), len(todo)))
    return scan


def load_scan(library) -> DuplicateScan | None:
    """The last scan kept in the library (a `Library`), at once: None before any. `up_to_date` says
    whether the library is as it was (the same photos and whitening, the scan finished); otherwise
    scan_duplicates brings it up to date, verifying only what is new."""
    store: Store = library.store
    info = store.duplicate_scan_info()
    if info is None or info.get("version") != EVIDENCE_VERSION:
        return None
    pairs = PairTable.from_grid(store.duplicate_pairs())
    photos = store.duplicate_photos()
    files = store.files_by_ids(set(np.union1d(pairs.a, pairs.b).tolist()) | set(photos))
    known = np.fromiter(files, dtype=np.int64, count=len(files))
    return DuplicateScan(
        library.root, files, pairs.take(np.isin(pairs.a, known) & np.isin(pairs.b, known)),
        store.decisions(), frozenset(store.separated_pairs()),
        problems=[(library.root / files[i].path, problem) for i, (problem, _) in sorted(photos.items())
                  if problem is not None and i in files],
        quality={i: PhotoQuality.from_json(quality) for i, (_, quality) in photos.items() if quality is not None},
        scanned_at=float(info["at"]), up_to_date=kept_scan_is_current(store))


def outdated_scan_age(store: Store) -> float | None:
    """Seconds since the last scan kept where another version of the check made it (load_scan gives
    None for it: the next scan verifies every pair again); None where there is none, or it is of this one."""
    info = store.duplicate_scan_info()
    if info is None or info.get("version") == EVIDENCE_VERSION or "at" not in info:
        return None
    return max(0.0, time.time() - float(info["at"]))


def kept_scan_is_current(store: Store) -> bool:
    """Whether the last scan kept is of the library as it is: finished, of the same photos and whitening."""
    info = store.duplicate_scan_info()
    return bool(info is not None and info.get("version") == EVIDENCE_VERSION and info.get("complete")
                and info.get("generation") == store.generation and info.get("whitening") == _whitening_key(store))


def follow_own_removal(store: Store, current_before: bool) -> None:
    """Photos the app itself took out of the library (trashed, moved away) leave their pairs with them;
    what the scan found of the others still holds, so a scan that was current stays current. (Their
    absence may bring a 21st neighbour into some photo's candidates: the next scan asked for verifies it.)"""
    info = store.duplicate_scan_info()
    if current_before and info is not None and not store.read_only:
        store.set_duplicate_scan_info({**info, "generation": store.generation})


def _verify(library, files: dict[int, FileRow], todo: np.ndarray,
            cosines: Callable[[np.ndarray, np.ndarray], np.ndarray], problems: dict[int, str],
            report: Callable[[DuplicateProgress], None], cancel: threading.Event, workers: int | None,
            features_in_memory: int) -> tuple[PairTable, bool]:
    """Verify the `todo` pairs (their keys), with the features the library keeps of each photo: (their
    evidence, whether cancelled). Photos that cannot be analysed go to `problems`.

    Byte-identical photos (one content hash) have the same features, so a pair's evidence is that of
    its two contents: each pair of contents is compared once, with one photo standing for each content
    (a pair of copies is that photo compared with itself), and every pair of files gets it with its own
    whitened cosine. A folder copied twice is verified as once."""
    a, b = pair_ids(todo)
    needed = np.union1d(a, b).tolist()
    nothing = PairTable.from_grid(np.empty((0, len(EVIDENCE_COLUMNS))))
    if not needed:
        return nothing, cancel.is_set()
    try:
        features = _ScanFeatures(library, files, features_in_memory)
    except OSError as exc:
        raise ScanError(f"cannot write the scan's working file in {library.library_dir}: {exc.strerror or exc}") from exc
    evidence: dict[int, tuple] = {}  # by the key of the pair of contents
    cancelled = False
    # Pairs are matched on several threads; numpy's BLAS on one thread each, or they contend.
    with features, ThreadPoolExecutor(max_workers=_workers(workers), thread_name_prefix="vitgallery-duplicates") as pool, \
            threadpool_limits(1, user_api="blas"):
        for file_id, problem in zip(needed, pool.map(lambda i: _changed_since_indexed(library.root / files[i].path,
                                                                                      files[i]), needed), strict=True):
            if problem is not None:
                problems[file_id] = problem
        standing_for = _one_per_content(files, [i for i in needed if i not in problems])
        # photos indexed before the library kept their features are analysed now, once
        unkept = features.without_kept(sorted(set(standing_for.values())))
        for done, (file_id, problem) in enumerate(features.analyse(unkept, pool), 1):
            if problem is not None:
                problems[file_id] = problem
            report(DuplicateProgress("keypoints", done, len(unkept)))
            if cancel.is_set():
                pool.shutdown(wait=False, cancel_futures=True)
                return nothing, True

        # each file's stand-in (-1: none, it has a problem), then each pair of contents once, in order of
        # the first photo, so its features serve its pairs from memory in a row
        stand_in = np.full(len(needed), -1, dtype=np.int64)
        for n, file_id in enumerate(needed):
            stand_in[n] = standing_for.get(file_id, -1)
        first, second = stand_in[np.searchsorted(needed, a)], stand_in[np.searchsorted(needed, b)]
        contents = pair_keys(np.minimum(first, second), np.maximum(first, second))
        contents[(first < 0) | (second < 0)] = -1
        x, y = pair_ids(np.unique(contents[contents >= 0]))
        to_compare = [(i, j) for i, j in zip(x.tolist(), y.tolist(), strict=True) if i not in problems and j not in problems]
        for start in range(0, len(to_compare), PAIRS_PER_ROUND):
            batch = to_compare[start:start + PAIRS_PER_ROUND]
            evidence.update((pair_key(row[0], row[1]), row)
                            for row in _verify_batch(batch, features, cosines, pool, problems))
            report(DuplicateProgress("verifying", start + len(batch), len(to_compare)))
            if cancel.is_set():
                cancelled = True
                break
    # every pair of files whose contents were compared (a content whose photo failed is compared next scan)
    return _files_evidence(a, b, first, second, contents, evidence, cosines), cancelled


def _files_evidence(a: np.ndarray, b: np.ndarray, first: np.ndarray, second: np.ndarray, contents: np.ndarray,
                    evidence: dict[int, tuple], cosines: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> PairTable:
    """Pairs of files (a, b) with the evidence of their contents (`contents`: its key in `evidence`, made
    of the photos standing for them, `first` for a's and `second` for b's) and their own whitened cosine."""
    compared = np.array(sorted(evidence), dtype=np.int64)
    grid = np.array([evidence[key] for key in compared.tolist()], dtype=np.float64).reshape(-1, len(EVIDENCE_COLUMNS))
    row = np.searchsorted(compared, contents)
    found = (contents >= 0) & (row < len(compared))
    found[found] = compared[row[found]] == contents[found]
    a, b, first, second, row = a[found], b[found], first[found], second[found], row[found]
    columns = {name: grid[row, n] for n, name in enumerate(EVIDENCE_COLUMNS)}
    swapped = first > second  # compared the other way round: each side keeps its padding
    columns["padding_a"], columns["padding_b"] = (np.where(swapped, columns["padding_b"], columns["padding_a"]),
                                                  np.where(swapped, columns["padding_a"], columns["padding_b"]))
    return PairTable(columns | {"a": a, "b": b, "whitened": cosines(a, b), "inliers": columns["inliers"].astype(np.int64)})


def _one_per_content(files: dict[int, FileRow], ids: Iterable[int]) -> dict[int, int]:
    """Each photo of `ids` and the one that stands for its content (the lowest id of those with its
    content hash)."""
    first: dict[str, int] = {}
    for file_id in sorted(ids):
        first.setdefault(files[file_id].fingerprint, file_id)
    return {file_id: first[files[file_id].fingerprint] for file_id in ids}


def _verify_batch(pairs: list[tuple[int, int]], features: _ScanFeatures,
                  cosines: Callable[[np.ndarray, np.ndarray], np.ndarray],
                  pool: ThreadPoolExecutor, problems: dict[int, str]) -> list[tuple]:
    """The evidence of `pairs` as evidence_row (photos in `problems` are left out): matched on the
    strongest keypoints, then, where those are worth a closer look and the photos look alike enough, on
    all their keypoints (it decodes a photo whose kept features hold only the strongest)."""
    kept = features.get([i for pair in pairs for i in pair], pool, problems)
    pairs = [(a, b) for a, b in pairs if a in kept and b in kept]
    whites = cosines(np.array([a for a, _ in pairs], dtype=np.int64),
                     np.array([b for _, b in pairs], dtype=np.int64)).tolist()
    # each photo with all its partners at once (pairs come in order of their first photo)
    by_first: dict[int, list[int]] = {}
    for n, (a, _) in enumerate(pairs):
        by_first.setdefault(a, []).append(n)

    def match_partners(positions: list[int]) -> list[PairMatch]:
        return match_each(kept[pairs[positions[0]][0]], [kept[pairs[n][1]] for n in positions], look_closer=False)

    matches: list[PairMatch] = [NO_PAIR_MATCH] * len(pairs)
    for positions, found in zip(by_first.values(), pool.map(match_partners, by_first.values()), strict=True):
        for n, match in zip(positions, found, strict=True):
            matches[n] = match
    closer = [n for n, match in enumerate(matches) if closer_look_wanted(match.inliers, whites[n])]
    complete = features.complete([i for n in closer for i in pairs[n]], kept, pool, problems)
    closer = [n for n in closer if pairs[n][0] in complete and pairs[n][1] in complete]
    for n, match in zip(closer, pool.map(lambda n: match_closer(complete[pairs[n][0]], complete[pairs[n][1]]), closer),
                        strict=True):
        matches[n] = match or matches[n]
    looked = [n for n, match in enumerate(matches)
              if keypoints_cannot_tell(match.inliers) and whites[n] >= LOOK_FROM_WHITENED]
    likeness = dict(zip(looked, pool.map(lambda n: look_likeness(kept[pairs[n][0]], kept[pairs[n][1]]),
                                         looked), strict=True))
    evidence = []
    for n, ((a, b), match) in enumerate(zip(pairs, matches, strict=True)):
        if a in problems or b in problems:
            continue
        evidence.append(evidence_row(a, b, whites[n], match.inliers, match.agreement, likeness.get(n), match.shape))
    return evidence


def closer_look_wanted(inliers: int, whitened: float) -> bool:
    """Whether a pair whose strongest keypoints gave `inliers` (features.worth_a_closer_look) is looked
    at closer, at its whitened cosine. One inlier more than any affine map fits is chance as often as
    not: in a library without duplicates, three quarters of the closer looks were at 4 inliers and
    verified nothing, and on the public seeds the few copies they verified looked alike at 0.73-0.77
    (docs/performance.md). So at 4 a pair must look as alike as a slide asks (LOOK_FROM_WHITENED)."""
    floor = LOOK_FROM_WHITENED if inliers <= AFFINE_SAMPLE + 1 else CLOSER_FROM_WHITENED
    return worth_a_closer_look(inliers) and whitened >= floor


class _ScanFeatures:
    """Every photo's features for one scan: those the library keeps, read as pairs need them; those of
    photos indexed before the library kept them, analysed once (and then kept by the library); the
    complete ones of a closer look, decoded once. What is decoded waits in a temporary file beside the
    library (SpilledFeatures); at most `capacity` photos' features are held in memory. Only the thread
    that owns it calls it; `analyse`, `get` and `complete` run their decodes on the pool given."""

    def __init__(self, library, files: dict[int, FileRow], capacity: int) -> None:
        self._library, self._files, self._store = library, files, library.store
        self._decoded = SpilledFeatures(library.library_dir, capacity)  # all SCAN_KEYPOINTS
        self._recent: OrderedDict[int, PhotoFeatures] = OrderedDict()  # kept features, read lately
        self._capacity = max(1, capacity)

    def __enter__(self) -> _ScanFeatures:
        return self

    def __exit__(self, *exc) -> None:
        self._decoded.close()
        self._recent.clear()

    def without_kept(self, ids: list[int]) -> list[int]:
        """The ids whose features the library does not keep."""
        return sorted(set(ids) - self._store.photo_feature_ids(ids))

    def analyse(self, ids: list[int], pool: ThreadPoolExecutor) -> Iterator[tuple[int, str | None]]:
        """Decode and analyse photos, yielding (file id, problem or None) as each is done; the library
        keeps what is found (unless it is read-only)."""
        found: list[tuple[int, bytes, bytes]] = []
        for file_id, analysed, problem in pool.map(self._analyse_one, ids):
            if analysed is not None:
                self._add_decoded(file_id, analysed)
                if not self._store.read_only:
                    found.append((file_id, analysed.keypoints.strongest(KEYPOINT_COUNT).to_bytes(),
                                  analysed.looks_to_bytes()))
                    if len(found) >= 256:
                        self._store.save_photo_features(found)
                        found.clear()
            yield file_id, problem
        if found:
            self._store.save_photo_features(found)

    def get(self, ids: Iterable[int], pool: ThreadPoolExecutor, problems: dict[int, str]) -> dict[int, PhotoFeatures]:
        """The features of `ids`; a photo that cannot be analysed goes to `problems`."""
        wanted = dict.fromkeys(i for i in ids if i not in problems)
        found = {i: self._recent[i] for i in wanted if i in self._recent}
        found |= {i: self._decoded.get(i) for i in wanted if i not in found and i in self._decoded}
        damaged = []
        for file_id, (keypoints, looks) in self._store.photo_features([i for i in wanted if i not in found]).items():
            try:
                found[file_id] = PhotoFeatures.from_stored(keypoints, looks)
            except ValueError:
                damaged.append(file_id)
        for file_id in found:
            self._remember(file_id, found[file_id])
        # damaged kept features, or a photo whose features went since: decoded (and kept again)
        for file_id, problem in self.analyse(damaged + [i for i in wanted if i not in found and i not in damaged], pool):
            if problem is None:
                found[file_id] = self._decoded.get(file_id)
            else:
                problems[file_id] = problem
        return found

    def complete(self, ids: Iterable[int], kept: dict[int, PhotoFeatures], pool: ThreadPoolExecutor,
                 problems: dict[int, str]) -> dict[int, PhotoFeatures]:
        """The complete features (SCAN_KEYPOINTS) of `ids`, whose kept features are in `kept`."""
        wanted = dict.fromkeys(i for i in ids if i not in problems)
        found = {i: kept[i] for i in wanted if kept[i].complete}
        found |= {i: self._decoded.get(i) for i in wanted if i not in found and i in self._decoded}
        for file_id, analysed, problem in pool.map(self._analyse_one, [i for i in wanted if i not in found]):
            if analysed is None:
                problems[file_id] = problem or "unreadable"
            else:
                self._add_decoded(file_id, analysed)
                found[file_id] = analysed
        return found

    def _analyse_one(self, file_id: int) -> tuple[int, PhotoFeatures | None, str | None]:
        path = self._library.root / self._files[file_id].path
        try:
            return file_id, analyse_photo(path), None
        except (DecodeError, OSError, cv2.error) as exc:
            return file_id, None, _unreadable(path, exc)

    def _add_decoded(self, file_id: int, analysed: PhotoFeatures) -> None:
        try:
            self._decoded.add(file_id, analysed)
        except OSError as exc:
            raise ScanError(f"no room for the scan's working file in {self._library.library_dir} "
                            f"({exc.strerror or exc}; it needs about 160 KB a photo decoded): free some space and "
                            "scan again") from exc

    def _remember(self, file_id: int, features: PhotoFeatures) -> None:
        self._recent[file_id] = features
        self._recent.move_to_end(file_id)
        while len(self._recent) > self._capacity:
            self._recent.popitem(last=False)


def _measure(root, files: dict[int, FileRow], wanted: list[int], measured: dict[int, PhotoQuality],
             problems: dict[int, str], report: Callable[[DuplicateProgress], None], cancel: threading.Event,
             workers: int | None) -> bool:
    """Measure the photos in `wanted` for the keep-best rule into `measured`, each content once (what is
    measured is in the file's bytes). True when cancelled."""

    def measure(file_id: int) -> tuple[int, PhotoQuality | None, str | None]:
        path = root / files[file_id].path
        try:
            return file_id, measure_quality(path), None
        except (DecodeError, OSError, cv2.error) as exc:
            return file_id, None, _unreadable(path, exc)

    with ThreadPoolExecutor(max_workers=_workers(workers), thread_name_prefix="vitgallery-duplicates") as pool:
        for file_id, problem in zip(wanted, pool.map(lambda i: _changed_since_indexed(root / files[i].path, files[i]),
                                                     wanted), strict=True):
            if problem is not None:
                problems[file_id] = problem
        standing_for = _one_per_content(files, [i for i in wanted if i not in problems])
        copies: dict[int, list[int]] = {}
        for file_id, first in standing_for.items():
            copies.setdefault(first, []).append(file_id)
        for done, (first, quality, problem) in enumerate(pool.map(measure, sorted(copies)), 1):
            for file_id in copies[first]:
                if quality is None:
                    problems[file_id] = problem or "unreadable"
                else:
                    measured[file_id] = quality
            report(DuplicateProgress("measuring", done, len(copies)))
            if cancel.is_set():
                pool.shutdown(wait=False, cancel_futures=True)
                return True
    return False


def _whitening_key(store: Store) -> str | None:
    stored = store.whitening()
    return None if stored is None else stored.key


def _workers(asked: int | None) -> int:
    return asked or max(1, min(4, os.cpu_count() or 1))


def _changed_since_indexed(path, row: FileRow) -> str | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return "vanished since it was indexed"
    except OSError as exc:
        return f"cannot read file: {exc.strerror or exc}"
    if st.st_size != row.size or st.st_mtime_ns != row.mtime_ns:
        return "changed since it was indexed: index the folder again"
    return None


def _unreadable(path, exc: Exception) -> str:
    if isinstance(exc, FileNotFoundError):
        return "vanished since it was indexed"
    if isinstance(exc, DecodeError):
        return exc.reason
    if isinstance(exc, OSError):
        return f"cannot read file: {exc.strerror or exc}"
    log.warning("cannot analyse %s: %s", path, exc)
    return "could not be analysed"


def _cosines(ids: np.ndarray, whitened: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The whitened cosine of each pair (a[n], b[n]) of file ids, `whitened` holding the vector of ids[n],
    a few thousand pairs at a time (each needs two vectors' copies)."""
    order = np.argsort(ids)
    rows_a = order[np.searchsorted(ids, a, sorter=order)]
    rows_b = order[np.searchsorted(ids, b, sorter=order)]
    cosines = np.empty(len(a), dtype=np.float64)
    for start in range(0, len(a), 4096):
        part = slice(start, start + 4096)
        cosines[part] = np.einsum("ij,ij->i", whitened[rows_a[part]], whitened[rows_b[part]])
    return cosines
