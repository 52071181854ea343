"""Which photo of a group to keep: the rules a user chooses from."""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from pathlib import Path

from vitgallery.core.duplicates.groups import DuplicateMember


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
                "newest": "newest", "sharpest": "sharpest", "folder": "one in the preferred folder"}[self.value]


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
