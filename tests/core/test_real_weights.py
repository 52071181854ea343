"""Real DINOv2 ViT-S/14 weights on real photos: an edited copy finds its original first (the default
search: whitening learned by the library, SIFT re-rank), and duplicate groups hold at the default.

Builds the reference checkpoint with ../shared/models/make_reference_dinov2.py and a small corpus with
../shared/bench/make_corpus.py (both cached between runs). Marked: run with `pytest -m real_weights`.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vitgallery.core.duplicates import scan_duplicates
from vitgallery.core.library import Library
from vitgallery.core.models import load_embedder

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
