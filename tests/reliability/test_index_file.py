"""Promise 2: a damaged or mismatched index file is detected before use, rebuilt from the database,
and the user is told."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.reliability.support import (
    add_photos,
    check_saved_index,
    counting_embedder,
    database_vectors,
    index,
)
from vitgallery.core.index import VectorIndex, header_path, labels_path
from vitgallery.core.library import INDEX_NAME, Library


def truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def scramble(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(path.stat().st_size))


def replace_with(dim_change: int = 0, signature: str | None = None) -> Callable[[Library], None]:
    """A well-formed index file for another model or dimension, at the database's generation."""

    def replace(lib: Library) -> None:
        dim = int(lib.store.get_meta("dim")) + dim_change
        other = VectorIndex(dim, signature or lib.search_space().index.model_signature)
        ids = np.array(sorted(database_vectors(lib.library_dir)), dtype=np.int64)
        other.add(ids, np.random.default_rng(1).normal(size=(len(ids), dim)).astype(np.float32))
        other.save(lib.library_dir / INDEX_NAME, generation=lib.store.generation)

    return replace


CORRUPTIONS: dict[str, tuple[Callable[[Library], None], str]] = {
    "truncated payload": (lambda lib: truncate(lib.library_dir / INDEX_NAME), "checksum mismatch"),
    "random payload": (lambda lib: scramble(lib.library_dir / INDEX_NAME), "checksum mismatch"),
    "random header": (lambda lib: scramble(header_path(lib.library_dir / INDEX_NAME)), "corrupt header"),
    "truncated labels": (lambda lib: truncate(labels_path(lib.library_dir / INDEX_NAME)), "checksum mismatch"),
    "deleted": (lambda lib: [p.unlink() for p in lib.library_dir.glob("index.*")], "missing header"),
    "other model": (replace_with(signature="dinov2-s14|0123456789abcdef|224|cls|fp32"), "model mismatch"),
    "other dimension": (replace_with(dim_change=16), "dimension mismatch"),
}


@pytest.fixture
def indexed_library(tmp_path) -> tuple[Path, Path]:
    root, library = tmp_path / "photos", tmp_path / "library"
    add_photos(root, range(30))
    lib = Library.open(root, library)
    index(lib, counting_embedder())
    lib.close()
    assert check_saved_index(library, database_vectors(library))
    return root, library


def neighbours(lib: Library, root: Path) -> list[list[Path]]:
    return [[hit.path for hit in lib.search(root / f"p{i:04d}.jpg", k=5)] for i in range(0, 30, 7)]


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_damaged_or_foreign_index_file_is_rebuilt_with_a_message(indexed_library, corruption):
    root, library = indexed_library
    lib = Library.open(root, library)
    expected = neighbours(lib, root)
    damage, reason = CORRUPTIONS[corruption]
    damage(lib)
    lib.close()  # nothing to save: the damage stays

    lib = Library.open(root, library)
    assert neighbours(lib, root) == expected
    if corruption == "deleted":  # a cache that is not there is built without a word (`repair` makes way so)
        assert lib.notices == []
    else:
        assert len(lib.notices) == 1 and reason in lib.notices[0] and "rebuilding it from the database" in lib.notices[0]
    lib.close()
    assert check_saved_index(library, database_vectors(library)), "the rebuilt index is saved on close"


@pytest.mark.parametrize("corruption", ["random payload", "other dimension"])
def test_cli_search_says_it_rebuilds_the_index(indexed_library, corruption, cli, tmp_path):
    root, library = indexed_library
    lib = Library.open(root, library)
    CORRUPTIONS[corruption][0](lib)
    lib.close()
    returncode, out = cli.run(["search", str(root / "p0003.jpg"), "--library", str(library), "--k", "3"],
                              output=tmp_path / "search.txt")
    assert returncode == 0, out
    assert "index file not usable" in out and "rebuilding it from the database" in out
    ranked = [line.split()[-1] for line in out.splitlines() if line.strip()[:2] in ("1.", "2.", "3.")]
    assert len(ranked) == 3 and all(path.startswith(str(root)) for path in ranked)
