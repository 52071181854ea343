"""The search recipe of docs/quality.md inside the library: frame trimming, the whitening the
library learns from its own photos, keypoints stored at index time, SIFT re-ranking of the top."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image, ImageOps

from tests.photos import make_photo, smooth_picture, textured_image
from vitgallery.core import indexing as indexing_module
from vitgallery.core import search as search_module
from vitgallery.core.duplicates.features import grouped_unverified, may_be_grouped, same_photo
from vitgallery.core.keypoints import NO_MATCH, VERIFIED_INLIERS, Keypoints, match_keypoints
from vitgallery.core.library import Library
from vitgallery.core.models import load_embedder
from vitgallery.core.photo_features import analyse_grey
from vitgallery.core.preprocess import teaching_views_per_photo
from vitgallery.core.rerank import VERIFIED_FLOOR, verified_score
from vitgallery.core.search import RERANK_CANDIDATES
from vitgallery.core.store import whitening_fingerprint


@pytest.fixture(scope="module")
def embedder():
    return load_embedder("tiny-test", device="cpu")


def indexed(root, tmp_path, embedder) -> Library:
    lib = Library.open(root, tmp_path / "library")
    lib.index(embedder, decode_workers=0, batch_size=4)
    return lib


def test_indexing_stores_keypoints_and_learns_a_whitening(photo_folder, tmp_path, embedder):
    lib = indexed(photo_folder, tmp_path, embedder)
    ids = [row.id for row in lib.photos()]
    stored = lib.store.keypoints(ids)
    assert set(stored) == set(ids)
    assert all(len(Keypoints.from_bytes(data)) > 0 for data in stored.values())
    assert lib.store.count_learning_photos() == 12
    own, other = lib.store.learning_pairs()
    assert own.shape == other.shape == (12 * teaching_views_per_photo(12), embedder.dim)
    whitening = lib.store.whitening()
    assert whitening is not None and whitening.photos == 12 and whitening.pairs == len(own)

    # the index holds the whitened vectors: a photo's neighbour scores are whitened cosines
    vectors = lib.store.vectors(ids)
    white = {i: lib.search_space().whitening.apply(v[None, :])[0] for i, v in vectors.items()}
    query = lib.photos()[3]
    hits = lib.search(photo_folder / query.path, k=5, verify=False)
    assert [h.inliers for h in hits] == [None] * 5
    for hit in hits:
        assert hit.cosine == pytest.approx(float(white[query.id] @ white[hit.file_id]), abs=1e-4)
        assert hit.score == hit.cosine  # not verified: the cosine is the score
    # and the whitening is not the identity
    raw = float(vectors[query.id] @ vectors[hits[0].file_id])
    assert abs(raw - hits[0].cosine) > 1e-3


def test_a_crop_is_verified_and_ranked_first(photo_folder, tmp_path, embedder):
    lib = indexed(photo_folder, tmp_path, embedder)
    original = photo_folder / "img_04.jpg"
    crop = tmp_path / "crop.png"
    with ImageOps.exif_transpose(make_photo(4)) as im:
        im.crop((40, 30, 300, 220)).save(crop)
    hits = lib.search(crop, k=8, embedder=embedder)
    assert hits[0].path == original
    assert hits[0].inliers is not None and hits[0].inliers >= VERIFIED_INLIERS
    # scored by its evidence, or by its look where that is higher
    assert hits[0].score == pytest.approx(max(float(verified_score(hits[0].inliers)), hits[0].cosine))
    assert all(h.inliers is not None for h in hits)  # all within the verified head
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    others = [h for h in hits if h.path != original]
    assert all(h.inliers < VERIFIED_INLIERS for h in others)


def test_a_quarter_turned_copy_is_verified(photo_folder, tmp_path, embedder):
    """SIFT does not care about quarter turns; a ViT vector does."""
    lib = indexed(photo_folder, tmp_path, embedder)
    turned = tmp_path / "turned.jpg"
    make_photo(4).transpose(ImageOps.Image.Transpose.ROTATE_90).save(turned, quality=90)
    hits = lib.search(turned, k=5, embedder=embedder)
    assert hits[0].path == photo_folder / "img_04.jpg"
    assert hits[0].inliers >= VERIFIED_INLIERS and hits[0].score > hits[0].cosine


def test_the_whitening_is_refitted_when_the_library_grows_by_a_quarter(photo_folder, tmp_path, embedder):
    lib = indexed(photo_folder, tmp_path, embedder)
    first = lib.store.whitening().key
    make_photo(100).save(photo_folder / "one_more.jpg")  # 13 photos: within a quarter
    lib.index(embedder, decode_workers=0)
    assert lib.store.whitening().key == first
    for i in range(101, 106):
        make_photo(i).save(photo_folder / f"more_{i}.jpg")  # 18 photos
    lib.index(embedder, decode_workers=0)
    refit = lib.store.whitening()
    assert refit.key != first and refit.photos == 18 and lib.store.count_learning_photos() == 18
    lib.close()
    # the index file records the whitening it holds: reopened, it is used as it is, not rebuilt
    lib = Library.open(photo_folder, tmp_path / "library")
    hits = lib.search(photo_folder / "more_101.jpg", k=3)
    assert not lib.notices and len(hits) == 3


def test_an_index_file_of_another_whitening_is_rebuilt(photo_folder, tmp_path, embedder):
    lib = indexed(photo_folder, tmp_path, embedder)
    expected = [(h.path, round(h.score, 4)) for h in lib.search(photo_folder / "img_02.jpg", k=4)]
    stored = lib.store.whitening()
    lib.close()
    lib = Library.open(photo_folder, tmp_path / "library")
    # a refit recorded in the database (a crash before the index file was rewritten); doubling the
    # projection changes the whitening's key, not its results
    projection = 2 * stored.projection
    lib.store.save_whitening(type(stored)(whitening_fingerprint(stored.mean, projection), stored.mean, projection,
                                          stored.photos, stored.pairs))
    assert [(h.path, round(h.score, 4)) for h in lib.search(photo_folder / "img_02.jpg", k=4)] == expected
    assert any("rebuilding" in n for n in lib.notices)


def test_the_teaching_sample_is_capped_and_topped_up(photo_folder, tmp_path, embedder, monkeypatch):
    monkeypatch.setattr(indexing_module, "WHITENING_SAMPLE", 5)
    lib = Library.open(photo_folder, tmp_path / "library")
    summary = lib.index(embedder, decode_workers=0, batch_size=4)
    assert summary.teaching == 5 == lib.store.count_learning_photos()
    (photo_folder / "img_00.jpg").unlink()
    (photo_folder / "img_01.jpg").unlink()
    (photo_folder / "img_02.jpg").unlink()
    make_photo(200).save(photo_folder / "new.jpg")
    lib.index(embedder, decode_workers=0)
    assert 3 <= lib.store.count_learning_photos() <= 5  # deleted teachers went with their rows


def test_empty_teaching_views_leave_plain_cosine(tmp_path, embedder, monkeypatch):
    monkeypatch.setattr(indexing_module, "WHITENING_SAMPLE", 0)
    root = tmp_path / "photos"
    root.mkdir()
    for i in range(4):
        make_photo(i).save(root / f"p{i}.jpg")
    lib = indexed(root, tmp_path, embedder)
    assert lib.store.whitening() is None
    hits = lib.search(root / "p0.jpg", k=3, verify=False)
    vectors = lib.store.vectors([h.file_id for h in hits] + [lib.store.file_by_path("p0.jpg").id])
    own = vectors[lib.store.file_by_path("p0.jpg").id]
    assert hits[0].cosine == pytest.approx(float(own @ vectors[hits[0].file_id]), abs=1e-4)


def test_only_the_head_is_verified(tmp_path, embedder):
    root = tmp_path / "photos"
    root.mkdir()
    for i in range(RERANK_CANDIDATES + 10):
        make_photo(i, (96, 72)).save(root / f"p{i:03d}.png")
    lib = indexed(root, tmp_path, embedder)
    hits = lib.search(root / "p000.png", k=RERANK_CANDIDATES + 5)
    assert sum(h.inliers is not None for h in hits) == RERANK_CANDIDATES
    assert np.all(np.diff([h.score for h in hits]) <= 1e-9)


def test_a_first_index_teaches_while_it_embeds(photo_folder, tmp_path, embedder):
    """The teaching photos' views come from the decode that embeds them (no second pass, no 'learning'
    phase); each photo is searchable as soon as its batch is embedded; then the fit ('fitting')."""
    lib = Library.open(photo_folder, tmp_path / "library")
    seen: list[tuple[str, int, int, int]] = []

    def progress(p):
        seen.append((p.phase, p.done, p.total, lib.status().index_size))

    summary = lib.index(embedder, decode_workers=0, batch_size=4, progress=progress)
    phases = [phase for phase, *_ in seen]
    assert "learning" not in phases and summary.teaching == 12 == lib.store.count_learning_photos()
    searchable = [size for phase, *_, size in seen if phase == "embedding"]
    assert searchable[4] >= 4 and searchable == sorted(searchable)
    assert phases.index("fitting") > len(phases) - 1 - phases[::-1].index("embedding") and phases[-1] == "done"
    seen.clear()
    lib.index(embedder, decode_workers=0, progress=progress)
    assert not {"learning", "fitting"} & {phase for phase, *_ in seen}  # nothing changed: nothing to learn


def untaught_library(photo_folder, tmp_path, embedder, monkeypatch):
    """A library whose photos were embedded without teaching views (by an earlier version)."""
    monkeypatch.setattr(indexing_module, "WHITENING_SAMPLE", 0)
    lib = Library.open(photo_folder, tmp_path / "library")
    lib.index(embedder, decode_workers=0, batch_size=4)
    monkeypatch.undo()
    assert lib.store.count_learning_photos() == 0
    return lib


def test_cancelled_learning_goes_on_next_time(photo_folder, tmp_path, embedder, monkeypatch):
    lib = untaught_library(photo_folder, tmp_path, embedder, monkeypatch)
    cancel = threading.Event()

    def progress(p):
        if p.phase == "learning" and p.done >= 5:
            cancel.set()

    summary = lib.index(embedder, decode_workers=0, batch_size=4, progress=progress, cancel=cancel)
    assert summary.cancelled and 4 <= lib.store.count_learning_photos() < 12
    assert len(lib.search(photo_folder / "img_01.jpg", k=3)) == 3  # searchable all along
    summary = lib.index(embedder, decode_workers=0)
    assert summary.added == 0 and lib.store.count_learning_photos() == 12


def test_a_photo_changed_since_it_was_embedded_does_not_teach(photo_folder, tmp_path, embedder, monkeypatch):
    lib = untaught_library(photo_folder, tmp_path, embedder, monkeypatch)
    original = indexing_module.IndexRun._teach

    def change_one_first(self, *args):
        make_photo(77).save(photo_folder / "img_03.jpg")
        original(self, *args)

    monkeypatch.setattr(indexing_module.IndexRun, "_teach", change_one_first)
    summary = lib.index(embedder, decode_workers=0, batch_size=4)
    assert summary.teaching == 11
    taught = {row.path for row in lib.photos()} - {row.path for row in lib.store.files_without_learning_views()}
    assert "img_03.jpg" not in taught


def _scene_photos(folder):
    """(original, another subject pasted on its background, a cropped smaller copy) of one textured scene."""
    original = Image.fromarray(textured_image(1, 640, 480)).convert("RGB")
    other = original.copy()
    other.paste(Image.fromarray(textured_image(7, 440, 320)).convert("RGB"), (100, 80))
    copy = original.crop((40, 30, 600, 450)).resize((420, 315))
    paths = []
    for name, image in (("scene", original), ("other_subject", other), ("scene_copy", copy)):
        image.save(folder / f"{name}.jpg", quality=90)
        paths.append(folder / f"{name}.jpg")
    return paths


def test_another_subject_on_the_same_background_is_the_same_scene_not_the_same_photo(tmp_path):
    """Keypoints verify both (the background maps), but only the copy agrees pixel-wise once aligned."""
    original, other, copy = (analyse_grey(np.asarray(Image.open(path).convert("L"))) for path in _scene_photos(tmp_path))
    for candidate, same in ((other, False), (copy, True)):
        match = match_keypoints(original.keypoints, candidate.keypoints)
        assert match.inliers >= VERIFIED_INLIERS
        assert same_photo(original, candidate, match, whitened_cosine=0.1) is same
    match = match_keypoints(original.keypoints, other.keypoints)
    assert same_photo(original, other, match, whitened_cosine=0.6), "alike in look too: the evidence adds up"


def test_a_search_tells_the_same_photo_from_the_same_scene(photo_folder, tmp_path, embedder, monkeypatch):
    scene, other, copy = _scene_photos(photo_folder)
    lib = indexed(photo_folder, tmp_path, embedder)
    # the tiny test model's vectors say little: judged as if they found the pasted subject unlike the scene
    monkeypatch.setattr(search_module, "same_photo",
                        lambda query, candidate, match, whitened_cosine: same_photo(query, candidate, match, 0.1))
    outside = tmp_path / "outside.png"
    Image.open(scene).save(outside)  # not a photo of the library: embedded, its features found anew
    for query in (scene, outside):
        hits = {hit.path: hit for hit in lib.search(query, k=14, embedder=embedder)}
        assert hits[copy].verified and not hits[copy].same_scene_only
        assert hits[other].inliers >= VERIFIED_INLIERS and hits[other].same_scene_only and not hits[other].verified
        assert hits[other].score == pytest.approx(hits[other].cosine), "scored by what it looks like"
    lib.close()


def test_a_smooth_pictures_copies_are_the_same_photo_by_their_grey_levels(photo_folder, tmp_path, embedder,
                                                                           monkeypatch):
    """Too few keypoints to verify them, but their shapes and shades align as the duplicates check groups
    such copies: the search calls them the same photo too (before, the Duplicates page grouped them and
    the search gave them no ✓). Another smooth picture does not align."""
    original = smooth_picture(21)  # not a blurred copy of the folder's img_01
    w, h = original.size
    copies = {"crop": original.crop((w * 15 // 100, h // 10, w * 9 // 10, h * 85 // 100)),
              "grey_mirror": ImageOps.mirror(ImageOps.grayscale(original))}
    for name, image in {"smooth": original, **copies, "other_smooth": smooth_picture(23)}.items():
        image.convert("RGB").save(photo_folder / f"{name}.jpg", quality=90)
    lib = indexed(photo_folder, tmp_path, embedder)
    # the tiny test model's vectors say little: judged as if they looked as alike as real copies do, and on
    # the grey levels alone (a crop's few keypoints may fit a map, and the aligned pixels then decide)
    monkeypatch.setattr(search_module, "may_be_grouped", lambda inliers, cosine: inliers < VERIFIED_INLIERS)
    monkeypatch.setattr(search_module, "grouped_unverified",
                        lambda query, candidate, found, cosine: grouped_unverified(query, candidate, NO_MATCH, 0.9))
    hits = {hit.path.stem: hit for hit in lib.search(photo_folder / "smooth.jpg", k=15)}
    aligned = [name for name in copies if hits[name].likeness is not None]
    assert aligned, "at least one copy too smooth for keypoints"
    for name in aligned:
        assert hits[name].verified and hits[name].inliers < VERIFIED_INLIERS and hits[name].likeness > 0.97
        assert hits[name].score >= VERIFIED_FLOOR, "ranked as a verified copy"
    assert all(hits[name].verified for name in copies)
    assert not hits["other_smooth"].verified and hits["other_smooth"].likeness is None
    lib.close()
    # the real gate: pairs keypoints cannot verify, with some geometry or alike enough to be slid
    assert may_be_grouped(0, 0.75) and may_be_grouped(11, 0.9) and may_be_grouped(5, 0.1)
    assert not may_be_grouped(3, 0.6) and not may_be_grouped(VERIFIED_INLIERS, 0.9)


def test_a_pair_on_few_keypoints_is_the_same_photo_where_the_duplicates_check_groups_it(tmp_path):
    """QA: the Duplicates page grouped a grey crop on 11 points, 100 % of the overlap alike, that the search gave
    no ✓; the search now asks the duplicates check's pair score of such a pair too."""
    from vitgallery.core.keypoints import KeypointMatch

    scene = analyse_grey(textured_image(3, 480, 360))
    other = analyse_grey(textured_image(9, 480, 360))
    same_place = KeypointMatch(8, np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), False)  # 8 points, no move
    grouped = grouped_unverified(scene, scene, same_place, whitened_cosine=0.9)
    assert grouped is not None and grouped.agreement > 0.95 and grouped.likeness is None
    assert grouped_unverified(scene, scene, same_place, whitened_cosine=0.1) is None, "it must look alike too"
    assert grouped_unverified(scene, other, same_place, whitened_cosine=0.9) is None, "pixels that disagree"
    assert grouped_unverified(scene, scene, KeypointMatch(3, same_place.transform, False), 0.5) is None
