"""A library of a few scenes, each as three copies (as saved, smaller and recompressed, brighter),
indexed with the tiny test model."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import ImageEnhance

from tests.photos import make_photo
from vitgallery.core.library import Library
from vitgallery.core.models import Embedder, load_embedder

SCENES = 6
COPIES = ("a", "b", "c")


def save_copies(scene: int, folder: Path, copies=COPIES) -> list[Path]:
    """The scene's copies in `folder`, named s<scene>_<copy>.jpg."""
    folder.mkdir(parents=True, exist_ok=True)
    photo = make_photo(100 + scene)
    made = {"a": lambda: photo, "b": lambda: photo.resize((200, 150)),
            "c": lambda: ImageEnhance.Brightness(photo).enhance(1.2)}
    paths = []
    for copy in copies:
        path = folder / f"s{scene}_{copy}.jpg"
        made[copy]().save(path, quality=90 if copy != "b" else 60)
        paths.append(path)
    return paths


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
