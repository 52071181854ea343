"""Any file name the OS gives is indexed, searched and shown: names that are not valid UTF-8 (a Latin-1
`Urlaub_München.jpg`, a folder `Frühling/`) are stored losslessly and shown with their odd bytes
escaped; `--json` stays valid UTF-8 and still leads back to the real file."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from tests.reliability.support import add_photos, counting_embedder, index
from vitgallery.core.library import Library

LATIN1_PHOTO = os.fsdecode(b"Urlaub_M\xfcnchen.jpg")
LATIN1_FOLDER = os.fsdecode(b"Fr\xfchling")
LATIN1_EMPTY = os.fsdecode(b"leer_\xe9t\xe9.jpg")


def folder_with_latin1_names(root: Path) -> None:
    add_photos(root, range(12))
    add_photos(root / LATIN1_FOLDER, range(12, 15))
    os.replace(root / "p0011.jpg", root / LATIN1_PHOTO)
    (root / LATIN1_EMPTY).write_bytes(b"")


@pytest.fixture
def latin1_folder(tmp_path) -> Path:
    root = tmp_path / "photos"
    try:
        folder_with_latin1_names(root)
    except (OSError, UnicodeError) as exc:
        pytest.skip(f"this file system refuses names that are not UTF-8: {exc}")
    return root


def test_names_that_are_not_utf8_are_indexed_searched_and_listed(latin1_folder, tmp_path):
    root = latin1_folder
    embedder = counting_embedder()
    lib = Library.open(root, tmp_path / "library")
    summary = index(lib, embedder)
    assert summary.added == 15 and summary.skipped_reasons == {"empty file": 1}
    paths = {row.path for row in lib.photos()}
    assert LATIN1_PHOTO in paths and f"{LATIN1_FOLDER}/p0013.jpg" in paths
    assert [(s.path, s.reason) for s in lib.skipped()] == [(LATIN1_EMPTY, "empty file")]
    assert all((root / path).is_file() for path in paths), "stored names lead back to the real files"

    hits = lib.search(root / LATIN1_PHOTO, k=20)
    assert root / LATIN1_FOLDER / "p0012.jpg" in {hit.path for hit in hits}
    lib.close()

    lib = Library.open(root, tmp_path / "library")  # read back from the database
    embedder.embedded = 0
    summary = index(lib, embedder)
    assert summary.unchanged == 15 and summary.skipped == 1 and embedder.embedded == 0
    assert lib.status().photos == 15
    lib.close()


def test_cli_shows_such_names_escaped_and_json_leads_back_to_the_file(latin1_folder, tmp_path, cli):
    root, library = latin1_folder, tmp_path / "library"
    returncode, out = cli.run(["index", str(root), "--library", str(library), "--model", "tiny-test",
                               "--workers", "0"], output=tmp_path / "index.txt")
    assert returncode == 0 and "added 15" in out and "skipped 1" in out, out

    returncode, out = cli.run(["status", "--library", str(library)], output=tmp_path / "status.txt")
    assert returncode == 0 and "photos       : 15" in out, out
    assert "skipped leer_\\xe9t\\xe9.jpg: empty file" in out, out
    (tmp_path / "status.txt").read_bytes().decode("utf-8")  # strict: what is shown is valid UTF-8

    query = str(root / LATIN1_PHOTO)
    returncode, out = cli.run(["search", query, str(root / LATIN1_FOLDER / "p0013.jpg"), "--library",
                               str(library), "--k", "20", "--json"], output=tmp_path / "search.json")
    assert returncode == 0, out
    results = json.loads((tmp_path / "search.json").read_bytes().decode("utf-8"))
    shown_query = str(root) + "/Urlaub_M\\xfcnchen.jpg"
    assert set(results) == {shown_query, str(root / "Fr\\xfchling" / "p0013.jpg")}
    latin1_hits = [hit for hit in results[str(root / "Fr\\xfchling" / "p0013.jpg")] if "path_bytes" in hit]
    assert {os.fsdecode(base64.b64decode(hit["path_bytes"])) for hit in latin1_hits} == \
        {query, str(root / LATIN1_FOLDER / "p0012.jpg"), str(root / LATIN1_FOLDER / "p0014.jpg")}
    assert all("\\x" in hit["path"] for hit in latin1_hits)

    returncode, out = cli.run(["search", query, "--library", str(library), "--k", "3"],
                              output=tmp_path / "search.txt")
    assert returncode == 0 and "Urlaub_M\\xfcnchen.jpg" in out, out
