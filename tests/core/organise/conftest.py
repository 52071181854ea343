"""A library of a few scenes, each as three copies (as saved, smaller and recompressed, brighter),
indexed with the tiny test model."""

from __future__ import annotations

import pytest

from tests.photos import save_copies
from vitgallery.core.library import Library
from vitgallery.core.models import Embedder, load_embedder

SCENES = 6


@pytest.fixture(scope="session")
def tiny() -> Embedder:
    return load_embedder("tiny-test")


@pytest.fixture
def scenes(tmp_path, tiny):
    """(library, root): SCENES scenes x 3 copies in one folder, indexed."""
    root = tmp_path / "photos"
    for scene in range(SCENES):
        save_copies(scene, root)
    library = Library.open(root, tmp_path / "library")
    library.index(tiny, decode_workers=0, batch_size=8)
    yield library, root
    library.close()


@pytest.fixture
def sorting(scenes, tmp_path):
    """Examples: two copies of scenes 0-2 in Sorted/<scene>/; to sort: the third copy of each, in the
    library's folder, and one more copy of scene 1 outside the library."""
    library, root = scenes
    sorted_dir = tmp_path / "Sorted"
    for scene in range(3):
        save_copies(scene, sorted_dir / f"scene{scene}", copies=("a", "b"))
    outside = tmp_path / "outside"
    save_copies(1, outside, copies=("c",))
    return library, root, sorted_dir, outside
