#!/usr/bin/env python3
"""Refining a search with marks, on the sem task, with a simulated user.

usage: python bench/refine.py CORPUS_DIR [CORPUS_DIR ...] --weights FILE [--libs DIR] [--variants]

Every sem photo is searched (whole, through Library.search); the user then marks the top MARKED results
by the truth: same category "more like this", others "not this"; one round. Prints per corpus the
scorer's mAP / R@1 / P@5 for:
  before       the first search
  marks only   the first ranking with the liked photos moved to the front and the unliked left out
               (what the marks give without moving the query: the floor a refinement must beat)
  refined      Library.search(like=..., unlike=...): the moved query, re-ranked as usual
--variants also scores other ways of moving the query over the whitened cosines of every pair (from
Library.search without re-rank, so no private state is read), each with the unliked left out:
  rocchio a/b/c    a * q + b * mean(liked) - c * mean(unliked)
  max              each photo's best cosine to the query or any liked photo
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from vitgallery.core.library import Library
from vitgallery.core.models import DEFAULT_MODEL, Embedder, load_embedder

sys.path.insert(0, str(Path(__file__).resolve().parent))
from region_search import open_library  # noqa: E402
from retrieval import SCORER, load_scorer  # noqa: E402

MARKED = 10  # results the simulated user looks at and marks


def marks(ranking: list[str], labels: dict[str, str], query: str) -> tuple[list[str], list[str]]:
    seen = ranking[:MARKED]
    liked = [n for n in seen if labels[n] == labels[query]]
    return liked, [n for n in seen if n not in liked]


def marks_only(ranking: list[str], liked: list[str], unliked: list[str]) -> list[str]:
    return liked + [n for n in ranking if n not in liked and n not in unliked]


def whitened_cosines(library: Library, images: Path, names: list[str]) -> np.ndarray:
    """(n, n) cosine of every pair in the library's whitened space, read through search."""
    index = {n: i for i, n in enumerate(names)}
    sims = np.eye(len(names))
    for i, name in enumerate(names):
        for hit in library.search(images / name, k=len(names), verify=False):
            sims[i, index[hit.path.name]] = hit.cosine
    return sims


def ranked(names: list[str], scores: np.ndarray, left_out: set[int]) -> list[str]:
    return [names[i] for i in np.argsort(-scores, kind="stable") if i not in left_out]


def variant_rankings(sims: np.ndarray, names: list[str], first: dict[str, list[str]],
                     labels: dict[str, str]) -> dict[str, dict[str, list[str]]]:
    index = {n: i for i, n in enumerate(names)}
    weights = [(1.0, b, c) for b in (0.5, 0.75, 1.0, 1.5, 2.0) for c in (0.0, 0.1, 0.25, 0.5)]
    out: dict[str, dict[str, list[str]]] = {f"rocchio {a:g}/{b:g}/{c:g}": {} for a, b, c in weights}
    out["max"] = {}
    for q, name in enumerate(names):
        liked, unliked = marks(first[name], labels, name)
        li, ui = [index[n] for n in liked], [index[n] for n in unliked]
        drop = set(ui) | {q}
        for a, b, c in weights:
            # Ranking by the dot product with the moved query = this mix of cosines (the norm is common).
            scores = a * sims[q] + (b * sims[li].mean(0) if li else 0) - (c * sims[ui].mean(0) if ui else 0)
            out[f"rocchio {a:g}/{b:g}/{c:g}"][name] = ranked(names, scores, drop)
        out["max"][name] = ranked(names, sims[[q] + li].max(0), drop)
    return out


def run_corpus(corpus: Path, embedder: Embedder, scorer, libs: Path | None, variants: bool) -> None:
    task_dir = corpus / "sem"
    truth = json.loads((task_dir / "truth.json").read_text())
    labels = truth["labels"]
    images = task_dir / "images"
    names = sorted(p.name for p in images.iterdir())
    with tempfile.TemporaryDirectory() as scratch:
        library = open_library(task_dir, embedder, libs, scratch)
        first = {n: [h.path.name for h in library.search(images / n, k=len(names))] for n in names}
        refined = {}
        started = time.perf_counter()
        for name in names:
            liked, unliked = marks(first[name], labels, name)
            hits = library.search(images / name, k=len(names), like=[images / n for n in liked],
                                  unlike=[images / n for n in unliked])
            refined[name] = [h.path.name for h in hits]
        refine_ms = 1000 * (time.perf_counter() - started) / len(names)
        sims = whitened_cosines(library, images, names) if variants else None
        library.close()
    rows = [("before", first),
            ("marks only", {n: marks_only(first[n], *marks(first[n], labels, n)) for n in names}),
            ("refined", refined)]
    for label, rankings in rows:
        extra = {"query_ms": round(refine_ms, 1)} if label == "refined" else {}
        print(json.dumps({"corpus": corpus.name, "ranking": label, **scorer(truth, rankings), **extra}), flush=True)
    if sims is not None:
        for label, rankings in variant_rankings(sims, names, first, labels).items():
            print(json.dumps({"corpus": corpus.name, "ranking": label, "re-rank": False, **scorer(truth, rankings)}),
                  flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpora", type=Path, nargs="+")
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--weights")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--libs", type=Path, help="reuse (or keep) the libraries in LIBS/<corpus>-sem")
    ap.add_argument("--scorer", type=Path, default=SCORER)
    ap.add_argument("--variants", action="store_true", help="also score other ways of moving the query")
    a = ap.parse_args()
    scorer = load_scorer(a.scorer)
    embedder = load_embedder(a.model, weights=a.weights, device=a.device)
    print(json.dumps({"model": embedder.signature}))
    for corpus in a.corpora:
        run_corpus(corpus, embedder, scorer, a.libs, a.variants)
    return 0


if __name__ == "__main__":
    sys.exit(main())
