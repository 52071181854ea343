from __future__ import annotations

import csv
import json
import os
import sqlite3
from pathlib import Path

import pytest

from tests.photos import make_photo
from vitgallery.core import actions
from vitgallery.core.actions import (
    ActionError,
    GroupSelection,
    can_undo,
    export_list,
    home_trash,
    move_to_folder,
    move_to_trash,
    undo,
)
from vitgallery.core.duplicates import DuplicateMember
from vitgallery.core.store import SCHEMA_VERSION, Store


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


def selections(root: Path) -> list[GroupSelection]:
    first = tuple(member(root / p, i) for i, p in enumerate(["a/one.jpg", "b/one.jpg", "a/one_copy.jpg"]))
    second = tuple(member(root / p, 10 + i) for i, p in enumerate(["a/two.jpg", "b/two_small.jpg"]))
    return [GroupSelection(first, frozenset({root / "a/one.jpg"})),
            GroupSelection(second, frozenset({root / "a/two.jpg"}))]


def test_the_test_trash_is_inside_tmp(tmp_path_factory):
    assert home_trash().is_relative_to(tmp_path_factory.getbasetemp())


def test_trash_then_undo_puts_everything_back(photos, store, tmp_path):
    real_trash = Path.home() / ".local/share/Trash"
    real_before = sorted(real_trash.rglob("*")) if real_trash.exists() else None
    before = tree(photos)

    report = move_to_trash(store, selections(photos))
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
    back = undo(store, action.id)
    assert not back.problems and len(back.done) == 3
    assert tree(photos) == before, "every file is back, byte for byte"
    assert not any((home_trash() / "files").iterdir()) and not any((home_trash() / "info").iterdir())
    assert not can_undo(store, store.action(action.id))
    assert (sorted(real_trash.rglob("*")) if real_trash.exists() else None) == real_before, \
        "the real trash was not touched"


def test_same_names_in_the_trash_are_told_apart_and_restored_to_their_own_places(photos, store):
    a, b = photos / "a/one.jpg", photos / "b/one.jpg"
    keep = photos / "a/one_copy.jpg"
    group = GroupSelection(tuple(member(p) for p in (a, b, keep)), frozenset({keep}))
    bytes_a, bytes_b = a.read_bytes(), b.read_bytes()
    report = move_to_trash(store, [group])
    assert sorted(p.name for p in (home_trash() / "files").iterdir()) == ["one 2.jpg", "one.jpg"]
    undo(store, report.action_id)
    assert a.read_bytes() == bytes_a and b.read_bytes() == bytes_b


def test_undo_after_the_trash_was_emptied_says_so(photos, store):
    report = move_to_trash(store, selections(photos)[1:])
    for entry in (home_trash() / "files").iterdir():
        entry.unlink()
    back = undo(store, report.action_id)
    assert not back.done
    assert back.problems == [(photos / "b/two_small.jpg", "no longer in the trash")]


def test_move_to_folder_keeps_names_unique_and_undo_moves_back(photos, store, tmp_path):
    target = tmp_path / "sorted-out"
    target.mkdir()
    (target / "one.jpg").write_bytes(b"already here")
    before = tree(photos)

    report = move_to_folder(store, selections(photos), target)
    assert not report.problems
    assert sorted(tree(target)) == ["one (2).jpg", "one.jpg", "one_copy.jpg", "two_small.jpg"]
    assert (target / "one.jpg").read_bytes() == b"already here", "an existing file is never replaced"
    assert (target / "one (2).jpg").read_bytes() == before["b/one.jpg"]

    [action] = store.actions()
    assert action.kind == "move" and action.target == str(target)
    undo(store, action.id)
    assert tree(photos) == before
    assert tree(target) == {"one.jpg": b"already here"}


def test_undo_never_replaces_a_file_that_took_the_old_place(photos, store, tmp_path):
    report = move_to_folder(store, selections(photos)[1:], tmp_path / "out")
    (photos / "b/two_small.jpg").write_bytes(b"new file with the old name")
    back = undo(store, report.action_id)
    assert back.problems == [(photos / "b/two_small.jpg", "another file is in its place now")]
    assert (photos / "b/two_small.jpg").read_bytes() == b"new file with the old name"
    assert (tmp_path / "out" / "two_small.jpg").exists()
    action = store.action(report.action_id)
    assert can_undo(store, action), "once the place is free, undo can try again"
    (photos / "b/two_small.jpg").unlink()
    assert undo(store, report.action_id).done


def test_a_file_vanishing_after_the_scan_leaves_its_group_untouched(photos, store, tmp_path):
    groups = selections(photos)
    (photos / "b/one.jpg").unlink()  # gone between the scan and the action
    before = tree(photos)
    report = move_to_folder(store, groups, tmp_path / "out")
    assert (photos / "b/one.jpg", "vanished since the scan") in report.problems
    assert (photos / "a/one_copy.jpg") in [path for path, _ in report.problems]
    assert [src for src, _ in report.done] == [photos / "b/two_small.jpg"], "the other group goes ahead"
    assert tree(photos) == {k: v for k, v in before.items() if k != "b/two_small.jpg"}


def test_a_kept_photo_that_changed_or_vanished_blocks_its_group(photos, store):
    groups = selections(photos)
    os.utime(photos / "a/two.jpg", ns=(1, 1))  # the keeper was edited after the scan
    (photos / "a/one.jpg").unlink()  # the other keeper vanished
    before = tree(photos)
    report = move_to_trash(store, groups)
    assert not report.done and report.action_id is None
    assert (photos / "a/two.jpg", "changed since the scan") in report.problems
    assert (photos / "a/one.jpg", "vanished since the scan") in report.problems
    assert tree(photos) == before
    assert store.actions() == [], "nothing done, nothing logged"


def test_a_group_with_nothing_kept_is_refused(photos, store):
    members = tuple(member(photos / p) for p in ["a/two.jpg", "b/two_small.jpg"])
    report = move_to_trash(store, [GroupSelection(members, frozenset())])
    assert not report.done and len(report.problems) == 2
    assert all("keep at least one" in why for _, why in report.problems)
    assert (photos / "a/two.jpg").exists() and (photos / "b/two_small.jpg").exists()


def test_export_csv_and_json_touch_no_photo(photos, store, tmp_path):
    before = tree(photos)
    export_list(store, selections(photos), tmp_path / "list.csv")
    rows = list(csv.DictReader(open(tmp_path / "list.csv", encoding="utf-8")))
    assert [(r["group"], r["action"], Path(r["path"]).name) for r in rows] == [
        ("1", "keep", "one.jpg"), ("1", "remove", "one.jpg"), ("1", "remove", "one_copy.jpg"),
        ("2", "keep", "two.jpg"), ("2", "remove", "two_small.jpg")]
    export_list(store, selections(photos), tmp_path / "list.json")
    data = json.loads((tmp_path / "list.json").read_text())
    assert data["groups"] == 2 and len(data["files"]) == 5 and data["files"][0]["width"] == 320
    assert tree(photos) == before
    assert [a.kind for a in store.actions()] == ["export", "export"]
    assert not can_undo(store, store.actions()[0])
    with pytest.raises(ActionError, match="nothing to undo"):
        undo(store, store.actions()[0].id)
    with pytest.raises(ActionError, match="csv or json"):
        export_list(store, selections(photos), tmp_path / "list.txt")


def test_undo_from_a_trash_without_restore_support_is_refused(photos, store, monkeypatch):
    report = move_to_trash(store, selections(photos)[1:])
    monkeypatch.setattr(actions, "TRASH_UNDO_SUPPORTED", False)
    assert not can_undo(store, store.action(report.action_id))
    with pytest.raises(ActionError, match="only supported on Linux"):
        undo(store, report.action_id)


def test_a_schema_1_library_gains_the_new_tables(tmp_path):
    path = tmp_path / "old.sqlite3"
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute("DROP TABLE actions")
    db.execute("DROP TABLE action_items")
    db.execute("DROP TABLE duplicate_decisions")
    for table in ("keypoints", "learning_views", "whitening", "duplicate_pairs", "duplicate_photos"):
        db.execute(f"DROP TABLE {table}")
    db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    store = Store(path)
    assert store.get_meta("schema_version") == str(SCHEMA_VERSION)
    assert store.actions() == [] and store.decisions() == []
    assert store.keypoints([1]) == {} and store.whitening() is None and store.count_learning_photos() == 0
    assert store.duplicate_pairs() == [] and store.duplicate_photos() == {} and store.duplicate_scan_info() is None
    store.close()
