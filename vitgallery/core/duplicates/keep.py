"""Which photo of a group to keep: the best copy by default, or a simple rule a user chooses.

The best copy (KeepRule.BEST) is the one an edit has not touched. Every member gets a quality score:
the pixels that hold its picture (its padding left out), less a fixed cost for each sign of an edit
it shows against the rest of its group (measured in quality.py and read off the keypoint maps,
groups.MemberShape). Members within a hair of the best score are equals; among them a photo with
camera EXIF wins (apps that edit or re-save often drop it), then one older than the others by a minute or
more (an original comes before its copies; a JPEG quality only says how a file was saved last, and a copy
exported later at a higher one read as the better), then, when every equal is a JPEG, the one saved at
the higher JPEG quality (a copy re-saved lower lost more; another format's loss cannot be compared with
it), then the older one, then resolution, then file size.

A symbolic link and its target are one photo: the rule never keeps a link whose target is another
member (removing the rest would leave it dangling); the choice names the members that are the kept
file under another name, which must be kept with it.
"""

from __future__ import annotations

import enum
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vitgallery.core.duplicates.groups import DuplicateMember

# The signs of an edit (measured on seeds 1 and 2 of the public corpus with bench/keeper_choice.py).
PADDED = 0.02  # share of a photo's picture that is padding (a border, a rotated canvas)
STRETCHED = 0.068  # log of the stretch against the rest of the group: 7 %; unedited members show up to 6 %
TILTED = 2.0  # degrees turned against the rest of the group; unedited members show up to 1.2
SOFT = 0.5  # finest detail under this share of the group's median: blurred or upscaled
BLOCKY = 1.5  # block edges this many times stronger than the group's median: a low-quality JPEG save
EDIT_COST = 2.0  # what a sign of an edit costs, in log2 of pixels: a clean copy with a quarter of the pixels ties
EQUAL_SCORES = 0.1  # log2 of pixels: closer scores are equal (under 7 % in pixels)
CLEARLY_OLDER_S = 60.0  # a copy saved this long after another is younger; closer, a batch's files tie


class KeepRule(enum.Enum):
    BEST = "best"
    RESOLUTION = "resolution"
    FILE_SIZE = "size"
    OLDEST = "oldest"
    NEWEST = "newest"
    SHARPEST = "sharpest"
    PREFERRED_FOLDER = "folder"

    @property
    def label(self) -> str:
        return {"best": "best copy", "resolution": "highest resolution", "size": "largest file",
                "oldest": "oldest", "newest": "newest", "sharpest": "sharpest",
                "folder": "one in the preferred folder"}[self.value]


DEFAULT_RULE = KeepRule.BEST


@dataclass(frozen=True)
class KeeperChoice:
    member: DuplicateMember  # the photo to keep
    reason: str  # why, in a few words (for a badge, a tooltip, a report)
    same_file: tuple[DuplicateMember, ...] = ()  # members that are the kept file under another name (links)


def choose_keeper(members: Sequence[DuplicateMember], rule: KeepRule = DEFAULT_RULE,
                  preferred_folder: Path | None = None) -> KeeperChoice:
    """The member a rule keeps, and why. Ties fall to higher resolution, then larger file, then path
    order; PREFERRED_FOLDER keeps the best copy in that folder, or the best copy when none is."""
    if not members:
        raise ValueError("an empty group has nothing to keep")
    files = _files(members)
    pool = list(files)
    if rule is KeepRule.PREFERRED_FOLDER:
        if preferred_folder is None:
            raise ValueError("the preferred-folder rule needs a folder")
        folder = Path(preferred_folder).expanduser().absolute()
        under = [m for m in pool if any(_is_under(n.path, folder) for n in files[m])]
        keeper, why = _best(under or pool, members)
        reason = f"in {folder}" if under else f"none in {folder}; {why}"
    elif rule is KeepRule.BEST:
        keeper, reason = _best(pool, members)
    else:
        primary: Callable[[DuplicateMember], float] = {
            KeepRule.RESOLUTION: lambda m: m.pixels,
            KeepRule.FILE_SIZE: lambda m: m.size,
            KeepRule.OLDEST: lambda m: -m.date,
            KeepRule.NEWEST: lambda m: m.date,
            KeepRule.SHARPEST: lambda m: m.sharpness,
        }[rule]
        ordered = sorted(pool, key=lambda m: str(m.path))  # max keeps the first of equals: path order
        keeper = max(ordered, key=lambda m: (primary(m), m.pixels, m.size))
        reason = rule.label
    return KeeperChoice(keeper, reason, tuple(m for m in files[keeper] if m is not keeper))


def edit_signs(member: DuplicateMember, members: Sequence[DuplicateMember]) -> list[str]:
    """The signs of an edit a member shows against the rest of its group, in words."""
    signs = []
    shape, quality = member.shape, member.quality
    if padding(member) >= PADDED:
        signs.append("padded")
    if shape is not None and shape.stretch >= STRETCHED:
        signs.append("stretched")
    elif shape is None and _aspect_off(member, members) >= STRETCHED:
        signs.append("reshaped")  # no keypoint map to tell a stretch from a crop: either is a copy
    if shape is not None and shape.tilt >= TILTED:
        signs.append("tilted")
    others = [m.quality for m in members if m is not member and m.quality is not None]
    if quality is not None and others:
        # grey where most others have colour (a caption box can be a grey original's only colour)
        if quality.grey and sum(not q.grey for q in others) > len(others) / 2:
            signs.append("grey")
        if len(others) >= 2:
            if quality.fine_detail < SOFT * statistics.median(q.fine_detail for q in others):
                signs.append("soft")
            if quality.blockiness >= BLOCKY * statistics.median(q.blockiness for q in others):
                signs.append("blocky")
    return signs


def _aspect_off(member: DuplicateMember, members: Sequence[DuplicateMember]) -> float:
    """|log| of a member's aspect ratio against the median of the others': most copies keep the
    picture's proportions, so the group's median is the original's."""
    others = [m.width / m.height for m in members if m is not member and m.width and m.height]
    if len(others) < 2 or not (member.width and member.height):
        return 0.0
    return abs(math.log(member.width / member.height / statistics.median(others)))


def padding(member: DuplicateMember) -> float:
    """Share of a member's picture that is padding: against another member (a border, a grown canvas),
    or the flat corners of a turned canvas, which need no other member to be seen."""
    shape_padding = member.shape.padding if member.shape is not None else 0.0
    return max(shape_padding, member.quality.frame if member.quality is not None else 0.0)


def quality_score(member: DuplicateMember, members: Sequence[DuplicateMember]) -> float:
    """log2 of the pixels that hold the picture, less EDIT_COST for each sign of an edit."""
    pad = padding(member)
    picture = max(member.pixels * (1.0 - (pad if pad >= PADDED else 0.0)), 1.0)
    return math.log2(picture) - EDIT_COST * len(edit_signs(member, members))


def _best(pool: Sequence[DuplicateMember], members: Sequence[DuplicateMember]) -> tuple[DuplicateMember, str]:
    scores = {id(m): quality_score(m, members) for m in pool}
    top = max(scores.values())
    equals = sorted((m for m in pool if scores[id(m)] >= top - EQUAL_SCORES), key=lambda m: str(m.path))
    # A WebP or PNG re-save of a JPEG says nothing comparable of its loss: then the quality does not decide.
    saved_at = {id(m): _jpeg_quality(m) for m in equals}
    compared = all(quality is not None for quality in saved_at.values())
    oldest = min(m.date for m in equals)
    first = {id(m): m.date - oldest < CLEARLY_OLDER_S for m in equals}  # not clearly younger than another
    keeper = max(equals, key=lambda m: (m.quality is not None and m.quality.camera is not None, first[id(m)],
                                        saved_at[id(m)] if compared else 0, -m.date, m.pixels, m.size))
    others = [m for m in members if m is not keeper]
    signs = {id(m): edit_signs(m, members) for m in others}
    edited = sorted({sign for m in others for sign in signs[id(m)]})
    if len(equals) > 1:
        why = ("camera photo" if keeper.quality is not None and keeper.quality.camera
               and any(m.quality is None or m.quality.camera is None for m in equals if m is not keeper)
               else "saved at a higher JPEG quality" if compared and any(
                   saved_at[id(m)] < saved_at[id(keeper)] for m in equals if first[id(m)])
               else _oldest(keeper, equals) if any(m.date > keeper.date for m in equals)
               else "largest of equally good copies")
    elif any(m.pixels * 0.93 > keeper.pixels for m in others):
        why = "no edits seen"  # a larger member lost on the signs of an edit
    else:
        why = "most detail"
    if edited:
        why += f"; others {', '.join(edited)}"
    return keeper, why


def _oldest(keeper: DuplicateMember, equals: Sequence[DuplicateMember]) -> str:
    """Why the oldest of equally good copies is kept, with its lead where the dates shown (to the minute) hide
    it: copies saved a moment apart read as the same time."""
    lead = min(m.date for m in equals if m.date > keeper.date) - keeper.date
    if lead >= CLEARLY_OLDER_S:
        return "oldest of equally good copies"
    return f"first saved of equally good copies, by {'less than 0.1' if lead < 0.1 else f'{lead:.1f}'} s"


def _jpeg_quality(member: DuplicateMember) -> int | None:
    """The JPEG quality a member was last saved at (None: not a JPEG, or not measured): among equal
    JPEGs, one saved at a lower quality went through a lossier save than the other."""
    return member.quality.jpeg_quality if member.quality is not None else None


def _files(members: Sequence[DuplicateMember]) -> dict[DuplicateMember, list[DuplicateMember]]:
    """Members by the file they are, links resolved: each file's representative (the member that is the
    file itself, when there is one) -> every member that is that file."""
    folders: dict[Path, Path] = {}  # a group's members share few folders: each is resolved once

    def in_resolved_folder(path: Path) -> Path:
        """The path with its folder's links resolved, itself not: equal to the fully resolved path only
        for the file that is not a link."""
        if path.parent not in folders:
            folders[path.parent] = _resolved(path.parent)
        return folders[path.parent] / path.name

    by_target: dict[Path, list[DuplicateMember]] = {}
    for m in members:
        by_target.setdefault(_resolved(m.path) if _is_link(m.path) else in_resolved_folder(m.path), []).append(m)
    out = {}
    for target, same in by_target.items():
        own = next((m for m in same if in_resolved_folder(m.path) == target), None)
        out[own or min(same, key=lambda m: str(m.path))] = same
    return out


def _is_link(path: Path) -> bool:
    try:
        return path.is_symlink()
    except OSError:  # unreadable: resolving it would keep it as it is too
        return False


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a loop of links: it stands for itself
        return path


def _is_under(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False
