"""The system trash: moving a file into it so that it can be put back, and checking a trash entry.

On Linux and other freedesktop systems the move is done here, following the freedesktop.org trash
specification, because undo needs to know exactly where each file went and send2trash does not say
(it also fixes the trash folder when it is first imported and picks it by the device of the home
folder, not of $XDG_DATA_HOME). macOS and Windows use send2trash; putting files back from their
trash is left to the system (UNDO_SUPPORTED is False).

Which trash: the home trash when the file is on the home folder's drive, else the drive's own trash
at its top folder (`.Trash/$uid` or `.Trash-$uid`), as file managers do; except when that top folder
is inside the photo folder (a photo folder that is a drive of its own, or holds one): vitgallery
writes nothing into the photo folder, so the file is copied into the home trash instead (slower, and
it takes room on the home drive until the trash is emptied).

A move into the trash is two steps, so a log can be written between them: `reserve` claims a name
and writes the .trashinfo, `commit` moves the file in.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import quote, unquote_to_bytes

from vitgallery.core.duplicates.moving import move_file

FREEDESKTOP = not sys.platform.startswith(("darwin", "win"))
UNDO_SUPPORTED = FREEDESKTOP
_INFO_SUFFIX = ".trashinfo"


@dataclass(frozen=True)
class TrashEntry:
    file: Path  # where the file goes (or went) inside the trash's files/ folder
    info: Path  # its .trashinfo, which says where it came from


def home_trash() -> Path:
    """$XDG_DATA_HOME/Trash, read now (not cached), so a changed environment is honoured."""
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "Trash"


def _device(path: Path) -> int:
    """The device of path, or of its nearest existing ancestor."""
    for candidate in (path, *path.parents):
        try:
            return candidate.stat().st_dev
        except FileNotFoundError:
            continue
    raise OSError(errno.ENOENT, "no existing ancestor", str(path))


def _mount_point(path: Path) -> Path:
    path = Path(os.path.realpath(path))
    while not os.path.ismount(path):
        path = path.parent
    return path


def _is_within(path: Path, folder: Path) -> bool:
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(folder))


def _drive_trash(top: Path) -> Path:
    """The drive's trash for this user: the administrator's shared .Trash (sticky, not a link) if
    there is one, else .Trash-$uid, created."""
    shared = top / ".Trash"
    try:
        st = shared.lstat()
        if stat.S_ISDIR(st.st_mode) and not stat.S_ISLNK(st.st_mode) and st.st_mode & stat.S_ISVTX:
            own = shared / str(os.getuid())
            own.mkdir(mode=0o700, exist_ok=True)
            return own
    except OSError:
        pass
    own = top / f".Trash-{os.getuid()}"
    own.mkdir(mode=0o700, exist_ok=True)
    return own


def _trash_for(path: Path, photo_root: Path | None) -> tuple[Path, Path | None]:
    """(trash folder, topdir): topdir is None for the home trash, whose .trashinfo paths are absolute."""
    home = home_trash()
    if _device(path) == _device(home):
        return home, None
    top = _mount_point(path.parent)
    if photo_root is not None and _is_within(top, photo_root):
        return home, None  # the drive's trash would be inside the photo folder: copy to the home trash
    return _drive_trash(top), top


def reserve(path: Path, photo_root: Path | None = None) -> TrashEntry:
    """Claim a name in the trash for `path` and write its .trashinfo; the file itself stays put."""
    trash, topdir = _trash_for(path, photo_root)
    files, info = trash / "files", trash / "info"
    files.mkdir(mode=0o700, parents=True, exist_ok=True)
    info.mkdir(mode=0o700, parents=True, exist_ok=True)
    # relative to the drive's top as the drive sees it: through a linked folder (~/Pictures -> /mnt/data/...)
    # the path as given would climb out of the top with ".."
    original = str(path) if topdir is None else os.path.relpath(_on_its_drive(path), topdir)
    # The spec's Path is the name's bytes, URL-escaped: any name the system allows, UTF-8 or not.
    record = (f"[Trash Info]\nPath={quote(os.fsencode(original))}\n"
              f"DeletionDate={datetime.now().strftime('%Y-%m-%dT%H:%M:%S')}\n")
    stem, suffix = path.stem, path.suffix
    # A name the drive allows can be too long with ".trashinfo" after it: the entry's name is then cut
    # (its .trashinfo keeps the whole original path).
    room = _longest_name(info) - len(_INFO_SUFFIX)
    n = 1
    while True:
        name = _fitting(stem, suffix if n == 1 else f" {n}{suffix}", room)
        info_file = info / f"{name}{_INFO_SUFFIX}"
        try:
            # O_EXCL claims the name: the spec's way to avoid two programs picking the same one.
            fd = os.open(info_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            n += 1
            continue
        if os.path.lexists(files / name):
            os.close(fd)
            os.unlink(info_file)
            n += 1
            continue
        break
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(record)
    except OSError:  # a full disk: no empty .trashinfo left behind to hold the name and show as broken
        os.unlink(info_file)
        raise
    return TrashEntry(files / name, info_file)


def _longest_name(folder: Path) -> int:
    """The longest file name, in bytes, that `folder`'s file system takes."""
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255  # the limit of every common Linux file system


def _fitting(stem: str, tail: str, room: int) -> str:
    """stem + tail, the stem cut by whole characters where the name would take more than `room` bytes."""
    while stem and len(os.fsencode(stem + tail)) > room:
        stem = stem[:-1]
    return stem + tail


def _on_its_drive(path: Path) -> Path:
    """`path` with the links of its folders followed (not of the file: a link is trashed as itself)."""
    return Path(os.path.realpath(path.parent)) / path.name


def commit(path: Path, entry: TrashEntry) -> None:
    """Move the file into its reserved place (copied, when the trash is on another drive); on failure
    the reservation is given back."""
    try:
        move_file(path, entry.file)
    except OSError:
        release(entry)
        raise


def release(entry: TrashEntry) -> None:
    """Give back a reservation whose file never arrived: its .trashinfo goes."""
    if not os.path.lexists(entry.file):
        entry.info.unlink(missing_ok=True)


def send_to_system_trash(path: Path) -> None:
    """macOS and Windows: the system's own trash, which vitgallery cannot put back from."""
    from send2trash import send2trash

    send2trash(str(path))


def is_trash_entry(entry: TrashEntry) -> bool:
    """Whether `entry` has the shape of an entry of a trash folder this user may use: files/NAME and
    info/NAME.trashinfo of the home trash or of a drive's .Trash-$uid or .Trash/$uid."""
    trash = entry.file.parent.parent
    if entry.file.parent.name != "files" or entry.info != trash / "info" / f"{entry.file.name}{_INFO_SUFFIX}":
        return False
    uid = str(os.getuid()) if hasattr(os, "getuid") else ""
    return (trash == home_trash() or trash.name == f".Trash-{uid}"
            or (trash.name == uid and trash.parent.name == ".Trash"))


def original_path(entry: TrashEntry) -> Path | None:
    """The original path recorded in an entry's .trashinfo (relative ones are from the trash's drive)."""
    try:
        lines = entry.info.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("Path="):
            original = Path(os.fsdecode(unquote_to_bytes(line[len("Path="):])))
            if original.is_absolute():
                return original
            # files/NAME inside TRASH inside topdir (topdir/.Trash-uid or topdir/.Trash/uid)
            trash = entry.file.parent.parent
            topdir = trash.parent.parent if trash.parent.name == ".Trash" else trash.parent
            # normalised: entries written before _on_its_drive climbed through a linked folder with ".."
            return Path(os.path.normpath(topdir / original))
    return None


def came_from(entry: TrashEntry, path: Path) -> bool:
    """Whether an entry's .trashinfo says its file came from `path` (as given, or through its folders' links)."""
    return original_path(entry) in (path, _on_its_drive(path))
