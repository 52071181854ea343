"""A scan's pairs as columns (PairTable): the same evidence, scores and member geometry as pair objects."""

from __future__ import annotations

import random
import statistics
from dataclasses import replace
from pathlib import Path

import numpy as np

from vitgallery.core.duplicates import DuplicateScan, PairEvidence, PairShape, pair_score
from vitgallery.core.duplicates import pairs as pairs_module
from vitgallery.core.duplicates.groups import member_shapes
from vitgallery.core.duplicates.pairs import PairTable
from vitgallery.core.duplicates.scoring import match_reason, pair_scores
from vitgallery.core.store import FileRow


def random_pairs(count: int, seed: int = 0, ids: int = 12) -> list[PairEvidence]:
    assert count <= ids * (ids - 1) // 2, "there are not that many pairs"
    rng = random.Random(seed)
    pairs = {}
    while len(pairs) < count:
        a, b = sorted(rng.sample(range(1, ids + 1), 2))
        shape = None if rng.random() < 0.3 else PairShape(rng.random(), rng.uniform(0, 20), rng.random(), rng.random())
        likeness = None if rng.random() < 0.5 else rng.uniform(0.8, 1.0)
        inliers = rng.choice([0, 3, 5, 11, 12, 40, 200])
        pairs[a, b] = PairEvidence(a, b, rng.uniform(-0.1, 1.0), inliers, rng.random(), rng.random(), likeness, shape)
    return list(pairs.values())


def test_pairs_as_columns_give_back_the_evidence_they_were_made_of():
    pairs = random_pairs(60)
    table = PairTable.from_evidence(pairs)
    assert len(table) == 60 and list(table) == pairs and table[7] == pairs[7]
    assert list(table.take(table.a == 1)) == [p for p in pairs if p.a == 1]
    assert list(PairTable.concat([table.take(np.arange(10)), table.take(np.arange(10, 60))])) == pairs
    # stored and read back, the evidence is the same and the score is worked out again
    read = PairTable.from_rows(table.rows())
    assert [p.__class__(**{**vars(p), "score": 0}) for p in read] == [p.__class__(**{**vars(p), "score": 0})
                                                                     for p in pairs]
    assert [p.score for p in read] == [pair_score(p.whitened, p.inliers, p.agreement, p.likeness) for p in pairs]
    assert len(PairTable.from_rows([])) == 0


def test_rows_read_a_slice_at_a_time_give_the_same_columns(monkeypatch):
    rows = PairTable.from_evidence(random_pairs(60, seed=3)).rows()
    whole = PairTable.from_rows(rows)
    monkeypatch.setattr(pairs_module, "ROWS_CONVERTED_AT_ONCE", 7)  # 60 rows: 8 slices and a short one
    sliced = PairTable.from_rows(rows)
    for name, column in whole.columns.items():
        np.testing.assert_array_equal(sliced.columns[name], column)  # NaN where a row had None
        assert sliced.columns[name].dtype == column.dtype
    assert whole.rows() == rows, "made a slice at a time too"


def test_pair_keys_give_back_their_photos():
    a, b = np.array([1, 7, 2**31 - 2]), np.array([3, 9, 2**31 - 1])
    keys = pairs_module.pair_keys(a, b)
    assert len(set(keys.tolist())) == 3 and keys[1] == pairs_module.pair_key(9, 7)
    found_a, found_b = pairs_module.pair_ids(keys)
    np.testing.assert_array_equal(found_a, a)
    np.testing.assert_array_equal(found_b, b)


def test_the_scores_of_many_pairs_are_each_pairs_score():
    pairs = random_pairs(200, seed=1, ids=40)
    scores = pair_scores(np.array([p.whitened for p in pairs]), np.array([p.inliers for p in pairs]),
                         np.array([p.agreement for p in pairs]),
                         np.array([np.nan if p.likeness is None else p.likeness for p in pairs]))
    assert scores.tolist() == [pair_score(p.whitened, p.inliers, p.agreement, p.likeness) for p in pairs]


def test_a_members_shape_is_the_lower_median_and_most_over_its_mapped_pairs():
    pairs = [p for p in random_pairs(40, seed=2, ids=12) if p.shape is not None]
    shapes = member_shapes(PairTable.from_evidence(pairs))
    for member in {i for p in pairs for i in (p.a, p.b)}:
        own = [p for p in pairs if member in (p.a, p.b)]
        padding = [p.shape.padding_a if p.a == member else p.shape.padding_b for p in own]
        assert shapes[member].pairs == len(own)
        assert shapes[member].stretch == statistics.median_low(p.shape.stretch for p in own)
        assert shapes[member].tilt == statistics.median_low(p.shape.tilt for p in own)
        assert shapes[member].padding == max(padding)
    assert any(len([p for p in pairs if m in (p.a, p.b)]) % 2 == 0 for m in shapes), "an even count is tried"


def test_in_a_group_of_three_only_the_stretched_copy_reads_as_stretched():
    """The original's two pairs: one with the stretched copy, one without. Their mean (0.13) read as
    stretched, and the larger stretched copy was kept while the original went to the trash."""
    stretched, same = PairShape(0.26, 0.0, 0.0, 0.0), PairShape(0.0, 0.0, 0.0, 0.0)
    original, squashed, other = 1, 2, 3
    pairs = [PairEvidence(original, squashed, 0.9, 40, 0.9, 0.95, None, stretched),
             PairEvidence(original, other, 0.9, 40, 0.9, 0.95, None, same)]
    shapes = member_shapes(PairTable.from_evidence(pairs))
    assert shapes[original].stretch == 0.0 and shapes[squashed].stretch == 0.26
    shapes = member_shapes(PairTable.from_evidence([*pairs, PairEvidence(squashed, other, 0.9, 40, 0.9, 0.95, None,
                                                                         stretched)]))
    assert shapes[original].stretch == shapes[other].stretch == 0.0 and shapes[squashed].stretch == 0.26


def test_a_members_shape_reads_only_pairs_within_its_group():
    files = {i: FileRow(i, f"p{i}.jpg", 1, 1, f"fp{i}", 10, 10, None, 1.0, True) for i in range(1, 6)}
    stretched = PairShape(0.5, 0.0, 0.0, 0.0)
    pairs = [PairEvidence(1, 2, 0.9, 40, 0.9, 0.95, None, PairShape(0.1, 0.0, 0.0, 0.0)),
             PairEvidence(3, 4, 0.9, 40, 0.9, 0.95, None, PairShape(0.2, 0.0, 0.0, 0.0)),
             PairEvidence(2, 3, 0.9, 40, 0.9, 0.2, None, stretched),  # below the threshold: two groups
             PairEvidence(1, 5, 0.9, 3, 0.0, 0.01, None, stretched)]  # 5 in no group
    groups = DuplicateScan(Path("/photos"), files, pairs).groups(0.5)
    shapes = {m.file_id: m.shape for g in groups for m in g.members}
    assert shapes[1].stretch == shapes[2].stretch == 0.1 and shapes[2].pairs == 1
    assert shapes[3].stretch == shapes[4].stretch == 0.2
    assert [m.match for g in groups for m in g.members if m.match is not None] == [pairs[0], pairs[1]]


def test_each_members_match_is_the_pair_that_put_it_in_its_group():
    # 4, a crop of the crops 2 and 3, joins through the first of them in the group's order; its pair
    # with the original is under the threshold
    files = {i: FileRow(i, f"p{i}.jpg", 1, 1, f"fp{i}", 10, 10, None, 1.0, True) for i in range(1, 5)}
    pairs = [PairEvidence(1, 2, 0.9, 40, 0.9, 0.9, None, None), PairEvidence(1, 3, 0.9, 40, 0.9, 0.8, None, None),
             PairEvidence(2, 4, 0.9, 40, 0.9, 0.7, None, None), PairEvidence(3, 4, 0.9, 40, 0.9, 0.7, None, None),
             PairEvidence(1, 4, 0.9, 5, 0.5, 0.3, None, None)]
    (group,) = DuplicateScan(Path("/photos"), files, pairs).groups(0.5)
    assert {m.file_id: m.match for m in group.members} == {1: None, 2: pairs[0], 3: pairs[1], 4: pairs[2]}


def test_a_member_in_by_agreement_says_so():
    # 5 matches the original and two copies, none surely enough alone: in by their agreement
    files = {i: FileRow(i, f"p{i}.jpg", 1, 1, f"fp{i}", 10, 10, None, 1.0, True) for i in range(1, 6)}
    pairs = [PairEvidence(1, 2, 0.9, 40, 0.9, 0.9, None, None), PairEvidence(1, 3, 0.9, 40, 0.9, 0.8, None, None),
             PairEvidence(1, 4, 0.9, 40, 0.9, 0.8, None, None), PairEvidence(1, 5, 0.6, 30, 0.8, 0.3, None, None),
             PairEvidence(2, 5, 0.6, 20, 0.8, 0.2, None, None), PairEvidence(3, 5, 0.6, 20, 0.7, 0.1, None, None)]
    (group,) = DuplicateScan(Path("/photos"), files, pairs).groups(0.5)
    member = {m.file_id: m for m in group.members}
    assert (member[5].agreeing, member[5].similarity, member[5].match) == (3, 0.3, pairs[3])
    assert member[5].reason == ("matches 3 photos of this group, none surely enough alone; the closest: "
                                "30 matching points, 80% of the overlap alike once aligned")
    assert member[2].agreeing == 0 and member[2].reason == match_reason(pairs[0])
    assert [m.file_id for m in group.members] == [1, 2, 3, 4, 5], "the weakest last"


def test_groupings_of_a_scan_and_of_its_copies_share_each_photos_path():
    """The Duplicates page groups a copy of its scan at each step of the slider: a photo's path is made
    once, not once a grouping (they were a third of the objects the garbage collector walked)."""
    files = {i: FileRow(i, f"p{i}.jpg", 1, 1, f"fp{i}", 10, 10, None, 1.0, True) for i in range(1, 5)}
    pairs = [PairEvidence(1, 2, 0.9, 40, 0.9, 0.95, None, None), PairEvidence(3, 4, 0.9, 40, 0.9, 0.95, None, None)]
    scan = DuplicateScan(Path("/photos"), files, pairs)
    first = {m.file_id: m.path for g in scan.groups(0.5) for m in g.members}
    again = {m.file_id: m.path for g in replace(scan).groups(0.4) for m in g.members}
    assert first == {i: Path(f"/photos/p{i}.jpg") for i in range(1, 5)}
    assert all(again[i] is first[i] for i in first)
