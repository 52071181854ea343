"""Automatic groups: the library clustered into visual groups (subjects, places, events), each with a
representative photo; groups can be named (the name follows the group when the library changes) and
moved into a folder (logged, undoable with Library.undo).

Clustering is scikit-learn's HDBSCAN over the photos' vectors in the library's search space: it finds
groups of any number without being told how many, and leaves photos that belong nowhere ungrouped
instead of forcing them into a group. bench/organise.py groups compares it with agglomerative
clustering on the sem corpora (docs/benchmarks.md).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vitgallery.core.duplicates.actions import ActionReport
from vitgallery.core.library import Library
from vitgallery.core.organise.vectors import OrganiseError, ProgressCallback, step

log = logging.getLogger(__name__)

DEFAULT_MIN_GROUP = 3  # the smallest group worth showing; the user's size control changes it
# A stored name goes to the new group that shares at least this share (Jaccard) of its photos.
NAME_FOLLOWS_OVERLAP = 0.5


@dataclass(frozen=True)
class PhotoGroup:
    members: tuple[Path, ...]  # the most typical photo first: the one closest to the group's centre
    fingerprints: frozenset[str] = field(repr=False)  # the members' contents, which a name is tied to
    name: str | None = None

    @property
    def representative(self) -> Path:
        return self.members[0]


@dataclass
class Grouping:
    groups: list[PhotoGroup]  # largest first
    ungrouped: list[Path]  # photos that belong to no group of at least the minimum size


def cluster_labels(vectors: np.ndarray, min_size: int) -> np.ndarray:
    """A group number per row, -1 for rows in no group: the groups found at the default size (at 2 when
    pairs are asked for), those under `min_size` left out. HDBSCAN asked for larger clusters itself found
    none at all where the photos make one large group and a few small ones (it never takes the whole set
    for one cluster): on the public sem corpora at 5, ARI 0.06 and 0.18 against 0.19 and 0.22 this way."""
    from sklearn.cluster import HDBSCAN

    found_at = min(min_size, DEFAULT_MIN_GROUP)
    if len(vectors) < max(found_at, 2):
        return np.full(len(vectors), -1)
    labels = HDBSCAN(min_cluster_size=found_at, copy=True).fit_predict(vectors)
    sizes = np.bincount(labels[labels >= 0], minlength=1)
    return np.where((labels >= 0) & (sizes[np.maximum(labels, 0)] >= min_size), labels, -1)


def find_groups(library: Library, *, min_size: int = DEFAULT_MIN_GROUP, under: Path | None = None,
                progress: ProgressCallback | None = None, cancel: threading.Event | None = None) -> Grouping:
    """Cluster the library's photos (or those under a folder) into groups of at least `min_size`."""
    if min_size < 2:
        raise OrganiseError("a group has at least 2 photos")
    step(progress, cancel, "grouping", 0, 1)
    paths, vectors = library.search_vectors(under)
    labels = cluster_labels(vectors, min_size)
    step(progress, cancel, "grouping", 1, 1)
    fingerprints = {library.root / row.path: row.fingerprint for row in library.photos()}
    groups = []
    for label in np.unique(labels[labels >= 0]):
        rows = np.flatnonzero(labels == label)
        centre = vectors[rows].mean(axis=0)
        rows = rows[np.argsort(-(vectors[rows] @ centre), kind="stable")]
        members = tuple(paths[i] for i in rows)
        groups.append(PhotoGroup(members, frozenset(fingerprints[p] for p in members if p in fingerprints)))
    groups.sort(key=lambda g: (-len(g.members), str(g.representative)))
    return Grouping(_with_names(library, groups), [paths[i] for i in np.flatnonzero(labels < 0)])


def _overlap(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def found_again(previous: PhotoGroup, groups: list[PhotoGroup]) -> int | None:
    """Which of `groups` is `previous` found again (most of its photos' contents, wherever they are now,
    as a name follows a group), or None."""
    return _sharing_most(previous.fingerprints, groups)


def _sharing_most(fingerprints: frozenset[str], groups: list[PhotoGroup]) -> int | None:
    """The group sharing the most of these photo contents, if it shares enough (NAME_FOLLOWS_OVERLAP)."""
    scores = [_overlap(fingerprints, g.fingerprints) for g in groups]
    best = int(np.argmax(scores)) if scores else -1
    return best if best >= 0 and scores[best] >= NAME_FOLLOWS_OVERLAP else None


def _with_names(library: Library, groups: list[PhotoGroup]) -> list[PhotoGroup]:
    """Each stored name on the group that shares most of its photos, if it shares enough."""
    names: dict[int, str] = {}
    for stored in library.store.group_names():
        best = _sharing_most(frozenset(stored.fingerprints), groups)
        if best is not None:
            names[best] = stored.name  # a later name of the same group wins (stored in order)
    return [PhotoGroup(g.members, g.fingerprints, names.get(i)) for i, g in enumerate(groups)]


def name_group(library: Library, group: PhotoGroup, name: str) -> PhotoGroup:
    """Give the group a name (an empty name removes it); it replaces names given to the same group."""
    earlier = [s.id for s in library.store.group_names()
               if _overlap(frozenset(s.fingerprints), group.fingerprints) >= NAME_FOLLOWS_OVERLAP]
    name = name.strip()
    if name:
        library.store.name_group(name, sorted(group.fingerprints), replacing=earlier)
    else:
        library.store.forget_group_names(earlier)
    return PhotoGroup(group.members, group.fingerprints, name or None)


def move_group(library: Library, group: PhotoGroup, folder: Path) -> ActionReport:
    """Move the group's photos into a folder: one logged action that Library.undo puts back."""
    return library.move_into_folders([(path, Path(folder)) for path in group.members])
