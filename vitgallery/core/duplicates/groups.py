"""Groups of near-duplicates: who is in a group and why, and what one scan found.

Each group is a seed photo and the photos whose pair with the seed passes the threshold (seed_groups).
Plain connected components would let a chain A~B~C~D join unrelated photos; asking every member to
match the seed does not, and still groups a photo with all of its crops and edits.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import statistics
import time
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from vitgallery.core.duplicates.quality import PhotoQuality
from vitgallery.core.duplicates.scoring import DEFAULT_THRESHOLD, PairEvidence, keypoints_cannot_tell
from vitgallery.core.store import DecisionRow, FileRow


@dataclass(frozen=True)
class MemberShape:
    """A member's geometry against the rest of its group, from the keypoint maps of its verified pairs
    with them (PairShape): the odd one out is the edited copy. A stretched copy is stretched against
    every other member, while the original is unlike only that copy: hence medians."""

    stretch: float  # median over its pairs
    tilt: float  # median over its pairs, degrees
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
    """Groups as (seed, {member: score of the link that put it in}) from the pairs scoring >= threshold.

    Within each connected component the photo with the most links (then the highest summed score, then
    the lowest id, so runs agree) seeds a group of itself and its direct links; the rest of the
    component is grouped again the same way. A photo left alone then joins the group of the member it
    matches best: a crop of a crop finds its original, while a chain of look-alikes never reaches
    further than two links from a seed.
    """
    links: dict[int, dict[int, float]] = {}
    for p in pairs:
        if p.score >= threshold:
            links.setdefault(p.a, {})[p.b] = p.score
            links.setdefault(p.b, {})[p.a] = p.score
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
    return groups


def _strength(node_links: dict[int, float], among: set[int], node: int) -> tuple[int, float, int]:
    scores = [s for n, s in node_links.items() if n in among]
    return len(scores), sum(scores), -node


@dataclass
class DuplicateScan:
    """What a scan of a library found; `groups(threshold)` is cheap, so a slider can call it live."""

    root: Path
    files: dict[int, FileRow]
    pairs: list[PairEvidence]
    decisions: list[DecisionRow] = field(default_factory=list)
    separated: frozenset[tuple[str, str]] = frozenset()  # fingerprint pairs never linked (decisions.separate)
    problems: list[tuple[Path, str]] = field(default_factory=list)  # photos that could not be read
    quality: dict[int, PhotoQuality] = field(default_factory=dict)  # by file id, for the keep-best rule
    cancelled: bool = False
    scanned_at: float = field(default_factory=time.time)  # when the scan ended (seconds since the epoch)
    up_to_date: bool = True  # False for a stored scan the library has changed since

    @property
    def age_s(self) -> float:
        return max(0.0, time.time() - self.scanned_at)

    @property
    def age_text(self) -> str:
        """How long ago the scan ended, in words ("just now", "5 minutes ago", "2 days ago")."""
        for unit, length in (("day", 86400), ("hour", 3600), ("minute", 60)):
            if self.age_s >= length:
                count = int(self.age_s // length)
                return f"{count} {unit}{'s' if count != 1 else ''} ago"
        return "just now"

    def member(self, file_id: int, similarity: float = 1.0, match: PairEvidence | None = None,
               shape: MemberShape | None = None) -> DuplicateMember:
        row = self.files[file_id]
        return DuplicateMember(file_id, self.root / row.path, row.size, row.mtime_ns, row.fingerprint,
                               row.width or 0, row.height or 0, row.taken_at, row.sharpness or 0.0,
                               similarity, match, self.quality.get(file_id), shape)

    def is_decided(self, fingerprints: Iterable[str]) -> DecisionRow | None:
        """The decision covering these fingerprints: every member was in the decided group, unchanged."""
        wanted = Counter(fingerprints)
        for decision in self.decisions:
            if wanted <= Counter(decision.fingerprints):
                return decision
        return None

    def is_separated(self, pair: PairEvidence) -> bool:
        """Whether the user said this pair's photos are not duplicates."""
        first, second = self.files[pair.a].fingerprint, self.files[pair.b].fingerprint
        return fingerprint_pair(first, second) in self.separated

    def without_separated(self, pairs: list[PairEvidence], threshold: float) -> list[PairEvidence]:
        """The pairs the user did not separate; and where two separated photos would still share a
        group (both match its seed), the one that matches it less is taken out: its links into that
        group are dropped, so it groups only with others."""
        pairs = [p for p in pairs if not self.is_separated(p)]
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
            pairs = [p for p in pairs if (p.a, p.b) not in cut]
        return pairs

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
        pairs = [p for p in self.pairs if p.a not in exclude and p.b not in exclude] if exclude else self.pairs
        if self.separated:
            pairs = self.without_separated(pairs, threshold)
        by_ids = {(p.a, p.b): p for p in pairs if p.score >= threshold}  # the links groups come from
        mapped = {(p.a, p.b): p for p in pairs if p.shape is not None and not keypoints_cannot_tell(p.inliers)}
        out = []
        for seed, links in seed_groups(pairs, threshold):
            group = (seed, *links)
            shapes = member_shapes(group, mapped)
            members = [self.member(seed, shape=shapes.get(seed))] + sorted(
                (self.member(n, s, _link(by_ids, n, s, group), shapes.get(n)) for n, s in links.items()),
                key=lambda m: (-m.similarity, str(m.path)))
            key = group_key(m.fingerprint for m in members)
            if self.is_decided(m.fingerprint for m in members):
                hidden += 1
                if not include_decided:
                    continue
            out.append(DuplicateGroup(tuple(members), key))
        out.sort(key=lambda g: (-len(g.members), -g.total_size, str(g.members[0].path)))
        return out, hidden


def member_shapes(group: Iterable[int], mapped: dict[tuple[int, int], PairEvidence]) -> dict[int, MemberShape]:
    """Each member's MemberShape from the mapped pairs (by (a, b), a < b, with a shape) among the group."""
    ids = sorted(group)
    found: dict[int, list[tuple[float, float, float]]] = {}
    for n, a in enumerate(ids):
        for b in ids[n + 1:]:
            pair = mapped.get((a, b))
            if pair is None or pair.shape is None:
                continue
            shape = pair.shape
            found.setdefault(a, []).append((shape.stretch, shape.tilt, shape.padding_a))
            found.setdefault(b, []).append((shape.stretch, shape.tilt, shape.padding_b))
    return {member: MemberShape(statistics.median(v[0] for v in values), statistics.median(v[1] for v in values),
                                max(v[2] for v in values), len(values))
            for member, values in found.items()}


def _link(by_ids: dict[tuple[int, int], PairEvidence], member: int, score: float,
          group: tuple[int, ...]) -> PairEvidence | None:
    """The pair that put a member in its group (seed_groups keeps its score): with the seed, or, for a
    crop of a crop, with another member."""
    found = (by_ids.get((min(member, other), max(member, other))) for other in group if other != member)
    return next((pair for pair in found if pair is not None and pair.score == score), None)
