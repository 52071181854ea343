from __future__ import annotations

import json

import pytest

from tests.photos import make_photo
from vitgallery.cli import main


@pytest.fixture
def indexed(photo_folder, tmp_path, capsys):
    lib = tmp_path / "lib"
    assert main(["index", str(photo_folder), "--library", str(lib), "--model", "tiny-test", "--workers", "0"]) == 0
    out = capsys.readouterr()
    assert "added 12" in out.out
    return photo_folder, lib


def test_search_json_for_library_and_outside_images(indexed, tmp_path, capsys):
    root, lib = indexed
    outside = tmp_path / "q.jpg"
    make_photo(5).save(outside, quality=70)
    queries = [str(root / "img_01.jpg"), str(outside)]
    assert main(["search", *queries, "--library", str(lib), "--k", "4", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert list(result) == queries
    for hits in result.values():
        assert len(hits) == 4
        scores = [h["score"] for h in hits]
        assert scores == sorted(scores, reverse=True)
    assert result[str(outside)][0]["path"] == str(root / "img_05.jpg")
    best = result[str(outside)][0]
    assert isinstance(best["inliers"], int) and best["score"] >= best["cosine"]  # why it ranked first
    assert main(["search", str(outside), "--library", str(lib), "--k", "4", "--json", "--no-verify"]) == 0
    plain = json.loads(capsys.readouterr().out)[str(outside)]
    assert all(h["inliers"] is None and h["score"] == h["cosine"] for h in plain)


def test_search_defaults_to_the_last_library_and_status(indexed, capsys):
    root, lib = indexed
    assert main(["search", str(root / "img_02.jpg"), "--k", "2"]) == 0
    assert "img_02.jpg" in capsys.readouterr().out
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "photos       : 12" in out and "tiny-test" in out and "index size   : 12" in out


def test_index_summary_lists_skip_reasons(photo_folder, tmp_path, capsys):
    (photo_folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    assert main(["index", str(photo_folder), "--library", str(tmp_path / "l"), "--model", "tiny-test",
                 "--workers", "0"]) == 0
    out = capsys.readouterr().out
    assert "skipped 1" in out and "skipped 1:" in out
    assert "learned from 12 photos" in out  # every photo of a small library teaches the whitening


def test_user_errors_are_messages_not_tracebacks(tmp_path, capsys):
    assert main(["search", str(tmp_path / "x.jpg"), "--library", str(tmp_path / "none")]) == 2
    assert "no library" in capsys.readouterr().err
    assert main(["index", str(tmp_path / "missing"), "--library", str(tmp_path / "l"),
                 "--model", "tiny-test"]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert not (tmp_path / "l").exists(), "a typo never becomes a library"
    (tmp_path / "p").mkdir()
    assert main(["index", str(tmp_path / "p"), "--weights", str(tmp_path / "nope.pth")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err


def test_query_that_is_not_an_image(indexed, tmp_path, capsys):
    root, lib = indexed
    bogus = tmp_path / "bogus.jpg"
    bogus.write_text("not an image")
    assert main(["search", str(bogus), "--library", str(lib)]) == 2
    assert "error:" in capsys.readouterr().err
