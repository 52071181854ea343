"""How the search's content test splits keypoint-verified hits: searches every photo of libraries indexed by
bench/retrieval.py (`--libs`) and prints, per corpus and task, the shared scorer's mAP and R@1, the mean
query time, and how many hits the keypoints verify that the search still calls the same photo (✓) or
only the same scene (its picture differs once aligned: core.duplicates.features.same_photo), and how many
ones with too few keypoints it calls the same photo as the duplicates check groups them (grouped_unverified):
on the pixels their few keypoints align (same_few) or, smooth ones, their grey levels (same_look), each split
by whether the truth calls the hit relevant.

    python bench/retrieval.py CORPUS --weights W --libs LIBS          # once per corpus
    python bench/same_scene.py CORPUS [CORPUS ...] --libs LIBS
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.retrieval import SCORER, load_scorer  # noqa: E402
from vitgallery.core.library import Library  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpora", nargs="+", type=Path)
    parser.add_argument("--libs", type=Path, required=True)
    parser.add_argument("--k", type=int, default=100)
    args = parser.parse_args()
    score = load_scorer(SCORER)
    sys.path.insert(0, str(SCORER.parent))
    from score import relevant_sets  # the shared scorer's own notion of relevant

    for corpus in args.corpora:
        for task in ("dup", "sem"):
            images = corpus / task / "images"
            truth = json.loads((corpus / task / "truth.json").read_text())
            relevant = relevant_sets(truth)
            library = Library.open(images, args.libs / f"{corpus.name}-{task}")
            names = sorted(p.name for p in images.iterdir())
            rankings: dict[str, list[str]] = {}
            counts = dict.fromkeys((f"{kind}_{truly}" for kind in ("same_photo", "same_few", "same_look", "same_scene")
                                    for truly in ("relevant", "not")), 0)
            started = time.perf_counter()
            for name in names:
                hits = library.search(images / name, k=args.k)
                rankings[name] = [hit.path.name for hit in hits]
                for hit in hits:
                    if hit.verified or hit.same_scene_only:
                        kind = ("same_scene" if hit.same_scene_only else "same_look" if hit.likeness is not None
                                else "same_few" if hit.agreement is not None else "same_photo")
                        counts[f"{kind}_{'relevant' if hit.path.name in relevant.get(name, ()) else 'not'}"] += 1
            query_ms = (time.perf_counter() - started) / len(names) * 1000
            library.close()
            result = score(truth, rankings)
            print(json.dumps({"corpus": corpus.name, "task": task, "mAP": result["mAP"], "R@1": result["R@1"],
                              "query_ms": round(query_ms, 1), **counts}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
