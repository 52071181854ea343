from __future__ import annotations

import numpy as np
import pytest

from vitgallery.core.keypoints import VERIFIED_INLIERS
from vitgallery.core.rerank import VERIFIED_FLOOR, rerank, similarity, verified_score


def test_verified_hits_order_by_their_evidence():
    # A crop's original (154 points) above a smaller copy (73), whatever their cosines say.
    ids, scores = rerank(np.array([1, 2, 3, 4]), np.array([0.95, 0.80, 0.90, 0.30]), np.array([73, 154, 0, 12]))
    assert ids.tolist() == [2, 1, 3, 4]
    assert scores[0] > scores[1] > VERIFIED_FLOOR
    assert scores.max() < 1.0, "no score claims certainty"
    assert dict(zip(ids.tolist(), scores.tolist()))[4] == pytest.approx(VERIFIED_FLOOR)  # the weakest proof


def test_unverified_hits_keep_the_cosine_order():
    ids, scores = rerank(np.array([7, 8, 9]), np.array([0.9, 0.8, 0.7]), np.array([0, 0, VERIFIED_INLIERS - 1]))
    assert ids.tolist() == [7, 8, 9] and scores.tolist() == pytest.approx([0.9, 0.8, 0.7])


def test_a_verified_score_means_the_same_in_any_space():
    """Before the whitening is fitted (raw cosines, a high background) and after it (centred), the
    same evidence gives the same number, and an unrelated photo no longer scores 0.7."""
    before = rerank(np.array([1, 2]), np.array([0.97, 0.72]), np.array([60, 0]), background=0.67)
    after = rerank(np.array([1, 2]), np.array([0.55, 0.15]), np.array([60, 0]))
    assert before[1][0] == pytest.approx(after[1][0]) == pytest.approx(verified_score(60))
    assert before[1][1] < 0.2 and after[1][1] < 0.2


def test_similarity_is_measured_from_the_background():
    assert similarity(np.array([0.67, 1.0]), 0.67).tolist() == pytest.approx([0.0, 1.0])
    assert verified_score(np.array([VERIFIED_INLIERS, 10_000])).tolist() == pytest.approx([VERIFIED_FLOOR, 1.0], abs=0.01)


def test_a_verified_hit_scores_at_least_what_it_looks_like():
    """An identical file (every point matches, cosine 1) ranks above a blurred copy keypoints cannot verify."""
    ids, scores = rerank(np.array([1, 2]), np.array([0.976, 0.999]), np.array([9, 256]))
    assert ids.tolist() == [2, 1] and scores[0] == pytest.approx(0.999) and scores[1] == pytest.approx(0.976)


def test_hits_whose_pictures_differ_score_what_they_look_like():
    ids, scores = rerank(np.array([1, 2]), np.array([0.15, 0.30]), np.array([47, 0]),
                         same_scene_only=np.array([True, False]))
    assert ids.tolist() == [2, 1] and scores.tolist() == pytest.approx([0.30, 0.15])


def test_hits_the_duplicates_check_groups_are_verified_at_the_weakest_score():
    """A copy too poor in keypoints that the duplicates check groups (search.SearchHit.agreement, .likeness)."""
    ids, scores = rerank(np.array([1, 2, 3]), np.array([0.78, 0.72, 0.97]), np.array([0, 2, 0]),
                         grouped=np.array([False, True, True]))
    assert ids.tolist() == [3, 2, 1] and scores.tolist() == pytest.approx([0.97, VERIFIED_FLOOR, 0.78])
