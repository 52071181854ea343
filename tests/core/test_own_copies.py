"""A library's own copies as whitening pairs (core.own_copies)."""

from __future__ import annotations

import logging

import numpy as np

from tests.core.test_duplicates import EDITED, write_near_duplicates
from vitgallery.core import own_copies
from vitgallery.core.library import Library
from vitgallery.core.models import load_embedder
from vitgallery.core.whitening import LibraryWhitening


def _indexed(tmp_path, photos) -> Library:
    library = Library.open(photos, tmp_path / "library")
    library.index(load_embedder("tiny-test"), decode_workers=0)
    return library


def test_the_pairs_are_copies_of_one_picture(tmp_path):
    write_near_duplicates(tmp_path / "photos")
    library = _indexed(tmp_path, tmp_path / "photos")
    try:
        store = library.store
        ids, raw = (np.concatenate(parts) for parts in zip(*store.iter_vectors(), strict=True))
        plain = LibraryWhitening(np.zeros(raw.shape[1], np.float32), np.eye(raw.shape[1], dtype=np.float32))
        own, other = own_copies.own_copy_pairs(store, plain, list(store.iter_vectors()))
        picture = {file_id: row.path.split("_")[0].removesuffix(".jpg") for file_id, row in store.files_by_ids(ids).items()}
        row_of = {vector.tobytes(): picture[file_id] for file_id, vector in zip(ids.tolist(), raw, strict=True)}
        found = [(row_of[a.tobytes()], row_of[b.tobytes()]) for a, b in zip(own, other, strict=True)]
        assert found and all(a == b for a, b in found), "only copies of one picture pair up"
        assert {a for a, _ in found} <= {f"p{seed}" for seed in EDITED}
    finally:
        library.close()


def test_a_library_without_copies_finds_none(tmp_path):
    photos = tmp_path / "photos"
    write_near_duplicates(photos)
    for extra in photos.glob("*_*.jpg"):  # only the distinct originals stay
        extra.unlink()
    library = _indexed(tmp_path, photos)
    try:
        dim = library.store.dim
        plain = LibraryWhitening(np.zeros(dim, np.float32), np.eye(dim, dtype=np.float32))
        own, other = own_copies.own_copy_pairs(library.store, plain, list(library.store.iter_vectors()))
        assert own.shape == other.shape == (0, dim)
    finally:
        library.close()


def test_the_whitening_learns_from_the_copies(tmp_path, caplog):
    write_near_duplicates(tmp_path / "photos")
    with caplog.at_level(logging.INFO, logger="vitgallery.core.indexing"):
        _indexed(tmp_path, tmp_path / "photos").close()
    fitted = [r.getMessage() for r in caplog.records if "whitening fitted" in r.getMessage()]
    assert fitted and " 0 pairs of its copies" not in fitted[-1], fitted
