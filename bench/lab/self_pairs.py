#!/usr/bin/env python3
"""Could a library's own duplicates teach its whitening? (issue 18 point 3: "a whitening that needs no
extra passes"). The whitening learns from pairs of embeddings of one photo seen two ways; today those are
the teaching views (1-3 extra forward passes a taught photo). A library's near-duplicates are such pairs
already, and its stored keypoints find them without a forward pass.

    python bench/lab/self_pairs.py LIB:TASK_DIR [LIB:TASK_DIR ...]

LIB: a library indexed with this code (`bench/retrieval.py CORPUS --libs LIBS`), TASK_DIR the corpus task
it indexed (truth.json). Reads the library only. For each: the whitening of the library's rule (its stored
views) and, added to its pairs, each photo's 5 nearest neighbours under that whitening whose stored
keypoints fit one map with at least INLIERS inliers and whose aligned pixels agree at least AGREEMENT
(core.own_copies.copies_among, as the app finds them, at other gates than its own); the same pairs
alone without the views; then exact ranking of every photo (no re-rank) scored by the shared scorer (mAP).
A library indexed with all three views (`bench/retrieval.py ... --all-views`) also gives the three views'
mAP, and each figure's share of their gain over no whitening ("gain kept", issue 18 point 3's measure).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import learning_lab as lab  # noqa: E402

from vitgallery.core import own_copies  # noqa: E402
from vitgallery.core.photo_features import PhotoFeatures  # noqa: E402
from vitgallery.core.whitening import LibraryWhitening  # noqa: E402

GATES = ((20, 0.85), (30, 0.9), (50, 0.9))  # (inliers, agreement) a pair must reach to count as a copy


def stored_features(library: Path) -> dict[str, PhotoFeatures]:
    db = sqlite3.connect(f"file:{library / 'library.sqlite3'}?mode=ro", uri=True)
    rows = db.execute("SELECT f.path, k.data, k.looks FROM files f JOIN keypoints k ON k.file_id = f.id"
                      " WHERE k.looks IS NOT NULL").fetchall()
    db.close()
    return {Path(path).name: PhotoFeatures.from_stored(data, looks) for path, data, looks in rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pairs", nargs="+", help="LIBRARY:TASK_DIR")
    parser.add_argument("--scorer", type=Path, default=lab.SCORER)
    args = parser.parse_args()
    score = lab.load_scorer(args.scorer)
    print("| library | views a photo | none | all 3 views | the rule (gain kept) | " + " | ".join(
        f"+ copies {inliers}/{agreement} | copies alone" for inliers, agreement in GATES) + " |")
    for pair in args.pairs:
        library, _, task = pair.partition(":")
        corpus = lab.read_library(Path(library), Path(task))
        count, dims = corpus.vectors.shape
        columns = list(range(lab.teaching_views_per_photo(count)))
        own = np.repeat(corpus.vectors, len(columns), axis=0)
        other = corpus.views[:, columns].reshape(-1, dims)
        rule = LibraryWhitening.fit_pairs(corpus.vectors, own, other, shrink=lab.SHRINK)

        def mean_ap(vectors: np.ndarray, corpus: lab.Corpus = corpus) -> float:
            return score(corpus.truth, lab.rank(vectors, corpus.names))["mAP"]

        features = stored_features(Path(library))

        def features_of(rows: np.ndarray, corpus: lab.Corpus = corpus, features: dict = features) -> dict:
            return {row: features[corpus.names[row]] for row in rows.tolist() if corpus.names[row] in features}

        none = mean_ap(corpus.vectors)
        reference = None  # the three views' mAP, where the library has them
        if corpus.views.shape[1] >= 3:
            every = LibraryWhitening.fit_pairs(corpus.vectors, np.repeat(corpus.vectors, 3, axis=0),
                                               corpus.views[:, :3].reshape(-1, dims), shrink=lab.SHRINK)
            reference = mean_ap(every.apply(corpus.vectors))

        def cell(value: float, reference: float | None = reference, none: float = none) -> str:
            return f"{value:.2f}" if reference is None else f"{value:.2f} ({100 * (value - none) / (reference - none):.1f} %)"

        cells = [f"{none:.2f}", "-" if reference is None else f"{reference:.2f}", cell(mean_ap(rule.apply(corpus.vectors)))]
        for inliers, agreement in GATES:
            copies = own_copies.copies_among(
                rule.apply(corpus.vectors), np.arange(count), features_of,
                lambda match, inliers=inliers, agreement=agreement: match.inliers >= inliers and match.agreement >= agreement)
            if not copies:
                cells += ["(0)", "-"]
                continue
            a, b = (np.array(side) for side in zip(*copies, strict=True))
            both = LibraryWhitening.fit_pairs(corpus.vectors, np.concatenate([own, corpus.vectors[a]]),
                                              np.concatenate([other, corpus.vectors[b]]), shrink=lab.SHRINK)
            alone = LibraryWhitening.fit_pairs(corpus.vectors, corpus.vectors[a], corpus.vectors[b], shrink=lab.SHRINK)
            cells += [f"{cell(mean_ap(both.apply(corpus.vectors)))}, {len(copies)} pairs", cell(mean_ap(alone.apply(corpus.vectors)))]
        print(f"| {corpus.name} | {len(columns)} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
