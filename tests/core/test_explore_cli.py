"""The CLI's exploring options: `explain`, `search --box`, `search --like/--unlike`."""

from __future__ import annotations

import dataclasses
import json

import pytest
from PIL import Image

from tests.photos import make_photo
from vitgallery.cli import main
from vitgallery.commands import _explained_verdict
from vitgallery.core import library as library_module
from vitgallery.core.duplicates.features import GroupedPair
from vitgallery.core.explain import explain_pair
from vitgallery.core.models import load_embedder


@pytest.fixture
def indexed(photo_folder, tmp_path, capsys):
    lib = tmp_path / "lib"
    assert main(["index", str(photo_folder), "--library", str(lib), "--model", "tiny-test", "--workers", "0"]) == 0
    capsys.readouterr()
    return photo_folder, lib


def test_explain_writes_the_picture(indexed, tmp_path, capsys):
    root, lib = indexed
    out = tmp_path / "why.png"
    assert main(["explain", str(root / "img_01.jpg"), str(root / "img_02.jpg"), "--out", str(out),
                 "--library", str(lib)]) == 0
    assert "vector similarity" in capsys.readouterr().out
    with Image.open(out) as picture:
        assert picture.format == "PNG" and picture.height > 384 and picture.width > 2 * 384
    attention = tmp_path / "attention.png"
    assert main(["explain", str(root / "img_01.jpg"), str(root / "img_02.jpg"), "--out", str(attention),
                 "--attention", "--opacity", "0.8"]) == 0  # the library indexed last
    assert attention.read_bytes() != out.read_bytes()


def test_explain_says_what_the_searchs_mark_says():
    """✓look and a ✓ on fewer keypoints, as the search marks them (before, "keypoints do not match"), and the
    same scene that the search shows without ✓ (before, only "matching keypoints")."""
    explanation = explain_pair(load_embedder("tiny-test"), make_photo(1, (300, 200)), make_photo(2, (300, 200)))
    assert not explanation.verified and _explained_verdict(explanation) == "keypoints do not match"
    looked = dataclasses.replace(explanation, grouped=GroupedPair(None, 0.9912))
    assert _explained_verdict(looked).startswith("✓look") and "likeness 0.991" in _explained_verdict(looked)
    aligned = dataclasses.replace(explanation, grouped=GroupedPair(0.93, None))
    assert _explained_verdict(aligned).startswith("✓:") and "93% of the overlap" in _explained_verdict(aligned)
    scene = dataclasses.replace(explanation, inliers=40, same_scene=True)
    assert _explained_verdict(scene).startswith("40 matching keypoints, but") and "same scene" in _explained_verdict(scene)


def test_explain_judges_photos_of_the_library_on_what_the_library_keeps(indexed, tmp_path, monkeypatch):
    """As the search does: an image from elsewhere is looked at anew."""
    root, lib = indexed
    given = []
    original = library_module.explain_pair

    def recording(*args, kept, **kwargs):
        given.append([features is not None for features in kept])
        return original(*args, kept=kept, **kwargs)

    monkeypatch.setattr(library_module, "explain_pair", recording)
    outside = tmp_path / "outside.jpg"
    make_photo(3).save(outside)
    for query in (root / "img_01.jpg", outside):
        assert main(["explain", str(query), str(root / "img_02.jpg"), "--out", str(tmp_path / "why.png"),
                     "--library", str(lib)]) == 0
    assert given == [[True, True], [False, True]]


def test_explain_refuses_bad_input_with_a_message(indexed, tmp_path, capsys):
    root, lib = indexed
    photo = str(root / "img_01.jpg")
    missing = str(tmp_path / "missing.jpg")
    cases = [
        ([photo, missing, "--out", str(tmp_path / "a.png")], f"error: {missing}: no such file"),
        ([str(root), photo, "--out", str(tmp_path / "a.png")], f"error: {root}: is a directory, not an image"),
        ([photo, photo, "--out", str(tmp_path / "nowhere" / "a.png")], "no folder"),
        ([photo, photo, "--out", str(tmp_path / "a.tiff")], f"--out {tmp_path / 'a.tiff'}: the picture is written as .png or .jpg"),
    ]
    for args, message in cases:
        assert main(["explain", *args, "--library", str(lib)]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        main(["explain", photo, photo, "--out", str(tmp_path / "a.png"), "--opacity", "2"])
    assert "not between 0 and 1" in capsys.readouterr().err
    assert not list(tmp_path.glob("a.*"))


def test_explain_never_writes_over_a_photo_or_into_the_photo_folder(indexed, tmp_path, capsys):
    root, lib = indexed
    photo, other, third = root / "img_01.jpg", root / "img_02.jpg", root / "img_03.jpg"
    outside = tmp_path / "outside.jpg"
    make_photo(3).save(outside)
    before = {path: path.read_bytes() for path in (photo, other, third, outside)}
    cases = [
        ([str(outside), str(other), "--out", str(outside)], "is one of the photos compared"),
        ([str(photo), str(other), "--out", str(third)], "is inside the photo folder"),
        ([str(photo), str(other), "--out", str(root / "why.png")], "vitgallery writes nothing there"),
    ]
    for args, message in cases:
        assert main(["explain", *args, "--library", str(lib)]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
    assert {path: path.read_bytes() for path in before} == before and not (root / "why.png").exists()


def test_explain_names_a_damaged_photo_and_a_failed_write_leaves_the_old_picture(indexed, tmp_path, capsys, monkeypatch):
    root, lib = indexed
    damaged = tmp_path / "damaged.jpg"
    damaged.write_bytes((root / "img_01.jpg").read_bytes()[:2000])
    out = tmp_path / "why.png"
    assert main(["explain", str(damaged), str(root / "img_02.jpg"), "--out", str(out), "--library", str(lib)]) == 2
    assert f"error: {damaged}: " in capsys.readouterr().err
    out.write_bytes(b"last week's picture")

    def disk_fills(self, fp, *args, **kwargs) -> None:
        open(fp, "wb").write(b"half a picture")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", disk_fills)
    assert main(["explain", str(root / "img_01.jpg"), str(root / "img_02.jpg"), "--out", str(out),
                 "--library", str(lib)]) == 2
    assert "could not write" in capsys.readouterr().err
    assert out.read_bytes() == b"last week's picture" and sorted(p.name for p in tmp_path.glob(".why*")) == []


def test_search_with_a_box_finds_the_pasted_photo(indexed, tmp_path, capsys):
    root, lib = indexed
    collage = make_photo(50, (900, 700))
    collage.paste(Image.open(root / "img_07.jpg"), (500, 300))
    query = tmp_path / "collage.jpg"
    collage.save(query, quality=95)
    assert main(["search", str(query), "--box", "500,300,320,240", "--library", str(lib), "--k", "3",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[str(query)][0]["path"] == str(root / "img_07.jpg")


def test_search_box_errors(indexed, capsys):
    root, lib = indexed
    with pytest.raises(SystemExit):
        main(["search", str(root / "img_01.jpg"), "--box", "1,2,3", "--library", str(lib)])
    assert "X,Y,W,H" in capsys.readouterr().err
    assert main(["search", str(root / "img_01.jpg"), "--box", "5000,0,10,10", "--library", str(lib)]) == 2
    assert "inside the 320x240 photo" in capsys.readouterr().err
    assert main(["search", str(root / "img_01.jpg"), str(root / "img_02.jpg"), "--box", "0,0,50,50",
                 "--library", str(lib)]) == 2
    assert "exactly one IMAGE" in capsys.readouterr().err


def test_search_with_marks(indexed, capsys):
    root, lib = indexed
    query = str(root / "img_00.jpg")
    assert main(["search", query, "--library", str(lib), "--k", "11", "--json", "--no-verify"]) == 0
    before = [h["path"] for h in json.loads(capsys.readouterr().out)[query]]
    assert main(["search", query, "--library", str(lib), "--k", "11", "--json", "--no-verify",
                 "--like", before[-1], "--like", before[-2], "--unlike", before[0]]) == 0
    after = [h["path"] for h in json.loads(capsys.readouterr().out)[query]]
    assert before[0] not in after
    assert after.index(before[-1]) < before.index(before[-1]) and after.index(before[-2]) < before.index(before[-2])
    assert main(["search", query, "--library", str(lib), "--unlike", "/elsewhere/x.jpg"]) == 2
    assert "not a photo of this library" in capsys.readouterr().err


def test_explain_counts_the_points_the_search_counted(indexed, tmp_path, capsys):
    root, lib = indexed
    copy = tmp_path / "copy.jpg"
    make_photo(3).resize((288, 216)).save(copy, quality=90)  # an edited copy of img_03, outside the library
    assert main(["search", str(copy), "--library", str(lib), "--k", "1", "--json"]) == 0
    hit = json.loads(capsys.readouterr().out)[str(copy)][0]
    assert hit["path"] == str(root / "img_03.jpg") and hit["verified"]
    assert main(["explain", str(copy), hit["path"], "--out", str(tmp_path / "why.png"), "--library", str(lib)]) == 0
    assert f"{hit['inliers']} matching keypoints" in capsys.readouterr().out
