"""Scanning a whole library for near-duplicates: candidates from the index, then each pair verified.

1. Candidates: every photo's nearest neighbours in the library's vector index (never all pairs).
2. Verification: each candidate photo is analysed once (features.analyse_photo; the features wait in
   a temporary file, see spill.py) and each pair compared (features.match_photos, look_likeness).
3. Each pair's evidence gets a score (scoring.pair_score); grouping at a threshold is left to the
   DuplicateScan, so a slider can regroup instantly.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

from vitgallery.core.duplicates.features import PhotoFeatures, analyse_photo, look_likeness, match_photos
from vitgallery.core.duplicates.groups import DuplicateScan
from vitgallery.core.duplicates.scoring import PairEvidence, keypoints_cannot_tell, pair_score
from vitgallery.core.duplicates.spill import FEATURES_IN_MEMORY, SpilledFeatures
from vitgallery.core.imageio import DecodeError
from vitgallery.core.store import Store

log = logging.getLogger(__name__)

NEIGHBOURS = 20  # candidates per photo, in each of the two neighbour lists
LOOK_FROM_WHITENED = 0.5  # pairs less alike in the whitened space are not slid (they cannot score 0.5)


class ScanError(Exception):
    """A scan that cannot go on (its working file cannot be written); the message says what to do."""


@dataclass(frozen=True)
class DuplicateProgress:
    phase: str  # "candidates", "keypoints", "verifying", "done"
    done: int
    total: int


def candidate_pairs(ids: np.ndarray, vectors: np.ndarray, query: Callable[[np.ndarray, int], tuple],
                    k: int = NEIGHBOURS) -> set[tuple[int, int]]:
    """Each photo with its k nearest neighbours, as (a, b) with a < b."""
    pairs: set[tuple[int, int]] = set()
    for start in range(0, len(ids), 1024):
        labels, _ = query(vectors[start:start + 1024], k + 1)
        for own, row in zip(ids[start:start + 1024].tolist(), labels.tolist(), strict=True):
            pairs.update((min(own, other), max(own, other)) for other in row if other != own)
    return pairs


def scan_duplicates(library, *, progress: Callable[[DuplicateProgress], None] | None = None,
                    cancel: threading.Event | None = None, k: int = NEIGHBOURS,
                    workers: int | None = None, features_in_memory: int = FEATURES_IN_MEMORY) -> DuplicateScan:
    """Find and verify the candidate pairs of a whole library (a `Library`). Photos that vanished or
    changed since they were indexed are left out and listed in `problems`. Each photo's features wait in
    a temporary file beside the library (see SpilledFeatures); ScanError when it cannot be written.

    Candidates are each photo's k nearest neighbours in the library's index, whose vectors went
    through the whitening the library learned from its own photos' edited copies (see Library): it
    damps what edits change and what all photos share (plain backgrounds), so an edited copy ranks
    above look-alikes.
    """
    report = progress or (lambda p: None)
    cancel = cancel or threading.Event()
    store: Store = library.store
    space = library.search_space()
    index, whitening = (space.index, space.whitening) if space is not None else (None, None)
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
    pairs = candidate_pairs(ids, whitened, index.query, k)
    position = {file_id: n for n, file_id in enumerate(ids.tolist())}
    report(DuplicateProgress("candidates", 1, 1))

    needed = sorted({i for pair in pairs for i in pair})

    def analyse(file_id: int) -> tuple[int, PhotoFeatures | None, str | None]:
        row = files[file_id]
        path = library.root / row.path
        try:
            st = path.stat()
            if st.st_size != row.size or st.st_mtime_ns != row.mtime_ns:
                return file_id, None, "changed since it was indexed: index the folder again"
            return file_id, analyse_photo(path), None
        except FileNotFoundError:
            return file_id, None, "vanished since it was indexed"
        except DecodeError as exc:
            return file_id, None, exc.reason
        except OSError as exc:
            return file_id, None, f"cannot read file: {exc.strerror or exc}"
        except cv2.error as exc:
            log.warning("cannot analyse %s: %s", path, exc)
            return file_id, None, "could not be analysed"

    try:
        features = SpilledFeatures(library.library_dir, features_in_memory)
    except OSError as exc:
        raise ScanError(f"cannot write the scan's working file in {library.library_dir}: {exc.strerror or exc}") from exc
    try:
        workers = workers or max(1, min(4, os.cpu_count() or 1))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vitgallery-duplicates") as pool:
            for done, (file_id, found, problem) in enumerate(pool.map(analyse, needed), 1):
                if found is None:
                    scan.problems.append((library.root / files[file_id].path, problem or "unreadable"))
                else:
                    try:
                        features.add(file_id, found)
                    except OSError as exc:
                        pool.shutdown(wait=False, cancel_futures=True)
                        raise ScanError(
                            f"no room for the scan's working file in {library.library_dir} "
                            f"({exc.strerror or exc}; it needs about 50 KB a photo): free some space and scan again"
                        ) from exc
                report(DuplicateProgress("keypoints", done, len(needed)))
                if cancel.is_set():
                    pool.shutdown(wait=False, cancel_futures=True)
                    scan.cancelled = True
                    return scan

        # in order of the first photo, so its features serve all its pairs from memory in a row
        todo = sorted((a, b) for a, b in pairs if a in features and b in features)
        for done, (a, b) in enumerate(todo, 1):
            first, second = features.get(a), features.get(b)
            match = match_photos(first, second)
            white = float(whitened[position[a]] @ whitened[position[b]])
            likeness = (look_likeness(first.look, second.look)
                        if keypoints_cannot_tell(match.inliers) and white >= LOOK_FROM_WHITENED else None)
            scan.pairs.append(PairEvidence(a, b, white, match.inliers, match.agreement,
                                           pair_score(white, match.inliers, match.agreement, likeness), likeness))
            if done % 64 == 0 or done == len(todo):
                report(DuplicateProgress("verifying", done, len(todo)))
                if cancel.is_set():
                    scan.cancelled = True
                    return scan
    finally:
        features.close()
    report(DuplicateProgress("done", len(todo), len(todo)))
    return scan
