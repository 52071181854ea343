"""Refining a search with marks: photos marked "more like this" pull the query towards them, photos
marked "not this" push it away (Rocchio's relevance feedback, over the library's whitened vectors).

The weights were chosen on the sem task of public seeds 1 and 2 with a simulated user who marks the
top 10 (bench/refine.py, docs/benchmarks.md).
"""

from __future__ import annotations

import numpy as np

QUERY_WEIGHT = 1.0
LIKE_WEIGHT = 1.0
UNLIKE_WEIGHT = 0.25


def refined_query(query: np.ndarray, liked: np.ndarray, unliked: np.ndarray, *, query_weight: float = QUERY_WEIGHT,
                  like_weight: float = LIKE_WEIGHT, unlike_weight: float = UNLIKE_WEIGHT) -> np.ndarray:
    """The query moved by the marks: unit((query_weight * query + like_weight * mean(liked)
    - unlike_weight * mean(unliked))). All unit vectors of one space; liked and unliked are (n, D),
    either may have no rows."""
    moved = query_weight * query.astype(np.float64)
    if len(liked):
        moved = moved + like_weight * liked.mean(axis=0)
    if len(unliked):
        moved = moved - unlike_weight * unliked.mean(axis=0)
    norm = np.linalg.norm(moved)
    return (moved / norm if norm > 1e-12 else query).astype(np.float32)
