"""Near-duplicate groups over a whole library: candidates from the index, geometric verification, groups.

1. Candidates: every photo's nearest neighbours in the vector index above a loose cosine floor (never
   all pairs).
2. Verification: SIFT keypoints of a small greyscale decode of each candidate (cached for the run) and
   the inliers of an affine RANSAC fit between the two (vitgallery.core.quality). A global cosine alone
   cannot tell duplicates apart: unrelated photos on plain backgrounds sit as close as a photo and its
   crop. Keypoints that agree in geometry can. Smooth pictures (gradients, soft abstract wallpapers,
   blurred skies) have too few keypoints; for them a tiny copy of one is slid over the other at a few
   scales, mirrored or not, and the best correlation of their grey levels says whether they align.
3. A score in [0, 1] per pair combines the evidence (pair_score); the user's threshold T applies to it.
4. Groups: each group is a seed photo and the photos whose pair with the seed passes T. Plain connected
   components would let a chain A~B~C~D join unrelated photos; asking every member to match the seed
   does not, and still groups a photo with all of its crops and edits.

Scanning (the slow part) and grouping at a threshold are separate, so a slider can regroup instantly.
Decisions ("not duplicates", "keep all") are stored by the multiset of member fingerprints: a decided
group stays hidden until one of its members changes or a new photo joins it.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import math
import os
import struct
import tempfile
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from vitgallery.core.imageio import DecodeError, open_image
from vitgallery.core.quality import (
    SIFT_DIM,
    Keypoints,
    content_box,
    extract_keypoints,
    root_sift,
    tentative_matches,
)
from vitgallery.core.store import DecisionRow, FileRow, Store

log = logging.getLogger(__name__)

# Chosen with bench/duplicates_calibration.py on the public dup and sem corpora (see its docstring).
DEFAULT_THRESHOLD = 0.5
NEIGHBOURS = 20  # candidates per photo, in each of the two neighbour lists
KEYPOINT_SIDE = 512  # long side of the greyscale decode keypoints are found on
MIN_KEYPOINT_SIDE = 320  # smaller photos are enlarged to this first, so thumbnails still get keypoints
MIRROR_TRY_BELOW = 15  # inliers under which a mirrored copy is tried too
AGREEMENT_SIDE = 160  # long side of the copy compared pixel-wise once aligned
AGREEMENT_WINDOW = 16  # pixels a side of the windows compared
AGREEMENT_MIN_WINDOWS = 6  # an overlap smaller than this says nothing
AGREEMENT_BLUR = 1.0  # Gaussian sigma in pixels: re-saves and shrunk copies lose the finest detail
FLAT_STD = 4.0  # a window with less grey-level spread has no texture to compare
SHARPNESS_SIDE = 256  # members of a group are compared for sharpness at one common size
LOOK_SIDE = 96  # long side of the blurred grey copy slid over another photo's when keypoints cannot tell
LOOK_SCALES = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)  # size of the smaller photo's copy relative to the larger's
LOOK_MIN_STD = 2.0  # grey levels: a copy flatter than this (blank, one colour) has nothing to align
LOOK_FROM_WHITENED = 0.5  # pairs less alike in the whitened space are not slid (they cannot score 0.5)
FEATURES_IN_MEMORY = 4096  # photos' features held while verifying (~50 KB each); the rest wait on disk

_LOOK_BELOW_INLIERS = 12  # fewer inliers than a re-rank trusts: keypoints cannot tell
_LOOK_STEEPNESS = 4.0  # only sets how fast the slider moves through look-alike pairs

DECISIONS = ("not_duplicates", "keep_all")


class ScanError(Exception):
    """A scan that cannot go on (its working file cannot be written); the message says what to do."""


@dataclass(frozen=True)
class ScoreWeights:
    """pair_score's parameters. The defaults come from `bench/duplicates_calibration.py --grid` on seed 1
    of the public corpus (the most recall with precision >= 0.95 as labelled and under 2 % of sem
    photos grouped: a wrong "duplicate" can cost a unique photo, a missed one only space), checked
    on seed 2 and the holdout part."""

    bias: float = -12.0
    whitened: float = 4.0
    inliers: float = 0.75  # per log(1 + inliers)
    agreement: float = 8.0
    # where keypoints cannot tell, both margins must pass: whitened cosine and aligned grey levels
    look_whitened: float = 0.75
    look_likeness: float = 0.95


DEFAULT_WEIGHTS = ScoreWeights()


def pair_score(whitened_cosine: float, inliers: int, agreement: float, likeness: float | None = None,
               weights: ScoreWeights = DEFAULT_WEIGHTS) -> float:
    """How surely two photos are the same shot, in [0, 1]. Keypoints that fit one affine map and aligned
    pixels that agree say they are the same picture; the whitened cosine says how alike they look.
    Where keypoints are too few to tell, grey levels that align (`likeness`, see look_likeness) can
    say it instead, together with a high whitened cosine. Without either no pair scores above 0.02:
    blank and one-colour photos are never called duplicates, however alike their vectors (different
    blank pictures are as alike as edited copies of one)."""
    w = weights
    z = w.bias + w.whitened * whitened_cosine + w.inliers * math.log1p(max(inliers, 0)) + w.agreement * agreement
    if likeness is not None and inliers < _LOOK_BELOW_INLIERS:
        margin = min((whitened_cosine - w.look_whitened) / (1 - w.look_whitened),
                     (likeness - w.look_likeness) / (1 - w.look_likeness))
        z = max(z, _LOOK_STEEPNESS * margin)
    return 1.0 / (1.0 + math.exp(-min(max(z, -60.0), 60.0)))


# -- records ---------------------------------------------------------------------------------------

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
    sharpness: float  # variance of the Laplacian at SHARPNESS_SIDE: comparable within a group
    similarity: float = 1.0  # score of the match that put it in its group (1 for the seed)
    match: PairEvidence | None = None  # that match's evidence (None for the seed)

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


@dataclass(frozen=True)
class PairEvidence:
    a: int
    b: int  # file ids, a < b
    whitened: float  # cosine in the library's whitened space (what its index holds)
    inliers: int
    agreement: float
    score: float
    likeness: float | None = None  # grey levels slid over each other (only where keypoints cannot tell)


@dataclass(frozen=True)
class DuplicateProgress:
    phase: str  # "candidates", "keypoints", "verifying", "done"
    done: int
    total: int


def match_reason(match: PairEvidence | None) -> str:
    """Why a photo is in its group, in words (for a tooltip or a report)."""
    if match is None:
        return "the photo the others in this group were matched to"
    if match.likeness is not None and match.inliers < _LOOK_BELOW_INLIERS:
        return (f"too few details to match point by point; its shapes and shades align with "
                f"{match.likeness:.0%} correlation, and it looks {match.whitened:.2f} alike")
    return f"{match.inliers} matching points, {match.agreement:.0%} of the overlap alike once aligned"


def group_key(fingerprints: Iterable[str]) -> str:
    return hashlib.sha1("\n".join(sorted(fingerprints)).encode()).hexdigest()[:20]


# -- keep-best rules -------------------------------------------------------------------------------

class KeepRule(enum.Enum):
    RESOLUTION = "resolution"
    FILE_SIZE = "size"
    OLDEST = "oldest"
    NEWEST = "newest"
    SHARPEST = "sharpest"
    PREFERRED_FOLDER = "folder"

    @property
    def label(self) -> str:
        return {"resolution": "highest resolution", "size": "largest file", "oldest": "oldest",
                "newest": "newest", "sharpest": "sharpest", "folder": "in the preferred folder"}[self.value]


def _is_under(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False


def choose_keeper(members: Sequence[DuplicateMember], rule: KeepRule,
                  preferred_folder: Path | None = None) -> DuplicateMember:
    """The member a rule keeps. Ties fall to higher resolution, then larger file, then path order;
    with PREFERRED_FOLDER and no member under that folder, the highest resolution is kept."""
    if not members:
        raise ValueError("an empty group has nothing to keep")
    pool = list(members)
    if rule is KeepRule.PREFERRED_FOLDER:
        if preferred_folder is None:
            raise ValueError("the preferred-folder rule needs a folder")
        folder = Path(preferred_folder).expanduser().absolute()
        pool = [m for m in members if _is_under(m.path, folder)] or pool
    primary: Callable[[DuplicateMember], float] = {
        KeepRule.RESOLUTION: lambda m: m.pixels,
        KeepRule.FILE_SIZE: lambda m: m.size,
        KeepRule.OLDEST: lambda m: -m.date,
        KeepRule.NEWEST: lambda m: m.date,
        KeepRule.SHARPEST: lambda m: m.sharpness,
        KeepRule.PREFERRED_FOLDER: lambda m: m.pixels,
    }[rule]
    ordered = sorted(pool, key=lambda m: str(m.path))  # max keeps the first of equals: path order
    return max(ordered, key=lambda m: (primary(m), m.pixels, m.size))


# -- grouping --------------------------------------------------------------------------------------

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


# -- the scan --------------------------------------------------------------------------------------

@dataclass
class DuplicateScan:
    """What one scan of a library found; `groups(threshold)` is cheap, so a slider can call it live."""

    root: Path
    files: dict[int, FileRow]
    sharpness: dict[int, float]
    pairs: list[PairEvidence]
    decisions: list[DecisionRow] = field(default_factory=list)
    problems: list[tuple[Path, str]] = field(default_factory=list)  # photos that could not be read
    cancelled: bool = False

    def member(self, file_id: int, similarity: float = 1.0, match: PairEvidence | None = None) -> DuplicateMember:
        row = self.files[file_id]
        return DuplicateMember(file_id, self.root / row.path, row.size, row.mtime_ns, row.fingerprint,
                               row.width or 0, row.height or 0, row.taken_at, self.sharpness.get(file_id, 0.0),
                               similarity, match)

    def is_decided(self, fingerprints: Iterable[str]) -> DecisionRow | None:
        """The decision covering these fingerprints: every member was in the decided group, unchanged."""
        wanted = Counter(fingerprints)
        for decision in self.decisions:
            if wanted <= Counter(decision.fingerprints):
                return decision
        return None

    def groups(self, threshold: float = DEFAULT_THRESHOLD, *, include_decided: bool = False,
               exclude: Collection[int] = ()) -> list[DuplicateGroup]:
        """The groups at a threshold, largest first; decided groups are left out unless asked for, and
        the photos in `exclude` (file ids, e.g. moved away since the scan) always."""
        pairs = [p for p in self.pairs if p.a not in exclude and p.b not in exclude] if exclude else self.pairs
        by_ids = {(p.a, p.b): p for p in pairs if p.score >= threshold}  # the links groups come from
        out = []
        for seed, links in seed_groups(pairs, threshold):
            group = (seed, *links)
            members = [self.member(seed)] + sorted(
                (self.member(n, s, _link(by_ids, n, s, group)) for n, s in links.items()),
                key=lambda m: (-m.similarity, str(m.path)))
            key = group_key(m.fingerprint for m in members)
            if not include_decided and self.is_decided(m.fingerprint for m in members):
                continue
            out.append(DuplicateGroup(tuple(members), key))
        out.sort(key=lambda g: (-len(g.members), -g.total_size, str(g.members[0].path)))
        return out

    def hidden_count(self, threshold: float = DEFAULT_THRESHOLD, exclude: Collection[int] = ()) -> int:
        """How many groups at this threshold are hidden by a decision."""
        return (len(self.groups(threshold, include_decided=True, exclude=exclude))
                - len(self.groups(threshold, exclude=exclude)))


def _link(by_ids: dict[tuple[int, int], PairEvidence], member: int, score: float,
          group: tuple[int, ...]) -> PairEvidence | None:
    """The pair that put a member in its group (seed_groups keeps its score): with the seed, or, for a
    crop of a crop, with another member."""
    found = (by_ids.get((min(member, other), max(member, other))) for other in group if other != member)
    return next((pair for pair in found if pair is not None and pair.score == score), None)


@dataclass(frozen=True)
class PhotoFeatures:
    """What verification needs of one photo, computed once per scan."""

    keypoints: Keypoints  # SIFT on the contrast-equalised greyscale decode
    small: np.ndarray  # uint8 greyscale, AGREEMENT_SIDE long: compared pixel-wise once aligned
    sharpness: float
    look: np.ndarray  # uint8 greyscale without its frame, LOOK_SIDE long, blurred: see look_likeness


@dataclass(frozen=True)
class PairMatch:
    inliers: int  # of the best affine map between the two photos' keypoints
    agreement: float  # share of the overlap that looks the same once aligned (0 without a map)


def analyse_photo(path: Path) -> PhotoFeatures:
    """Decode small, find keypoints, keep a tiny copy for the pixel check, measure sharpness."""
    image = open_image(path, draft_size=KEYPOINT_SIDE // 2)
    gray = np.asarray(image.convert("L"))
    if max(gray.shape) < MIN_KEYPOINT_SIDE:
        gray = _resize_long_side(gray, MIN_KEYPOINT_SIDE)
    # Equalised local contrast finds keypoints in dim, hazy and low-contrast photos too.
    equalised = cv2.createCLAHE(clipLimit=3.0, tileGridSize=(8, 8)).apply(gray)  # one per call: not thread-safe
    keypoints = extract_keypoints(equalised, long_side=KEYPOINT_SIDE)
    sharp = _resize_long_side(gray, SHARPNESS_SIDE)
    left, top, right, bottom = content_box(gray)
    look = cv2.GaussianBlur(_resize_long_side(gray[top:bottom, left:right], LOOK_SIDE), (0, 0), 1.0)
    return PhotoFeatures(keypoints, _resize_long_side(gray, AGREEMENT_SIDE),
                         float(cv2.Laplacian(sharp, cv2.CV_64F).var()), look)


def _resize_long_side(gray: np.ndarray, side: int) -> np.ndarray:
    scale = side / max(gray.shape)
    size = (max(AGREEMENT_WINDOW, round(gray.shape[1] * scale)), max(AGREEMENT_WINDOW, round(gray.shape[0] * scale)))
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)


def _affine(src: np.ndarray, dst: np.ndarray) -> tuple[int, np.ndarray | None]:
    if len(src) < 4:
        return 0, None
    model, mask = cv2.estimateAffine2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=6.0,
                                       maxIters=500, confidence=0.99, refineIters=0)
    if model is None or not 1 / 64 < float(np.linalg.det(model[:, :2])) < 64:
        return 0, None  # no fit, or a degenerate one (a collapse or an extreme zoom is RANSAC noise)
    return int(mask.sum()), model


def match_photos(a: PhotoFeatures, b: PhotoFeatures) -> PairMatch:
    """Verify a candidate pair: the affine map between their keypoints (trying a mirrored `a` when the
    direct one is weak), then how much of the overlap agrees pixel-wise under that map. Two photos
    that only share a background (the same wall, the same sky) have many inliers but disagree where
    their subjects are; a crop, a re-save or a colour edit of one photo agrees almost everywhere."""
    if len(a.keypoints) < 4 or len(b.keypoints) < 4:
        return PairMatch(0, 0.0)
    target = root_sift(b.keypoints.descriptors)
    best: tuple[int, np.ndarray | None, bool] = (0, None, False)
    for mirrored in (False, True):
        query = a.keypoints.mirrored() if mirrored else a.keypoints
        qi, ci = tentative_matches(root_sift(query.descriptors), target)
        inliers, model = _affine(query.xy[qi], b.keypoints.xy[ci])
        if inliers > best[0]:
            best = (inliers, model, mirrored)
        if best[0] >= MIRROR_TRY_BELOW:
            break
    inliers, model, mirrored = best
    if model is None:
        return PairMatch(0, 0.0)
    return PairMatch(inliers, _agreement(a, b, model, mirrored))


def _agreement(a: PhotoFeatures, b: PhotoFeatures, model: np.ndarray, mirrored: bool) -> float:
    """Share of the aligned overlap's windows whose texture matches (normalised cross-correlation, so
    brightness, contrast and colour edits do not count; windows flat in both count as matching)."""
    small_a = a.small[:, ::-1] if mirrored else a.small
    to_a = small_a.shape[1] / a.keypoints.width
    to_b = b.small.shape[1] / b.keypoints.width
    # the map between keypoint coordinates, rescaled to the two small copies
    m = np.hstack([model[:, :2] * (to_b / to_a), model[:, 2:] * to_b]).astype(np.float32)
    h, w = small_a.shape
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    blurred_a = cv2.GaussianBlur(small_a.astype(np.float32), (0, 0), AGREEMENT_BLUR)
    blurred_b = cv2.GaussianBlur(b.small.astype(np.float32), (0, 0), AGREEMENT_BLUR)
    warped = cv2.warpAffine(blurred_b, m, (w, h), flags=flags)
    inside = cv2.warpAffine(np.ones(b.small.shape, np.float32), m, (w, h), flags=flags, borderValue=0.0)
    win = AGREEMENT_WINDOW
    rows, cols = h // win, w // win
    if rows == 0 or cols == 0:
        return 0.0

    def blocks(x: np.ndarray) -> np.ndarray:
        return x[:rows * win, :cols * win].reshape(rows, win, cols, win).swapaxes(1, 2).reshape(rows * cols, -1)

    pa, pb = blocks(blurred_a), blocks(warped)
    valid = blocks(inside).min(axis=1) > 0.99
    if valid.sum() < AGREEMENT_MIN_WINDOWS:
        return 0.0
    pa, pb = pa[valid], pb[valid]
    pa, pb = pa - pa.mean(axis=1, keepdims=True), pb - pb.mean(axis=1, keepdims=True)
    sa, sb = pa.std(axis=1), pb.std(axis=1)
    ncc = (pa * pb).mean(axis=1) / np.maximum(sa * sb, 1e-6)
    flat_a, flat_b = sa < FLAT_STD, sb < FLAT_STD
    agree = np.where(flat_a & flat_b, True, np.where(flat_a | flat_b, False, ncc > 0.5))
    return float(agree.mean())


class SpilledFeatures:
    """Every photo's PhotoFeatures of one scan, written once to an unnamed temporary file in `folder` and
    read back through an LRU of `capacity` photos: a scan's memory stays bounded whatever the library's
    size (~50 KB a photo on disk instead of in memory). The file disappears when closed, or with the
    process. Only the thread that owns it calls it."""

    _HEADER = struct.Struct("<7id")  # keypoints, their image's width and height, small h w, look h w; sharpness

    def __init__(self, folder: Path, capacity: int = FEATURES_IN_MEMORY) -> None:
        self._file = tempfile.TemporaryFile(dir=folder, prefix="vitgallery-scan-")
        self._where: dict[int, tuple[int, int]] = {}  # file id -> (offset, length)
        self._end = 0
        self._recent: OrderedDict[int, PhotoFeatures] = OrderedDict()
        self._capacity = max(1, capacity)

    def __contains__(self, file_id: int) -> bool:
        return file_id in self._where

    def add(self, file_id: int, features: PhotoFeatures) -> None:
        kp = features.keypoints
        data = b"".join((
            self._HEADER.pack(len(kp), kp.width, kp.height, *features.small.shape, *features.look.shape,
                              features.sharpness),
            kp.xy.astype(np.float32).tobytes(), kp.descriptors.astype(np.uint8).tobytes(),
            np.ascontiguousarray(features.small, np.uint8).tobytes(), np.ascontiguousarray(features.look, np.uint8).tobytes(),
        ))
        self._file.write(data)
        self._file.flush()  # a full disk shows here, as an OSError for the caller, not at a later read
        self._where[file_id] = (self._end, len(data))
        self._end += len(data)
        self._remember(file_id, features)

    def get(self, file_id: int) -> PhotoFeatures:
        found = self._recent.get(file_id)
        if found is not None:
            self._recent.move_to_end(file_id)
            return found
        offset, length = self._where[file_id]
        self._file.seek(offset)
        data = self._file.read(length)
        self._file.seek(self._end)  # where the next add writes
        n, width, height, small_h, small_w, look_h, look_w, sharpness = self._HEADER.unpack_from(data)
        at = self._HEADER.size
        xy = np.frombuffer(data, np.float32, 2 * n, at).reshape(n, 2)
        at += 8 * n
        descriptors = np.frombuffer(data, np.uint8, SIFT_DIM * n, at).reshape(n, SIFT_DIM)
        at += SIFT_DIM * n
        small = np.frombuffer(data, np.uint8, small_h * small_w, at).reshape(small_h, small_w)
        at += small_h * small_w
        look = np.frombuffer(data, np.uint8, look_h * look_w, at).reshape(look_h, look_w)
        features = PhotoFeatures(Keypoints(xy, descriptors, width, height), small, sharpness, look)
        self._remember(file_id, features)
        return features

    def _remember(self, file_id: int, features: PhotoFeatures) -> None:
        self._recent[file_id] = features
        while len(self._recent) > self._capacity:
            self._recent.popitem(last=False)

    def close(self) -> None:
        self._file.close()
        self._recent.clear()


def look_likeness(a: np.ndarray, b: np.ndarray) -> float | None:
    """How well two small blurred grey copies (PhotoFeatures.look) align, in [-1, 1]: the best normalised
    correlation of either slid over the other at LOOK_SCALES, mirrored or not, or of the two squeezed to
    one square (a squashed copy). Correlation ignores brightness, contrast and a grey conversion; the
    slide finds crops; a frame was trimmed before. None when either copy is flat: blank pictures align
    with anything."""
    a, b = a.astype(np.float32), b.astype(np.float32)  # kept as uint8: a scan holds one per photo
    if a.std() < LOOK_MIN_STD or b.std() < LOOK_MIN_STD:
        return None
    best = -1.0
    for large, small in ((a, b), (b, a)):
        height, width = large.shape
        for flipped in (small, small[:, ::-1]):
            for scale in LOOK_SCALES:
                w = round(width * scale)
                h = round(w * flipped.shape[0] / flipped.shape[1])
                if h > height:  # taller than the large copy: fit its height instead
                    h = round(height * scale)
                    w = round(h * flipped.shape[1] / flipped.shape[0])
                if min(w, h) < AGREEMENT_WINDOW or w > width or h > height:
                    continue
                template = cv2.resize(np.ascontiguousarray(flipped), (w, h), interpolation=cv2.INTER_AREA)
                if template.std() < LOOK_MIN_STD:
                    continue
                best = max(best, float(cv2.matchTemplate(large, template, cv2.TM_CCOEFF_NORMED).max()))
    side = LOOK_SIDE // 2
    square_a = cv2.resize(a, (side, side), interpolation=cv2.INTER_AREA)
    for flipped in (b, b[:, ::-1]):
        square_b = cv2.resize(np.ascontiguousarray(flipped), (side, side), interpolation=cv2.INTER_AREA)
        best = max(best, float(cv2.matchTemplate(square_a, square_b, cv2.TM_CCOEFF_NORMED)[0, 0]))
    return best


def candidate_pairs(ids: np.ndarray, vectors: np.ndarray, query: Callable[[np.ndarray, int], tuple],
                    k: int = NEIGHBOURS) -> set[tuple[int, int]]:
    """Each photo with its k nearest neighbours, as (a, b) with a < b."""
    pairs: set[tuple[int, int]] = set()
    for start in range(0, len(ids), 1024):
        labels, _ = query(vectors[start:start + 1024], k + 1)
        for own, row in zip(ids[start:start + 1024].tolist(), labels.tolist(), strict=True):
            pairs.update((min(own, other), max(own, other)) for other in row if other != own)
    return pairs


def scan_duplicates(library, *, progress: Callable[[DuplicateProgress], None] | None = None,
                    cancel: threading.Event | None = None, k: int = NEIGHBOURS,
                    workers: int | None = None, features_in_memory: int = FEATURES_IN_MEMORY) -> DuplicateScan:
    """Find and verify the candidate pairs of a whole library (a `Library`). Photos that vanished or
    changed since they were indexed are left out and listed in `problems`. Each photo's features wait in
    a temporary file beside the library (see SpilledFeatures); ScanError when it cannot be written.

    Candidates are each photo's k nearest neighbours in the library's index, whose vectors went
    through the whitening the library learned from its own photos' edited copies (see Library): it
    damps what edits change and what all photos share (plain backgrounds), so an edited copy ranks
    above look-alikes.
    """
    report = progress or (lambda p: None)
    cancel = cancel or threading.Event()
    store: Store = library.store
    space = library.search_space()
    index, whitening = (space.index, space.whitening) if space is not None else (None, None)
    files = store.files_by_ids(index.labels()) if index is not None else {}
    scan = DuplicateScan(library.root, files, {}, [], store.decisions())
    if index is None or len(files) < 2:
        return scan

    report(DuplicateProgress("candidates", 0, 1))
    chunks = list(store.iter_vectors())
    ids = np.concatenate([c[0] for c in chunks])
    vectors = np.concatenate([c[1] for c in chunks])
    keep = np.isin(ids, list(files))
    ids = ids[keep]
    whitened = vectors[keep] if whitening is None else whitening.apply(vectors[keep])
    del chunks, vectors
    pairs = candidate_pairs(ids, whitened, index.query, k)
    position = {file_id: n for n, file_id in enumerate(ids.tolist())}
    report(DuplicateProgress("candidates", 1, 1))

    needed = sorted({i for pair in pairs for i in pair})

    def analyse(file_id: int) -> tuple[int, PhotoFeatures | None, str | None]:
        row = files[file_id]
        path = library.root / row.path
        try:
            st = path.stat()
            if st.st_size != row.size or st.st_mtime_ns != row.mtime_ns:
                return file_id, None, "changed since it was indexed: index the folder again"
            return file_id, analyse_photo(path), None
        except FileNotFoundError:
            return file_id, None, "vanished since it was indexed"
        except DecodeError as exc:
            return file_id, None, exc.reason
        except OSError as exc:
            return file_id, None, f"cannot read file: {exc.strerror or exc}"
        except cv2.error as exc:
            log.warning("cannot analyse %s: %s", path, exc)
            return file_id, None, "could not be analysed"

    try:
        features = SpilledFeatures(library.library_dir, features_in_memory)
    except OSError as exc:
        raise ScanError(f"cannot write the scan's working file in {library.library_dir}: {exc.strerror or exc}") from exc
    try:
        workers = workers or max(1, min(4, os.cpu_count() or 1))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vitgallery-duplicates") as pool:
            for done, (file_id, found, problem) in enumerate(pool.map(analyse, needed), 1):
                if found is None:
                    scan.problems.append((library.root / files[file_id].path, problem or "unreadable"))
                else:
                    try:
                        features.add(file_id, found)
                    except OSError as exc:
                        pool.shutdown(wait=False, cancel_futures=True)
                        raise ScanError(
                            f"no room for the scan's working file in {library.library_dir} "
                            f"({exc.strerror or exc}; it needs about 50 KB a photo): free some space and scan again"
                        ) from exc
                    scan.sharpness[file_id] = found.sharpness
                report(DuplicateProgress("keypoints", done, len(needed)))
                if cancel.is_set():
                    pool.shutdown(wait=False, cancel_futures=True)
                    scan.cancelled = True
                    return scan

        # in order of the first photo, so its features serve all its pairs from memory in a row
        todo = sorted((a, b) for a, b in pairs if a in features and b in features)
        for done, (a, b) in enumerate(todo, 1):
            cv2.setRNGSeed(0)  # RANSAC draws samples: a fixed seed makes a rescan give the same groups
            first, second = features.get(a), features.get(b)
            match = match_photos(first, second)
            white = float(whitened[position[a]] @ whitened[position[b]])
            likeness = (look_likeness(first.look, second.look)
                        if match.inliers < _LOOK_BELOW_INLIERS and white >= LOOK_FROM_WHITENED else None)
            scan.pairs.append(PairEvidence(a, b, white, match.inliers, match.agreement,
                                           pair_score(white, match.inliers, match.agreement, likeness), likeness))
            if done % 64 == 0 or done == len(todo):
                report(DuplicateProgress("verifying", done, len(todo)))
                if cancel.is_set():
                    scan.cancelled = True
                    return scan
    finally:
        features.close()
    report(DuplicateProgress("done", len(todo), len(todo)))
    return scan


# -- decisions -------------------------------------------------------------------------------------

def decide(store: Store, group: DuplicateGroup, decision: str) -> None:
    """Remember that a group is not duplicates, or is to be kept whole; it stays hidden until it changes."""
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {DECISIONS}, not {decision!r}")
    store.save_decision(group.key, group.fingerprints, [str(m.path) for m in group.members], decision)


def forget_decision(store: Store, key: str) -> None:
    store.forget_decision(key)
