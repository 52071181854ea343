from __future__ import annotations

import numpy as np
import pytest

from vitgallery.core.rerank import rerank


def test_rerank_lifts_verified_candidates_only():
    ids, scores = rerank(np.array([7, 8, 9]), np.array([0.9, 0.8, 0.7]), np.array([0, 60, 5]))
    assert ids.tolist() == [8, 7, 9]
    assert scores.tolist() == pytest.approx([1.0, 0.9, 0.7])
    ids, _ = rerank(np.array([7, 8, 9]), np.array([0.9, 0.8, 0.7]), np.array([0, 0, 0]))
    assert ids.tolist() == [7, 8, 9]


def test_rerank_bonus_grows_with_inliers_up_to_full():
    # 20 inliers take half the distance to 1 away, 40 and more all of it
    ids, scores = rerank(np.array([1, 2, 3]), np.array([0.5, 0.5, 0.5]), np.array([20, 40, 400]),
                         min_inliers=12, weight=1.0, full_at=40)
    assert ids.tolist() == [2, 3, 1]
    assert scores.tolist() == pytest.approx([1.0, 1.0, 0.75])
