"""Moving one file so that nothing is ever replaced and a kill never leaves half a photo behind.

Within a drive a move is one rename. Across drives it is a copy under a temporary name beside the
destination (`partial_path`), flushed to disk, then renamed into place, and only then is the source
removed: at any moment the photo is whole in at least one place, and a half copy never carries the
destination's name (what was left half-copied is found by its temporary name and removed).
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

PARTIAL_SUFFIX = ".vitgallery-partial"


def partial_path(destination: Path) -> Path:
    """Where a copy across drives is written before it gets the destination's name."""
    return destination.with_name(f".{destination.name}{PARTIAL_SUFFIX}")


def move_file(source: Path, destination: Path) -> None:
    """Move a file (or a symbolic link, as it is) to `destination`, which must not exist."""
    if os.path.lexists(destination):
        raise FileExistsError(errno.EEXIST, "a file is already there", str(destination))
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(source, destination)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        _copy_then_remove(source, destination)


def _copy_then_remove(source: Path, destination: Path) -> None:
    if not os.access(source.parent, os.W_OK):  # a read-only card or share: no copy is left behind for nothing
        if _read_only(source.parent):
            raise OSError(errno.EROFS, "its drive is read-only, so it cannot be moved off it", str(source))
        raise OSError(errno.EACCES, "its folder cannot be written, so it cannot be moved out of it", str(source))
    partial = partial_path(destination)
    try:
        if source.is_symlink():
            os.symlink(os.readlink(source), partial)
        else:
            shutil.copy2(source, partial)
            with open(partial, "rb+") as stream:
                os.fsync(stream.fileno())
        if os.path.lexists(destination):
            raise FileExistsError(errno.EEXIST, "a file is already there", str(destination))
        os.rename(partial, destination)
    except BaseException:
        if os.path.lexists(partial):
            os.unlink(partial)
        raise
    try:
        os.unlink(source)
    except OSError:
        os.unlink(destination)  # the photo stays where it was, and only there
        raise


def _read_only(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False
