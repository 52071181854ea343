from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.core.organise.conftest import SCENES
from vitgallery.cli import main
from vitgallery.core.organise.arrange import arrange_folder
from vitgallery.core.organise.groups import (
    PhotoGroup,
    cluster_labels,
    find_groups,
    found_again,
    move_group,
    name_group,
)
from vitgallery.core.organise.vectors import OrganiseError


def test_each_scene_is_a_group_with_its_most_typical_photo_first(scenes):
    library, root = scenes
    grouping = find_groups(library, min_size=3)
    assert len(grouping.groups) == SCENES and grouping.ungrouped == []
    for group in grouping.groups:
        assert len({p.name.split("_")[0] for p in group.members}) == 1
        assert group.representative == group.members[0] and group.name is None


def test_a_larger_minimum_leaves_small_groups_out(scenes):
    library, _ = scenes
    grouping = find_groups(library, min_size=4)
    assert sum(len(g.members) for g in grouping.groups) + len(grouping.ungrouped) == 3 * SCENES
    assert all(len(g.members) >= 4 for g in grouping.groups)
    with pytest.raises(OrganiseError):
        find_groups(library, min_size=1)


def test_a_larger_minimum_keeps_the_groups_that_large():
    """One large group, two small ones and scattered photos: at a minimum of 6 the large group stays
    (HDBSCAN asked for clusters of 6 itself found none: it never takes the whole set for one)."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 64))
    vectors = np.vstack([c + 0.5 * rng.normal(size=(n, 64)) for c, n in zip(centres, (21, 4, 4), strict=True)]
                        + [1.5 * rng.normal(size=(9, 64))]).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)

    def groups(labels):
        return sorted((np.flatnonzero(labels == label).tolist() for label in np.unique(labels[labels >= 0])), key=len)

    at_three = groups(cluster_labels(vectors, 3))
    assert len(at_three) == 3 and len(at_three[-1]) >= 21
    assert groups(cluster_labels(vectors, 6)) == [g for g in at_three if len(g) >= 6] != []


def test_fewer_photos_than_a_group_needs():
    assert cluster_labels(np.eye(2, dtype=np.float32), 3).tolist() == [-1, -1]


def test_a_name_follows_its_group_after_the_library_changes(scenes, tiny):
    library, root = scenes
    group = find_groups(library).groups[0]
    named = name_group(library, group, "  Harbour ")
    assert named.name == "Harbour"
    # One photo of the group is gone, the others still make the same group: the name stays.
    group.members[-1].unlink()
    library.index_paths(tiny, [group.members[-1]], decode_workers=0)
    again = find_groups(library, min_size=2)
    [renamed] = [g for g in again.groups if g.name]
    assert renamed.name == "Harbour" and set(renamed.members) == set(group.members[:-1])
    name_group(library, renamed, "Port")
    assert [g.name for g in find_groups(library, min_size=2).groups if g.name] == ["Port"]
    name_group(library, renamed, "")
    assert all(g.name is None for g in find_groups(library, min_size=2).groups)


def test_moving_a_group_into_a_folder_is_undoable(scenes, tmp_path):
    library, root = scenes
    group = find_groups(library).groups[0]
    report = move_group(library, group, root / "Harbour")
    assert len(report.done) == 3 and not report.problems
    assert sorted(p.name for p in (root / "Harbour").iterdir()) == sorted(p.name for p in group.members)
    back = library.undo(report.action_id)
    assert len(back.done) == 3 and all(p.exists() for p in group.members)


def test_cli_groups_json(scenes, capsys):
    library, _ = scenes
    library.close()
    assert main(["groups", "--library", str(library.library_dir), "--min-size", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["groups"]) == SCENES
    assert all(len(g["members"]) == 3 and g["representative"] == g["members"][0] for g in result["groups"])


def test_cli_groups_lists_the_photos_in_no_group(scenes, capsys):
    library, root = scenes
    library.close()
    assert main(["groups", "--library", str(library.library_dir), "--min-size", "4"]) == 0  # groups of 3: none
    out = capsys.readouterr().out
    assert f"in no group: {3 * SCENES} photos" in out and str(root / "s0_a.jpg") in out


def test_a_group_is_found_again_by_its_photos_contents_wherever_they_moved():
    def group(folder: str, *contents: str) -> PhotoGroup:
        return PhotoGroup(tuple(Path(folder, c + ".jpg") for c in contents), frozenset(contents))

    before = group("a", "x", "y", "z")
    found = [group("b", "p", "q"), group("moved", "x", "y", "z", "w")]
    assert found_again(before, found) == 1
    assert found_again(before, [group("b", "p", "q"), group("c", "x", "r", "s", "t")]) is None  # 1 of 6 shared
    assert found_again(before, []) is None


def test_a_photo_deleted_since_the_index_is_in_no_group_and_no_order(scenes, tmp_path):
    library, root = scenes
    gone = find_groups(library, min_size=3).groups[0].members[0]
    gone.unlink()
    grouping = find_groups(library, min_size=2)
    listed = [p for g in grouping.groups for p in g.members] + grouping.ungrouped
    assert gone not in listed and len(listed) == 3 * SCENES - 1
    assert gone not in arrange_folder(library, root)
    root.rename(tmp_path / "unplugged")  # an unplugged drive's photos are not deleted ones: all stay
    paths, _ = library.search_vectors()
    assert len(paths) == 3 * SCENES and gone in paths
