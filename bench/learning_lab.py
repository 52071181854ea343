#!/usr/bin/env python3
"""What the library's whitening needs to learn, against what the learning costs (issue 18, point 3).

    python bench/learning_lab.py /tmp/speed-libs/vg-corpus-dup:/tmp/vg-corpus/dup ... [--draws 3]

Each argument is LIBRARY:TASK_DIR: a library whose every photo was taught with all 3 views (the corpora
hold fewer than WHITENING_SAMPLE photos, so every photo is taught; the rule gives 3 views only below 256
photos: `bench/retrieval.py CORPUS --libs LIBS --all-views` makes them), stored in
preprocess.TEACHING_KINDS order: edited copy 1, mirrored, edited copy 2; and the corpus task it indexed
(truth.json). Libraries indexed before that order (commit 0549b72) stored the mirror first. No forward pass
runs here: each configuration fits the whitening from a subset of the stored views, whitens the stored
vectors, ranks every photo against all others by exact cosine (top 100), and scores with the shared
scorer. "gain kept" = (mAP - mAP without whitening) / (mAP of the full recipe - mAP without); "passes"
= the forward passes the learning adds per library photo (the full recipe: 3).

Configurations (SHARE of the photos taught, drawn at random, --draws draws averaged):
  none            no whitening (plain cosine of the raw vectors)
  pca-P           PCA whitening of the library's own vectors, power P (no extra pass)
  views-V@SHARE   the views V of each taught photo: m mirror, e1/e2 the edited copies; "one" = one
                  view per photo, the kind cycling over photos; "rule" = the library's rule
                  (preprocess.teaching_views_per_photo: the first of copy 1, mirror, copy 2 that make ~640 pairs)
  ...~S           any views-... configuration fitted with shrink S instead of the library's (~dm:K: K x D / pairs)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sqlite3
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vitgallery.core.preprocess import teaching_views_per_photo
from vitgallery.core.whitening import LibraryWhitening

SCORER = Path(__file__).resolve().parents[2] / "shared" / "bench" / "score.py"  # beside the repository; --scorer
SHRINK = 0.1  # the library's WHITENING_SHRINK
TOP = 100
VIEW_NAMES = ("e1", "m", "e2")  # as stored: preprocess.TEACHING_KINDS


@dataclass
class Corpus:
    name: str
    names: list[str]  # file names, row order of the arrays
    vectors: np.ndarray  # (N, D) raw
    views: np.ndarray  # (N, 3, D): edited 1, mirrored, edited 2
    truth: dict


def load_scorer(path: Path):
    spec = importlib.util.spec_from_file_location("bench_score", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.score


def read_library(library: Path, task_dir: Path) -> Corpus:
    db = sqlite3.connect(f"file:{library / 'library.sqlite3'}?mode=ro", uri=True)
    rows = db.execute("SELECT f.path, f.vector, v.vectors FROM files f JOIN learning_views v ON v.file_id = f.id"
                      " WHERE f.vector IS NOT NULL ORDER BY f.path").fetchall()
    total = db.execute("SELECT COUNT(*) FROM files WHERE vector IS NOT NULL").fetchone()[0]
    db.close()
    if len(rows) != total:
        raise SystemExit(f"{library}: {len(rows)} of {total} photos have teaching views; index it whole first")
    vectors = np.stack([np.frombuffer(r[1], np.float32) for r in rows])
    views = np.stack([np.frombuffer(r[2], np.float32).reshape(-1, vectors.shape[1]) for r in rows])
    return Corpus(f"{task_dir.parent.name}/{task_dir.name}", [Path(r[0]).name for r in rows], vectors, views,
                  json.loads((task_dir / "truth.json").read_text()))


def rank(vectors: np.ndarray, names: list[str]) -> dict[str, list[str]]:
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    top = np.argsort(-sims, axis=1)[:, :TOP]
    return {name: [names[j] for j in row] for name, row in zip(names, top)}


def pca_whitened(vectors: np.ndarray, power: float) -> np.ndarray:
    """The library's own vectors whitened by their covariance raised to -power/2 (no pairs, no pass),
    eigenvalues shrunk as LibraryWhitening's are."""
    centred = vectors - vectors.mean(axis=0)
    eigval, eigvec = np.linalg.eigh(centred.T @ centred / len(centred))
    eigval = np.maximum(eigval, 0.0) + SHRINK * max(float(eigval.mean()), 1e-12)
    out = centred @ (eigvec * eigval ** (-power / 2) @ eigvec.T)
    return (out / (np.linalg.norm(out, axis=1, keepdims=True) + 1e-12)).astype(np.float32)


def whitened(corpus: Corpus, config: str, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """(vectors to rank, extra forward passes per photo)."""
    if config == "none":
        return corpus.vectors, 0.0
    if config.startswith("pca-"):
        return pca_whitened(corpus.vectors, float(config[4:])), 0.0
    config, _, shrink_text = config.partition("~")
    views, _, share = config.removeprefix("views-").partition("@")
    count = len(corpus.names)
    taught = rng.permutation(count)[: max(1, round(float(share or 1) * count))]
    if views == "rule":  # the library's: teaching_views_per_photo, kinds in TEACHING_KINDS order
        columns = list(range(teaching_views_per_photo(len(taught))))
        own = np.repeat(corpus.vectors[taught], len(columns), axis=0)
        other = corpus.views[taught][:, columns].reshape(-1, corpus.vectors.shape[1])
        passes = len(taught) * len(columns) / count
    elif views == "one":
        kinds = np.arange(len(taught)) % len(VIEW_NAMES)
        own, other = corpus.vectors[taught], corpus.views[taught, kinds]
        passes = len(taught) / count
    else:
        columns = [VIEW_NAMES.index(v) for v in views.split("+")]
        own = np.repeat(corpus.vectors[taught], len(columns), axis=0)
        other = corpus.views[taught][:, columns].reshape(-1, corpus.vectors.shape[1])
        passes = len(taught) * len(columns) / count
    shrink = SHRINK
    if shrink_text.startswith("dm:"):  # in proportion to dimensions over pairs: the sample's noise
        shrink = float(shrink_text[3:]) * own.shape[1] / len(own)
    elif shrink_text:
        shrink = float(shrink_text)
    fit = LibraryWhitening.fit_pairs(corpus.vectors, own, other, shrink=shrink)
    return fit.apply(corpus.vectors), passes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pairs", nargs="+", help="LIBRARY:TASK_DIR")
    ap.add_argument("--configs", nargs="+", default=[
        "none", "pca-0.5", "pca-1.0", "views-m+e1+e2", "views-m", "views-e1", "views-m+e1", "views-e1+e2",
        "views-one", "views-m+e1+e2@0.5", "views-m+e1+e2@0.25", "views-one@0.5", "views-one@0.25", "views-m@0.5",
        "views-e1@0.5", "views-m+e1@0.5", "views-m+e1@0.25"])
    ap.add_argument("--draws", type=int, default=3, help="random draws of the taught photos, averaged")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--scorer", type=Path, default=SCORER)
    a = ap.parse_args()

    score = load_scorer(a.scorer)
    corpora = []
    for pair in a.pairs:
        library, _, task = pair.partition(":")
        corpora.append(read_library(Path(library), Path(task)))
    table: dict[str, dict[str, float]] = {}
    passes: dict[str, float] = {}
    for config in a.configs:
        table[config] = {}
        draws = 1 if config == "none" or config.startswith("pca-") or config == "views-m+e1+e2" else a.draws
        for corpus in corpora:
            maps, costs = [], []
            for draw in range(draws):
                vectors, cost = whitened(corpus, config, np.random.default_rng(draw))
                maps.append(score(corpus.truth, rank(vectors, corpus.names))["mAP"])
                costs.append(cost)
            table[config][corpus.name] = statistics.mean(maps)
            passes[config] = statistics.mean(costs)
        print(f"# {config}: " + " ".join(f"{v:.2f}" for v in table[config].values()), file=sys.stderr)

    names = [c.name for c in corpora]
    print("| configuration | passes / photo | " + " | ".join(names) + " | gain kept, min (mean) |")
    print("|---" * (len(names) + 3) + "|")
    for config in a.configs:
        kept = [(table[config][n] - table["none"][n]) / (table["views-m+e1+e2"][n] - table["none"][n]) for n in names]
        print(f"| {config} | {passes[config]:.2f} | " + " | ".join(f"{table[config][n]:.2f}" for n in names)
              + f" | {100 * min(kept):.1f} % ({100 * statistics.mean(kept):.1f} %) |")
    if a.json:
        a.json.write_text(json.dumps({"maps": table, "passes": passes}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
