"""Arranging a folder by likeness: an order of its photos in which similar photos sit side by side.

The order is a short path through the photos' neighbour graph (a travelling-salesman tour, open at
both ends) built by the greedy-edge heuristic: the most similar pairs are linked first, each photo
linked to at most two others and never into a loop, so the tightest groups (copies, edits, bursts)
become unbroken runs before anything else is attached to them. Only each photo's nearest neighbours
are candidates; the runs left over are then joined end to end the same way. bench/organise.py
compares it with a nearest-neighbour chain, a spectral (Fiedler) order and hierarchical clustering
with optimal leaf order (docs/benchmarks.md).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from vitgallery.core.library import Library
from vitgallery.core.organise.neighbours import nearest_neighbours
from vitgallery.core.organise.vectors import OrganiseError, ProgressCallback, photos_in, step

NEIGHBOURS = 10  # candidate links per photo; copies within 2 places on dup seeds 1/2: 5 gave 97.5/98.8 %, 10 98.6/98.4, 20 98.6/98.6
ENDPOINTS_ALL_PAIRS = 1024  # this many run ends left over or fewer: every pair of ends is a candidate


class _Paths:
    """Runs of photos being linked: at most two links per photo, no loops (union-find over runs)."""

    def __init__(self, n: int):
        self.links: list[list[int]] = [[] for _ in range(n)]
        self.run = list(range(n))

    def _root(self, i: int) -> int:
        while self.run[i] != i:
            self.run[i] = self.run[self.run[i]]
            i = self.run[i]
        return i

    def try_link(self, a: int, b: int) -> bool:
        if len(self.links[a]) >= 2 or len(self.links[b]) >= 2:
            return False
        root_a, root_b = self._root(a), self._root(b)
        if root_a == root_b:
            return False
        self.run[root_a] = root_b
        self.links[a].append(b)
        self.links[b].append(a)
        return True

    def ends(self) -> list[int]:
        """Photos with fewer than two links: both ends of each run (a photo alone is both)."""
        return [i for i, linked in enumerate(self.links) if len(linked) < 2]

    def walk(self) -> list[int]:
        """The runs one after another, each from one of its ends."""
        seen = np.zeros(len(self.links), bool)
        order: list[int] = []
        for start in self.ends():
            if seen[start]:
                continue
            previous, current = -1, start
            while current != -1:
                seen[current] = True
                order.append(current)
                following = [x for x in self.links[current] if x != previous]
                previous, current = current, (following[0] if following else -1)
        return order


def _link_greedily(paths: _Paths, pairs: np.ndarray, similarities: np.ndarray, runs: int) -> int:
    """Link the candidate pairs (m, 2) from the most similar down, until the `runs` are one; returns
    how many links were made."""
    made = 0
    for a, b in pairs[np.argsort(-similarities, kind="stable")].tolist():
        made += paths.try_link(a, b)
        if made == runs - 1:
            break
    return made


def arrange_order(vectors: np.ndarray, *, progress: ProgressCallback | None = None,
                  cancel: threading.Event | None = None) -> np.ndarray:
    """A permutation of the rows (unit vectors) in which similar rows sit side by side."""
    n = len(vectors)
    if n < 3:
        return np.arange(n)
    neighbours, similarities = nearest_neighbours(vectors, NEIGHBOURS, phase="arranging",
                                                  progress=progress, cancel=cancel)
    paths = _Paths(n)
    sources = np.repeat(np.arange(n), neighbours.shape[1])
    runs = n - _link_greedily(paths, np.stack([sources, neighbours.ravel()], axis=1), similarities.ravel(), n)
    # Join the runs left over by their ends: all pairs once few are left, else the ends' neighbours.
    while runs > 1:
        step(progress, cancel, "arranging", n - runs, n)
        ends = np.array(paths.ends())
        if len(ends) <= ENDPOINTS_ALL_PAIRS:
            first, second = np.triu_indices(len(ends), k=1)
            sims = (vectors[ends] @ vectors[ends].T)[first, second]
            pairs = np.stack([ends[first], ends[second]], axis=1)
        else:
            near, sims = nearest_neighbours(vectors[ends], NEIGHBOURS, phase="arranging", cancel=cancel)
            pairs = np.stack([np.repeat(ends, near.shape[1]), ends[near.ravel()]], axis=1)
            sims = sims.ravel()
        made = _link_greedily(paths, pairs, sims, runs)
        if made == 0:
            break  # the ends' neighbours are all ends of their own runs: walk() strings the runs together
        runs -= made
    return np.array(paths.walk(), dtype=np.int64)


def arrange_folder(library: Library, folder: Path, *, progress: ProgressCallback | None = None,
                   cancel: threading.Event | None = None) -> list[Path]:
    """The photos under `folder` arranged by likeness. Photos the library has no vector for (not indexed
    yet, unreadable) follow, by name."""
    rel = library.relative_path(folder)
    if rel is None:
        raise OrganiseError(f"{folder} is not inside the library's folder {library.root}")
    folder = library.root / rel  # as the library names its photos: no "..", no link to the folder
    paths, vectors = library.search_vectors(folder)
    order = [paths[i] for i in arrange_order(vectors, progress=progress, cancel=cancel)]
    placed = set(order)
    return order + [p for p in photos_in(folder) if p not in placed]
