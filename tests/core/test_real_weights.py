"""Real DINOv2 ViT-S/14 weights on real photos: an edited copy finds its original first (the default
search: whitening learned by the library, SIFT re-rank), duplicate groups hold at the default, and an
object pasted into another photo is where the explanation's heat is hottest and what a box finds.

Builds the reference checkpoint with ../shared/models/make_reference_dinov2.py and a small corpus with
../shared/bench/make_corpus.py (both cached between runs). Marked: run with `pytest -m real_weights`.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vitgallery.core.duplicates import scan_duplicates
from vitgallery.core.explain import explain_pair
from vitgallery.core.imageio import open_image
from vitgallery.core.library import Library
from vitgallery.core.models import load_embedder
from vitgallery.core.region import Region

pytestmark = [pytest.mark.real_weights, pytest.mark.timeout(1800)]

SHARED = Path(__file__).resolve().parents[3] / "shared"
CACHE = Path(os.environ.get("VITGALLERY_TEST_CACHE", Path.home() / ".cache" / "vitgallery-tests"))


@pytest.fixture(scope="module")
def reference_weights() -> Path:
    path = CACHE / "dinov2_vits14_pretrain.pth"
    if not path.exists():
        subprocess.run([sys.executable, str(SHARED / "models" / "make_reference_dinov2.py"), str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def corpus() -> Path:
    out = CACHE / "corpus-small"
    if not (out / "dup" / "truth.json").exists():
        subprocess.run([sys.executable, str(SHARED / "bench" / "make_corpus.py"), str(out),
                        "--per-base", "3", "--distractors", "20"], check=True)
    return out / "dup" / "images"


def test_edited_copies_find_their_original_first(reference_weights, corpus, tmp_path):
    originals = sorted(corpus.glob("g*_0.jpg"))[:24]
    root = tmp_path / "photos"
    root.mkdir()
    for f in originals + sorted(corpus.glob("x*.jpg")):
        shutil.copy(f, root / f.name)
    embedder = load_embedder("dinov2-s14", weights=reference_weights, device="cpu")
    library = Library.open(root, tmp_path / "library")
    summary = library.index(embedder)
    assert summary.added == len(list(root.iterdir())) and summary.skipped == 0

    first, top5, total = 0, 0, 0
    for original in originals:
        group = original.name.split("_")[0]
        for edited in sorted(corpus.glob(f"{group}_[1-9]_*.jpg")):
            names = [hit.path.name for hit in library.search(edited, k=5, embedder=embedder)]
            total += 1
            first += names[0] == original.name
            top5 += original.name in names
            if "crop" in edited.name and "color" not in edited.name and "gray" not in edited.name:
                assert names[0] == original.name, edited.name
    print(f"original first for {first}/{total} edited copies, in the top 5 for {top5}/{total}")
    # Plain CLS search measured 50/72 first and 58/72 in the top 5 (deterministic corpus and weights);
    # with the library's whitening and the SIFT re-rank 69/72 first and 72/72 in the top 5.
    assert total >= 48 and first / total >= 0.9 and top5 / total >= 0.97, (first, top5, total)


def test_duplicate_groups_on_real_photos(reference_weights, corpus, tmp_path):
    """Groups of the first 24 pictures with their 3 edited copies each, among 20 unrelated photos: the
    calibrated default threshold keeps wrong pairs rare and finds most of the right ones."""
    groups = sorted({f.name.split("_")[0] for f in corpus.glob("g*_0.jpg")})[:24]
    root = tmp_path / "photos"
    root.mkdir()
    photos = [f for group in groups for f in sorted(corpus.glob(f"{group}_*.jpg"))] + sorted(corpus.glob("x*.jpg"))
    for f in photos:
        shutil.copy(f, root / f.name)
    embedder = load_embedder("dinov2-s14", weights=reference_weights, device="cpu")
    library = Library.open(root, tmp_path / "library")
    library.index(embedder)
    scan = scan_duplicates(library)
    assert not scan.problems and not scan.cancelled

    found = {pair for group in scan.groups() for pair in itertools.combinations(sorted(m.path.name for m in group.members), 2)}
    truth = {pair for group in groups
             for pair in itertools.combinations(sorted(f.name for f in corpus.glob(f"{group}_*.jpg")), 2)}
    right = len(found & truth)
    print(f"duplicate pairs: {right} right, {len(found) - right} wrong, {len(truth)} to find")
    # Measured 91 right and 4 wrong of 144 (keypoints alone: 80 right, 0 wrong; the rest are blank,
    # flat or colour-edited copies). A library this small learns a weaker whitening than a real one.
    assert right / len(found) >= 0.9 and right / len(truth) >= 0.6, (right, len(found), len(truth))


@pytest.fixture(scope="module")
def sem(corpus) -> Path:
    return corpus.parent.parent / "sem"


def pasted_objects(sem: Path, backgrounds: list[Path], count: int):
    """(photo with a sem object pasted in, where, the photo the object came from) for `count` objects:
    each object's box cut from its sem photo and pasted into an unrelated photo, off its own place."""
    boxes = json.loads((sem / "truth.json").read_text())["boxes"]
    for name, background in zip(sorted(boxes)[::max(1, len(boxes) // count)][:count], itertools.cycle(backgrounds)):
        x, y, w, h = boxes[name]
        thing = open_image(sem / "images" / name).crop((x, y, x + w, y + h))
        photo = open_image(background).resize((1024, 768))
        thing.thumbnail((480, 480))
        at = (1024 - thing.width - 40, 40)  # top right: the sem photos put no object in one place
        photo.paste(thing, at)
        yield photo, Region(at[0], at[1], thing.width, thing.height), name


def test_the_hottest_patch_lies_on_an_object_both_photos_show(reference_weights, corpus, sem):
    embedder = load_embedder("dinov2-s14", weights=reference_weights, device="cpu")
    inside = 0
    objects = list(pasted_objects(sem, sorted(corpus.glob("x*.jpg")), 12))
    for photo, where, source in objects:
        explanation = explain_pair(embedder, photo, sem / "images" / source)
        heat = explanation.query_heat
        left, top, right, bottom = explanation.query.grid_box(*np.unravel_index(heat.argmax(), heat.shape))
        centre = ((left + right) / 2, (top + bottom) / 2)
        inside += where.x <= centre[0] <= where.x + where.width and where.y <= centre[1] <= where.y + where.height
    print(f"hottest patch on the pasted object in {inside}/{len(objects)} photos")
    # The object fills ~20% of the photo it is pasted into; the middle patch lies on it in 1 of the 12.
    # Measured 6/12 (the plain patch cosine, before the pair's mean token was taken away: 8/12; on pairs
    # of different objects of one category, what a search shows, bench/explain.py has the centred heat
    # ahead on all three corpora: docs/benchmarks.md).
    assert inside >= 5, inside


def test_searching_with_a_box_finds_the_photo_the_object_came_from(reference_weights, corpus, sem, tmp_path):
    root = tmp_path / "photos"
    shutil.copytree(sem / "images", root)
    for f in sorted(corpus.glob("x*.jpg")):
        shutil.copy(f, root / f.name)
    embedder = load_embedder("dinov2-s14", weights=reference_weights, device="cpu")
    library = Library.open(root, tmp_path / "library")
    library.index(embedder)
    by_box, whole, objects = 0, 0, list(pasted_objects(sem, sorted(corpus.glob("x*.jpg")), 12))
    for photo, where, source in objects:
        by_box += library.search(photo, k=1, embedder=embedder, region=where)[0].path.name == source
        whole += library.search(photo, k=1, embedder=embedder)[0].path.name == source
    print(f"the object's own photo first for {by_box}/{len(objects)} box searches, {whole} whole-photo searches")
    assert by_box / len(objects) >= 0.75 and by_box > whole, (by_box, whole)
