"""Bulk actions on duplicates: to the trash, into a folder, or a list exported; each logged, most undoable.

Nothing is ever deleted: files go to the system trash or to a folder the user picked. Before touching
a group, every member is checked against what the scan saw (present, same size and modification
time) and at least one member must be kept; a group that fails the check is left untouched and
reported, the other groups go ahead.

The trash: on Linux and other freedesktop systems the move into the trash is done here, following
the freedesktop.org trash specification, because undo needs to know exactly where each file went and
send2trash does not say (it also fixes the trash folder when it is first imported and picks it by the
device of the home folder, not of $XDG_DATA_HOME). macOS and Windows use send2trash; undo from their
trash is not supported (TRASH_UNDO_SUPPORTED is False and the window disables it).
"""

from __future__ import annotations

import csv
import errno
import json
import logging
import os
import shutil
import stat
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import quote, unquote

from vitgallery.core.duplicates import DuplicateMember
from vitgallery.core.store import ActionItemRow, ActionRow, Store

log = logging.getLogger(__name__)

FREEDESKTOP_TRASH = not sys.platform.startswith(("darwin", "win"))
TRASH_UNDO_SUPPORTED = FREEDESKTOP_TRASH
UNDOABLE_KINDS = ("trash", "move")
EXPORT_FORMATS = ("csv", "json")

DONE, RESTORED = "done", "restored"


class ActionError(Exception):
    """The action cannot start at all (no target folder, nothing selected...); nothing was changed."""


@dataclass(frozen=True)
class GroupSelection:
    """One group as the user left it: its members as scanned, and which of them to keep."""

    members: tuple[DuplicateMember, ...]
    keep: frozenset[Path]

    @property
    def to_remove(self) -> list[DuplicateMember]:
        return [m for m in self.members if m.path not in self.keep]


@dataclass
class ActionReport:
    kind: str
    action_id: int | None = None
    done: list[tuple[Path, Path | None]] = field(default_factory=list)  # (from, to)
    problems: list[tuple[Path, str]] = field(default_factory=list)  # (file, what happened): left untouched

    def summary(self) -> str:
        verb = {"trash": "moved to the trash", "move": "moved", "export": "exported",
                "undo": "put back"}.get(self.kind, self.kind)
        text = f"{len(self.done)} file{'s' if len(self.done) != 1 else ''} {verb}"
        if self.problems:
            text += f"; {len(self.problems)} left as they were"
        return text


# -- checking a selection against the disk ---------------------------------------------------------

def _unchanged_problem(member: DuplicateMember) -> str | None:
    try:
        st = member.path.stat()
    except FileNotFoundError:
        return "vanished since the scan"
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    if st.st_size != member.size or st.st_mtime_ns != member.mtime_ns:
        return "changed since the scan"
    return None


def check_selections(selections: Iterable[GroupSelection]) -> tuple[list[GroupSelection], list[tuple[Path, str]]]:
    """The groups safe to act on, and a problem for each file that keeps its group untouched."""
    ready: list[GroupSelection] = []
    problems: list[tuple[Path, str]] = []
    for selection in selections:
        if not selection.to_remove:
            continue
        if not any(m.path in selection.keep for m in selection.members):
            problems.extend((m.path, "not touched: every photo of its group was selected, keep at least one")
                            for m in selection.to_remove)
            continue
        found = [(m.path, p) for m in selection.members if (p := _unchanged_problem(m)) is not None]
        if found:
            problems.extend(found)
            problems.extend((m.path, "not touched: another photo of its group changed since the scan")
                            for m in selection.to_remove if m.path not in {path for path, _ in found})
            continue
        ready.append(selection)
    return ready, problems


# -- moving into a folder --------------------------------------------------------------------------

def unique_destination(folder: Path, name: str, taken: set[Path] | None = None) -> Path:
    """folder/name, or folder/'stem (2).ext' and so on when that name is used on disk or in `taken`."""
    taken = taken or set()
    candidate = folder / name
    stem, suffix = Path(name).stem, Path(name).suffix
    n = 1
    while candidate in taken or os.path.lexists(candidate):
        n += 1
        candidate = folder / f"{stem} ({n}){suffix}"
    return candidate


def _move_file(source: Path, destination: Path) -> None:
    """Move without ever replacing an existing file; across drives it copies, then removes the source."""
    if os.path.lexists(destination):
        raise FileExistsError(errno.EEXIST, "a file is already there", str(destination))
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(source, destination)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        shutil.move(source, destination)


def move_to_folder(store: Store, selections: Iterable[GroupSelection], folder: Path) -> ActionReport:
    """Move every photo not kept into `folder`, names kept (made unique); logged for undo."""
    folder = Path(folder).expanduser().absolute()
    if folder.exists() and not folder.is_dir():
        raise ActionError(f"{folder} is not a folder")
    ready, problems = check_selections(selections)
    report = ActionReport("move", problems=problems)
    taken: set[Path] = set()
    for selection in ready:
        for member in selection.to_remove:
            destination = unique_destination(folder, member.path.name, taken)
            try:
                _move_file(member.path, destination)
            except OSError as exc:
                report.problems.append((member.path, f"not moved: {exc.strerror or exc}"))
                continue
            taken.add(destination)
            report.done.append((member.path, destination))
    _log(store, report, str(folder))
    return report


def move_files(store: Store, moves: Iterable[tuple[Path, Path]]) -> ActionReport:
    """Move each file into its own folder ((file, folder) pairs: sorting photos into folders), names kept
    (made unique); one logged action that `undo` puts back. A file already in its folder stays; one
    that vanished or cannot be moved is reported and left alone."""
    report = ActionReport("move")
    taken: set[Path] = set()
    folders: set[Path] = set()
    for source, folder in moves:
        source, folder = Path(source), Path(folder).expanduser().absolute()
        if source.parent == folder:
            continue
        if folder.exists() and not folder.is_dir():
            report.problems.append((source, f"not moved: {folder} is not a folder"))
            continue
        if not os.path.lexists(source):
            report.problems.append((source, "not moved: it vanished"))
            continue
        destination = unique_destination(folder, source.name, taken)
        try:
            _move_file(source, destination)
        except OSError as exc:
            report.problems.append((source, f"not moved: {exc.strerror or exc}"))
            continue
        taken.add(destination)
        folders.add(folder)
        report.done.append((source, destination))
    _log(store, report, os.path.commonpath(folders) if folders else None)
    return report


# -- the trash -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrashedFile:
    file: Path  # the file inside the trash's files/ folder
    info: Path | None  # its .trashinfo (freedesktop only)


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


def _trash_for(path: Path) -> tuple[Path, Path | None]:
    """(trash folder, topdir): the home trash when the file is on its drive, else the drive's own trash.
    topdir is None for the home trash, whose .trashinfo paths are absolute."""
    home = home_trash()
    if _device(path) == _device(home):
        return home, None
    top = _mount_point(path.parent)
    shared = top / ".Trash"
    try:
        st = shared.lstat()
        if stat.S_ISDIR(st.st_mode) and not stat.S_ISLNK(st.st_mode) and st.st_mode & stat.S_ISVTX:
            own = shared / str(os.getuid())
            own.mkdir(mode=0o700, exist_ok=True)
            return own, top
    except OSError:
        pass
    own = top / f".Trash-{os.getuid()}"
    own.mkdir(mode=0o700, exist_ok=True)
    return own, top


def _freedesktop_trash(path: Path) -> TrashedFile:
    trash, topdir = _trash_for(path)
    files, info = trash / "files", trash / "info"
    files.mkdir(mode=0o700, parents=True, exist_ok=True)
    info.mkdir(mode=0o700, parents=True, exist_ok=True)
    original = str(path) if topdir is None else os.path.relpath(path, topdir)
    record = (f"[Trash Info]\nPath={quote(original)}\n"
              f"DeletionDate={datetime.now().strftime('%Y-%m-%dT%H:%M:%S')}\n")
    stem, suffix = path.stem, path.suffix
    n = 1
    while True:
        name = path.name if n == 1 else f"{stem} {n}{suffix}"
        info_file = info / f"{name}.trashinfo"
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
    with os.fdopen(fd, "w", encoding="utf-8") as stream:
        stream.write(record)
    try:
        os.rename(path, files / name)
    except OSError:
        info_file.unlink(missing_ok=True)
        raise
    return TrashedFile(files / name, info_file)


def _system_trash(path: Path) -> TrashedFile:
    from send2trash import send2trash

    send2trash(str(path))
    return TrashedFile(Path(), None)


def trash_file(path: Path) -> TrashedFile:
    """Move one file to the system trash."""
    return _freedesktop_trash(path) if FREEDESKTOP_TRASH else _system_trash(path)


def move_to_trash(store: Store, selections: Iterable[GroupSelection]) -> ActionReport:
    """Move every photo not kept to the system trash; logged, undoable on freedesktop systems."""
    ready, problems = check_selections(selections)
    report = ActionReport("trash", problems=problems)
    infos: dict[Path, Path | None] = {}
    for selection in ready:
        for member in selection.to_remove:
            try:
                trashed = trash_file(member.path)
            except OSError as exc:
                report.problems.append((member.path, f"not moved to the trash: {exc.strerror or exc}"))
                continue
            destination = trashed.file if trashed.info is not None else None
            report.done.append((member.path, destination))
            infos[member.path] = trashed.info
    _log(store, report, str(home_trash()) if FREEDESKTOP_TRASH else None, infos)
    return report


# -- exporting the list ----------------------------------------------------------------------------

_EXPORT_FIELDS = ("group", "action", "path", "size", "width", "height", "date", "sharpness", "similarity")


def export_list(store: Store, selections: Sequence[GroupSelection], target: Path, fmt: str | None = None) -> ActionReport:
    """Write the groups (every member, marked keep or remove) to a CSV or JSON file; logged."""
    target = Path(target).expanduser().absolute()
    fmt = fmt or target.suffix.lstrip(".").lower()
    if fmt not in EXPORT_FORMATS:
        raise ActionError(f"export as {' or '.join(EXPORT_FORMATS)}, not {fmt or 'a file without extension'}")
    rows = []
    for number, selection in enumerate(selections, 1):
        for m in selection.members:
            rows.append({"group": number, "action": "keep" if m.path in selection.keep else "remove",
                         "path": str(m.path), "size": m.size, "width": m.width, "height": m.height,
                         "date": datetime.fromtimestamp(m.date).isoformat(timespec="seconds"),
                         "sharpness": round(m.sharpness, 2), "similarity": round(m.similarity, 4)})
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp")
    with open(temporary, "w", encoding="utf-8", newline="") as stream:
        if fmt == "json":
            json.dump({"groups": len(selections), "files": rows}, stream, indent=1)
        else:
            writer = csv.DictWriter(stream, fieldnames=_EXPORT_FIELDS)
            writer.writeheader()
            writer.writerows(rows)
    os.replace(temporary, target)
    report = ActionReport("export", done=[(Path(r["path"]), target) for r in rows])
    store.log_action("export", str(target), [])
    return report


# -- the log and undo ------------------------------------------------------------------------------

def _log(store: Store, report: ActionReport, target: str | None, infos: dict[Path, Path | None] | None = None) -> None:
    if not report.done:
        return
    infos = infos or {}
    items = [ActionItemRow(str(source), str(destination) if destination else None,
                           str(infos[source]) if infos.get(source) else None, DONE)
             for source, destination in report.done]
    report.action_id = store.log_action(report.kind, target, items)
    log.info("action %d: %s", report.action_id, report.summary())


def can_undo(store: Store, action: ActionRow) -> bool:
    """Whether undo has anything to try: a move, or a trash on a freedesktop system, with files not yet back."""
    if action.kind not in UNDOABLE_KINDS or (action.kind == "trash" and not TRASH_UNDO_SUPPORTED):
        return False
    return any(item.state == DONE and item.destination for item in store.action_items(action.id))


def describe_action(action: ActionRow, items: list[ActionItemRow]) -> str:
    when = datetime.fromtimestamp(action.at).strftime("%Y-%m-%d %H:%M")
    what = {"trash": "to the trash", "move": f"moved to {action.target}", "export": f"list exported to {action.target}"}
    text = f"{when}  {what.get(action.kind, action.kind)}"
    if action.kind != "export":
        text += f"  ({len(items)} file{'s' if len(items) != 1 else ''})"
    restored = sum(1 for i in items if i.state == RESTORED)
    if restored:
        text += f", {restored} put back"
    return text


def _restore_item(item: ActionItemRow) -> str | None:
    """Put one file back; returns a problem, or None when it is back."""
    source, destination = Path(item.source), Path(item.destination or "")
    if not item.destination or not os.path.lexists(destination):
        return "no longer in the trash" if item.trash_info else "no longer in the folder it was moved to"
    if item.trash_info:
        info = Path(item.trash_info)
        if not info.exists() or _trashinfo_path(info, destination) != source:
            return "the trash entry was replaced by another file"
    try:
        _move_file(destination, source)
    except FileExistsError:
        return "another file is in its place now"
    except OSError as exc:
        return f"could not be moved back: {exc.strerror or exc}"
    if item.trash_info:
        Path(item.trash_info).unlink(missing_ok=True)
    return None


def _trashinfo_path(info: Path, trashed: Path) -> Path | None:
    """The original path recorded in a .trashinfo file (relative ones are from the trash's drive)."""
    try:
        lines = info.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("Path="):
            original = Path(unquote(line[len("Path="):]))
            if original.is_absolute():
                return original
            # files/NAME inside TRASH inside topdir (topdir/.Trash-uid or topdir/.Trash/uid)
            trash = trashed.parent.parent
            topdir = trash.parent.parent if trash.parent.name == ".Trash" else trash.parent
            return topdir / original
    return None


def undo(store: Store, action_id: int) -> ActionReport:
    """Put back the files of an action that are still in the trash or the folder they went to."""
    action = store.action(action_id)
    if action is None:
        raise ActionError(f"there is no action {action_id}")
    if action.kind not in UNDOABLE_KINDS:
        raise ActionError("an exported list changes no file, so there is nothing to undo")
    if action.kind == "trash" and not TRASH_UNDO_SUPPORTED:
        raise ActionError("putting files back from the trash is only supported on Linux; "
                          "restore them from the system trash")
    report = ActionReport("undo", action_id=action_id)
    states: dict[int, str] = {}
    for item in store.action_items(action_id):
        if item.state != DONE:
            continue
        problem = _restore_item(item)
        if problem is None:
            states[item.id] = RESTORED
            report.done.append((Path(item.destination), Path(item.source)))
        else:
            report.problems.append((Path(item.source), problem))
    if states:
        store.mark_undone(action_id, states)
    return report
