#!/usr/bin/env python3
"""Retrieval benchmark through the real core: index a corpus, search every image, score.

usage: python bench/retrieval.py CORPUS_DIR [--weights FILE] [--model dinov2-s14] [--task dup sem]
                                [--libs DIR] [--no-verify] [--show-misses]

CORPUS_DIR is made by ../shared/bench/make_corpus.py (it holds dup/ and sem/). Prints one JSON line
per task: the scorer's mAP, R@1, P@5, plus indexing images/s (the photos that teach the library's
whitening cost 3 extra forward passes each) and the mean query time (search + SIFT re-rank).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

from vitgallery.core import indexing
from vitgallery.core.library import Library
from vitgallery.core.models import DEFAULT_MODEL, PRECISIONS, RUNTIMES, load_embedder
from vitgallery.core.preprocess import TEACHING_KINDS
from vitgallery.core.vector_store import VectorStoreSetting

SCORER = Path(__file__).resolve().parents[2] / "shared" / "bench" / "score.py"


def load_scorer(path: Path):
    spec = importlib.util.spec_from_file_location("bench_score", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.score


def run_task(task_dir: Path, embedder, batch_size: int, workers: int | None, k: int, scorer, verify: bool,
             keep_in: Path | None, show_misses: bool = False, vector_store: VectorStoreSetting | None = None) -> dict:
    images = task_dir / "images"
    with tempfile.TemporaryDirectory() as scratch:
        lib_dir = keep_in / f"{task_dir.parent.name}-{task_dir.name}" if keep_in else scratch
        library = Library.open(images, lib_dir, vector_store=vector_store)
        started = time.perf_counter()
        summary = library.index(embedder, batch_size=batch_size, decode_workers=workers)
        index_s = time.perf_counter() - started
        names = sorted(p.name for p in images.iterdir())
        rankings = {}
        started = time.perf_counter()
        for name in names:
            hits = library.search(images / name, k=k, embedder=embedder, verify=verify)
            rankings[name] = [hit.path.name for hit in hits]
            if show_misses and name.startswith("g") and hits and hits[0].path.name.split("_")[0] != name.split("_")[0]:
                top = hits[0]  # the dup task's groups are the names' g-prefixes
                print(f"miss: {name} -> {top.path.name}  score {top.score:.3f} cosine {top.cosine:.3f} "
                      f"inliers {top.inliers}", file=sys.stderr)
        query_s = (time.perf_counter() - started) / len(names)
        library.close()
    result = scorer(json.loads((task_dir / "truth.json").read_text()), rankings)
    result.update({"images": summary.added, "skipped": summary.skipped, "teaching_photos": summary.teaching,
                   "index_images_per_s": round(summary.added / index_s, 2),
                   "query_ms": round(1000 * query_s, 2)})
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--weights")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="auto", choices=PRECISIONS)
    ap.add_argument("--runtime", default="auto", choices=RUNTIMES)
    ap.add_argument("--task", nargs="+", default=["dup", "sem"])
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--scorer", type=Path, default=SCORER)
    ap.add_argument("--libs", type=Path, help="keep the libraries in LIBS/<corpus>-<task> (bench/duplicates_calibration.py "
                    "reuses them; a second run only searches)")
    ap.add_argument("--no-verify", action="store_true", help="rank by the whitened cosine alone (no SIFT re-rank)")
    ap.add_argument("--show-misses", action="store_true",
                    help="print each dup query whose first hit is from another group (to stderr)")
    ap.add_argument("--all-views", action="store_true",
                    help="teach every photo with all the teaching views, whatever the library's size (the libraries "
                         "bench/learning_lab.py reads)")
    ap.add_argument("--vector-store", type=VectorStoreSetting.parse,
                    help="hnswlib or qdrant[:URL]: search the library there (an existing one is moved there)")
    a = ap.parse_args()
    if a.all_views:
        indexing.teaching_views_per_photo = lambda taught: len(TEACHING_KINDS)
    scorer = load_scorer(a.scorer)
    embedder = load_embedder(a.model, weights=a.weights, device=a.device, precision=a.precision, runtime=a.runtime)
    print(json.dumps({"model": embedder.signature, "device": str(embedder.device)}))
    for task in a.task:
        result = run_task(a.corpus / task, embedder, a.batch_size, a.workers, a.k, scorer, not a.no_verify, a.libs,
                          a.show_misses and task == "dup", a.vector_store)
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
