"""Whether a keypoint-verified hit should also need a vector similarity to be called "the same photo".

Keypoints that one geometric map carries onto the query's make a hit "the same photo" (core/rerank.py).
A different object photographed on the same background gets such a map from the background alone: the
window called an apple "the same photo" as a bear on the same table (47 points, vector similarity 0.04).
This searches every photo of libraries indexed by bench/retrieval.py (`--libs`), keeps each hit's
keypoint count and whitened cosine, and scores the rankings again with a floor on the cosine below
which keypoints no longer verify: mAP per task and floor, and how many verified hits of the truth's
relevant and not relevant photos fall under each floor.

    python bench/retrieval.py CORPUS --weights W --libs LIBS          # once per corpus
    python bench/verified_floor.py CORPUS:LIBS [CORPUS:LIBS ...] [--floors 0 0.05 0.1 0.2]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.retrieval import SCORER, load_scorer  # noqa: E402
from vitgallery.core.keypoints import VERIFIED_INLIERS  # noqa: E402
from vitgallery.core.library import Library  # noqa: E402
from vitgallery.core.rerank import similarity, verified_score  # noqa: E402


def hits_of(corpus: Path, libs: Path, task: str, k: int) -> dict[str, list[tuple[str, float, int]]]:
    """Query name -> its hits as (name, whitened cosine, inliers)."""
    images = corpus / task / "images"
    library = Library.open(images, libs / f"{corpus.name}-{task}")
    try:
        return {name: [(hit.path.name, hit.cosine, hit.inliers or 0) for hit in library.search(images / name, k=k)]
                for name in sorted(p.name for p in images.iterdir())}
    finally:
        library.close()


def ranked(hits: dict[str, list[tuple[str, float, int]]], floor: float | None) -> dict[str, list[str]]:
    out = {}
    for query, found in hits.items():
        cosines = np.array([c for _, c, _ in found])
        inliers = np.array([i for _, _, i in found])
        verified = inliers >= VERIFIED_INLIERS
        if floor is not None:
            verified &= cosines >= floor
        scores = np.where(verified, verified_score(inliers), similarity(cosines))
        out[query] = [found[i][0] for i in np.argsort(-scores, kind="stable")]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pairs", nargs="+", help="CORPUS:LIBS")
    parser.add_argument("--floors", nargs="+", type=float, default=[0.0, 0.05, 0.1, 0.15, 0.2, 0.3])
    parser.add_argument("--k", type=int, default=100)
    args = parser.parse_args()
    score = load_scorer(SCORER)
    sys.path.insert(0, str(SCORER.parent))
    from score import relevant_sets  # the shared scorer's own notion of relevant

    for pair in args.pairs:
        corpus, libs = (Path(part) for part in pair.split(":"))
        for task in ("dup", "sem"):
            truth = json.loads((corpus / task / "truth.json").read_text())
            relevant = relevant_sets(truth)
            hits = hits_of(corpus, libs, task, args.k)
            verified = [(cos, hit in relevant.get(query, ())) for query, found in hits.items()
                        for hit, cos, inliers in found if inliers >= VERIFIED_INLIERS and hit != query]
            line = [f"{corpus.name} {task}: verified hits {sum(r for _, r in verified)} relevant, "
                    f"{sum(not r for _, r in verified)} not; mAP without a floor "
                    f"{score(truth, ranked(hits, None))['mAP']:.2f}"]
            for floor in args.floors:
                under = [r for cos, r in verified if cos < floor]
                line.append(f"  floor {floor:.2f}: mAP {score(truth, ranked(hits, floor))['mAP']:.2f}, "
                            f"under it {sum(under)} relevant / {len(under) - sum(under)} not")
            print("\n".join(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
