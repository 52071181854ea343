#!/usr/bin/env python3
"""Organising benchmark: arranging by likeness, automatic groups, sorting by example, on the corpora.

usage: python bench/organise.py {arrange,groups,sort,sort-open,sort-copies} CORPUS [CORPUS ...] --libs DIR [--weights FILE]
       python bench/organise.py watch CORPUS [--burst 1000] [--model tiny-test] [--weights FILE]
       python bench/organise.py arrange-scale N [N ...]

Each CORPUS is made by ../shared/bench/make_corpus.py. The libraries are DIR/<corpus>-<task> (indexed
there with --weights when missing; a library the lead built elsewhere must be copied first, since
opening one may migrate it). Every figure is printed as one JSON line per corpus and method.

- arrange (dup task): the share of photos that have copies in the corpus with one of them within 2
  places of the order (goal >= 90 %), for the package's order and the alternatives measured against it.
- arrange-scale: the seconds the package's order takes for N synthetic photos (clusters of copies
  and loose photos).
- groups (sem task): cluster purity, adjusted Rand index (photos left ungrouped count as groups of
  their own) and the share of photos grouped, for HDBSCAN and agglomerative clustering.
- sort (sem task): each category split half examples / half unsorted (examples: the first half of a
  seeded shuffle, rounded up), --splits times; accuracy overall, on the confident suggestions and their
  share (pooled over the splits), for the package's choice, the head alone and the neighbour vote alone.
  With --finetune (and --weights, the library's weights file): also the package's choice with
  `vitgallery sort --finetune`, and the fine-tuned model alone.
- sort-open (sem task): --folders categories get a folder of at most --examples photos; the share of
  their other photos that is sure (and right), and of the other categories' photos that is sure (each
  of those would be moved into a wrong folder), with the confidence alone and with like_the_examples.
- sort-copies (dup task): the same, each picture's copies (its original and edits) a category: a
  folder of --examples copies of one picture; are its other copies sure, and the other pictures not?
- watch: a watched library of 8 photos while --burst photos of CORPUS/dup/images are copied in at once,
  then one more: the batches, and how long until the photos are searchable. The default tiny-test
  model measures the watcher itself; --model dinov2-s14 --weights FILE adds the real embedding cost.
"""

from __future__ import annotations

import argparse
import json
import queue
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from vitgallery.core.library import Library
from vitgallery.core.models import DEFAULT_MODEL, load_embedder
from vitgallery.core.organise.arrange import arrange_order
from vitgallery.core.organise.finetune import LastBlockTuner
from vitgallery.core.organise.groups import cluster_labels
from vitgallery.core.organise.sort import (
    CONFIDENT_FROM,
    HEAD_LEARNING_RATE,
    HEAD_LOGIT_SCALE,
    NeighbourVote,
    choose_classifier,
    fine_tuned_if_better,
    like_the_examples,
    train_head,
)
from vitgallery.core.organise.watch import FolderWatcher


def library_for(corpus: Path, task: str, libs: Path, weights: str | None) -> Library:
    images = corpus / task / "images"
    library = Library.open(images, libs / f"{corpus.name}-{task}")
    if library.model_signature is None:
        print(f"indexing {images} into {library.library_dir}", file=sys.stderr)
        library.index(load_embedder(DEFAULT_MODEL, weights=weights))
    return library


def truth(corpus: Path, task: str) -> dict:
    return json.loads((corpus / task / "truth.json").read_text())


# -- arrange ---------------------------------------------------------------------------------------

def copies_nearby(order: list[str], group_of: dict[str, str], reach: int = 2) -> float:
    """Share of the photos that have copies with one of them within `reach` places."""
    with_copies = [i for i, name in enumerate(order) if name in group_of]
    near = sum(1 for i in with_copies
               if any(order[j] in group_of and group_of[order[j]] == group_of[order[i]]
                      for j in range(max(0, i - reach), min(len(order), i + reach + 1)) if j != i))
    return near / len(with_copies)


def nn_chain(vectors: np.ndarray) -> np.ndarray:
    """Start at the first photo, always step to the most similar one not visited yet."""
    sims = vectors @ vectors.T
    visited = np.zeros(len(vectors), bool)
    order = [0]
    visited[0] = True
    for _ in range(len(vectors) - 1):
        row = np.where(visited, -np.inf, sims[order[-1]])
        order.append(int(row.argmax()))
        visited[order[-1]] = True
    return np.array(order)


def spectral(vectors: np.ndarray, k: int = 10) -> np.ndarray:
    """Photos sorted by the Fiedler vector of the normalised Laplacian of the k-nearest-neighbour graph."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import laplacian
    from scipy.sparse.linalg import eigsh

    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    nearest = np.argsort(-sims, axis=1)[:, :k]
    rows = np.repeat(np.arange(len(vectors)), k)
    weights = np.maximum(sims[rows, nearest.ravel()], 0) + 1e-6
    graph = csr_matrix((weights, (rows, nearest.ravel())), shape=(len(vectors),) * 2)
    graph = graph.maximum(graph.T)
    _, vecs = eigsh(laplacian(graph, normed=True), k=2, sigma=-1e-3, which="LM")
    return np.argsort(vecs[:, 1])


def leaf_order(vectors: np.ndarray) -> np.ndarray:
    """Average-linkage hierarchical clustering, leaves in optimal order (scipy); O(n^2) memory."""
    from scipy.cluster.hierarchy import leaves_list, linkage, optimal_leaf_ordering
    from scipy.spatial.distance import pdist

    distances = pdist(vectors, metric="cosine")
    return leaves_list(optimal_leaf_ordering(linkage(distances, "average"), distances))


ARRANGERS = {"package (greedy edge)": arrange_order, "nearest-neighbour chain": nn_chain,
             "spectral (Fiedler)": spectral, "average linkage + optimal leaf order": leaf_order}


def bench_arrange(corpus: Path, library: Library) -> None:
    # Distractors are groups of one in truth.json: they have no copies.
    group_of = {name: group for group, names in truth(corpus, "dup")["groups"].items() if len(names) > 1
                for name in names}
    paths, vectors = library.search_vectors()
    names = [p.name for p in paths]
    import torch  # noqa: F401  (imported before the clock starts: the package's order uses it)

    for method, arrange in ARRANGERS.items():
        started = time.perf_counter()
        order = [names[i] for i in arrange(vectors)]
        seconds = time.perf_counter() - started
        print(json.dumps({"corpus": corpus.name, "method": method, "photos": len(order),
                          "copies_within_2": round(100 * copies_nearby(order, group_of), 2),
                          "seconds": round(seconds, 3)}), flush=True)


def bench_arrange_scale(sizes: list[int]) -> None:
    """The package's order on synthetic libraries: 384-d unit vectors in clusters of 8 (copies) and as many
    loose photos."""
    import torch  # noqa: F401

    rng = np.random.default_rng(0)
    for n in sizes:
        copies = 8 * (n // 16)
        centres = rng.normal(size=(copies // 8, 384))
        vectors = np.concatenate([np.repeat(centres, 8, axis=0) + 0.5 * rng.normal(size=(copies, 384)),
                                  rng.normal(size=(n - copies, 384))]).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        started = time.perf_counter()
        arrange_order(vectors)
        print(json.dumps({"photos": n, "seconds": round(time.perf_counter() - started, 2)}), flush=True)


# -- groups ----------------------------------------------------------------------------------------

def grouping_scores(labels: np.ndarray, categories: list[str]) -> dict:
    from sklearn.metrics import adjusted_rand_score

    grouped = labels >= 0
    purity = 0.0
    if grouped.any():
        hits = 0
        for label in np.unique(labels[grouped]):
            members = [categories[i] for i in np.flatnonzero(labels == label)]
            hits += max(members.count(c) for c in set(members))
        purity = hits / int(grouped.sum())
    # Ungrouped photos are groups of one each for the Rand index.
    singletons = np.where(grouped, labels, labels.max(initial=0) + 1 + np.arange(len(labels)))
    return {"purity": round(100 * purity, 2), "ari": round(adjusted_rand_score(categories, singletons), 4),
            "grouped": round(100 * float(grouped.mean()), 2), "groups": int(len(np.unique(labels[grouped])))}


def agglomerative(vectors: np.ndarray, min_size: int, threshold: float, linkage: str) -> np.ndarray:
    from sklearn.cluster import AgglomerativeClustering

    labels = AgglomerativeClustering(n_clusters=None, distance_threshold=threshold, metric="cosine",
                                     linkage=linkage).fit_predict(vectors)
    sizes = np.bincount(labels)
    return np.where(sizes[labels] >= min_size, labels, -1)


def bench_groups(corpus: Path, library: Library, min_sizes: list[int]) -> None:
    labels_of = truth(corpus, "sem")["labels"]
    paths, vectors = library.search_vectors()
    categories = [labels_of[p.name] for p in paths]
    from sklearn.cluster import HDBSCAN

    for min_size in min_sizes:
        runs = [("package", cluster_labels(vectors, min_size))]
        for min_samples, selection in ((None, "eom"), (None, "leaf"), (1, "eom")):
            labels = HDBSCAN(min_cluster_size=min_size, min_samples=min_samples,
                             cluster_selection_method=selection).fit_predict(vectors)
            runs.append((f"HDBSCAN min_samples={min_samples} {selection}", labels))
        for linkage in ("average", "complete"):
            for threshold in (0.7, 0.8, 0.9):
                runs.append((f"agglomerative {linkage} {threshold}", agglomerative(vectors, min_size, threshold, linkage)))
        for method, labels in runs:
            print(json.dumps({"corpus": corpus.name, "method": method, "min_size": min_size,
                              **grouping_scores(labels, categories)}), flush=True)


# -- sort ------------------------------------------------------------------------------------------

def half_split(categories: list[str], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(example rows, unsorted rows): per category the first half of a seeded shuffle, rounded up, are examples."""
    rng = np.random.default_rng(seed)
    examples, unsorted = [], []
    for category in sorted(set(categories)):
        rows = rng.permutation([i for i, c in enumerate(categories) if c == category])
        cut = len(rows) - len(rows) // 2
        examples += rows[:cut].tolist()
        unsorted += rows[cut:].tolist()
    return np.array(examples), np.array(unsorted)


def bench_sort(corpus: Path, library: Library, splits: int, finetune_weights: str | None) -> None:
    """Every method on `splits` half/half splits; the scores pool the unsorted photos of all splits."""
    labels_of = truth(corpus, "sem")["labels"]
    paths, vectors = library.search_vectors()
    categories = [labels_of[p.name] for p in paths]
    names = sorted(set(categories))
    labels = np.array([names.index(c) for c in categories])
    pooled: dict[str, list] = {"package": [], "head alone": [], "knn alone": []}
    tuner = inputs = None
    if finetune_weights is not None:
        pooled.update({"package with --finetune": [], "fine-tuned alone": []})
        tuner = LastBlockTuner(library.load_embedder(weights=finetune_weights), library.search_space().whitening)
        read, inputs, problems = tuner.inputs(paths, phase="preparing")
        assert read == paths and not problems, problems
    chosen, seconds = [], []
    for split in range(splits):
        examples, unsorted = half_split(categories, split)
        x, y = vectors[examples], labels[examples]
        started = time.perf_counter()
        choice = choose_classifier(x, y, len(names))
        seconds.append(time.perf_counter() - started)
        chosen.append(choice.classifier.method)
        runs = [("package", choice.classifier, vectors[unsorted]), ("head alone", train_head(x, y, len(names)), vectors[unsorted]),
                ("knn alone", NeighbourVote(x, y, len(names)), vectors[unsorted])]
        if tuner is not None:
            accuracy = dict(choice.accuracy)
            started = time.perf_counter()
            tuned = fine_tuned_if_better(tuner, inputs[examples], y, len(names), accuracy)
            chosen_tuned = tuned if tuned is not None else choice.classifier
            alone = tuned or tuner.train(inputs[examples], y, len(names), scale=HEAD_LOGIT_SCALE,
                                         head_learning_rate=HEAD_LEARNING_RATE)
            print(json.dumps({"corpus": corpus.name, "split": split, "held_out_accuracy": accuracy,
                              "finetuned_kept": tuned is not None,
                              "seconds": round(time.perf_counter() - started, 1)}), flush=True)
            tuned_inputs = inputs[unsorted][:, 0]
            runs += [("package with --finetune", chosen_tuned, tuned_inputs if tuned is not None else vectors[unsorted]),
                     ("fine-tuned alone", alone, tuned_inputs)]
        for method, classifier, features in runs:
            pooled[method].append((classifier.probabilities(features), labels[unsorted], CONFIDENT_FROM[classifier.method]))
    for method, runs in pooled.items():
        probabilities = np.concatenate([r[0] for r in runs])
        truths = np.concatenate([r[1] for r in runs])
        thresholds = np.concatenate([np.full(len(r[1]), r[2]) for r in runs])
        predicted, confidence = probabilities.argmax(axis=1), probabilities.max(axis=1)
        right, sure = predicted == truths, confidence >= thresholds
        result = {"corpus": corpus.name, "method": method, "splits": splits, "unsorted_per_split": len(runs[0][1]),
                  "overall": round(100 * float(right.mean()), 2),
                  "confident": round(100 * float(right[sure].mean()), 2) if sure.any() else None,
                  "confident_share": round(100 * float(sure.mean()), 2)}
        if method == "package":
            result.update({"chose": chosen, "choose_and_train_seconds": round(float(np.median(seconds)), 3)})
        print(json.dumps(result), flush=True)


def bench_sort_open(corpus: Path, library: Library, folders: int, examples: int, splits: int,
                    task: str = "sem") -> None:
    """Photos like none of the folders: `folders` categories get a folder of at most `examples` photos
    each; the rest of those categories are to sort, and so is every photo of the other categories, which
    should not be sure. The classifier's confidence alone against it with `like_the_examples`. Task
    "dup" (sort-copies): each picture's copies are a category, so a folder holds copies of one picture."""
    if task == "dup":
        labels_of = {name: group for group, names in truth(corpus, "dup")["groups"].items() for name in names}
    else:
        labels_of = truth(corpus, "sem")["labels"]
    paths, vectors = library.search_vectors()
    categories = np.array([labels_of[p.name] for p in paths])
    names = sorted(set(categories.tolist()))
    if task == "dup":  # pictures with copies left to sort beside the folder's
        names = [name for name in names if (categories == name).sum() > examples]
    counts = {rule: np.zeros(5, dtype=int) for rule in ("confidence", "and like the examples")}
    for split in range(splits):
        rng = np.random.default_rng(split)
        chosen = sorted(rng.choice(names, size=folders, replace=False).tolist())
        example_rows, inside = [], []
        for category in chosen:
            rows = rng.permutation(np.flatnonzero(categories == category))
            cut = min(examples, len(rows) - len(rows) // 2)
            example_rows += rows[:cut].tolist()
            inside += rows[cut:].tolist()
        outside = np.flatnonzero(~np.isin(categories, chosen))
        labels = np.array([chosen.index(categories[i]) for i in example_rows])
        classifier = choose_classifier(vectors[example_rows], labels, len(chosen)).classifier
        for rows, own in ((np.array(inside), True), (outside, False)):
            probabilities = classifier.probabilities(vectors[rows])
            best = probabilities.argmax(axis=1)
            confident = probabilities.max(axis=1) >= CONFIDENT_FROM[classifier.method]
            alike = like_the_examples(vectors[rows], best, vectors[example_rows], labels)
            for rule, sure in (("confidence", confident), ("and like the examples", confident & alike)):
                if own:
                    right = best == np.array([chosen.index(categories[i]) for i in rows])
                    counts[rule][:3] += (len(rows), int(sure.sum()), int((sure & right).sum()))
                else:
                    counts[rule][3:] += (len(rows), int(sure.sum()))
    for rule, (own, own_sure, own_right, other, other_sure) in counts.items():
        print(json.dumps({"corpus": corpus.name, "task": task, "folders": folders, "examples": examples,
                          "splits": splits, "rule": rule, "own_sure": round(100 * own_sure / own, 1),
                          "own_sure_right": round(100 * own_right / max(own_sure, 1), 1),
                          "others_sure": round(100 * other_sure / other, 1)}), flush=True)


# -- watch ---------------------------------------------------------------------------------------

def bench_watch(source: Path, burst: int, model: str, weights: str | None) -> None:
    """A library of a few photos is watched while `burst` photos of `source` are copied in at once (a
    camera import), then one more photo: how many batches, and how long until each is searchable."""
    photos = sorted(p for p in source.iterdir() if p.suffix.lower() == ".jpg")[:burst + 9]
    # The last photo arrives alone after the burst, which is smaller when the source has too few photos.
    arriving, last = photos[8:-1], photos[-1]
    embedder = load_embedder(model, weights=weights)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "photos"
        root.mkdir()
        for photo in photos[:8]:
            shutil.copy(photo, root)
        library = Library.open(root, Path(scratch) / "library")
        library.index(embedder)
        batches: queue.Queue = queue.Queue()
        with FolderWatcher(library, embedder, on_batch=batches.put):
            time.sleep(1)  # the observer is running
            started = time.perf_counter()
            for photo in arriving:
                shutil.copy(photo, root)
            copied = time.perf_counter() - started
            count, seen = 8 + len(arriving), []
            while library.status().photos < count:
                seen.append(batches.get(timeout=3600))
            burst_s = time.perf_counter() - started
            started = time.perf_counter()
            shutil.copy(last, root)
            while library.status().photos < count + 1:
                batches.get(timeout=600)
            single_s = time.perf_counter() - started
        library.close()
    print(json.dumps({"model": embedder.signature, "burst": len(arriving), "copy_seconds": round(copied, 2),
                      "burst_batches": len(seen), "burst_photos_per_batch": [b.summary.added for b in seen],
                      "burst_searchable_after_s": round(burst_s, 2), "one_photo_searchable_after_s": round(single_s, 2)}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["arrange", "arrange-scale", "groups", "sort", "sort-open", "sort-copies", "watch"])
    ap.add_argument("corpora", nargs="+", help="corpus folders (arrange-scale: numbers of photos)")
    ap.add_argument("--libs", type=Path, help="where the corpora's libraries are (all but watch)")
    ap.add_argument("--weights", help="model weights for indexing a corpus whose library is missing")
    ap.add_argument("--min-size", type=int, nargs="+", default=[3], help="groups: the minimum group sizes")
    ap.add_argument("--splits", type=int, default=5, help="sort: how many seeded examples/unsorted splits")
    ap.add_argument("--folders", type=int, nargs="+", default=[2, 3, 5], help="sort-open: folders to sort into")
    ap.add_argument("--examples", type=int, default=4, help="sort-open: examples per folder, at most")
    ap.add_argument("--burst", type=int, default=1000, help="watch: photos copied in at once")
    ap.add_argument("--model", default="tiny-test", help="watch: the model (tiny-test measures the watcher alone)")
    ap.add_argument("--finetune", action="store_true", help="sort: measure --finetune too (needs --weights)")
    a = ap.parse_args()
    if a.what == "arrange-scale":
        bench_arrange_scale([int(c) for c in a.corpora])
        return 0
    if a.what == "watch":
        bench_watch(Path(a.corpora[0]) / "dup" / "images", a.burst, a.model, a.weights)
        return 0
    if a.libs is None:
        ap.error("--libs is needed")
    if a.finetune and a.weights is None:
        ap.error("--finetune needs --weights")
    for corpus in map(Path, a.corpora):
        task = "dup" if a.what in ("arrange", "sort-copies") else "sem"
        library = library_for(corpus, task, a.libs, a.weights)
        try:
            if a.what == "arrange":
                bench_arrange(corpus, library)
            elif a.what == "groups":
                bench_groups(corpus, library, a.min_size)
            elif a.what in ("sort-open", "sort-copies"):
                for folders in a.folders:
                    bench_sort_open(corpus, library, folders, a.examples, a.splits, task)
            else:
                bench_sort(corpus, library, a.splits, a.weights if a.finetune else None)
        finally:
            library.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
