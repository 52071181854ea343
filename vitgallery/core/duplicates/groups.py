"""Groups of near-duplicates: who is in a group and why, and what one scan found.

Each group is a seed photo and the photos whose pair with the seed passes the threshold (seed_groups).
Plain connected components would let a chain A~B~C~D join unrelated photos; asking every member to
match the seed does not, and still groups a photo with all of its crops and edits. A photo no pair
passes with joins a group whose members it matches several times, each more weakly (AGREEING_MEMBERS).
"""

from __future__ import annotations

import hashlib
import itertools
import math
import time
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vitgallery.core.duplicates.pairs import PairTable, pair_keys, python_values
from vitgallery.core.duplicates.quality import PhotoQuality
from vitgallery.core.duplicates.scoring import (
    DEFAULT_THRESHOLD,
    PairEvidence,
    keypoints_cannot_tell,
    match_reason,
)
from vitgallery.core.store import DecisionRow, FileRow

# A photo whose pair with no member passes the threshold still joins a group when it matches this many
# of its members, each with a score at most AGREEING_LOGITS under the threshold in log-odds (0.018 at the
# default 0.5; 0.14 at 0.9, so a sure setting of the slider asks more of them): copies of one picture agree
# with one another, so a copy whose own edit (a caption, a border, a quarter turn) keeps each of its pairs
# short is still found against the other edits of it. Chosen on public data (bench/duplicates_calibration.py
# on seeds 1 and 2, and a library of seed 1's pictures cut into tiles, none a duplicate): 3 members, not 2,
# as 2 also let a third look-alike join a pair of them (a sem photo on seed 2, 6 tiles); a floor from 0.018
# to 0.03 gives the public seeds the same groups. The holdout checks it (docs/benchmarks.md).
AGREEING_MEMBERS = 3
AGREEING_LOGITS = 4.0


def agreeing_floor(threshold: float) -> float:
    """The least score a match counts with towards AGREEING_MEMBERS at this threshold."""
    if not 0.0 < threshold < 1.0:
        return threshold
    return 1.0 / (1.0 + math.exp(AGREEING_LOGITS - math.log(threshold / (1.0 - threshold))))


@dataclass(frozen=True)
class MemberShape:
    """A member's geometry against the rest of its group, from the keypoint maps of its verified pairs
    with them (PairShape): the odd one out is the edited copy. A stretched copy is stretched against
    every other member, while the original is unlike only that copy: hence medians."""

    stretch: float  # lower median over its pairs
    tilt: float  # lower median over its pairs, degrees
    padding: float  # the most of its picture found to be padding against another member
    pairs: int  # verified pairs with other members this is read from


@dataclass(frozen=True)
class DuplicateMember:
    file_id: int
    path: Path  # absolute
    size: int
    mtime_ns: int
    fingerprint: str
    width: int
    height: int
    taken_at: float | None
    sharpness: float  # variance of the Laplacian, measured at index time (imageio.sharpness)
    similarity: float = 1.0  # score of the match that put it in its group (1 for the seed)
    match: PairEvidence | None = None  # that match's evidence (None for the seed)
    quality: PhotoQuality | None = None  # what the keep-best rule measured in it (None: not measured)
    shape: MemberShape | None = None  # its geometry against the group (None: no verified pair in it)
    agreeing: int = 0  # members it matches, each under the threshold, where that put it in (AGREEING_MEMBERS)

    @property
    def reason(self) -> str:
        """Why it is in its group, in words (for a tooltip or a report)."""
        if self.agreeing:
            return (f"matches {self.agreeing} photos of this group, none surely enough alone; "
                    f"the closest: {match_reason(self.match)}")
        return match_reason(self.match)

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def date(self) -> float:
        """When the photo was taken (EXIF), else when the file was last modified; seconds since the epoch."""
        return self.taken_at if self.taken_at is not None else self.mtime_ns / 1e9


@dataclass(frozen=True)
class DuplicateGroup:
    members: tuple[DuplicateMember, ...]  # the seed first, then by similarity
    key: str  # identifies the group for decisions: a hash of its members' fingerprints

    @property
    def fingerprints(self) -> list[str]:
        return sorted(m.fingerprint for m in self.members)

    @property
    def total_size(self) -> int:
        return sum(m.size for m in self.members)


def group_key(fingerprints: Iterable[str]) -> str:
    return hashlib.sha1("\n".join(sorted(fingerprints)).encode()).hexdigest()[:20]


def fingerprint_pair(a: str, b: str) -> tuple[str, str]:
    """Two photos' fingerprints in the order a separated pair is stored in."""
    return (a, b) if a <= b else (b, a)


def seed_groups(pairs: Iterable[PairEvidence], threshold: float) -> list[tuple[int, dict[int, float]]]:
    """Groups as (seed, {member: score of the link that put it in}) from the pairs scoring >= threshold,
    and the weaker ones a photo joins by agreement with (_join_agreeing).

    Within each connected component the photo with the most links (then the highest summed score, then
    the lowest id, so runs agree) seeds a group of itself and its direct links; the rest of the
    component is grouped again the same way. A photo left alone then joins the group of the member it
    matches best: a crop of a crop finds its original, while a chain of look-alikes never reaches
    further than two links from a seed. Last, a photo in no group joins one it matches several times
    more weakly (_join_agreeing), with the score of its best match there.
    """
    table = pairs if isinstance(pairs, PairTable) else PairTable.from_evidence(pairs)
    linked = table.take(table.score >= threshold)
    links: dict[int, dict[int, float]] = {}
    for a, b, score in zip(python_values(linked.a), python_values(linked.b), python_values(linked.score), strict=True):
        links.setdefault(a, {})[b] = score
        links.setdefault(b, {})[a] = score
    groups: list[tuple[int, dict[int, float]]] = []
    seen: set[int] = set()
    for start in sorted(links):
        if start in seen:
            continue
        component, stack = set(), [start]
        while stack:
            node = stack.pop()
            if node not in component:
                component.add(node)
                stack.extend(n for n in links[node] if n not in component)
        seen |= component
        found: list[tuple[int, dict[int, float]]] = []
        remaining = component
        while len(remaining) > 1:
            seed = max(sorted(remaining), key=lambda node, left=remaining: _strength(links[node], left, node))
            members = {n: s for n, s in links[seed].items() if n in remaining}
            if not members:
                break
            found.append((seed, members))
            remaining = remaining - members.keys() - {seed}
        placed = {node: k for k, (seed, members) in enumerate(found) for node in (seed, *members)}
        for node in sorted(remaining):
            best = max(((s, placed[n]) for n, s in links[node].items() if n in placed), default=None)
            if best is not None:
                found[best[1]][1][node] = best[0]
        groups.extend(found)
        for node in component:  # freed a component at a time: freeing them all at once held the interpreter 0.1 s
            del links[node]
    return _join_agreeing(groups, table, threshold)


def _join_agreeing(groups: list[tuple[int, dict[int, float]]], pairs: PairTable,
                   threshold: float) -> list[tuple[int, dict[int, float]]]:
    """Each photo in no group joins the group of which it matches AGREEING_MEMBERS members or more at
    agreeing_floor(threshold) or more (of several such groups, the one it matches best). As arrays: a
    100,000-photo library has tens of thousands of such weaker matches."""
    if not groups or not len(pairs):
        return groups
    group = np.full(int(pairs.b.max()) + 1, -1, dtype=np.int64)
    for number, (seed, links) in enumerate(groups):
        group[[seed, *links]] = number
    weak = pairs.take((pairs.score >= agreeing_floor(threshold)) & (pairs.score < threshold))
    group_a, group_b = group[weak.a], group[weak.b]
    one = (group_a >= 0) != (group_b >= 0)  # one photo in a group, the other in none
    photo = np.where(group_a >= 0, weak.b, weak.a)[one]
    joins, score = np.maximum(group_a, group_b)[one], weak.score[one]
    if not len(photo):
        return groups
    order = np.lexsort((-score, joins, photo))  # each photo's matches by group, the best first
    photo, joins, score = photo[order], joins[order], score[order]
    runs = np.flatnonzero(np.r_[True, (photo[1:] != photo[:-1]) | (joins[1:] != joins[:-1])])
    agreeing = np.diff(np.r_[runs, len(photo)]) >= AGREEING_MEMBERS
    photo, joins, score = photo[runs][agreeing], joins[runs][agreeing], score[runs][agreeing]
    if not len(photo):
        return groups
    order = np.lexsort((joins, -score, photo))  # of a photo's groups, the one it matches best
    photo, joins, score = photo[order], joins[order], score[order]
    first = np.r_[True, photo[1:] != photo[:-1]]
    for one_photo, number, best in zip(photo[first].tolist(), joins[first].tolist(), score[first].tolist(), strict=True):
        groups[number][1][one_photo] = best
    return groups


def _strength(node_links: dict[int, float], among: set[int], node: int) -> tuple[int, float, int]:
    scores = [s for n, s in node_links.items() if n in among]
    return len(scores), sum(scores), -node


def time_ago(seconds: float) -> str:
    """How long ago, in words ("just now", "5 minutes ago", "2 days ago")."""
    for unit, length in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= length:
            count = int(seconds // length)
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"


@dataclass
class DuplicateScan:
    """What a scan of a library found; `groups(threshold)` is cheap, so a slider can call it live."""

    root: Path
    files: dict[int, FileRow]
    pairs: PairTable  # a list of PairEvidence is made one
    decisions: list[DecisionRow] = field(default_factory=list)
    separated: frozenset[tuple[str, str]] = frozenset()  # fingerprint pairs never linked (decisions.separate)
    problems: list[tuple[Path, str]] = field(default_factory=list)  # photos that could not be read
    quality: dict[int, PhotoQuality] = field(default_factory=dict)  # by file id, for the keep-best rule
    cancelled: bool = False
    scanned_at: float = field(default_factory=time.time)  # when the scan ended (seconds since the epoch)
    up_to_date: bool = True  # False for a stored scan the library has changed since
    # Each photo's path, made once and shared by the copies dataclasses.replace makes (the page groups a
    # copy): every grouping, a step of the slider, makes a member of each photo, and a new path per
    # member was a third of the objects the garbage collector then walked.
    _paths: dict[int, Path] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.pairs, PairTable):
            self.pairs = PairTable.from_evidence(self.pairs)

    @property
    def age_s(self) -> float:
        return max(0.0, time.time() - self.scanned_at)

    @property
    def age_text(self) -> str:
        """How long ago the scan ended, in words (time_ago)."""
        return time_ago(self.age_s)

    def member(self, file_id: int, similarity: float = 1.0, match: PairEvidence | None = None,
               shape: MemberShape | None = None, agreeing: int = 0) -> DuplicateMember:
        row = self.files[file_id]
        path = self._paths.get(file_id)
        if path is None:
            path = self._paths[file_id] = self.root / row.path
        return DuplicateMember(file_id, path, row.size, row.mtime_ns, row.fingerprint,
                               row.width or 0, row.height or 0, row.taken_at, row.sharpness or 0.0,
                               similarity, match, self.quality.get(file_id), shape, agreeing)

    def is_decided(self, fingerprints: Iterable[str]) -> DecisionRow | None:
        """The decision covering these fingerprints: every member was in the decided group, unchanged."""
        wanted = Counter(fingerprints)
        for decision in self.decisions:
            if wanted <= Counter(decision.fingerprints):
                return decision
        return None

    def without_separated(self, pairs: PairTable, threshold: float) -> PairTable:
        """The pairs the user did not separate; and where two separated photos would still share a
        group (both match its seed), the one that matches it less is taken out: its links into that
        group are dropped, so it groups only with others."""
        pairs = pairs.take(~np.isin(pairs.keys(), self._separated_keys()))
        for _ in range(len(self.separated)):  # each round takes at least one photo out of a group
            cut: set[tuple[int, int]] = set()
            for seed, links in seed_groups(pairs, threshold):
                strength = {seed: math.inf, **links}
                for a, b in itertools.combinations(sorted(strength), 2):
                    if fingerprint_pair(self.files[a].fingerprint, self.files[b].fingerprint) in self.separated:
                        weaker = min((a, b), key=lambda n: (strength[n], -n))
                        cut.update((min(weaker, n), max(weaker, n)) for n in strength if n != weaker)
            if not cut:
                break
            pairs = pairs.take(~np.isin(pairs.keys(), pair_keys(*np.array(sorted(cut)).T)))
        return pairs

    def _separated_keys(self) -> np.ndarray:
        """pair_keys of the photos the user separated (by fingerprint, so a copy of one is separated too)."""
        ids_of: dict[str, list[int]] = {}
        for file_id, row in self.files.items():
            ids_of.setdefault(row.fingerprint, []).append(file_id)
        found = [(min(x, y), max(x, y)) for first, second in self.separated
                 for x in ids_of.get(first, ()) for y in ids_of.get(second, ()) if x != y]
        return pair_keys(*np.array(found, dtype=np.int64).reshape(-1, 2).T)

    def groups(self, threshold: float = DEFAULT_THRESHOLD, *, include_decided: bool = False,
               exclude: Collection[int] = ()) -> list[DuplicateGroup]:
        """The groups at a threshold, largest first; decided groups are left out unless asked for, and
        the photos in `exclude` (file ids, e.g. moved away since the scan) always. Separated photos
        never share a group (see without_separated)."""
        return self.groups_and_hidden(threshold, include_decided=include_decided, exclude=exclude)[0]

    def groups_and_hidden(self, threshold: float = DEFAULT_THRESHOLD, *, include_decided: bool = False,
                          exclude: Collection[int] = ()) -> tuple[list[DuplicateGroup], int]:
        """groups(), and how many groups decisions hide (left out unless include_decided): one grouping
        for both, which takes seconds for a library with thousands of groups."""
        hidden = 0
        pairs = self.pairs
        if exclude:
            gone = np.fromiter(exclude, dtype=np.int64, count=len(exclude))
            pairs = pairs.take(~(np.isin(pairs.a, gone) | np.isin(pairs.b, gone)))
        if self.separated:
            pairs = self.without_separated(pairs, threshold)
        linked = pairs.take(pairs.score >= agreeing_floor(threshold))  # the links groups come from
        grouped = seed_groups(linked, threshold)
        group_of = {n: g for g, (seed, links) in enumerate(grouped) for n in (seed, *links)}
        within = _within_groups(pairs, group_of)
        shapes = member_shapes(within.take(~keypoints_cannot_tell(within.columns["inliers"])))
        linked = within.take(within.score >= agreeing_floor(threshold))  # what put each member in: far fewer rows
        link_of = _links(linked, grouped)
        used = sorted({row for row in link_of.values() if row is not None})
        evidence = dict(zip(used, linked.take(np.array(used, dtype=np.int64)), strict=True))
        agreeing = _agreeing(linked, [n for _, links in grouped for n, s in links.items() if s < threshold])
        out = []
        for seed, links in grouped:
            members = [self.member(seed, shape=shapes.get(seed))] + sorted(
                (self.member(n, s, evidence.get(link_of[n]), shapes.get(n), agreeing.get(n, 0))
                 for n, s in links.items()),
                key=lambda m: (-m.similarity, str(m.path)))
            key = group_key(m.fingerprint for m in members)
            if self.is_decided(m.fingerprint for m in members):
                hidden += 1
                if not include_decided:
                    continue
            out.append(DuplicateGroup(tuple(members), key))
        out.sort(key=lambda g: (-len(g.members), -g.total_size, str(g.members[0].path)))
        return out, hidden


def member_shapes(pairs: PairTable) -> dict[int, MemberShape]:
    """Each photo's MemberShape from the pairs with a keypoint map (`pairs` holds only those among one
    group's members that keypoints verified)."""
    mapped = pairs.take(~np.isnan(pairs.columns["stretch"]))
    stretch, tilt = mapped.columns["stretch"], mapped.columns["tilt"]
    member = np.concatenate([mapped.a, mapped.b])  # each pair counts for both its photos
    # concatenate, not np.tile: tile's copy holds the interpreter, 43 ms for the million pairs of a
    # 100,000-photo library (most of it the new memory's page faults)
    values = {"stretch": np.concatenate([stretch, stretch]), "tilt": np.concatenate([tilt, tilt]),
              "padding": np.concatenate([mapped.columns["padding_a"], mapped.columns["padding_b"]])}
    photos, counts = np.unique(member, return_counts=True)
    starts = np.cumsum(counts) - counts  # of each photo's run, once sorted by photo
    # the lower median: an edit is read where most of a photo's pairs show it. In a group of three the
    # original's two pairs are one with the stretched copy and one without: their mean read as stretched.
    middle = {}
    for name in ("stretch", "tilt"):
        ordered = values[name][np.lexsort((values[name], member))]
        middle[name] = ordered[starts + (counts - 1) // 2]
    order = np.argsort(member, kind="stable")
    most_padding = np.maximum.reduceat(values["padding"][order], starts) if len(member) else np.empty(0)
    return {photo: MemberShape(s, t, p, c) for photo, s, t, p, c in zip(
        photos.tolist(), middle["stretch"].tolist(), middle["tilt"].tolist(), most_padding.tolist(), counts.tolist(),
        strict=True)}


def _within_groups(pairs: PairTable, group_of: dict[int, int]) -> PairTable:
    """The pairs whose photos are in the same group (`group_of`: photo -> group)."""
    if not len(pairs):
        return pairs
    group = np.full(int(pairs.b.max()) + 1, -1, dtype=np.int64)  # the grouped photos are among the pairs'
    group[list(group_of)] = list(group_of.values())
    group_a, group_b = group[pairs.a], group[pairs.b]
    return pairs.take((group_a >= 0) & (group_a == group_b))


def _agreeing(linked: PairTable, joined: list[int]) -> dict[int, int]:
    """For each photo that joined its group by matching several members (`joined`), how many it matches
    (`linked`: the matches within groups that count)."""
    ends = np.concatenate([linked.a, linked.b])
    photos, counts = np.unique(ends[np.isin(ends, joined)], return_counts=True)
    return dict(zip(photos.tolist(), counts.tolist(), strict=True))


def _links(linked: PairTable, grouped: list[tuple[int, dict[int, float]]]) -> dict[int, int | None]:
    """Each member's row in `linked` of the pair that put it in its group (seed_groups keeps its score):
    with the seed, or, for a crop of a crop, with the first other member in the group's order linked to
    it with that score. Found as arrays: a dict of the million links of a 100,000-photo library held the
    interpreter 35 ms as it grew."""
    if not len(linked):
        return {}
    keys = linked.keys()
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]

    def rows_of(member: int | np.ndarray, others: np.ndarray, score: float | np.ndarray) -> np.ndarray:
        """The rows of the pairs (member, others) linked with `score`, -1 for the others."""
        wanted = pair_keys(np.minimum(member, others), np.maximum(member, others))
        at = np.minimum(np.searchsorted(ordered, wanted), len(ordered) - 1)
        rows = np.where(ordered[at] == wanted, order[at], -1)
        return np.where((rows >= 0) & (linked.score[rows] == score), rows, -1)

    member = np.array([n for _, links in grouped for n in links], dtype=np.int64)
    seed = np.array([seed for seed, links in grouped for _ in links], dtype=np.int64)
    score = np.array([s for _, links in grouped for s in links.values()], dtype=np.float64)
    rows = rows_of(member, seed, score)
    link_of: dict[int, int | None] = dict(zip(member.tolist(), rows.tolist(), strict=True))
    links_of = dict(grouped)
    for n, its_seed, s in zip(*(column[rows < 0].tolist() for column in (member, seed, score)), strict=True):
        others = np.array([other for other in (its_seed, *links_of[its_seed]) if other != n], dtype=np.int64)
        found = rows_of(n, others, s)
        link_of[n] = int(found[found >= 0][0]) if (found >= 0).any() else None
    return link_of
