"""Promise 7: a bad query gets a clear message, never a traceback: a non-image, a 0x0 image, an empty
or missing library, a folder, a bomb."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from tests.reliability.bad_files import decompression_bomb, png_chunk
from tests.reliability.support import add_photos, counting_embedder, index
from vitgallery.core.imageio import DecodeError
from vitgallery.core.library import Library, LibraryError


def zero_by_zero_png() -> bytes:
    header = struct.pack(">IIBBBBB", 0, 0, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(b""))
            + png_chunk(b"IEND", b""))


def bad_queries(folder: Path) -> dict[str, tuple[object, str]]:
    """name -> (query, a phrase the message must contain)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"text.jpg": b"not a photo at all\n" * 10, "empty.png": b"", "zero.png": zero_by_zero_png(),
             "bomb.png": decompression_bomb()}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    (folder / "a-folder.jpg").mkdir()
    return {
        "non-image file": (folder / "text.jpg", "not an image"),
        "empty file": (folder / "empty.png", "empty file"),
        "0x0 PNG": (folder / "zero.png", "PNG"),
        "decompression bomb": (folder / "bomb.png", "too many pixels to open safely"),
        "folder": (folder / "a-folder.jpg", "directory"),
        "non-image bytes": (b"GIF89a but not really", "damaged GIF"),
        "empty bytes": (b"", "empty"),
        "0x0 image": (Image.new("RGB", (0, 0)), "0x0"),
    }


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    base = tmp_path_factory.mktemp("queries")
    add_photos(base / "photos", range(10))
    lib = Library.open(base / "photos", base / "library")
    index(lib, counting_embedder())
    yield lib
    lib.close()


@pytest.mark.parametrize("kind", ["non-image file", "empty file", "0x0 PNG", "decompression bomb", "folder",
                                  "non-image bytes", "empty bytes", "0x0 image"])
def test_bad_query_raises_a_decode_error_with_a_reason(library, tmp_path, kind):
    query, phrase = bad_queries(tmp_path)[kind]
    with pytest.raises(DecodeError) as caught:
        library.search(query, k=3, embedder=counting_embedder())
    assert phrase in caught.value.reason


def test_empty_library_says_so(tmp_path):
    (tmp_path / "empty-folder").mkdir()
    lib = Library.open(tmp_path / "empty-folder", tmp_path / "library")
    summary = index(lib, counting_embedder())
    assert summary.added == 0
    add_photos(tmp_path / "elsewhere", range(1))
    with pytest.raises(LibraryError, match="the library is empty"):
        lib.search(tmp_path / "elsewhere" / "p0000.jpg", embedder=counting_embedder())
    lib.close()


def test_cli_bad_queries_print_a_message_and_exit_2(tmp_path, cli):
    root, library = tmp_path / "photos", tmp_path / "library"
    add_photos(root, range(10))
    assert cli.run(["index", str(root), "--library", str(library), "--model", "tiny-test", "--workers", "0"],
                   output=tmp_path / "index.txt")[0] == 0
    for kind, (query, phrase) in bad_queries(tmp_path / "queries").items():
        if not isinstance(query, Path):
            continue
        returncode, out = cli.run(["search", str(query), "--library", str(library)], output=tmp_path / "out.txt")
        assert returncode == 2 and out.startswith("error: ") and phrase in out and "Traceback" not in out, \
            f"{kind}: {out}"

    (tmp_path / "empty").mkdir()
    cli.run(["index", str(tmp_path / "empty"), "--library", str(tmp_path / "empty-library"),
             "--model", "tiny-test"], output=tmp_path / "index-empty.txt")
    returncode, out = cli.run(["search", str(root / "p0001.jpg"), "--library", str(tmp_path / "empty-library")],
                              output=tmp_path / "out.txt")
    assert returncode == 2 and "the library is empty" in out, out
    returncode, out = cli.run(["search", str(root / "p0001.jpg"), "--library", str(tmp_path / "no-library")],
                              output=tmp_path / "out.txt")
    assert returncode == 2 and "no library" in out, out
