from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from tests.core.organise.conftest import SCENES
from tests.photos import make_photo, save_copies
from vitgallery.cli import main
from vitgallery.core.organise.arrange import arrange_folder, arrange_order
from vitgallery.core.organise.vectors import OrganiseCancelled, OrganiseError


def clusters(groups: int, size: int, spread: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors in `groups` tight clusters of `size`, shuffled; and each row's cluster."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(groups, 32))
    vectors = np.repeat(centres, size, axis=0) + spread * rng.normal(size=(groups * size, 32))
    order = rng.permutation(groups * size)
    vectors = vectors[order] / np.linalg.norm(vectors[order], axis=1, keepdims=True)
    return vectors.astype(np.float32), (np.arange(groups * size) // size)[order]


def test_each_cluster_is_one_unbroken_run():
    vectors, cluster = clusters(groups=40, size=6, spread=0.2)
    order = arrange_order(vectors)
    assert sorted(order.tolist()) == list(range(len(vectors))), "a permutation: every photo once"
    runs = 1 + int(np.sum(cluster[order][1:] != cluster[order][:-1]))
    assert runs == 40


def test_tiny_inputs_and_far_more_runs_than_neighbours():
    assert arrange_order(np.zeros((0, 8), np.float32)).tolist() == []
    assert sorted(arrange_order(np.eye(2, dtype=np.float32)).tolist()) == [0, 1]
    # Orthogonal vectors: no pair is closer than another; still one order of all of them.
    assert sorted(arrange_order(np.eye(64, dtype=np.float32)).tolist()) == list(range(64))


def test_cancel_stops_with_nothing_returned():
    vectors, _ = clusters(groups=5, size=4, spread=0.1)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(OrganiseCancelled):
        arrange_order(vectors, cancel=cancel)


def test_copies_sit_together_and_unindexed_photos_come_last(scenes):
    library, root = scenes
    make_photo(999).save(root / "zz_new.jpg")  # not indexed yet
    order = arrange_folder(library, root)
    assert order[-1] == root / "zz_new.jpg"
    scenes_in_order = [p.name.split("_")[0] for p in order[:-1]]
    runs = 1 + sum(a != b for a, b in zip(scenes_in_order, scenes_in_order[1:]))
    assert runs == SCENES


def test_a_path_through_dot_dot_is_arranged_as_the_folder_it_names(scenes):
    library, root = scenes
    assert arrange_folder(library, root / ".." / root.name) == arrange_folder(library, root)
    scenes_in_order = [p.name.split("_")[0] for p in arrange_folder(library, root / ".." / root.name)]
    assert 1 + sum(a != b for a, b in zip(scenes_in_order, scenes_in_order[1:])) == SCENES, "by likeness"


def test_a_subfolder_only_and_a_folder_outside_the_library(scenes, tiny, tmp_path):
    library, root = scenes
    sub = save_copies(50, root / "trip")
    library.index_paths(tiny, [root / "trip"], decode_workers=0)
    assert sorted(arrange_folder(library, root / "trip")) == sorted(sub)
    with pytest.raises(OrganiseError, match="not inside"):
        arrange_folder(library, tmp_path)


def test_cli_arrange_json(scenes, capsys):
    library, root = scenes
    library.close()
    assert main(["arrange", str(root), "--library", str(library.library_dir), "--json"]) == 0
    order = json.loads(capsys.readouterr().out)["order"]
    assert sorted(order) == sorted(str(p) for p in root.iterdir())
    assert main(["arrange", str(root / "missing"), "--library", str(library.library_dir)]) == 2
    assert "missing is not there: arrange takes a folder of the library" in capsys.readouterr().err
    assert main(["arrange", str(next(root.iterdir())), "--library", str(library.library_dir)]) == 2
    assert " is a file: arrange takes a folder of the library" in capsys.readouterr().err
