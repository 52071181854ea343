"""Bulk actions on duplicate groups: to the trash, into a folder, or the list exported; logged, most undoable.

Each action is declared once, in BULK_ACTIONS (its name, label, confirmation, whether it can be
undone, what runs): the window and the CLI build their buttons and options from it, so a new action
is one entry there.

Nothing is ever deleted: files go to the system trash (trash.py) or into a folder the user picked
outside the photo folder. Before touching a group, every member is checked against what the scan saw
(present, same size and modification time) and at least one member must be kept; a member that is
the kept photo under another name (a symbolic link and its target are one photo) is never removed.
A group that fails the check is left untouched and reported; the other groups go ahead.

The log is written before any file moves: the action and every file it is about to move, then each
file's destination just before it moves, then its completion just after. After a kill, whatever the
moment, the log still says where every file may be; `settle_interrupted` (run before the history is
read and before an undo) looks and records what happened, so what moved can be undone.

Undo trusts nothing it reads from the log (a library folder can be crafted): it puts a file back only
into the library's photo folder, only from the action's own folder or a trash folder, only under a
name the action could have given it, and never over another file.
"""

from __future__ import annotations

import csv
import errno
import json
import logging
import os
import re
import shlex
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from vitgallery.core.duplicates import trash
from vitgallery.core.duplicates.groups import DuplicateMember
from vitgallery.core.duplicates.moving import move_file, partial_path
from vitgallery.core.partial_files import write_whole
from vitgallery.core.scan import is_inside, json_path, root_is_available
from vitgallery.core.store import ActionItemRow, ActionRow, Store, StoreError, disk_nearly_full
from vitgallery.core.words import count_text

try:
    import fcntl
except ImportError:  # Windows: actions of two processes on one library are not kept apart
    fcntl = None

log = logging.getLogger(__name__)

EXPORT_FORMATS = ("csv", "json")
PENDING, DONE, RESTORED = "pending", "done", "restored"
RESTORING = "restoring"  # logged before a file is put back, so that a kill midway is settled (_settle)
NOT_MOVED_INTERRUPTED = "not moved: the action was interrupted before it got to this file"
BACK_BY_HAND = "already back in its place (put back by hand?)"
LOCK_NAME = "actions.lock"


class ActionError(Exception):
    """The action cannot start at all (no target folder, nothing selected...); nothing was changed."""


@dataclass(frozen=True)
class ActionPlace:
    """Where an action works: the library's database (its log) and the photo folder it may touch."""

    store: Store
    root: Path
    former_roots: tuple[Path, ...] = ()  # where the photo folder was before it was renamed or moved (oldest first)

    @property
    def library_dir(self) -> Path:
        return self.store.path.parent

    def here(self, logged: Path) -> Path:
        """Where a path the log holds is now: one in a former place of the photo folder (the library
        followed its photos when the folder was renamed or moved) is the same path in the folder now."""
        for former in reversed(self.former_roots):
            if logged.is_absolute() and logged.is_relative_to(former):
                return self.root / logged.relative_to(former)
        return logged

    def item_paths(self, item: ActionItemRow) -> tuple[Path, Path | None]:
        """(source, destination) of a logged file where they are now (see `here`)."""
        return self.here(Path(item.source)), self.here(Path(item.destination)) if item.destination else None


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
    kind: str  # a BULK_ACTIONS name, or "undo"
    action_id: int | None = None
    done: list[tuple[Path, Path | None]] = field(default_factory=list)  # (from, to)
    problems: list[tuple[Path, str]] = field(default_factory=list)  # (file, what happened): left untouched
    # put back, but not as the library knew them (changed while away): not searchable until indexed
    to_index: list[Path] = field(default_factory=list)
    # an undo's files the user had already put back in their place (a file manager's Restore)
    back_by_hand: list[Path] = field(default_factory=list)
    # files asked to move into the folder they are already in: nothing to do, said so
    already_there: list[Path] = field(default_factory=list)
    # why the action ended before its last file (its log could not be written: a full disk); the files
    # after it are in `problems`, untouched
    stopped: str | None = None
    # why the library could not follow the files that moved (its database could not be written: a full
    # disk). They moved all the same and the log holds them, so an undo puts them back; until then
    # the library lists them where they were, and its next index catches up.
    unnoted: str | None = None

    def stop(self, reason: str, untouched: Iterable[Path]) -> None:
        """The action ends here: no file is moved that its log cannot name."""
        self.stopped = reason
        stopped = "the undo" if self.kind == "undo" else "the action"
        self.problems.extend((path, f"not touched: {stopped} stopped first") for path in untouched)

    @property
    def moved_files(self) -> bool:
        """Whether files may have moved (the window then updates its pages)."""
        return self.kind == "undo" or (self.kind in BULK_ACTIONS and BULK_ACTIONS[self.kind].moves_files)

    def summary(self) -> str:
        if self.kind == "export":  # a list written: no file was done anything to
            return f"{count_text(len(self.done), 'photo')} listed in {self.done[0][1]}" if self.done else "nothing to list"
        if self.kind == "undo" and not (self.done or self.back_by_hand or self.problems or self.stopped):
            # the window's Ctrl+Z after a command-line undo read "0 files put back"
            return f"nothing to put back: action {self.action_id} was undone already, or moved nothing"
        verb = "put back" if self.kind == "undo" else BULK_ACTIONS[self.kind].done
        folders = {target.parent for _, target in self.done if target is not None}
        if self.kind == "move" and len(folders) == 1:  # where they went, where that is one place
            verb += f" into {folders.pop()}"
        text = f"{count_text(len(self.done), 'file')} {verb}"
        if self.to_index:
            which = "" if len(self.done) == 1 else f"{len(self.to_index)} of them "
            why = "changed while away" if self.kind == "undo" else "new to the library"  # sorted in from elsewhere
            text += f" ({which}not searchable until the next index: {why})"
        if self.back_by_hand:
            text += f"; {len(self.back_by_hand)} already back in {'its' if len(self.back_by_hand) == 1 else 'their'} place"
        if self.already_there:
            text += f"; {len(self.already_there)} already in {'its' if len(self.already_there) == 1 else 'their'} folder"
        if self.problems:
            text += f"; {len(self.problems)} left as {'it was' if len(self.problems) == 1 else 'they were'}"
        unnoted = "the library could not note what moved (its next index does)"
        if self.stopped and self.stopped == self.unnoted:  # one full disk: said once
            text += f"; stopped before the end, and {unnoted}: {self.stopped}"
        else:
            if self.stopped:
                text += f"; stopped before the end: {self.stopped}"
            if self.unnoted:
                text += f"; {unnoted}: {self.unnoted}"
        return text

    def status_line(self, problems_shown: int = 5) -> str:
        """The summary with the first problems named, the files left for one reason together: what a page's
        status line says after an action."""
        by_reason: dict[str, list[str]] = {}
        for path, why in self.problems[:problems_shown]:
            by_reason.setdefault(why, []).append(path.name)
        named = "; ".join(f"{', '.join(names)} {why}" for why, names in by_reason.items())
        more = len(self.problems) - problems_shown
        return self.summary() + (f": {named}" if named else "") + (f"; {count_text(more, 'more file')}" if more > 0 else "")


# -- checking a selection against the disk ---------------------------------------------------------

def change_since_scan(member: DuplicateMember) -> str | None:
    """How a member's file differs from what the scan saw ("vanished since the scan"...), or None."""
    try:
        st = member.path.stat()
    except FileNotFoundError:
        return "vanished since the scan"
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    if st.st_size != member.size or st.st_mtime_ns != member.mtime_ns:
        return "changed since the scan"
    return None


def _same_file(path: Path) -> Path:
    """The file a path is, symbolic links resolved (a loop of links stands for itself)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path


def check_selections(selections: Sequence[GroupSelection]) -> tuple[list[GroupSelection], list[tuple[Path, str]]]:
    """The groups safe to act on, and a problem for each file left alone. A member whose removal
    would take a kept photo with it (the file a kept link points to, or the file itself reached
    through a linked folder) is kept too; a link to a kept photo can go, the photo stays."""
    ready: list[GroupSelection] = []
    problems: list[tuple[Path, str]] = []
    for selection in selections:
        if not selection.to_remove:
            continue
        if not any(m.path in selection.keep for m in selection.members):
            problems.extend((m.path, "not touched: every photo of its group was selected, keep at least one")
                            for m in selection.to_remove)
            continue
        found = {m.path: p for m in selection.members if (p := change_since_scan(m)) is not None}
        if found:
            # Only the files the action was to move are reported (a kept photo that changed was staying):
            # the count of those left matches the count the user was asked about.
            first = next(iter(found))
            others = f" and {len(found) - 1} more" if len(found) > 1 else ""
            why = (f"not touched: {first.name}{others} of its group {found[first]} (find duplicates again to "
                   "review the group as it is)")
            problems.extend((m.path, found.get(m.path, why)) for m in selection.to_remove)
            continue
        kept_files = {_same_file(m.path) for m in selection.members if m.path in selection.keep}
        same_as_kept = [m for m in selection.to_remove if not m.path.is_symlink() and _same_file(m.path) in kept_files]
        problems.extend((m.path, "kept: it is a kept photo under another name (a link and its target are one photo)")
                        for m in same_as_kept)
        selection = GroupSelection(selection.members, selection.keep | {m.path for m in same_as_kept})
        if selection.to_remove:
            ready.append(selection)
    return ready, problems


# -- the log ---------------------------------------------------------------------------------------

_process_lock = threading.Lock()


@contextmanager
def _exclusive(place: ActionPlace, wait: bool = True) -> Iterator[bool]:
    """One action (or undo, or settling) at a time on a library, across threads and processes (a
    lock file beside the database, released by the system even when the process is killed). Yields
    False, holding nothing, when `wait` is False and another one is running or the library cannot be
    written (its history is then read as it is)."""
    if not _process_lock.acquire(blocking=wait):
        yield False
        return
    try:
        try:
            if place.store.read_only:
                raise OSError(errno.ENOSPC, "its disk is full: free some space and run again") \
                    if disk_nearly_full(place.library_dir) else PermissionError(errno.EROFS, "the library is read-only")
            lock_file = open(place.library_dir / LOCK_NAME, "a") if fcntl is not None else None
        except OSError as exc:
            if not wait:
                yield False
                return
            raise ActionError(f"{place.library_dir}: {exc.strerror or exc}; moving files needs a library that can "
                              "be written, to log each move for undo") from exc
        if lock_file is None:
            yield True
            return
        with lock_file as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            yield True
    finally:
        _process_lock.release()


class _ActionLog:
    """One action's log, written as it goes: first the action and every file it is about to move."""

    def __init__(self, store: Store, kind: str, target: str | None, sources: Sequence[Path],
                 making: Sequence[Path] = ()) -> None:
        """`making`: the folders the files go into; those not there yet are logged as the action's own,
        for its undo to remove once it leaves them empty."""
        self.store = store
        self.action_id = store.log_action(kind, target, [ActionItemRow(str(s), None, None, PENDING) for s in sources])
        self._items = [item.id for item in store.action_items(self.action_id)]
        self.made = _folders_to_make(making)
        if self.made:
            store.set_made_folders(self.action_id, [str(folder) for folder in self.made])

    def remove_unused_folders(self, target: Path) -> None:
        """The folders made for files that could not be moved into them are removed again (a move that
        failed for every file left an empty folder behind)."""
        _remove_emptied(self.made, target)

    def moving(self, n: int, destination: Path | None, trash_info: Path | None = None) -> None:
        """Where file n is about to go (written before it moves)."""
        self.store.update_action_item(self._items[n], _text(destination), _text(trash_info), PENDING)

    def moved(self, n: int, destination: Path | None, trash_info: Path | None = None) -> None:
        self.store.update_action_item(self._items[n], _text(destination), _text(trash_info), DONE)

    def failed(self, n: int, problem: str) -> None:
        self.store.update_action_item(self._items[n], None, None, problem)


def _folders_to_make(folders: Iterable[Path]) -> list[Path]:
    """The folders (and the folders above them) not there yet, deepest first."""
    missing: set[Path] = set()
    for folder in folders:
        while not os.path.lexists(folder) and folder != folder.parent:
            missing.add(folder)
            folder = folder.parent
    return sorted(missing, key=lambda f: (-len(f.parts), str(f)))


def _remove_emptied(folders: Iterable[Path], target: Path | None) -> None:
    """Remove the folders an action made that it or its undo left empty (deepest first); others stay. Only
    its target folder, folders in it and above it: a library's log is not trusted to name any other."""
    if target is None:
        return
    for folder in folders:
        if not (is_inside(folder, target) or is_inside(target, folder)):
            continue
        try:
            os.rmdir(folder)
        except OSError:  # not empty (the user put something there), gone, or not ours to remove
            pass


def _text(path: Path | None) -> str | None:
    return str(path) if path is not None else None


# Said when the user stopped an action (Ctrl+C): it ends after the file it was moving, its log complete
STOPPED_BY_USER = "you stopped it (Ctrl+C)"


def _asked_to_stop(stop: threading.Event | None, report: ActionReport, remaining: Iterable[Path]) -> bool:
    """Whether the user asked the action to stop (checked between files, so that none is half done and the
    library can follow every file that moved); the report then says so and names the files left."""
    if stop is None or not stop.is_set():
        return False
    report.stop(STOPPED_BY_USER, _not_done(report, remaining))
    return True


def _not_done(report: ActionReport, paths: Iterable[Path]) -> list[Path]:
    """Those of `paths` the action neither did nor reported (the file whose log entry failed may have moved)."""
    said = {source for source, _ in report.done} | {path for path, _ in report.problems}
    return [path for path in paths if path not in said]


def _logged_files(ready: Sequence[GroupSelection]) -> list[DuplicateMember]:
    return [member for selection in ready for member in selection.to_remove]


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


def export_target_problem(target: Path, library_dir: Path) -> str | None:
    """Why the list cannot be written to `target` (None: it can), said before a scan and again when written."""
    target = Path(target).expanduser().absolute()
    fmt = target.suffix.lstrip(".").lower()
    if fmt not in EXPORT_FORMATS:
        return f"export as {' or '.join(EXPORT_FORMATS)}, not {fmt or 'a file without extension'}"
    if not target.parent.is_dir():  # a mistyped folder is said, not made
        return f"{target.parent} is not a folder: the list is written into a folder that exists"
    if target.is_dir():
        return f"{target} is a folder: name the file to write the list to"
    if is_inside(target, library_dir):  # its index.json is the library's own
        return f"{target.parent} holds vitgallery's own library data: choose another folder."
    return None


def move_target_problem(folder: Path, root: Path, library_dir: Path) -> str | None:
    """Why the photos not kept cannot be moved into `folder` (None: they can), said when it is chosen
    and again when they are moved."""
    folder = Path(folder).expanduser().absolute()
    if folder.exists() and not folder.is_dir():
        return f"{folder} is not a folder"
    if is_inside(folder, root):
        where = "is the photo folder" if is_inside(root, folder) else f"is inside the photo folder {root}"
        return (f"{folder} {where}: the moved copies would be indexed again and come back as duplicates. "
                "Choose a folder outside it.")
    if is_inside(folder, library_dir):
        return f"{folder} holds vitgallery's own library data: choose another folder."
    return None


def move_to_folder(place: ActionPlace, selections: Sequence[GroupSelection], folder: Path | None,
                   stop: threading.Event | None = None) -> ActionReport:
    """Move every photo not kept into `folder`, names kept (made unique); logged for undo. `stop`: set to
    end it after the file it is moving."""
    if folder is None:
        raise ActionError("choose the folder to move the photos into")
    folder = Path(folder).expanduser().absolute()
    problem = move_target_problem(folder, place.root, place.library_dir)
    if problem is not None:
        raise ActionError(problem)
    ready, problems = check_selections(selections)
    report = ActionReport("move", problems=problems)
    files = _logged_files(ready)
    if not files:
        return report
    with _exclusive(place):
        log_ = _ActionLog(place.store, "move", str(folder), [m.path for m in files], making=[folder])
        report.action_id = log_.action_id
        taken: set[Path] = set()
        for n, member in enumerate(files):
            if _asked_to_stop(stop, report, [m.path for m in files[n:]]):
                break
            destination = unique_destination(folder, member.path.name, taken)
            taken.add(destination)
            try:
                log_.moving(n, destination)
                try:
                    move_file(member.path, destination)
                except OSError as exc:
                    report.problems.append((member.path, f"not moved: {exc.strerror or exc}"))
                    log_.failed(n, report.problems[-1][1])
                    continue
                report.done.append((member.path, destination))
                log_.moved(n, destination)
            except StoreError as exc:
                report.stop(str(exc), _not_done(report, [m.path for m in files[n:]]))
                break
        log_.remove_unused_folders(folder)
    log.info("action %d: %s", report.action_id, report.summary())
    return report


def move_files(place: ActionPlace, moves: Sequence[tuple[Path, Path]], stop: threading.Event | None = None) -> ActionReport:
    """Move each file into its own folder ((file, folder) pairs: sorting photos into folders, see
    core/organise), names kept (made unique); one action, logged as it goes like the others, that
    `undo` puts back. A file already in its folder stays; one that vanished or cannot be moved is
    reported and left alone. `stop`: as for move_to_folder."""
    report = ActionReport("move")
    planned: list[tuple[Path, Path]] = []
    for source, folder in moves:
        source, folder = Path(source), Path(folder).expanduser().absolute()
        if source.parent == folder:
            report.already_there.append(source)
            continue
        if folder.exists() and not folder.is_dir():
            report.problems.append((source, f"not moved: {folder} is not a folder"))
        elif not os.path.lexists(source):
            report.problems.append((source, "not moved: it vanished"))
        else:
            planned.append((source, folder))
    if not planned:
        return report
    with _exclusive(place):
        common = os.path.commonpath([folder for _, folder in planned])
        log_ = _ActionLog(place.store, "move", common, [source for source, _ in planned],
                          making=[folder for _, folder in planned])
        report.action_id = log_.action_id
        taken: set[Path] = set()
        for n, (source, folder) in enumerate(planned):
            if _asked_to_stop(stop, report, [source for source, _ in planned[n:]]):
                break
            destination = unique_destination(folder, source.name, taken)
            taken.add(destination)
            try:
                log_.moving(n, destination)
                try:
                    move_file(source, destination)
                except OSError as exc:
                    report.problems.append((source, f"not moved: {exc.strerror or exc}"))
                    log_.failed(n, report.problems[-1][1])
                    continue
                report.done.append((source, destination))
                log_.moved(n, destination)
            except StoreError as exc:
                report.stop(str(exc), _not_done(report, [source for source, _ in planned[n:]]))
                break
        log_.remove_unused_folders(Path(common))
    log.info("action %d: %s", report.action_id, report.summary())
    return report


# -- the trash -------------------------------------------------------------------------------------

def move_to_trash(place: ActionPlace, selections: Sequence[GroupSelection], target: Path | None = None,
                  stop: threading.Event | None = None) -> ActionReport:
    """Move every photo not kept to the system trash; logged, undoable on freedesktop systems. `stop`: as
    for move_to_folder."""
    ready, problems = check_selections(selections)
    report = ActionReport("trash", problems=problems)
    files = _logged_files(ready)
    if not files:
        return report
    with _exclusive(place):
        log_ = _ActionLog(place.store, "trash", str(trash.home_trash()) if trash.FREEDESKTOP else None,
                          [m.path for m in files])
        report.action_id = log_.action_id
        for n, member in enumerate(files):
            if _asked_to_stop(stop, report, [m.path for m in files[n:]]):
                break
            try:
                try:
                    if trash.FREEDESKTOP:
                        entry = trash.reserve(member.path, place.root)
                        try:
                            log_.moving(n, entry.file, entry.info)
                        except StoreError:
                            trash.release(entry)
                            raise
                        trash.commit(member.path, entry)
                        report.done.append((member.path, entry.file))
                        log_.moved(n, entry.file, entry.info)
                    else:
                        trash.send_to_system_trash(member.path)
                        report.done.append((member.path, None))
                        log_.moved(n, None)
                except OSError as exc:
                    report.problems.append((member.path, f"not moved to the trash: {exc.strerror or exc}"))
                    log_.failed(n, report.problems[-1][1])
            except StoreError as exc:
                report.stop(str(exc), _not_done(report, [m.path for m in files[n:]]))
                break
    log.info("action %d: %s", report.action_id, report.summary())
    return report


# -- exporting the list ----------------------------------------------------------------------------

_EXPORT_FIELDS = ("group", "action", "path", "size", "width", "height", "date", "sharpness", "similarity")


def export_list(place: ActionPlace, selections: Sequence[GroupSelection], target: Path | None,
                stop: threading.Event | None = None) -> ActionReport:
    """Write the groups (every member, marked keep or remove) to a CSV or JSON file; logged. (One write:
    nothing to `stop`.)"""
    if target is None:
        raise ActionError("choose the file to export the list to")
    target = Path(target).expanduser().absolute()
    problem = export_target_problem(target, place.library_dir)
    if problem is not None:
        raise ActionError(problem)
    fmt = target.suffix.lstrip(".").lower()
    rows = []
    for number, selection in enumerate(selections, 1):
        for m in selection.members:
            rows.append({"group": number, "action": "keep" if m.path in selection.keep else "remove",
                         "path": m.path, "size": m.size, "width": m.width, "height": m.height,
                         "date": datetime.fromtimestamp(m.date).isoformat(timespec="seconds"),
                         "sharpness": round(m.sharpness, 2), "similarity": round(m.similarity, 4)})

    def write(temporary: Path) -> None:
        # A name that is not UTF-8 keeps its own bytes in the CSV (JSON carries it escaped).
        with open(temporary, "w", encoding="utf-8", errors="surrogateescape", newline="") as stream:
            if fmt == "json":  # as the CLI's --json: a name that is not UTF-8 shown escaped, with its bytes
                json.dump({"groups": len(selections), "files": [{**row, **json_path(row["path"])} for row in rows]},
                          stream, indent=1)
            else:
                writer = csv.DictWriter(stream, fieldnames=_EXPORT_FIELDS)
                writer.writeheader()
                writer.writerows(rows)

    try:
        write_whole(target, write)
    except OSError as exc:
        raise ActionError(f"could not write the list to {target}: {exc.strerror or exc}") from exc
    report = ActionReport("export", done=[(r["path"], target) for r in rows])
    report.action_id = place.store.log_action("export", str(target), [])
    return report


# -- the registry ----------------------------------------------------------------------------------

ActionRun = Callable[[ActionPlace, Sequence[GroupSelection], Path | None, threading.Event | None], ActionReport]


@dataclass(frozen=True)
class BulkAction:
    """One bulk action on duplicate groups, as the window and the CLI offer it."""

    name: str  # its id: the CLI's --NAME option, the log's kind
    label: str  # the window's words for it
    help: str  # the CLI's help
    target: str | None  # what the user must give: None, "folder" or "file" (the CLI's metavar)
    moves_files: bool  # False: it only writes something (no question asked, nothing to resolve)
    undoable: bool
    question: str | None  # asked before it runs, with {photos}, {groups} and {target} filled in
    done: str  # what the report says happened to each file
    logged: str  # how the history names a past run, with {target}
    run: ActionRun

    def confirmation(self, selections: Sequence[GroupSelection], target: Path | None = None) -> str | None:
        """The question to ask before running on `selections`, with the counts (None: ask nothing)."""
        if self.question is None:
            return None
        acting = [s for s in selections if s.to_remove]
        photos = sum(len(s.to_remove) for s in acting)
        text = self.question.format(photos=count_text(photos, "photo"), groups=count_text(len(acting), "group"),
                                    target=target)
        return text + "\nThe photos marked keep stay. " + (
            "Undo puts the others back." if self.undoable else "vitgallery cannot put them back.")


BULK_ACTIONS: dict[str, BulkAction] = {action.name: action for action in (
    BulkAction("trash", "Move to the trash", "move the photos not kept to the trash", None, True,
               trash.UNDO_SUPPORTED, "Move {photos} from {groups} to the trash?", "moved to the trash",
               "to the trash", move_to_trash),
    BulkAction("move", "Move into a folder…", "move the photos not kept into FOLDER (outside the photo folder)",
               "folder", True, True, "Move {photos} from {groups} into {target}?", "moved", "moved to {target}",
               move_to_folder),
    BulkAction("export", "Export the list…", "write the groups and what is kept to FILE (.csv or .json)",
               "file", False, False, None, "exported", "list exported to {target}", export_list),
)}


def act(place: ActionPlace, name: str, selections: Sequence[GroupSelection], target: Path | None = None,
        stop: threading.Event | None = None) -> ActionReport:
    """Run the bulk action called `name` on `selections`; `stop`: set to end it after the current file."""
    action = BULK_ACTIONS.get(name)
    if action is None:
        raise ActionError(f"there is no action {name!r}; there are {', '.join(BULK_ACTIONS)}")
    return action.run(place, list(selections), target, stop)


# -- after a kill ----------------------------------------------------------------------------------

def settle_interrupted(place: ActionPlace) -> int:
    """Record what happened to the files of actions that were killed mid-way (how many were settled);
    skipped while another action runs."""
    with _exclusive(place, wait=False) as free:
        return _settle(place) if free else 0


def _settle(place: ActionPlace) -> int:
    items = place.store.action_items_in_state(PENDING)
    for item in items:
        place.store.set_action_item_state(item.id, _settled_state(place, item))
    restoring = place.store.action_items_in_state(RESTORING)
    for item in restoring:
        place.store.set_action_item_state(item.id, _settled_restore(place, item))
    return len(items) + len(restoring)


def _settled_restore(place: ActionPlace, item: ActionItemRow) -> str:
    """A file an undo was putting back when it was killed: back when it is in its place (move_file puts it
    there whole or not at all, and refuses to replace a file, so what is there is it); its trash entry's
    .trashinfo, left behind, is removed once the trash holds no copy. Else still away. Nothing is moved
    here, so a crafted log cannot use it."""
    source, destination = place.item_paths(item)
    if not os.path.lexists(source):
        return DONE
    if item.trash_info and destination is not None and not os.path.lexists(destination):
        entry = trash.TrashEntry(destination, Path(item.trash_info))
        if trash.is_trash_entry(entry) and trash.came_from(entry, Path(item.source)):
            entry.info.unlink(missing_ok=True)
    return RESTORED


def _settled_state(place: ActionPlace, item: ActionItemRow) -> str:
    source, destination = place.item_paths(item)
    if destination is None:
        return NOT_MOVED_INTERRUPTED
    entry = trash.TrashEntry(destination, Path(item.trash_info)) if item.trash_info else None
    if not _plausible_source(place, source) or not _plausible_destination(place, source, destination, entry):
        return "not looked at: the log names a place outside the photo folder or the action's folder"
    half_copy = partial_path(destination)
    if os.path.lexists(half_copy):
        os.unlink(half_copy)  # a copy across drives that was cut short; the source is whole
    here, there = os.path.lexists(source), os.path.lexists(destination)
    if there and not here:
        return DONE
    if here and not there:
        if entry is not None:
            trash.release(entry)
        return NOT_MOVED_INTERRUPTED
    if here and there:
        return f"not moved: the action was interrupted once a copy was at {destination}; the photo is still in place"
    return f"lost track: neither in its place nor at {destination}"


# -- undo ------------------------------------------------------------------------------------------

_MOVED_NAME = re.compile(r"(?P<stem>.*?)(?: \(\d+\)| \d+)?", re.DOTALL)  # a name may hold any character


def _plausible_source(place: ActionPlace, source: Path, origins: Sequence[Path] = ()) -> bool:
    """A file can only be put back into the photo folder, or into a folder the caller itself moved
    files from (`origins`; never read from the log: a crafted library could name any folder)."""
    return source.is_absolute() and any(is_inside(source.parent, folder) for folder in (place.root, *origins))


def _plausible_destination(place: ActionPlace, source: Path, destination: Path, entry: trash.TrashEntry | None) -> bool:
    """Where an action could have put `source`: its name (made unique as unique_destination and the
    trash do), outside the library folder, in a trash folder when a .trashinfo is logged."""
    if not destination.is_absolute() or is_inside(destination, place.library_dir):
        return False
    if destination.suffix.lower() != source.suffix.lower():
        return False
    match = _MOVED_NAME.fullmatch(destination.stem)
    if match is None:
        return False
    if entry is None:
        return source.stem in (destination.stem, match["stem"])
    # a trash entry's name may be cut to fit (its .trashinfo, checked before a file is put back, names the source)
    return bool(match["stem"]) and source.stem.startswith(match["stem"]) and trash.is_trash_entry(entry)


def can_undo(store: Store, action: ActionRow) -> bool:
    """Whether undo has anything to try: an undoable kind with files not yet back."""
    kind = BULK_ACTIONS.get(action.kind)
    if kind is None or not kind.undoable:
        return False
    return any(item.state == DONE and item.destination for item in store.action_items(action.id))


def _restore_problem(place: ActionPlace, action: ActionRow, item: ActionItemRow, origins: Sequence[Path]) -> str | None:
    """Put one file back; returns a problem, or None when it is back."""
    source, moved_to = place.item_paths(item)
    destination = moved_to or Path("")
    entry = trash.TrashEntry(destination, Path(item.trash_info)) if item.trash_info else None
    if (moved_to is not None and source.is_absolute() and not _plausible_source(place, source, origins)
            and _plausible_destination(place, source, destination, entry)):
        # sorted in from a folder outside the photo folder: put back there only when the user names it
        return (f"refused: it came from {source.parent}, outside the photo folder; an undo puts photos back "
                f"there only into a folder named for it (`--into {shlex.quote(str(source.parent))}`)")
    if (moved_to is None or not _plausible_source(place, source, origins)
            or not _plausible_destination(place, source, destination, entry)
            or (action.kind == "move"
                and not (action.target and is_inside(destination.parent, place.here(Path(action.target)))))
            or (action.kind == "trash" and entry is None)):
        return "refused: the log names a place outside the photo folder or the action's folder"
    if not os.path.lexists(destination):
        if os.path.lexists(source):  # put back by hand (a file manager's Restore): the action is done with it
            place.store.set_action_item_state(item.id, RESTORED)
            return BACK_BY_HAND
        return "no longer in the trash" if entry else "no longer in the folder it was moved to"
    if entry is not None and not trash.came_from(entry, Path(item.source)):  # as the trash wrote it then
        return "the trash entry was replaced by another file"
    later = place.store.later_move_to(str(destination), item.id)
    if later is not None:  # this one left that place by hand, and the later action's file took its name
        return (f"the file now at {destination} is another photo, which action {later} moved there; this one "
                "left that place since, not through vitgallery")
    place.store.set_action_item_state(item.id, RESTORING)
    try:
        move_file(destination, source)
    except FileExistsError:
        place.store.set_action_item_state(item.id, DONE)
        return f"another file is in its place now; the moved one is still at {destination}"
    except OSError as exc:
        place.store.set_action_item_state(item.id, DONE)
        return f"could not be moved back: {exc.strerror or exc}; it is still at {destination}"
    if entry is not None:
        entry.info.unlink(missing_ok=True)
    return None


def undo(place: ActionPlace, action_id: int, origins: Sequence[Path] = (), stop: threading.Event | None = None) -> ActionReport:
    """Put back the files of an action that are still in the trash or the folder they went to: into the
    photo folder, or into `origins`, folders outside it that the caller moved the files from itself
    (photos sorted in from elsewhere; see _plausible_source). `stop`: as for move_to_folder."""
    store = place.store
    action = store.action(action_id)
    if action is None:
        raise ActionError(f"there is no action {action_id}")
    kind = BULK_ACTIONS.get(action.kind)
    if kind is None or not kind.moves_files:
        raise ActionError("an exported list changes no file, so there is nothing to undo")
    if not kind.undoable:
        raise ActionError("putting files back from the trash is only supported on Linux; "
                          "restore them from the system trash")
    if not root_is_available(place.root):  # renamed or moved: putting files back would make the old one again
        raise ActionError(f"the photo folder {place.root} is not there (renamed, moved, or on a drive not "
                          "mounted?): nothing was put back. Once it is back, undo again; if it moved, follow it "
                          "first (`vitgallery index NEW-PLACE --repoint`)")
    report = ActionReport("undo", action_id=action_id)
    with _exclusive(place):
        _settle(place)
        items = [item for item in store.action_items(action_id) if item.state == DONE]
        for n, item in enumerate(items):
            if _asked_to_stop(stop, report, [place.item_paths(later)[0] for later in items[n:]]):
                break
            source, destination = place.item_paths(item)
            said = len(report.done) + len(report.back_by_hand) + len(report.problems)
            try:
                problem = _restore_problem(place, action, item, origins)
                if problem is None:
                    report.done.append((destination, source))
                    store.set_action_item_state(item.id, RESTORED)
                elif problem == BACK_BY_HAND:
                    report.back_by_hand.append(source)
                else:
                    report.problems.append((source, problem))
            except StoreError as exc:  # a file put back is found in its place by the next undo
                handled = len(report.done) + len(report.back_by_hand) + len(report.problems) > said
                report.stop(str(exc), [place.item_paths(later)[0] for later in items[n + 1 if handled else n:]])
                return report
        if report.done or report.back_by_hand:
            try:
                store.mark_undone(action_id)
            except StoreError as exc:  # only the time of the undo is lost: each file's state is logged
                log.warning("action %d: the time of its undo was not recorded: %s", action_id, exc)
        target = place.here(Path(action.target)) if action.target else None
        _remove_emptied([place.here(Path(folder)) for folder in store.made_folders(action_id)], target)
    return report


# -- the history -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ActionEntry:
    """One past action as the history shows it."""

    action_id: int
    kind: str
    text: str
    undoable: bool  # files of it can still be put back


def describe_action(place: ActionPlace, action: ActionRow, items: list[ActionItemRow]) -> str:
    """One line of the history; a target that moved with the photo folder is named where it is now."""
    when = datetime.fromtimestamp(action.at).strftime("%Y-%m-%d %H:%M")
    kind = BULK_ACTIONS.get(action.kind)
    target = place.here(Path(action.target)) if action.target else action.target
    text = f"{when}  {kind.logged.format(target=target) if kind else action.kind}"
    if kind is not None and kind.moves_files:
        moved = sum(1 for i in items if i.state in (DONE, RESTORED))
        left = len(items) - moved
        if moved or not left:
            text += f"  ({count_text(moved, 'file')})"
            if left:
                text += f", {left} not moved"
        else:  # it failed as a whole: say so rather than "(0 files)"
            text += f"  (not done: {'the file' if left == 1 else f'none of the {left} files'} could be moved)"
    restored = sum(1 for i in items if i.state == RESTORED)
    if restored:
        text += f", {restored} put back"
    return text


def action_history(place: ActionPlace, limit: int = 50) -> list[ActionEntry]:
    """The latest actions, newest first (interrupted ones settled first)."""
    settle_interrupted(place)
    store = place.store
    out = []
    for action in store.actions(limit=limit):
        items = store.action_items(action.id)
        out.append(ActionEntry(action.id, action.kind, describe_action(place, action, items), can_undo(store, action)))
    return out
