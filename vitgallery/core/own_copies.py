"""A library's own near-duplicates as pairs for its whitening: photos seen two ways, no forward pass.

The whitening learns what edits change from pairs of embeddings of one photo seen two ways; the teaching
views make such pairs with extra forward passes. A library's copies (re-saves, crops, captioned or
recoloured edits) are such pairs already, and the keypoints and grey copies it keeps of each photo find
them. Measured in bench/lab/self_pairs.py (docs/performance.md, issue 18 point 3): added to the teaching
views' pairs they raise the dup corpora's exact-ranking mAP by 1.3-3.7 (102-108 % of the gain of three views
a photo, with one); a library without copies finds none and keeps the views' whitening.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from vitgallery.core.duplicates.features import PairMatch, match_each
from vitgallery.core.photo_features import PhotoFeatures
from vitgallery.core.store import Store
from vitgallery.core.whitening import LibraryWhitening

COPY_NEIGHBOURS = 5  # each sought photo's nearest neighbours under the views' whitening that are matched
# a copy, as the stored keypoints tell it: chosen on public seeds 1 and 2 (bench/lab/self_pairs.py). 20
# inliers and 85 % alike gained a little more on their dup corpora but took one pair of different pictures
# in seed 2's sem library (objects pasted on one background) for a copy; none there at 30 and 90 %
COPY_INLIERS = 30
COPY_AGREEMENT = 0.9
COPIES_SOUGHT_FROM = 1000  # photos whose neighbours are matched, at most (about 9 ms of CPU each)
_CHUNK = 20_000  # library vectors compared at once with the sought photos


def own_copy_pairs(store: Store, whitening: LibraryWhitening,
                   chunks: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """(own, other): raw vectors of pairs of the library's photos that are copies of each other, row by
    row; sought among the COPY_NEIGHBOURS nearest under `whitening` of up to COPIES_SOUGHT_FROM photos.
    `chunks`: the library's vectors as Store.iter_vectors gives them (the caller read them for the mean)."""
    if not chunks:
        return _no_pairs(0)
    ids = np.concatenate([c[0] for c in chunks])
    raw = np.concatenate([c[1] for c in chunks])
    sought = np.arange(len(ids))
    if len(ids) > COPIES_SOUGHT_FROM:
        sought = np.sort(np.random.default_rng(len(ids)).choice(len(ids), COPIES_SOUGHT_FROM, replace=False))
    pairs = copies_among(whitening.apply(raw), sought, lambda rows: _stored_features(store, ids, rows))
    if not pairs:
        return _no_pairs(raw.shape[1])
    first, second = (np.array(side, dtype=np.int64) for side in zip(*pairs, strict=True))
    return raw[first], raw[second]


def is_copy(match: PairMatch) -> bool:
    return match.inliers >= COPY_INLIERS and match.agreement >= COPY_AGREEMENT


def copies_among(whitened: np.ndarray, sought: np.ndarray,
                 features_of: Callable[[np.ndarray], dict[int, PhotoFeatures]],
                 copy: Callable[[PairMatch], bool] = is_copy) -> list[tuple[int, int]]:
    """Pairs of rows (a < b, sorted) that are copies: each `sought` row's COPY_NEIGHBOURS nearest rows of
    `whitened` (unit vectors), matched on their features (`features_of(rows)`: row -> features, those it
    has) and kept where `copy` says so (bench/lab/self_pairs.py tries other gates)."""
    neighbours = _nearest(whitened, sought, min(COPY_NEIGHBOURS, len(whitened) - 1))
    features = features_of(np.union1d(sought, neighbours.ravel()))
    pairs: set[tuple[int, int]] = set()
    for row, found in zip(sought.tolist(), neighbours.tolist(), strict=True):
        own = features.get(row)
        others = [j for j in found if j in features and (min(row, j), max(row, j)) not in pairs]
        if own is None or not others:
            continue
        for j, match in zip(others, match_each(own, [features[j] for j in others], look_closer=False), strict=True):
            if copy(match):
                pairs.add((min(row, j), max(row, j)))
    return sorted(pairs)


def _nearest(whitened: np.ndarray, sought: np.ndarray, k: int) -> np.ndarray:
    """Rows of the k nearest other rows of each sought row (cosine: the rows are unit vectors)."""
    best = np.full((len(sought), 0), -np.inf, dtype=np.float32)
    best_rows = np.empty((len(sought), 0), dtype=np.int64)
    for start in range(0, len(whitened), _CHUNK):
        sims = whitened[sought] @ whitened[start:start + _CHUNK].T
        rows = np.arange(start, start + sims.shape[1])
        sims[sought[:, None] == rows[None, :]] = -np.inf  # not itself
        sims = np.concatenate([best, sims], axis=1)
        rows = np.concatenate([best_rows, np.broadcast_to(rows, (len(sought), len(rows)))], axis=1)
        keep = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        best, best_rows = np.take_along_axis(sims, keep, axis=1), np.take_along_axis(rows, keep, axis=1)
    return best_rows


def _stored_features(store: Store, ids: np.ndarray, rows: np.ndarray) -> dict[int, PhotoFeatures]:
    """Row -> the features the library keeps of that photo (those with grey copies; damaged ones left out)."""
    stored = store.photo_features(ids[rows].tolist())
    row_of = {int(ids[row]): int(row) for row in rows}
    features = {}
    for file_id, (keypoints, looks) in stored.items():
        try:
            features[row_of[file_id]] = PhotoFeatures.from_stored(keypoints, looks)
        except ValueError:
            continue
    return features


def _no_pairs(dim: int) -> tuple[np.ndarray, np.ndarray]:
    return np.empty((0, dim), dtype=np.float32), np.empty((0, dim), dtype=np.float32)
