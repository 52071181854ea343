from __future__ import annotations

import base64
import csv
import dataclasses
import errno
import json
import os
import sqlite3
from pathlib import Path

import pytest

from tests.photos import make_photo
from vitgallery.core.duplicates import BULK_ACTIONS, DuplicateMember, actions, moving, trash
from vitgallery.core.duplicates.actions import (
    DONE,
    PENDING,
    ActionError,
    ActionPlace,
    GroupSelection,
    action_history,
    can_undo,
    export_list,
    move_to_folder,
    move_to_trash,
    undo,
)
from vitgallery.core.duplicates.trash import home_trash
from vitgallery.core.store import SCHEMA_VERSION, ActionItemRow, Store, StoreError


def member(path: Path, file_id: int = 0) -> DuplicateMember:
    st = path.stat()
    return DuplicateMember(file_id, path, st.st_size, st.st_mtime_ns, f"fp-{path.name}", 320, 240, None, 10.0, 0.9)


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def photos(tmp_path) -> Path:
    root = tmp_path / "photos"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    for name, seed in [("a/one.jpg", 1), ("b/one.jpg", 1), ("a/one_copy.jpg", 1), ("a/two.jpg", 2),
                       ("b/two_small.jpg", 2)]:
        make_photo(seed).save(root / name, quality=90 if "small" not in name else 40)
    return root


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "library" / "library.sqlite3")
    yield s
    s.close()


@pytest.fixture
def place(store, photos) -> ActionPlace:
    return ActionPlace(store, photos)


def selections(root: Path) -> list[GroupSelection]:
    first = tuple(member(root / p, i) for i, p in enumerate(["a/one.jpg", "b/one.jpg", "a/one_copy.jpg"]))
    second = tuple(member(root / p, 10 + i) for i, p in enumerate(["a/two.jpg", "b/two_small.jpg"]))
    return [GroupSelection(first, frozenset({root / "a/one.jpg"})),
            GroupSelection(second, frozenset({root / "a/two.jpg"}))]


def test_the_test_trash_is_inside_tmp(tmp_path_factory):
    assert home_trash().is_relative_to(tmp_path_factory.getbasetemp())


def test_trash_then_undo_puts_everything_back(photos, place, store, tmp_path):
    real_trash = Path.home() / ".local/share/Trash"
    real_before = sorted(real_trash.rglob("*")) if real_trash.exists() else None
    before = tree(photos)

    report = move_to_trash(place, selections(photos))
    assert not report.problems
    assert sorted(src.relative_to(photos).as_posix() for src, _ in report.done) == \
        ["a/one_copy.jpg", "b/one.jpg", "b/two_small.jpg"]
    assert sorted(tree(photos)) == ["a/one.jpg", "a/two.jpg"]
    trashed = sorted(p.name for p in (home_trash() / "files").iterdir())
    assert trashed == ["one.jpg", "one_copy.jpg", "two_small.jpg"]
    info = (home_trash() / "info" / "two_small.jpg.trashinfo").read_text()
    assert f"Path={photos / 'b/two_small.jpg'}" in info and "DeletionDate=" in info

    [action] = store.actions()
    assert action.kind == "trash" and can_undo(store, action)
    back = undo(place, action.id)
    assert not back.problems and len(back.done) == 3
    assert tree(photos) == before, "every file is back, byte for byte"
    assert not any((home_trash() / "files").iterdir()) and not any((home_trash() / "info").iterdir())
    assert not can_undo(store, store.action(action.id))
    assert (sorted(real_trash.rglob("*")) if real_trash.exists() else None) == real_before, \
        "the real trash was not touched"


def test_an_undo_killed_midway_is_settled_and_leaves_no_trash_entry_behind(photos, place, store, monkeypatch):
    """kill -9 between putting a file back and removing its .trashinfo: the next look settles it."""
    before = tree(photos)
    action_id = move_to_trash(place, selections(photos)).action_id
    unlink = Path.unlink

    def killed_at_the_second_info(path, *args, **kwargs):
        if path.suffix == ".trashinfo" and len(list((home_trash() / "files").iterdir())) == 1:
            raise KeyboardInterrupt  # stands for the kill: nothing after it runs
        unlink(path, *args, **kwargs)

    with monkeypatch.context() as patched, pytest.raises(KeyboardInterrupt):
        patched.setattr(Path, "unlink", killed_at_the_second_info)
        undo(place, action_id)
    assert [item.state for item in store.action_items(action_id)].count(actions.RESTORING) == 1
    [entry] = action_history(place)  # settles the log first: the file back is counted back
    assert "2 put back" in entry.text and entry.undoable
    assert len(list((home_trash() / "info").iterdir())) == 1, "the settled file's .trashinfo is gone"
    back = undo(place, action_id)
    assert not back.problems, "the file already back is not reported missing"
    assert tree(photos) == before
    assert not any((home_trash() / "info").iterdir()), "no .trashinfo left without its file"
    assert [item.state for item in store.action_items(action_id)] == [actions.RESTORED] * 3


def test_same_names_in_the_trash_are_told_apart_and_restored_to_their_own_places(photos, place):
    a, b = photos / "a/one.jpg", photos / "b/one.jpg"
    keep = photos / "a/one_copy.jpg"
    group = GroupSelection(tuple(member(p) for p in (a, b, keep)), frozenset({keep}))
    bytes_a, bytes_b = a.read_bytes(), b.read_bytes()
    report = move_to_trash(place, [group])
    assert sorted(p.name for p in (home_trash() / "files").iterdir()) == ["one 2.jpg", "one.jpg"]
    undo(place, report.action_id)
    assert a.read_bytes() == bytes_a and b.read_bytes() == bytes_b


def test_undo_after_the_trash_was_emptied_says_so(photos, place, store):
    report = move_to_trash(place, selections(photos)[1:])
    for entry in (home_trash() / "files").iterdir():
        entry.unlink()
    back = undo(place, report.action_id)
    assert not back.done
    assert back.problems == [(photos / "b/two_small.jpg", "no longer in the trash")]


def test_move_to_folder_keeps_names_unique_and_undo_moves_back(photos, place, store, tmp_path):
    target = tmp_path / "sorted-out"
    target.mkdir()
    (target / "one.jpg").write_bytes(b"already here")
    before = tree(photos)

    report = move_to_folder(place, selections(photos), target)
    assert not report.problems
    assert sorted(tree(target)) == ["one (2).jpg", "one.jpg", "one_copy.jpg", "two_small.jpg"]
    assert (target / "one.jpg").read_bytes() == b"already here", "an existing file is never replaced"
    assert (target / "one (2).jpg").read_bytes() == before["b/one.jpg"]

    [action] = store.actions()
    assert action.kind == "move" and action.target == str(target)
    undo(place, action.id)
    assert tree(photos) == before
    assert tree(target) == {"one.jpg": b"already here"}


@pytest.mark.parametrize("name", ["copy\nof one.jpg", os.fsdecode(b"exact\xe9copy.jpg"), "100% sure #1?.jpg"])
@pytest.mark.parametrize("how", ["move", "trash"])
def test_any_name_the_system_allows_goes_and_comes_back(photos, place, store, tmp_path, name, how):
    """A newline, bytes that are not UTF-8, URL syntax: the move, the trash's record and the undo's
    checks must all take the name as it is (a newline was refused on undo, a Latin-1 byte crashed the trash)."""
    odd = photos / "a" / name
    odd.write_bytes((photos / "a/one.jpg").read_bytes())
    before = tree(photos)
    keep, other = member(photos / "a/one.jpg", 0), member(odd, 1)
    chosen = [GroupSelection((keep, other), frozenset({keep.path}))]
    export_list(place, chosen, tmp_path / "list.csv")
    assert os.fsencode(odd) in (tmp_path / "list.csv").read_bytes(), "the CSV holds the name's own bytes"
    export_list(place, chosen, tmp_path / "list.json")
    listed = json.loads((tmp_path / "list.json").read_text(encoding="utf-8"))["files"][1]
    assert (os.fsdecode(base64.b64decode(listed["path_bytes"])) if "path_bytes" in listed else listed["path"]) == str(odd)
    report = move_to_folder(place, chosen, tmp_path / "out") if how == "move" else move_to_trash(place, chosen)
    assert report.done and not report.problems and not odd.exists()
    if how == "trash":
        assert trash.original_path(trash.TrashEntry(report.done[0][1], Path(store.action_items(
            report.action_id)[0].trash_info))) == odd
    back = undo(place, report.action_id)
    assert back.done == [(report.done[0][1], odd)] and not back.problems
    assert tree(photos) == before


def test_a_read_only_library_shows_its_history_and_refuses_an_action_with_a_reason(photos, place, store, tmp_path,
                                                                                   monkeypatch):
    first, second = selections(photos)
    move_to_folder(place, [second], tmp_path / "out")
    monkeypatch.setattr(store, "read_only", True)
    assert [entry.kind for entry in action_history(place)] == ["move"]
    with pytest.raises(ActionError, match="needs a library that can be written"):
        move_to_trash(place, [first])
    assert all(m.path.exists() for m in first.members)


def test_undo_never_replaces_a_file_that_took_the_old_place(photos, place, store, tmp_path):
    report = move_to_folder(place, selections(photos)[1:], tmp_path / "out")
    (photos / "b/two_small.jpg").write_bytes(b"new file with the old name")
    back = undo(place, report.action_id)
    # where the moved one is, so the user can compare the two (QA: the line did not say)
    assert back.problems == [(photos / "b/two_small.jpg", "another file is in its place now; the moved one is "
                                                         f"still at {tmp_path / 'out' / 'two_small.jpg'}")]
    assert (photos / "b/two_small.jpg").read_bytes() == b"new file with the old name"
    assert (tmp_path / "out" / "two_small.jpg").exists()
    action = store.action(report.action_id)
    assert can_undo(store, action), "once the place is free, undo can try again"
    (photos / "b/two_small.jpg").unlink()
    assert undo(place, report.action_id).done


def test_a_file_vanishing_after_the_scan_leaves_its_group_untouched(photos, place, store, tmp_path):
    groups = selections(photos)
    (photos / "b/one.jpg").unlink()  # gone between the scan and the action
    before = tree(photos)
    report = move_to_folder(place, groups, tmp_path / "out")
    assert (photos / "b/one.jpg", "vanished since the scan") in report.problems
    assert (photos / "a/one_copy.jpg") in [path for path, _ in report.problems]
    assert [src for src, _ in report.done] == [photos / "b/two_small.jpg"], "the other group goes ahead"
    assert tree(photos) == {k: v for k, v in before.items() if k != "b/two_small.jpg"}


def test_a_kept_photo_that_changed_or_vanished_blocks_its_group(photos, place, store):
    groups = selections(photos)
    os.utime(photos / "a/two.jpg", ns=(1, 1))  # the keeper was edited after the scan
    (photos / "a/one.jpg").unlink()  # the other keeper vanished
    before = tree(photos)
    report = move_to_trash(place, groups)
    assert not report.done and report.action_id is None
    # each file that was to move is left and says why; the kept photos were staying, so they are not counted
    assert sorted(report.problems) == [
        (photos / "a/one_copy.jpg", "not touched: one.jpg of its group vanished since the scan (find duplicates again to review the group as it is)"),
        (photos / "b/one.jpg", "not touched: one.jpg of its group vanished since the scan (find duplicates again to review the group as it is)"),
        (photos / "b/two_small.jpg", "not touched: two.jpg of its group changed since the scan (find duplicates again to review the group as it is)")]
    assert tree(photos) == before
    assert store.actions() == [], "nothing done, nothing logged"


def test_a_group_with_nothing_kept_is_refused(photos, place, store):
    members = tuple(member(photos / p) for p in ["a/two.jpg", "b/two_small.jpg"])
    report = move_to_trash(place, [GroupSelection(members, frozenset())])
    assert not report.done and len(report.problems) == 2
    assert all("keep at least one" in why for _, why in report.problems)
    assert (photos / "a/two.jpg").exists() and (photos / "b/two_small.jpg").exists()


def test_export_csv_and_json_touch_no_photo(photos, place, store, tmp_path):
    before = tree(photos)
    export_list(place, selections(photos), tmp_path / "list.csv")
    rows = list(csv.DictReader(open(tmp_path / "list.csv", encoding="utf-8")))
    assert [(r["group"], r["action"], Path(r["path"]).name) for r in rows] == [
        ("1", "keep", "one.jpg"), ("1", "remove", "one.jpg"), ("1", "remove", "one_copy.jpg"),
        ("2", "keep", "two.jpg"), ("2", "remove", "two_small.jpg")]
    export_list(place, selections(photos), tmp_path / "list.json")
    data = json.loads((tmp_path / "list.json").read_text())
    assert data["groups"] == 2 and len(data["files"]) == 5 and data["files"][0]["width"] == 320
    assert tree(photos) == before
    assert [a.kind for a in store.actions()] == ["export", "export"]
    assert not can_undo(store, store.actions()[0])
    with pytest.raises(ActionError, match="nothing to undo"):
        undo(place, store.actions()[0].id)
    with pytest.raises(ActionError, match="csv or json"):
        export_list(place, selections(photos), tmp_path / "list.txt")


def test_an_export_that_cannot_be_written_says_why_and_leaves_the_old_list_whole(photos, place, store, tmp_path, monkeypatch):
    old = tmp_path / "list.json"
    old.write_text("the list exported last week")
    (tmp_path / "a folder.csv").mkdir()
    with pytest.raises(ActionError, match="is a folder"):
        export_list(place, selections(photos), tmp_path / "a folder.csv")
    with pytest.raises(ActionError, match="library data"):
        export_list(place, selections(photos), place.library_dir / "index.json")
    real_dump = json.dump

    def disk_fills(data, stream, **kwargs) -> None:
        real_dump(data, stream, **kwargs)
        stream.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(json, "dump", disk_fills)
    with pytest.raises(ActionError, match="could not write the list to .*list.json: No space left on device"):
        export_list(place, selections(photos), old)
    assert old.read_text() == "the list exported last week"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [], "no part-written file left"
    assert store.actions() == []


def test_undo_from_a_trash_without_restore_support_is_refused(photos, place, store, monkeypatch):
    report = move_to_trash(place, selections(photos)[1:])
    monkeypatch.setitem(BULK_ACTIONS, "trash", dataclasses.replace(BULK_ACTIONS["trash"], undoable=False))
    assert not can_undo(store, store.action(report.action_id))
    with pytest.raises(ActionError, match="only supported on Linux"):
        undo(place, report.action_id)


def test_a_schema_1_library_gains_the_new_tables(tmp_path):
    path = tmp_path / "old.sqlite3"
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute("DROP TABLE actions")
    db.execute("DROP TABLE action_items")
    db.execute("DROP TABLE duplicate_decisions")
    db.execute("DROP TABLE separated_pairs")
    for table in ("keypoints", "learning_views", "whitening", "duplicate_pairs", "duplicate_photos"):
        db.execute(f"DROP TABLE {table}")
    db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    store = Store(path)
    assert store.get_meta("schema_version") == str(SCHEMA_VERSION)
    assert store.actions() == [] and store.decisions() == [] and store.separated_pairs() == set()
    assert store.keypoints([1]) == {} and store.whitening() is None and store.count_learning_photos() == 0
    assert len(store.duplicate_pairs()) == 0 and store.duplicate_photos() == {} and store.duplicate_scan_info() is None
    store.close()


# -- links: a symbolic link and its target are one photo -------------------------------------------

def test_a_kept_link_keeps_the_photo_it_points_to(photos, place):
    # The link won the tie by path order; removing its target would leave the kept photo dangling.
    link = photos / "a" / "a_best.jpg"
    link.symlink_to(photos / "b" / "two_small.jpg")
    group = GroupSelection(tuple(member(p) for p in (link, photos / "a/two.jpg", photos / "b/two_small.jpg")),
                           frozenset({link}))
    report = move_to_trash(place, [group])
    assert [source for source, _ in report.done] == [photos / "a/two.jpg"]
    assert (photos / "b/two_small.jpg").is_file() and link.resolve().is_file(), "the kept link still shows its photo"
    assert [why for path, why in report.problems] == [
        "kept: it is a kept photo under another name (a link and its target are one photo)"]


def test_a_removed_link_to_a_kept_photo_goes_and_the_photo_stays(photos, place):
    link = photos / "a" / "z_link.jpg"
    link.symlink_to(photos / "a" / "two.jpg")
    group = GroupSelection(tuple(member(p) for p in (photos / "a/two.jpg", link)), frozenset({photos / "a/two.jpg"}))
    report = move_to_trash(place, [group])
    assert [source for source, _ in report.done] == [link] and (photos / "a/two.jpg").is_file()


# -- a kill during an action -----------------------------------------------------------------------

class Killed(BaseException):
    """Stands for the process dying mid-way: nothing in the actions catches a BaseException."""


def test_a_kill_during_a_move_leaves_a_log_that_undo_follows(photos, place, store, tmp_path, monkeypatch):
    before = tree(photos)
    moved = []

    def move_then_die(source, destination):
        if len(moved) == 2:
            raise Killed
        moving.move_file(source, destination)
        moved.append(source)

    with monkeypatch.context() as patched, pytest.raises(Killed):
        patched.setattr(actions, "move_file", move_then_die)
        move_to_folder(place, selections(photos), tmp_path / "out")

    [action] = store.actions()  # written before the first file moved
    assert [item.state for item in store.action_items(action.id)] == [DONE, DONE, PENDING]
    [entry] = action_history(place)
    assert "(2 files), 1 not moved" in entry.text and entry.undoable
    assert store.action_items(action.id)[2].state.startswith("not moved: the action was interrupted")
    back = undo(place, action.id)
    assert len(back.done) == 2 and tree(photos) == before


def test_a_kill_between_reserving_a_trash_name_and_moving_the_file_leaves_no_stray_entry(photos, place, store,
                                                                                         monkeypatch):
    before = tree(photos)
    commit = trash.commit
    calls = []

    def commit_then_die(path, entry):
        calls.append(path)
        if len(calls) == 2:
            raise Killed  # its .trashinfo is written, the file not moved
        commit(path, entry)

    with monkeypatch.context() as patched, pytest.raises(Killed):
        patched.setattr(trash, "commit", commit_then_die)
        move_to_trash(place, selections(photos))
    assert len(list((home_trash() / "info").iterdir())) == 2
    [entry] = action_history(place)
    assert entry.undoable
    assert [p.name for p in (home_trash() / "info").iterdir()] == ["one.jpg.trashinfo"], "the reservation is given back"
    undo(place, entry.action_id)
    assert tree(photos) == before and not any((home_trash() / "files").iterdir())


def test_a_copy_across_drives_cut_short_is_cleared_and_the_photo_stays(photos, place, store, tmp_path):
    source = photos / "b/two_small.jpg"
    destination = tmp_path / "out" / "two_small.jpg"
    destination.parent.mkdir()
    half = moving.partial_path(destination)
    half.write_bytes(source.read_bytes()[:100])
    action_id = store.log_action("move", str(destination.parent), [ActionItemRow(str(source), str(destination), None,
                                                                                 PENDING)])
    [entry] = action_history(place)
    assert not half.exists() and source.is_file() and not entry.undoable
    assert store.action_items(action_id)[0].state.startswith("not moved")


def test_a_move_across_drives_copies_whole_then_removes_the_source(tmp_path, monkeypatch):
    source, destination = tmp_path / "a.jpg", tmp_path / "elsewhere" / "a.jpg"
    make_photo(3).save(source, quality=90)
    data = source.read_bytes()
    rename = os.rename

    def no_rename_across(a, b):
        if Path(a) == source:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        rename(a, b)

    monkeypatch.setattr(moving.os, "rename", no_rename_across)
    moving.move_file(source, destination)
    assert destination.read_bytes() == data and not source.exists()
    assert not moving.partial_path(destination).exists()

    # a copy that fails (a full drive) leaves the source as it was and no half file
    back = tmp_path / "b.jpg"
    make_photo(4).save(back, quality=90)
    monkeypatch.setattr(moving.shutil, "copy2", lambda a, b: (Path(b).write_bytes(b"half"), _no_space())[1])
    source = back
    with pytest.raises(OSError):
        moving.move_file(back, tmp_path / "elsewhere" / "b.jpg")
    assert back.is_file() and sorted(p.name for p in (tmp_path / "elsewhere").iterdir()) == ["a.jpg"]


def _no_space():
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_photo_that_cannot_leave_a_read_only_drive_leaves_no_copy_behind(tmp_path, monkeypatch):
    """A write-protected card: the copy was made, the source could not be removed, and the copy stayed
    (a second run made another), while the move said it moved nothing."""
    source, target = tmp_path / "card" / "a.jpg", tmp_path / "elsewhere"
    source.parent.mkdir()
    make_photo(3).save(source, quality=90)
    rename, unlink = os.rename, os.unlink

    def no_rename_across(a, b):
        if Path(a) == source:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        rename(a, b)

    def read_only(path, *args, **kwargs):
        if Path(path) == source:
            raise OSError(errno.EROFS, "Read-only file system")
        unlink(path, *args, **kwargs)

    monkeypatch.setattr(moving.os, "rename", no_rename_across)
    monkeypatch.setattr(moving.os, "unlink", read_only)
    with pytest.raises(OSError, match="Read-only"):
        moving.move_file(source, target / "a.jpg")  # found only once the copy is made (permissions said yes)
    assert source.is_file() and list(target.iterdir()) == []
    monkeypatch.setattr(moving.os, "access", lambda path, mode: Path(path) != source.parent)
    with pytest.raises(OSError, match="cannot be written"):
        moving.move_file(source, target / "a.jpg")  # found before copying
    assert source.is_file() and list(target.iterdir()) == []


def test_photos_sorted_in_from_outside_go_back_there_only_when_the_caller_says_it_moved_them(
        photos, place, store, tmp_path):
    downloads = tmp_path / "Downloads"
    downloads.mkdir()
    make_photo(5).save(downloads / "new.jpg")
    moved = actions.move_files(place, [(downloads / "new.jpg", photos / "b")])
    assert moved.done == [(downloads / "new.jpg", photos / "b" / "new.jpg")]
    from_the_log = undo(place, moved.action_id)  # the log alone never sends a file out of the photo folder
    assert not from_the_log.done and "refused" in from_the_log.problems[0][1]
    back = undo(place, moved.action_id, origins=[downloads])
    assert back.done == [(photos / "b" / "new.jpg", downloads / "new.jpg")] and (downloads / "new.jpg").is_file()



def test_photos_asked_into_the_folder_they_are_in_are_said_to_be_there_already(photos, place, tmp_path):
    already = photos / "b" / "two_small.jpg"
    report = actions.move_files(place, [(already, photos / "b")])
    assert report.action_id is None and not report.done
    assert report.summary() == "0 files moved; 1 already in its folder"


def test_a_move_that_failed_for_every_file_says_so_in_the_history(photos, place, monkeypatch, tmp_path):
    def refuse(source, destination):
        raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(actions, "move_file", refuse)
    report = move_to_folder(place, selections(photos), tmp_path / "out")
    assert not report.done and report.problems
    [entry] = action_history(place)
    assert f"(not done: none of the {len(report.problems)} files could be moved)" in entry.text
    assert not entry.undoable

# -- a crafted log ---------------------------------------------------------------------------------

@pytest.mark.parametrize("crafted", ["outside the photo folder", "outside the action's folder", "not a trash entry"])
def test_undo_follows_no_log_row_out_of_its_places(photos, place, store, tmp_path, crafted):
    home = tmp_path / "home"
    planted = place.library_dir / "evil.desktop"
    planted.write_text("[Desktop Entry]\nExec=evil\n")
    if crafted == "outside the photo folder":  # Undo would install an autostart entry
        victim = home / ".config" / "autostart" / "evil.desktop"
        kind, target, row = "move", str(place.library_dir), ActionItemRow(str(victim), str(planted), None, DONE)
    elif crafted == "outside the action's folder":  # a file of the user's would land in the photo folder
        victim = photos / "a" / "notes.txt"
        (home / "Documents").mkdir(parents=True)
        (home / "Documents" / "notes.txt").write_text("private")
        kind, target = "move", str(tmp_path / "out")
        row = ActionItemRow(str(victim), str(home / "Documents" / "notes.txt"), None, DONE)
    else:
        victim = photos / "a" / "notes.txt"
        (home / "Documents").mkdir(parents=True)
        (home / "Documents" / "notes.txt").write_text("private")
        info = home / "Documents" / "notes.txt.trashinfo"
        info.write_text(f"[Trash Info]\nPath={victim}\n")
        kind, target = "trash", str(home_trash())
        row = ActionItemRow(str(victim), str(home / "Documents" / "notes.txt"), str(info), DONE)
    action_id = store.log_action(kind, target, [row])
    back = undo(place, action_id)
    assert not back.done and "refused" in back.problems[0][1]
    assert not victim.exists()
    assert planted.exists() and (crafted == "outside the photo folder" or (home / "Documents" / "notes.txt").exists())


def test_settling_a_crafted_log_deletes_nothing(photos, place, store, tmp_path):
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    store.log_action("trash", str(home_trash()), [ActionItemRow(
        str(photos / "a/two.jpg"), str(home_trash() / "files" / "two.jpg"), str(precious), PENDING)])
    action_history(place)
    assert precious.read_text() == "keep me" and (photos / "a/two.jpg").is_file()


# -- where files may go ----------------------------------------------------------------------------

def test_moving_into_a_folder_inside_the_photo_folder_is_refused(photos, place, store, tmp_path):
    # The moved copies would be indexed again and come back as groups, with themselves as keepers.
    before = tree(photos)
    (tmp_path / "shortcut").symlink_to(photos / "b")
    for folder in (photos / "duplicates", photos, tmp_path / "shortcut" / "old"):
        with pytest.raises(ActionError, match="is the photo folder" if folder == photos else "inside the photo folder"):
            move_to_folder(place, selections(photos), folder)
    with pytest.raises(ActionError, match="library"):
        move_to_folder(place, selections(photos), place.library_dir / "dups")
    assert tree(photos) == before and store.actions() == []


def test_undo_leaves_a_file_that_took_the_moved_ones_name_since(photos, place, store, tmp_path):
    """QA: action 1 moved one.jpg into out/; the user took it out of there by hand; action 2 moved another
    photo called one.jpg into out/. Undoing action 1 put that other photo back in the first one's place
    and said every file was back; action 2 could then not put it back at all."""
    out = tmp_path / "out"
    first = move_to_folder(place, selections(photos)[:1], out)
    (out / "one.jpg").rename(tmp_path / "kept by hand.jpg")
    later = photos / "c" / "one.jpg"
    later.parent.mkdir()
    make_photo(7).save(later)
    second = move_to_folder(place, [GroupSelection((member(photos / "a/two.jpg", 20), member(later, 21)),
                                                   frozenset({photos / "a/two.jpg"}))], out)
    assert second.done == [(later, out / "one.jpg")]
    undone = undo(place, first.action_id)
    assert undone.problems == [
        (photos / "b/one.jpg", f"the file now at {out / 'one.jpg'} is another photo, which action {second.action_id} moved there; this one left that place since, not through vitgallery")]
    assert not (photos / "b/one.jpg").exists() and (photos / "a/one_copy.jpg").exists()
    assert len(undo(place, second.action_id).done) == 1 and later.exists()


def test_a_photo_with_a_name_as_long_as_the_drive_allows_goes_to_the_trash_and_back(photos, place, store):
    """QA: a name of 250 bytes (about 82 CJK characters) could not be trashed: with ".trashinfo" after it,
    the trash's record of it was too long a name. The entry's name is cut; its record keeps the path."""
    long_name = photos / "b" / ("写真" * 41 + ".jpg")  # 250 bytes
    (photos / "b/one.jpg").rename(long_name)
    chosen = [GroupSelection((member(photos / "a/one.jpg", 0), member(long_name, 1), member(photos / "a/one_copy.jpg", 2)),
                             frozenset({photos / "a/one.jpg"}))]
    before = tree(photos)
    report = move_to_trash(place, chosen)
    assert not report.problems and len(report.done) == 2
    [entry] = [to for source, to in report.done if source == long_name]
    assert len(os.fsencode(entry.name + ".trashinfo")) <= 255 and trash.original_path(
        trash.TrashEntry(entry, home_trash() / "info" / f"{entry.name}.trashinfo")) == long_name
    assert len(undo(place, report.action_id).done) == 2 and tree(photos) == before


def test_a_photo_folder_that_is_a_drive_of_its_own_gets_no_trash_folder(photos, place, store, monkeypatch):
    # As if the photo folder were the top of a drive apart from the home folder's: the drive's trash
    # would be photos/.Trash-UID, inside the photo folder, so the home trash takes the files.
    monkeypatch.setattr(trash, "_device", lambda path: 1 if Path(path).is_relative_to(photos) else 2)
    monkeypatch.setattr(trash, "_mount_point", lambda path: photos)
    before = tree(photos)
    report = move_to_trash(place, selections(photos))
    assert len(report.done) == 3
    assert sorted(p.name for p in photos.iterdir()) == ["a", "b"], "nothing written into the photo folder"
    assert sorted(p.name for p in (home_trash() / "files").iterdir()) == ["one.jpg", "one_copy.jpg", "two_small.jpg"]
    undo(place, report.action_id)
    assert tree(photos) == before


def test_a_drive_of_its_own_under_the_photo_folder_still_gets_its_own_trash(tmp_path, monkeypatch):
    # the rule is about the photo folder: a photo folder below the drive's top uses the drive's trash
    top, root = tmp_path / "drive", tmp_path / "drive" / "Pictures"
    root.mkdir(parents=True)
    photo = root / "x.jpg"
    make_photo(1).save(photo)
    monkeypatch.setattr(trash, "_device", lambda path: 1 if Path(path).is_relative_to(top) else 2)
    monkeypatch.setattr(trash, "_mount_point", lambda path: top)
    entry = trash.reserve(photo, root)
    assert entry.file.parent.parent == top / f".Trash-{os.getuid()}"
    trash.commit(photo, entry)
    assert trash.original_path(entry) == photo and trash.is_trash_entry(entry)


def test_a_photo_folder_linked_to_another_drive_is_trashed_as_that_drive_sees_it_and_put_back(photos, store, tmp_path, monkeypatch):
    # ~/Pictures -> /mnt/data/Pictures: the drive's trash takes the files, and its .trashinfo paths are
    # relative to the drive's top without climbing out of it with ".." (which the undo did not recognise)
    top = tmp_path / "drive"
    top.mkdir()
    real = top / "Pictures"
    photos.rename(real)
    photos.symlink_to(real)
    monkeypatch.setattr(trash, "_device", lambda path: 1 if Path(os.path.realpath(path)).is_relative_to(top) else 2)
    monkeypatch.setattr(trash, "_mount_point", lambda path: top)
    place = ActionPlace(store, photos)
    before = tree(real)
    report = move_to_trash(place, selections(photos))
    info = top / f".Trash-{os.getuid()}" / "info"
    assert sorted(line for entry in info.iterdir() for line in entry.read_text().splitlines() if line.startswith("Path=")) == [
        "Path=Pictures/a/one_copy.jpg", "Path=Pictures/b/one.jpg", "Path=Pictures/b/two_small.jpg"]
    # an entry written the old way, through the link, is still recognised as the file's own
    (info / "one.jpg.trashinfo").write_text((info / "one.jpg.trashinfo").read_text().replace(
        "Path=Pictures/", f"Path={os.path.relpath(photos, top)}/"))
    restored = undo(place, report.action_id)
    assert len(restored.done) == 3 and not restored.problems
    assert tree(real) == before and list(info.iterdir()) == []


# -- the registry ----------------------------------------------------------------------------------

def test_each_action_says_what_it_will_do_with_the_counts(photos):
    trash_question = BULK_ACTIONS["trash"].confirmation(selections(photos))
    assert trash_question.startswith("Move 3 photos from 2 groups to the trash?")
    assert "Undo puts the others back" in trash_question
    move_question = BULK_ACTIONS["move"].confirmation(selections(photos)[:1], Path("/backup"))
    assert move_question.startswith("Move 2 photos from 1 group into /backup?")
    assert BULK_ACTIONS["export"].confirmation(selections(photos)) is None, "a list moves nothing: nothing to ask"
    assert [a.name for a in BULK_ACTIONS.values() if a.moves_files] == ["trash", "move"]
    assert all(a.undoable for a in BULK_ACTIONS.values() if a.name == "move")
    assert not BULK_ACTIONS["export"].undoable


def test_the_status_line_names_files_left_for_one_reason_together(photos, place, store):
    groups = selections(photos)
    os.utime(photos / "a/one.jpg", ns=(1, 1))  # the first group's keeper changed: its two copies stay
    report = move_to_trash(place, groups)
    assert report.status_line() == ("1 file moved to the trash; 2 left as they were: one.jpg, one_copy.jpg not "
                                    "touched: one.jpg of its group changed since the scan (find duplicates again to "
                                    "review the group as it is)")
    assert report.status_line(problems_shown=1).endswith("(find duplicates again to review the group as it is); 1 more file")


@pytest.mark.parametrize("act", [move_to_trash, lambda place, chosen: move_to_folder(place, chosen, place.root.parent / "out")])
def test_a_full_library_disk_stops_the_action_and_its_report_says_how_far_it_got(photos, place, store, monkeypatch, act):
    """No file moves that the log cannot name; those moved before are said, and undone as usual."""
    before = tree(photos)
    writes = []
    update = store.update_action_item

    def fill_up(*args) -> None:
        writes.append(args)
        if len(writes) == 4:  # the second file's "moved": it has moved, its mark is what fails
            raise StoreError("the disk holding the library is full: free some space and run again")
        update(*args)

    monkeypatch.setattr(store, "update_action_item", fill_up)
    report = act(place, selections(photos))
    assert report.stopped == "the disk holding the library is full: free some space and run again"
    assert len(report.done) == 2 and len(report.problems) == 1, "two moved, the third never touched"
    assert report.problems[0][1] == "not touched: the action stopped first" and report.problems[0][0].exists()
    assert report.summary().endswith("; 1 left as it was; stopped before the end: the disk holding the library is "
                                     "full: free some space and run again")
    monkeypatch.setattr(store, "update_action_item", update)  # space freed
    back = undo(place, report.action_id)
    assert len(back.done) == 2 and tree(photos) == before, "both put back, byte for byte"
    info = home_trash() / "info"
    assert not info.exists() or not any(info.iterdir()), "no trash entry left behind"


def test_a_full_disk_leaves_no_empty_trash_entry(photos, monkeypatch):
    real_fdopen = os.fdopen

    def full(fd, *args, **kwargs):
        stream = real_fdopen(fd, *args, **kwargs)
        stream.write = lambda text: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device"))
        return stream

    monkeypatch.setattr(trash.os, "fdopen", full)
    with pytest.raises(OSError):
        trash.reserve(photos / "a/one.jpg", photos)
    assert not any((home_trash() / "info").iterdir()), "the name is not held by an empty .trashinfo"
