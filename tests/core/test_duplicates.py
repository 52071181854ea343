from __future__ import annotations

import itertools
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

from tests.photos import make_photo, smooth_picture, textured_image
from vitgallery.core.duplicates import (
    DEFAULT_THRESHOLD,
    DuplicateMember,
    KeepRule,
    PairEvidence,
    PhotoQuality,
    SpilledFeatures,
    analyse_photo,
    choose_keeper,
    decide,
    load_scan,
    look_likeness,
    match_photos,
    match_reason,
    pair_score,
    scan_duplicates,
    seed_groups,
)
from vitgallery.core.duplicates import scan as scan_module
from vitgallery.core.duplicates.features import worth_a_closer_look
from vitgallery.core.duplicates.groups import agreeing_floor
from vitgallery.core.keypoints import VERIFIED_INLIERS
from vitgallery.core.library import Library
from vitgallery.core.models import load_embedder

EDITED = (1, 4, 6)  # the base photos that get near-duplicates
DISTINCT = (0, 2, 3, 5, 7)


def write_near_duplicates(root: Path) -> dict[int, set[str]]:
    """Eight distinct photos; three of them also re-saved, shrunk, cropped and mirrored-brightened.
    Returns the expected groups as sets of file names, by base seed."""
    root.mkdir(parents=True)
    expected = {}
    for seed in EDITED + DISTINCT:
        make_photo(seed, (480, 360)).save(root / f"p{seed}.jpg", quality=92)
    for seed in EDITED:
        im = make_photo(seed, (480, 360))
        im.save(root / f"p{seed}_resaved.jpg", quality=55)
        im.resize((240, 180)).save(root / f"p{seed}_small.jpg", quality=85)
        im.crop((40, 30, 440, 330)).save(root / f"p{seed}_crop.jpg", quality=90)
        ImageEnhance.Brightness(ImageOps.mirror(im)).enhance(1.2).save(root / f"p{seed}_flip.jpg", quality=90)
        expected[seed] = {f"p{seed}{suffix}.jpg" for suffix in ("", "_resaved", "_small", "_crop", "_flip")}
    return expected


@pytest.fixture(scope="module")
def embedder():
    return load_embedder("tiny-test")


@pytest.fixture
def library(tmp_path, embedder):
    root = tmp_path / "photos"
    library = Library.open(root if root.exists() else _with_photos(root), tmp_path / "library")
    library.index(embedder, decode_workers=0)
    yield library
    library.close()


def _with_photos(root: Path) -> Path:
    write_near_duplicates(root)
    return root


def names(group) -> set[str]:
    return {m.path.name for m in group.members}


def expected_groups(root: Path) -> list[set[str]]:
    return sorted(({f"p{s}{x}.jpg" for x in ("", "_resaved", "_small", "_crop", "_flip")} for s in EDITED), key=min)


def test_groups_of_generated_near_duplicates(library):
    scan = scan_duplicates(library, workers=1)
    groups = scan.groups(DEFAULT_THRESHOLD)
    assert sorted((names(g) for g in groups), key=min) == expected_groups(library.root)
    assert not scan.problems and not scan.cancelled
    for group in groups:
        seed = group.members[0]
        assert seed.similarity == 1.0 and all(0 < m.similarity <= 1 for m in group.members)
        assert seed.match is None and "matched to" in match_reason(seed.match)
        for m in group.members[1:]:  # each member carries the match that put it in, and says why
            assert m.match is not None and m.match.score == m.similarity and m.file_id in (m.match.a, m.match.b)
            assert {m.match.a, m.match.b} <= {x.file_id for x in group.members}
            assert "matching points" in match_reason(m.match)
        assert all(m.width > 0 and m.height > 0 and m.size > 0 and m.sharpness > 0 for m in group.members)
        assert group.total_size == sum(m.path.stat().st_size for m in group.members)


def test_features_waiting_on_disk_give_the_same_evidence(library):
    in_memory = scan_duplicates(library, workers=1)
    library.store.forget_duplicate_scans()  # else the second scan finds every pair verified already
    mostly_on_disk = scan_duplicates(library, workers=1, features_in_memory=1)  # every pair reads one back
    assert mostly_on_disk.pairs == in_memory.pairs and len(in_memory.pairs) > 20
    assert not list(library.library_dir.glob("vitgallery-scan-*")), "the working file goes with the scan"


def test_spilled_features_read_back_as_written(tmp_path):
    photos = {"textured": make_photo(3), "blank": Image.new("RGB", (200, 150), (90, 90, 90))}
    spilled = SpilledFeatures(tmp_path, capacity=1)
    written = {}
    for n, (name, image) in enumerate(photos.items()):
        image.save(tmp_path / f"{name}.png")
        written[n] = analyse_photo(tmp_path / f"{name}.png")
        spilled.add(n, written[n])
    assert len(written[1].keypoints) == 0 < len(written[0].keypoints)
    for n in (0, 1, 0):  # capacity 1: each read comes from the file
        back, original = spilled.get(n), written[n]
        assert np.array_equal(back.keypoints.xy, original.keypoints.xy)
        assert np.array_equal(back.keypoints.descriptors, original.keypoints.descriptors)
        assert (back.keypoints.width, back.keypoints.height) == (original.keypoints.width, original.keypoints.height)
        assert np.array_equal(back.small, original.small) and np.array_equal(back.look, original.look)
    spilled.close()


def test_the_threshold_trades_groups_for_certainty(library):
    scan = scan_duplicates(library, workers=1)
    grouped = [sum(len(g.members) for g in scan.groups(t)) for t in (0.01, 0.2, DEFAULT_THRESHOLD, 0.9, 0.999)]
    assert grouped == sorted(grouped, reverse=True) and grouped[0] > grouped[2] == 15 > grouped[-1]
    # at 0.9 a crop whose matches with its four copies are all just under it is in by their agreement
    assert any(m.agreeing == 4 for g in scan.groups(0.9) for m in g.members)


def test_a_rescan_gives_the_same_groups(library):
    first = scan_duplicates(library, workers=2).groups()
    library.store.forget_duplicate_scans()
    second = scan_duplicates(library, workers=1).groups()
    assert [g.key for g in first] == [g.key for g in second]


def test_a_photo_gone_or_changed_since_indexing_is_reported_and_left_out(library):
    (library.root / "p4_small.jpg").unlink()
    os.utime(library.root / "p1_crop.jpg", ns=(1, 1))
    scan = scan_duplicates(library, workers=1)
    problems = {path.name: why for path, why in scan.problems}
    assert problems == {"p4_small.jpg": "vanished since it was indexed",
                        "p1_crop.jpg": "changed since it was indexed: index the folder again"}
    found = {frozenset(names(g)) for g in scan.groups()}
    assert frozenset(expected_groups(library.root)[1] - {"p4_small.jpg"}) in found
    assert all("p1_crop.jpg" not in group for group in found)


def test_byte_identical_copies_are_verified_and_measured_once_per_content(tmp_path, embedder, monkeypatch):
    import shutil

    root = tmp_path / "photos"
    write_near_duplicates(root)
    shutil.copytree(root, root / "backup")  # a folder copied twice: every photo has a byte-identical copy
    library = Library.open(root, tmp_path / "library")
    library.index(embedder, decode_workers=0)
    compared, measured = [], []
    match, measure = scan_module.match_each, scan_module.measure_quality
    monkeypatch.setattr(scan_module, "match_each",
                        lambda photo, others, **kw: compared.extend([1] * len(others)) or match(photo, others, **kw))
    monkeypatch.setattr(scan_module, "measure_quality", lambda path: measured.append(path.name) or measure(path))
    scan = scan_duplicates(library, workers=1)

    rows = {row.id: row for row in library.photos()}
    content = {file_id: row.path.removeprefix("backup/") for file_id, row in rows.items()}
    file_pairs = {(p.a, p.b) for p in scan.pairs}
    content_pairs = {tuple(sorted((content[a], content[b]))) for a, b in file_pairs}
    assert len(compared) == len(content_pairs) < len(file_pairs)
    assert len(measured) == len(set(measured)), "each content is measured once"
    by_pair = {(p.a, p.b): p for p in scan.pairs}
    copies = [by_pair[pair] for pair in file_pairs if content[pair[0]] == content[pair[1]]]
    assert len(copies) == len(rows) // 2, "each photo is paired with its copy"
    assert all(p.inliers >= VERIFIED_INLIERS and p.score > 0.99 for p in copies if p.likeness is None)
    # a pair of files has the evidence of its contents, whichever copies they are
    for (a, b), found in by_pair.items():
        twin = next((q for q in scan.pairs if (content[q.a], content[q.b]) == (content[a], content[b])
                     and (q.a, q.b) != (a, b)), None)
        if twin is not None:
            assert (twin.inliers, twin.agreement, twin.likeness) == (found.inliers, found.agreement, found.likeness)
            assert (twin.shape is None) == (found.shape is None)
    groups = sorted(({content[m.file_id] for m in g.members} for g in scan.groups(DEFAULT_THRESHOLD)), key=min)
    assert groups == sorted(expected_groups(root) + [{f"p{seed}.jpg"} for seed in DISTINCT], key=min)
    assert all(len(g.members) == 2 * len({content[m.file_id] for m in g.members})
               for g in scan.groups(DEFAULT_THRESHOLD)), "each copy is in its original's group"
    assert set(scan.quality) >= {m.file_id for g in scan.groups() for m in g.members}
    library.close()


def test_cancel_stops_the_scan(library, monkeypatch):
    import threading

    monkeypatch.setattr(scan_module, "PAIRS_PER_ROUND", 1)
    cancel = threading.Event()

    def progress(p):
        if p.phase == "verifying":
            cancel.set()

    scan = scan_duplicates(library, progress=progress, cancel=cancel, workers=1)
    assert scan.cancelled and len(scan.pairs) == 1, "the pairs verified before the cancel are kept"
    stored = load_scan(library)
    assert stored is not None and not stored.up_to_date, "a cancelled scan is not the library's last word"


def _forget_kept_features(library) -> None:
    """As a library indexed before it kept its photos' grey copies (schema 7)."""
    with library.store.transaction():
        library.store._db.execute("UPDATE keypoints SET looks = NULL")


def test_a_library_indexed_before_features_were_kept_is_analysed_once_and_keeps_them(library):
    kept = scan_duplicates(library, workers=1)
    library.store.forget_duplicate_scans()
    _forget_kept_features(library)
    ids = list(library.store.files_by_ids(range(1, 100)))
    assert not library.store.photo_feature_ids(ids)
    phases = []
    analysed = scan_duplicates(library, workers=2, progress=lambda p: phases.append(p.phase))
    assert "keypoints" in phases
    assert [g.key for g in analysed.groups()] == [g.key for g in kept.groups()]
    assert library.store.photo_feature_ids(ids) == set(ids), "what the scan found is kept for the next one"


def test_cancel_while_analysing_older_photos_verifies_nothing(library):
    import threading

    _forget_kept_features(library)
    cancel = threading.Event()
    scan = scan_duplicates(library, cancel=cancel, workers=1,
                           progress=lambda p: cancel.set() if p.phase == "keypoints" else None)
    assert scan.cancelled and not scan.pairs


def test_the_scan_decodes_a_photo_only_for_a_closer_look(library, monkeypatch):
    decoded = []

    def counted(path):
        decoded.append(path.name)
        return analyse_photo(path)

    monkeypatch.setattr(scan_module, "analyse_photo", counted)
    scan = scan_duplicates(library, workers=1)
    assert len(decoded) == len(set(decoded)), "a photo is decoded at most once a scan"
    looked_closer = {library.root / scan.files[i].path for p in scan.pairs
                     if p.whitened >= scan_module.CLOSER_FROM_WHITENED for i in (p.a, p.b)}
    assert {library.root / name for name in decoded} <= looked_closer
    assert len(decoded) < len(scan.files)


def test_decisions_persist_across_a_rescan_until_a_member_changes(library, embedder):
    scan = scan_duplicates(library, workers=1)
    by_seed = {min(names(g)): g for g in scan.groups()}
    decide(library.store, by_seed["p1.jpg"], "not_duplicates")
    decide(library.store, by_seed["p4.jpg"], "keep_all")
    library.close()

    library = Library.open(library_dir=library.library_dir)  # as on the next start of the app
    library.index(embedder, decode_workers=0)
    scan = scan_duplicates(library, workers=1)
    assert [min(names(g)) for g in scan.groups()] == ["p6.jpg"]
    assert scan.groups_and_hidden()[1] == 2
    assert {min(names(g)) for g in scan.groups(include_decided=True)} == {"p1.jpg", "p4.jpg", "p6.jpg"}

    # a member of the p1 group is edited (new content), a new copy of p4 arrives
    make_photo(1, (480, 360)).save(library.root / "p1_resaved.jpg", quality=70)
    make_photo(4, (480, 360)).resize((360, 270)).save(library.root / "p4_new_copy.jpg", quality=80)
    # a member of the p6 group leaves: the rest of a decided group would stay hidden
    library.index(embedder, decode_workers=0)
    scan = scan_duplicates(library, workers=1)
    shown = {min(names(g)): names(g) for g in scan.groups()}
    assert set(shown) == {"p1.jpg", "p4.jpg", "p6.jpg"}
    assert "p4_new_copy.jpg" in shown["p4.jpg"]
    library.close()


def test_a_decided_group_that_loses_a_member_stays_hidden(library, embedder):
    scan = scan_duplicates(library, workers=1)
    group = next(g for g in scan.groups() if "p6.jpg" in names(g))
    decide(library.store, group, "keep_all")
    (library.root / "p6_small.jpg").unlink()
    library.index(embedder, decode_workers=0)
    assert all("p6.jpg" not in names(g) for g in scan_duplicates(library, workers=1).groups())


# -- the scan kept in the library ------------------------------------------------------------------

def verified_pairs(library, **kwargs) -> tuple:
    """(scan, how many pairs it verified, whether it analysed any photo)."""
    seen: dict[str, int] = {}

    def progress(p):
        seen[p.phase] = max(seen.get(p.phase, 0), p.total)

    scan = scan_duplicates(library, progress=progress, workers=1, **kwargs)
    return scan, seen.get("verifying", 0), "keypoints" in seen


def test_a_scan_is_kept_and_loads_at_once(library):
    assert load_scan(library) is None
    scan = scan_duplicates(library, workers=1)
    loaded = load_scan(library)
    assert loaded is not None and loaded.up_to_date and loaded.scanned_at == scan.scanned_at and loaded.age_s < 60
    assert sorted(loaded.pairs, key=lambda p: (p.a, p.b)) == sorted(scan.pairs, key=lambda p: (p.a, p.b))
    assert [g.key for g in loaded.groups()] == [g.key for g in scan.groups()]
    assert loaded.quality == scan.quality
    assert all(m.quality is not None for g in scan.groups() for m in g.members), "every grouped photo is measured"
    again, verified, analysed = verified_pairs(library)
    assert verified == 0 and not analysed and [g.key for g in again.groups()] == [g.key for g in scan.groups()]


def test_a_rescan_verifies_only_the_pairs_of_new_and_changed_photos(library, embedder):
    first = {(p.a, p.b) for p in scan_duplicates(library, workers=1).pairs}
    make_photo(4, (480, 360)).resize((360, 270)).save(library.root / "p4_new_copy.jpg", quality=80)
    make_photo(1, (480, 360)).save(library.root / "p1_resaved.jpg", quality=70)  # new content, same name
    (library.root / "p6_small.jpg").unlink()
    library.index(embedder, decode_workers=0)
    assert not load_scan(library).up_to_date
    rows = {row.path: row.id for row in library.photos()}
    new, changed = rows["p4_new_copy.jpg"], rows["p1_resaved.jpg"]
    scan, verified, _ = verified_pairs(library)
    now = {(p.a, p.b) for p in scan.pairs}
    # the changed photo keeps its id, so its pairs are verified again under the same keys
    again = {pair for pair in now if new in pair or changed in pair}
    assert verified == len(again | (now - first)) > 0 and now - first <= again
    assert not any(pair for pair in now if set(pair) - set(rows.values())), "the removed photo's pairs are gone"
    assert any("p4_new_copy.jpg" in names(g) for g in scan.groups())
    assert load_scan(library).up_to_date


def test_the_cli_uses_the_kept_scan_while_the_library_is_unchanged(library, monkeypatch, capsys):
    from vitgallery.cli import main

    library.close()
    assert main(["duplicates", "--library", str(library.library_dir)]) == 0
    first = capsys.readouterr().out

    def no_scan(*args, **kwargs):
        raise AssertionError("the kept scan is up to date")

    monkeypatch.setattr(Library, "duplicate_scan", no_scan)
    assert main(["duplicates", "--library", str(library.library_dir)]) == 0
    assert capsys.readouterr().out.replace("just now", "") == first.replace("just now", "")


# -- pure parts ------------------------------------------------------------------------------------

def pair(a: int, b: int, score: float) -> PairEvidence:
    return PairEvidence(a, b, 0.9, 20, 1.0, score)


def test_a_chain_does_not_join_photos_that_do_not_match():
    # 1~2~...~9: each matches only its neighbours; a connected component would be one group of nine
    chain = [pair(i, i + 1, 0.9) for i in range(1, 9)]
    groups = seed_groups(chain, 0.5)
    assert sorted(sorted({seed, *members}) for seed, members in groups) == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    for seed, members in groups:  # nobody is more than two links from the seed
        assert all(abs(member - seed) <= 2 for member in members)


def test_a_photo_matching_only_a_member_joins_that_group():
    # 4 is a crop of the crop 2: it matches 2, not the original 1
    groups = seed_groups([pair(1, 2, 0.9), pair(1, 3, 0.8), pair(2, 4, 0.7)], 0.5)
    assert groups == [(1, {2: 0.9, 3: 0.8, 4: 0.7})]


def test_a_star_around_the_original_is_one_group():
    # the original (1) matches all its crops; two crops that do not overlap do not match each other
    groups = seed_groups([pair(1, 2, 0.9), pair(1, 3, 0.8), pair(1, 4, 0.95), pair(2, 3, 0.2)], 0.5)
    assert groups == [(1, {2: 0.9, 3: 0.8, 4: 0.95})]
    assert seed_groups([pair(1, 2, 0.4)], 0.5) == []


def test_a_photo_matching_several_members_weakly_joins_their_group():
    # 5 (say a captioned copy) matches no member surely, but three of them more weakly: copies agree
    group = [pair(1, 2, 0.9), pair(1, 3, 0.8), pair(1, 4, 0.8)]
    weak = [pair(1, 5, 0.2), pair(2, 5, 0.1), pair(3, 5, 0.05)]
    assert seed_groups([*group, *weak], 0.5) == [(1, {2: 0.9, 3: 0.8, 4: 0.8, 5: 0.2})]
    assert seed_groups([*group, *weak[:2]], 0.5) == [(1, {2: 0.9, 3: 0.8, 4: 0.8})], "two weak matches are not enough"
    assert seed_groups([*group, *weak[:2], pair(3, 5, 0.01)], 0.5) == [(1, {2: 0.9, 3: 0.8, 4: 0.8})], \
        "too weak a match is no evidence"
    # the floor rises with the threshold (the window's slider): at 0.9 it is 0.14, so 0.1 is too weak and 0.2 counts
    assert agreeing_floor(0.5) == pytest.approx(0.018, abs=0.001) and agreeing_floor(0.9) > 0.13
    assert seed_groups([pair(1, 2, 0.95), pair(1, 3, 0.95), pair(1, 4, 0.2), pair(2, 4, 0.2), pair(3, 4, 0.1)], 0.9) \
        == [(1, {2: 0.95, 3: 0.95})]
    assert seed_groups([pair(1, 2, 0.95), pair(1, 3, 0.95), pair(1, 4, 0.2), pair(2, 4, 0.2), pair(3, 4, 0.2)], 0.9) \
        == [(1, {2: 0.95, 3: 0.95, 4: 0.2})]
    # photos in no group do not make one by agreeing (look-alikes stay out)
    assert seed_groups([pair(a, b, 0.3) for a, b in itertools.combinations(range(5, 9), 2)], 0.5) == []
    # of two groups it matches that way, it joins the one it matches best
    other = [pair(6, 7, 0.9), pair(6, 8, 0.9), pair(5, 6, 0.3), pair(5, 7, 0.3), pair(5, 8, 0.3)]
    assert seed_groups([*group, *weak, *other], 0.5) == [(1, {2: 0.9, 3: 0.8, 4: 0.8}), (6, {7: 0.9, 8: 0.9, 5: 0.3})]


def test_pair_score_rises_with_each_kind_of_evidence():
    base = pair_score(0.5, 10, 0.5)
    assert 0 < base < 1
    assert pair_score(0.8, 10, 0.5) > base and pair_score(0.5, 40, 0.5) > base and pair_score(0.5, 10, 0.9) > base
    assert pair_score(0.2, 0, 0.0) < 0.01, "unverified photos that merely look alike are not duplicates"


def test_the_reason_names_the_evidence_that_decided():
    verified = PairEvidence(1, 2, 0.4, 48, 0.91, 0.99)
    assert match_reason(verified) == "48 matching points, 91% of the overlap alike once aligned"
    looked = PairEvidence(1, 2, 0.88, 3, 0.0, 0.8, likeness=0.97)
    assert "too few details" in match_reason(looked) and "97%" in match_reason(looked)
    # the slide was looked at, but the few keypoints and the pixels they align are what the score rests on
    aligned = PairEvidence(1, 2, 0.77, 6, 1.0, pair_score(0.77, 6, 1.0, likeness=0.02), likeness=0.02)
    assert aligned.score == pair_score(0.77, 6, 1.0) > DEFAULT_THRESHOLD
    assert match_reason(aligned) == "6 matching points, 100% of the overlap alike once aligned"


def test_a_look_alike_counts_only_where_keypoints_cannot_tell():
    assert pair_score(0.9, 3, 0.0) < 0.02
    assert pair_score(0.9, 3, 0.0, likeness=0.99) > DEFAULT_THRESHOLD
    assert pair_score(0.9, 3, 0.0, likeness=0.99) > pair_score(0.9, 3, 0.0, likeness=0.97)
    assert pair_score(0.9, 3, 0.0, likeness=0.9) < DEFAULT_THRESHOLD, "grey levels that merely correlate"
    assert pair_score(0.6, 3, 0.0, likeness=0.99) < DEFAULT_THRESHOLD, "aligned, but the model sees other things"
    # with enough keypoints to tell, their verdict stands
    assert pair_score(0.3, 20, 0.0, likeness=0.99) == pair_score(0.3, 20, 0.0)


def test_flat_windows_agree_only_under_a_map_keypoints_verified():
    """Two tiles of one smooth gradient are all flat windows, which agree under any map: under a map of
    too few inliers to tell that is no evidence; texture that matches still is."""
    from vitgallery.core.duplicates.features import _agreement

    ramp = np.tile(np.linspace(60, 120, 160, dtype=np.float32), (120, 1)).astype(np.uint8)
    other_tile = np.ascontiguousarray(ramp[:, ::-1])
    same_place = np.array([[1, 0, 0], [0, 1, 0]], np.float32)
    assert _agreement(ramp, other_tile, same_place, unverified_map=False) == 1.0
    assert _agreement(ramp, other_tile, same_place, unverified_map=True) is None
    scene = np.asarray(Image.fromarray(textured_image(0)).convert("L").resize((160, 120)))
    assert _agreement(scene, scene, same_place, unverified_map=True) > 0.9


def test_pixels_agreeing_under_a_map_of_three_points_are_no_evidence():
    """Any three point pairs fit an affine map exactly; flat areas agree under any map."""
    assert pair_score(0.7, 3, 1.0) == pair_score(0.7, 3, 0.0) < DEFAULT_THRESHOLD
    assert pair_score(0.7, 4, 1.0) > pair_score(0.7, 4, 0.0)


def test_edits_of_a_smooth_picture_align_by_their_grey_levels(tmp_path):
    """The look is the fallback where keypoints cannot tell (tested apart from them: low-contrast
    keypoints now often can)."""
    original = smooth_picture(1)
    w, h = original.size
    copies = {
        "crop": original.crop((w * 15 // 100, h // 10, w * 9 // 10, h * 85 // 100)),
        "grey_mirror": ImageOps.mirror(ImageOps.grayscale(original)),
        "framed_small": ImageOps.expand(original.resize((320, 240)), 30, fill=(200, 180, 40)),
    }
    others = {f"other{seed}": smooth_picture(seed) for seed in range(2, 7)}
    features = {}
    for name, image in {"original": original, **copies, **others,
                        "blank": Image.new("RGB", (640, 480), (250, 250, 250))}.items():
        image.save(tmp_path / f"{name}.jpg", quality=90)
        features[name] = analyse_photo(tmp_path / f"{name}.jpg")
    base = features["original"]
    for name in copies:
        assert look_likeness(base, features[name]) > 0.99, name
    assert max(look_likeness(base, features[name]) for name in others) < 0.95
    assert look_likeness(base, features["blank"]) is None, "a blank picture aligns with anything"


def test_plain_gradients_of_other_colours_do_not_align(tmp_path):
    """QA: a navy-to-sky and a black-to-orange vertical gradient were "the same photo" (grey levels ignore
    colour, and one plain ramp aligns with every other); a smooth picture with shapes still aligns with its
    own recoloured copy."""
    ramp = np.linspace(0.0, 1.0, 480)[:, None, None] * np.ones((1, 640, 1))
    for name, low, high in (("navy_sky", (10, 20, 80), (150, 200, 255)), ("black_orange", (0, 0, 0), (255, 140, 30))):
        pixels = np.array(low) * (1 - ramp) + np.array(high) * ramp
        Image.fromarray(pixels.astype(np.uint8)).save(tmp_path / f"{name}.jpg", quality=92)
    navy, orange = (analyse_photo(tmp_path / f"{name}.jpg") for name in ("navy_sky", "black_orange"))
    assert look_likeness(navy, orange) is None
    original = smooth_picture(1)
    original.save(tmp_path / "smooth.jpg", quality=90)
    ImageOps.grayscale(original).save(tmp_path / "smooth_grey.jpg", quality=90)
    smooth, grey = (analyse_photo(tmp_path / f"{name}.jpg") for name in ("smooth", "smooth_grey"))
    assert look_likeness(smooth, grey) > 0.99


def test_caption_bars_cost_less_agreement_than_a_different_subject_in_their_place(tmp_path):
    """Flat bars over the picture (a caption, a redaction) are left out of the pixel agreement; other
    textured content in the same places (another subject on the same background) still disagrees."""
    original = Image.fromarray(textured_image(1, 640, 480))
    places = ((40, 40, 340, 160), (300, 300, 600, 420))
    captioned, other = original.copy(), original.copy()
    for n, (left, top, right, bottom) in enumerate(places):
        ImageDraw.Draw(captioned).rectangle((left, top, right, bottom), fill=60 + 160 * n)
        other.paste(Image.fromarray(textured_image(2 + n, right - left, bottom - top)), (left, top))
    features = {}
    for name, image in (("original", original), ("captioned", captioned), ("other", other)):
        image.save(tmp_path / f"{name}.jpg", quality=90)
        features[name] = analyse_photo(tmp_path / f"{name}.jpg")
    captioned_match = match_photos(features["original"], features["captioned"])
    other_match = match_photos(features["original"], features["other"])
    assert captioned_match.inliers >= 12 and other_match.inliers >= 12
    assert captioned_match.agreement > other_match.agreement + 0.05
    assert captioned_match.agreement > 0.7


def test_a_copy_whose_strongest_keypoints_are_an_overlay_is_matched_on_all_of_them(tmp_path):
    """Dense small marks (a caption's letters) take most of the strongest keypoints of a faint picture;
    the picture's own weaker keypoints still match when the few of them among the strongest fit one
    map but too few to verify."""
    faint = Image.fromarray((textured_image(1, 640, 480).astype(np.float32) * 0.25 + 96).astype(np.uint8))
    marked = faint.copy()
    draw, rng = ImageDraw.Draw(marked), np.random.default_rng(0)
    for _ in range(170):
        x, y = int(rng.integers(0, 620)), int(rng.integers(0, 460))
        draw.rectangle((x, y, x + int(rng.integers(3, 9)), y + int(rng.integers(3, 9))), fill=int(rng.choice([0, 255])))
    faint.save(tmp_path / "faint.jpg", quality=90)
    marked.save(tmp_path / "marked.jpg", quality=90)
    a, b = analyse_photo(tmp_path / "faint.jpg"), analyse_photo(tmp_path / "marked.jpg")
    strongest = match_photos(a, b, look_closer=False).inliers
    assert worth_a_closer_look(strongest) and strongest < VERIFIED_INLIERS
    assert match_photos(a, b).inliers >= VERIFIED_INLIERS


def test_a_closer_look_is_for_pairs_whose_strongest_keypoints_agree_a_little():
    """More inliers than any affine map fits (3), fewer than verify a pair (12)."""
    assert [n for n in range(20) if worth_a_closer_look(n)] == list(range(4, VERIFIED_INLIERS))


def test_four_inliers_earn_a_closer_look_only_where_the_pair_looks_alike():
    """One inlier more than any affine map fits is chance as often as not: at 4 a pair must look as
    alike as a slide asks; from 5 the closer look's own floor holds."""
    wanted = scan_module.closer_look_wanted
    low, high = scan_module.CLOSER_FROM_WHITENED, scan_module.LOOK_FROM_WHITENED
    assert not wanted(4, low) and not wanted(4, high - 0.01) and wanted(4, high)
    assert wanted(5, low) and not wanted(5, low - 0.01)
    assert not wanted(3, 1.0) and not wanted(VERIFIED_INLIERS, 1.0)


def member(name: str, *, width=100, height=100, size=1000, taken=None, mtime=0.0, sharp=1.0,
           root: Path = Path("/photos")) -> DuplicateMember:
    return DuplicateMember(0, root / name, size, int(mtime * 1e9), name, width, height, taken, sharp)


def kept(members, rule=KeepRule.BEST, folder=None) -> DuplicateMember:
    return choose_keeper(members, rule, folder).member


def test_keep_rules():
    big = member("a/big.jpg", width=4000, height=3000, size=3_000_000, taken=200.0, sharp=5.0)
    heavy = member("b/heavy.png", width=2000, height=1500, size=9_000_000, taken=100.0, sharp=50.0)
    new = member("c/new.jpg", width=800, height=600, size=200_000, mtime=900.0, sharp=80.0)
    group = [heavy, new, big]
    assert kept(group, KeepRule.RESOLUTION) is big
    assert kept(group, KeepRule.FILE_SIZE) is heavy
    assert kept(group, KeepRule.OLDEST) is heavy, "the EXIF date counts, not the file date"
    assert kept(group, KeepRule.NEWEST) is new, "without EXIF the file's time counts"
    assert kept(group, KeepRule.SHARPEST) is new
    assert kept(group, KeepRule.PREFERRED_FOLDER, Path("/photos/b")) is heavy
    assert kept(group, KeepRule.PREFERRED_FOLDER, Path("/elsewhere")) is big, "falls back to the best copy"
    assert kept(group) is big, "nothing measured: the most pixels"
    with pytest.raises(ValueError):
        choose_keeper(group, KeepRule.PREFERRED_FOLDER)


def test_keep_rule_ties_break_by_resolution_then_path():
    small = member("b/x.jpg", width=100, height=100, sharp=7.0)
    large = member("a/y.jpg", width=200, height=200, sharp=7.0)
    assert kept([small, large], KeepRule.SHARPEST) is large
    in_folder = [member("keep/1.jpg", width=300, height=300), member("keep/2.jpg", width=600, height=600),
                 member("other/3.jpg", width=900, height=900)]
    assert kept(in_folder, KeepRule.PREFERRED_FOLDER, Path("/photos/keep")).path.name == "2.jpg"
    twins = [member("b.jpg"), member("a.jpg")]
    assert kept(twins, KeepRule.RESOLUTION).path.name == "a.jpg"


def test_the_best_copy_among_equals_is_the_camera_photo_then_the_older():
    camera = PhotoQuality(0.0, False, 0.7, 1.1, 92, "Canon EOS 5D")
    app = PhotoQuality(0.0, False, 0.7, 1.1, 92, None)
    older = replace(member("a.jpg", mtime=100.0), quality=app)
    newer = replace(member("b.jpg", mtime=200.0), quality=app)
    assert kept([newer, older]) is older
    choice = choose_keeper([older, replace(newer, quality=camera)])
    assert choice.member.path.name == "b.jpg" and choice.reason.startswith("camera photo")
    assert kept([older, replace(newer, width=400, height=400)]).path.name == "b.jpg", "more pixels first"


def test_the_best_copy_is_never_a_link_to_another_member(tmp_path):
    make_photo(1).save(tmp_path / "photo.jpg")
    (tmp_path / "zz_link.jpg").symlink_to(tmp_path / "photo.jpg")
    original = member("photo.jpg", root=tmp_path, mtime=200.0)
    link = member("zz_link.jpg", root=tmp_path, mtime=100.0)  # older: it would win if it were a photo of its own
    smaller = member("copy.jpg", root=tmp_path, width=50, height=50)
    for rule in KeepRule:
        choice = choose_keeper([link, smaller, original], rule, tmp_path)
        if choice.member is not smaller:
            assert choice.member is original and choice.same_file == (link,), rule



def test_cli_lists_groups_and_exports(library, tmp_path, capsys):
    import json

    from vitgallery.cli import main

    library.close()
    assert main(["duplicates", "--library", str(library.library_dir), "--json", "--keep", "size",
                 "--export", str(tmp_path / "groups.csv")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["threshold"] == DEFAULT_THRESHOLD and len(out["groups"]) == 3
    for group in out["groups"]:
        assert sum(m["keep"] for m in group["members"]) == 1 and group["keep_reason"] == "largest file"
        keeper = next(m for m in group["members"] if m["keep"])
        assert keeper["size"] == max(m["size"] for m in group["members"])
        assert "matched to" in group["members"][0]["why"]
        assert all("matching points" in m["why"] for m in group["members"][1:])
    assert (tmp_path / "groups.csv").read_text().count("\n") == 16  # header + 15 photos

    assert main(["duplicates", "--library", str(library.library_dir), "--threshold", "0.999"]) == 0
    assert capsys.readouterr().out.startswith("0 groups of near-duplicates")
    assert main(["duplicates", "--library", str(library.library_dir), "--keep", "folder"]) == 2
    assert "needs --prefer" in capsys.readouterr().err


def test_cli_all_shows_decided_groups_and_no_action_touches_them(library, tmp_path, capsys):
    """QA: a group marked "keep all" in the window, then `duplicates --all --move DIR --yes`: 7 of its photos
    were moved (it was listed with one photo kept, like any other group)."""
    import json

    from vitgallery.cli import main

    scan = scan_duplicates(library, workers=1)
    by_seed = {min(names(g)): g for g in scan.groups()}
    decide(library.store, by_seed["p1.jpg"], "keep_all")
    decide(library.store, by_seed["p4.jpg"], "not_duplicates")
    decided = names(by_seed["p1.jpg"]) | names(by_seed["p4.jpg"])
    library.close()
    moved_into = tmp_path / "moved"
    assert main(["duplicates", "--library", str(library.library_dir), "--all", "--json",
                 "--move", str(moved_into), "--yes"]) == 0
    out = json.loads(capsys.readouterr().out)
    by_decision = {group["decision"]: group for group in out["groups"]}
    assert set(by_decision) == {"keep_all", "not_duplicates", None} and len(out["groups"]) == 3
    assert all(m["keep"] for m in by_decision["keep_all"]["members"] + by_decision["not_duplicates"]["members"])
    assert by_decision["keep_all"]["keep_reason"] == "all: you marked them 'keep all'"
    moved = {Path(entry["from"]).name for entry in out["actions"][0]["done"]}
    assert moved and not moved & decided, "only the undecided group's photos moved"
    assert all((library.root / name).exists() for name in decided)

    assert main(["duplicates", "--library", str(library.library_dir), "--all"]) == 0
    listing = capsys.readouterr().out
    assert "keep: all: you marked them 'not duplicates'" in listing
    # each photo's match, said as such (QA read a "score" column as the keep rule's quality score)
    assert "match: how surely a photo is the same shot" in listing and "  match 1.00  " in listing
    assert "score" not in listing


def test_ctrl_c_ends_a_move_after_the_file_it_is_moving_and_says_what_moved(library, tmp_path, capsys,
                                                                          monkeypatch):
    """QA: Ctrl+C during `duplicates --move` said only "interrupted" (no count, no action number), the
    library kept listing the moved photos, and the undo then called them "changed while away"."""
    import json
    import signal

    from vitgallery.cli import main
    from vitgallery.core.duplicates import actions as actions_module

    move_file = actions_module.move_file

    def moved_then_ctrl_c(source, destination):
        move_file(source, destination)
        os.kill(os.getpid(), signal.SIGINT)  # as the terminal sends it, while the first file moves

    monkeypatch.setattr(actions_module, "move_file", moved_then_ctrl_c)
    lib = ["--library", str(library.library_dir)]
    library.close()
    moved_into = tmp_path / "moved"
    assert main(["duplicates", *lib, "--move", str(moved_into), "--yes"]) == 130
    said = capsys.readouterr()
    assert "stopping after this file" in said.err
    [moved] = list(moved_into.iterdir())
    summary = next(line for line in said.out.splitlines() if "moved into" in line)
    assert summary.startswith(f"1 file moved into {moved_into}; ") and "stopped before the end: you stopped it (Ctrl+C)" in summary
    assert "--undo 1 --library" in summary and "left as they were" in summary
    monkeypatch.setattr(actions_module, "move_file", move_file)

    # the library followed the file that moved: no group lists it, and the undo puts it back as it was
    assert main(["duplicates", *lib, "--json"]) == 0
    listed = {Path(m["path"]).name for g in json.loads(capsys.readouterr().out)["groups"] for m in g["members"]}
    assert moved.name not in listed
    assert main(["duplicates", *lib, "--undo", "1", "--json"]) == 0
    [undone] = json.loads(capsys.readouterr().out)["actions"]
    assert len(undone["done"]) == 1 and undone["to_index"] == [] and (library.root / moved.name).is_file()


def test_each_file_moving_action_and_its_undo_stop_between_files_when_asked(library, tmp_path):
    import threading

    from vitgallery.core.duplicates import STOPPED_BY_USER, GroupSelection

    group = scan_duplicates(library, workers=1).groups()[0]
    selection = [GroupSelection(group.members, frozenset({group.members[0].path}))]
    stop = threading.Event()
    stop.set()  # asked before the first file
    for report in (library.act("move", selection, tmp_path / "moved", stop), library.act("trash", selection, None, stop),
                   library.move_into_folders([(m.path, tmp_path / "sorted") for m in group.members], stop)):
        assert report.done == [] and report.stopped == STOPPED_BY_USER
        assert {path for path, _ in report.problems} >= {m.path for m in group.members[1:]}
    assert all(m.path.is_file() for m in group.members)
    moved = library.act("move", selection, tmp_path / "moved")
    undone = library.undo(moved.action_id, stop=stop)
    assert undone.done == [] and undone.stopped == STOPPED_BY_USER
    assert len(library.undo(moved.action_id).done) == len(moved.done), "the undo can be run again to the end"


def test_an_undo_of_a_move_the_library_never_followed_calls_nothing_changed(library, tmp_path, capsys):
    """A move killed before the library followed it (kill -9): the photos put back are as the library still
    holds them, not "changed while away, not searchable until the next index"."""
    import json

    from vitgallery.cli import main
    from vitgallery.core.duplicates import actions as actions_module

    group = scan_duplicates(library, workers=1).groups()[0]
    keep = frozenset({group.members[0].path})
    report = actions_module.act(library._action_place(), "move", [actions_module.GroupSelection(group.members, keep)],
                                tmp_path / "moved")  # the move alone, as a kill leaves it: not followed
    assert len(report.done) == len(group.members) - 1
    library.close()
    assert main(["duplicates", "--library", str(library.library_dir), "--undo", str(report.action_id), "--json"]) == 0
    [undone] = json.loads(capsys.readouterr().out)["actions"]
    assert len(undone["done"]) == len(report.done) and undone["to_index"] == []


def test_every_keep_rule_reads_as_a_sentence():
    """The window lists the rules as "Keep the <label>" (it once read "Keep the in the preferred folder")."""
    sentences = {f"Keep the {rule.label}" for rule in KeepRule}
    assert "Keep the one in the preferred folder" in sentences
    assert not [s for s in sentences if s.split()[2] in ("in", "at", "of", "from", "with")]
