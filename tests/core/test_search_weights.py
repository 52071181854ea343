"""`search --weights W`: weights other than the library's are said, even where no model is read (a query
photo of the library is searched with its stored vector); the library's own weights at another path
are used."""

from __future__ import annotations

import dataclasses
import sqlite3

import pytest

from vitgallery.cli import main
from vitgallery.core import models
from vitgallery.core.library import DB_NAME, Library, LibraryError


@pytest.fixture
def openvino_library(photo_folder, tmp_path, monkeypatch, capsys):
    """A library of the tiny model as if it were a real one (its weights a file, their checksum in the
    signature), indexed with OpenVINO int8 and its own calibrated model; (its folder, the weights file)."""
    library_dir = tmp_path / "lib"
    assert main(["index", str(photo_folder), "--library", str(library_dir), "--model", "tiny-test", "--workers", "0"]) == 0
    monkeypatch.setitem(models.MODELS, "tiny-test",
                        dataclasses.replace(models.MODELS["tiny-test"], weights_url="https://example.invalid/tiny.pth"))
    weights = tmp_path / "weights.pth"
    weights.write_bytes(b"the weights the library was indexed with")
    db = sqlite3.connect(library_dir / DB_NAME)
    [[signature]] = db.execute("SELECT value FROM meta WHERE key = 'model_signature'").fetchall()
    model, _ = models.signature_model_and_precision(signature)
    indexed_with = (f"{model}|weights:{models.file_sha256(weights)[:16]}|pre:trim-squash32-imagenet|pool:cls|prec:int8"
                    "|rt:openvino2026.4+nncf3.4|cal:0123456789abcdef")
    db.execute("UPDATE meta SET value = ? WHERE key = 'model_signature'", (indexed_with,))
    db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('weights_path', ?)", (str(weights),))
    db.commit()
    db.close()
    capsys.readouterr()
    return library_dir, weights


def test_search_with_other_weights_than_the_librarys_says_so_even_for_a_photo_of_the_library(
        openvino_library, photo_folder, tmp_path, capsys):
    library_dir, weights = openvino_library
    other = tmp_path / "other.pth"
    other.write_bytes(b"other weights")
    query = str(photo_folder / "img_03.jpg")  # in the library: searched with its stored vector
    assert main(["search", query, "--library", str(library_dir), "--weights", str(other)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == (
        f"error: these weights ({other}) are not the ones the library was indexed with (tiny-test, {weights}): "
        "search with those, or index the folder again into a new library (--library DIR) with these")

    moved = tmp_path / "elsewhere" / "weights.pth"  # the same weights at another path: used
    moved.parent.mkdir()
    moved.write_bytes(weights.read_bytes())
    assert main(["search", query, "--library", str(library_dir), "--weights", str(moved), "--k", "3"]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0] == query and len(captured.out.splitlines()) == 4, captured


def test_a_library_checks_weights_by_their_checksum(openvino_library, tmp_path):
    library_dir, weights = openvino_library
    library = Library.open(library_dir=library_dir)
    try:
        library.check_weights(weights)
        other = tmp_path / "other.pth"
        other.write_bytes(b"other weights")
        with pytest.raises(LibraryError, match=r"these weights \(.*other.pth\) are not the ones the library was"):
            library.check_weights(other)
    finally:
        library.close()
