"""Reviewing duplicates through the Library: decisions about pairs and groups, actions, undo, history."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from tests.core.test_duplicates import names, write_near_duplicates
from vitgallery.core.duplicates import (
    BULK_ACTIONS,
    ActionError,
    Decision,
    DuplicateScan,
    GroupSelection,
    PairEvidence,
    fingerprint_pair,
)
from vitgallery.core.duplicates.trash import home_trash
from vitgallery.core.indexing import AWAY_KEPT_S
from vitgallery.core.library import DB_NAME, Library
from vitgallery.core.models import load_embedder
from vitgallery.core.scan import scan_root
from vitgallery.core.store import SCHEMA_VERSION, FileRow, Store

# -- separated pairs, on made-up evidence ----------------------------------------------------------


def made_up_scan(links: dict[tuple[int, int], float], separated: list[tuple[int, int]] = ()) -> DuplicateScan:
    files = {i: FileRow(i, f"p{i}.jpg", 1, 1, f"fp{i}", 10, 10, None, 1.0, True) for i in range(1, 9)}
    pairs = [PairEvidence(a, b, 0.9, 30, 0.9, score) for (a, b), score in links.items()]
    return DuplicateScan(Path("/photos"), files, pairs,
                         separated=frozenset(fingerprint_pair(f"fp{a}", f"fp{b}") for a, b in separated))


def ids(scan: DuplicateScan) -> list[set[int]]:
    return [{m.file_id for m in g.members} for g in scan.groups(0.5)]


STAR = {(1, 2): 0.95, (1, 3): 0.8, (1, 4): 0.9, (3, 4): 0.85}  # 1 the original; 3 and 4 also alike


def test_a_photo_taken_out_leaves_the_rest_of_its_group():
    assert ids(made_up_scan(STAR)) == [{1, 2, 3, 4}]
    assert ids(made_up_scan(STAR, [(2, 1), (2, 3), (2, 4)])) == [{1, 3, 4}]


def test_two_photos_said_not_duplicates_never_share_a_group_and_the_others_stay():
    # 2 and 3 both match the original 1: the one that matches it less (3) leaves; 4 stays with 1
    assert ids(made_up_scan(STAR, [(2, 3)])) == [{1, 2, 4}]
    # with the original itself: only that link goes
    assert ids(made_up_scan({(1, 2): 0.95, (1, 3): 0.8, (1, 4): 0.9}, [(1, 4)])) == [{1, 2, 3}]


def test_a_group_split_in_two_becomes_two_groups():
    assert sorted(ids(made_up_scan(STAR, [(3, 1), (3, 2), (4, 1), (4, 2)])), key=min) == [{1, 2}, {3, 4}]


# -- through the Library ---------------------------------------------------------------------------


@pytest.fixture
def library(tmp_path):
    write_near_duplicates(tmp_path / "photos")
    library = Library.open(tmp_path / "photos", tmp_path / "library")
    library.index(load_embedder("tiny-test"), decode_workers=0)
    yield library
    library.close()


def group_of(scan: DuplicateScan, name: str):
    return next(g for g in scan.groups() if name in names(g))


def test_separations_and_decisions_are_kept_in_the_library(library, tmp_path):
    scan = library.duplicate_scan()
    group = group_of(scan, "p1.jpg")
    out = next(m for m in group.members if m.path.name == "p1_flip.jpg")
    library.separate([out], [m for m in group.members if m is not out])
    library.decide(group_of(scan, "p4.jpg"), "keep_all")
    decisions = library.duplicate_decisions()
    assert len(decisions.separated) == 4 and [d.decision for d in decisions.groups] == ["keep_all"]
    library.close()

    library = Library.open(library_dir=tmp_path / "library")  # the next start
    scan = library.duplicate_scan()
    assert sorted((names(g) for g in scan.groups()), key=min) == [
        {"p1.jpg", "p1_resaved.jpg", "p1_small.jpg", "p1_crop.jpg"},
        {f"p6{suffix}.jpg" for suffix in ("", "_resaved", "_small", "_crop", "_flip")}]
    assert scan.groups_and_hidden()[1] == 1
    library.close()


def test_each_step_that_told_photos_apart_is_listed_with_its_two_sides(library, monkeypatch):
    scan = library.duplicate_scan()
    group = group_of(scan, "p6.jpg")
    first = [m for m in group.members if m.path.name in ("p6_flip.jpg", "p6_crop.jpg")]  # a group split
    library.separate(first, [m for m in group.members if m not in first])
    monkeypatch.setattr("time.time", lambda: 2e9)  # a later step
    pair = [m for m in group_of(scan, "p1.jpg").members if m.path.name in ("p1.jpg", "p1_small.jpg")]
    library.separate(pair[:1], pair[1:])
    newest, split = library.separations()
    assert (len(newest.pairs), len(split.pairs)) == (1, 6)
    assert {*newest.photos, *newest.others} == {"p1.jpg", "p1_small.jpg"}
    assert (split.photos, split.others) == (("p6_crop.jpg", "p6_flip.jpg"),
                                            ("p6.jpg", "p6_resaved.jpg", "p6_small.jpg"))
    library.take_back(Decision(pairs=split.pairs))
    assert library.separations() == [newest]


def test_the_photos_a_user_keeps_of_a_group_hold_while_it_is_the_same_photos(library, tmp_path):
    group = group_of(library.duplicate_scan(), "p1.jpg")
    flip = next(m.path for m in group.members if m.path.name == "p1_flip.jpg")
    library.remember_keep(group, [flip])
    library.close()

    library = Library.open(library_dir=tmp_path / "library")  # the next start
    groups = library.duplicate_scan().groups()
    assert library.chosen_keeps(groups) == {group.key: frozenset({flip})}
    library.remember_keep(group, None)  # the rule's choice again
    assert library.chosen_keeps(groups) == {}

    library.remember_keep(group, [flip])
    out = next(m for m in group.members if m.path.name == "p1_small.jpg")
    library.separate([out], [m for m in group.members if m is not out])
    changed = library.duplicate_scan().groups()
    assert library.chosen_keeps(changed) == {}, "another group of photos: the rule chooses again"
    renamed = [dataclasses.replace(g, members=[dataclasses.replace(m, path=m.path.with_name("x.jpg"))
                                               if m.path == flip else m for m in g.members]) for g in groups]
    assert library.chosen_keeps(renamed) == {}, "a kept photo no longer in the group under its name"
    library.forget_keep_choices()
    assert library.chosen_keeps(groups) == {}


def library_of_schema(path: Path, version: int, without_table: str) -> Path:
    """A library database as an earlier schema left it: without the table a later one added."""
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute(f"DROP TABLE {without_table}")
    db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))
    db.commit()
    db.close()
    return path


def test_a_schema_9_library_gains_the_keep_choices_and_reads_none_when_it_cannot_be_written(tmp_path, monkeypatch):
    path = library_of_schema(tmp_path / DB_NAME, 9, "keep_choices")
    with monkeypatch.context() as patched:  # what a file without write permission says, even to root
        patched.setattr("vitgallery.core.store.os.access", lambda p, mode: not (mode & os.W_OK))
        store = Store(path)
    assert store.read_only and store.keep_choices() == {}
    store.close()
    store = Store(path)
    assert store.get_meta("schema_version") == str(SCHEMA_VERSION) and store.keep_choices() == {}
    store.save_keep_choice("k", ["/photos/b.jpg", "/photos/a.jpg"])
    assert store.keep_choices() == {"k": ["/photos/a.jpg", "/photos/b.jpg"]}
    store.close()


def test_act_undo_and_history_go_through_the_library(library):
    scan = library.duplicate_scan()
    groups = scan.groups()
    selections = [GroupSelection(g.members, frozenset({g.members[0].path})) for g in groups]
    report = library.act("trash", selections)
    assert len(report.done) == 12 and report.moved_files
    assert len(list((home_trash() / "files").iterdir())) == 12
    [entry] = library.action_history()
    assert entry.kind == "trash" and entry.undoable and "(12 files)" in entry.text
    # The app's own removal leaves the kept scan current: no "the library changed since" for it.
    kept = library.last_duplicate_scan()
    assert kept is not None and kept.up_to_date and kept.groups() == []
    back = library.undo(entry.action_id)
    assert len(back.done) == 12 and not any((home_trash() / "files").iterdir())
    assert "12 put back" in library.action_history()[0].text and not library.action_history()[0].undoable
    with pytest.raises(ActionError, match="no action 'shred'"):
        library.act("shred", selections)
    with pytest.raises(ActionError, match="folder"):
        library.act("move", selections)
    assert set(BULK_ACTIONS) == {"trash", "move", "export"}



def test_an_exported_list_leaves_the_library_as_it_was(library, tmp_path):
    groups = library.duplicate_scan().groups()
    photos = library.store.count_files()
    report = library.act("export", [GroupSelection(g.members, frozenset({g.members[0].path})) for g in groups],
                         tmp_path / "list.csv")
    assert report.done and not report.moved_files
    assert library.store.count_files() == photos, "every photo listed is still in the library"
    assert len(library.duplicate_scan().groups()) == len(groups)

def test_an_undo_removes_the_folders_its_move_made_and_left_empty(library, tmp_path):
    selections = [GroupSelection(g.members, frozenset({g.members[0].path})) for g in library.duplicate_scan().groups()]
    made = tmp_path / "new" / "duplicates"
    report = library.act("move", selections, made)
    assert len(report.done) == 12 and made.is_dir()
    library.undo(report.action_id)
    assert not (tmp_path / "new").exists(), "made by the move, empty again: gone with its undo"

    there = tmp_path / "mine"
    there.mkdir()
    report = library.move_into_folders([(selections[0].to_remove[0].path, there / "sub")])
    (there / "sub" / "notes.txt").write_text("the user's")
    library.undo(report.action_id)
    assert (there / "sub" / "notes.txt").exists(), "a folder the user put a file in stays"
    (there / "sub" / "notes.txt").unlink()
    report = library.move_into_folders([(selections[0].to_remove[0].path, there)])
    library.undo(report.action_id)
    assert there.is_dir(), "a folder that was there before the move stays, empty or not"


def test_an_undo_after_the_photo_folder_was_renamed_puts_photos_back_in_its_new_place(library, tmp_path):
    selections = [GroupSelection(g.members, frozenset({g.members[0].path})) for g in library.duplicate_scan().groups()]
    moved = library.act("move", selections[:1], tmp_path / "duplicates")
    trashed = library.act("trash", selections[1:2])
    # sorted into a folder it makes in the photo folder, which moves with it
    sorted_in = library.move_into_folders([(m.path, library.root / "Birds") for m in selections[2].to_remove])
    assert moved.done and trashed.done and sorted_in.done
    old_root, library_dir = library.root, library.library_dir
    library.close()
    renamed = tmp_path / "Photos 2024"
    old_root.rename(renamed)
    not_followed = Library.open(library_dir=library_dir)
    with pytest.raises(ActionError, match="is not there .* nothing was put back"):
        not_followed.undo(moved.action_id)  # it would make the old folder again
    not_followed.close()
    assert not old_root.exists()

    followed = Library.open(renamed, library_dir, repoint=True)
    for action in (moved, trashed, sorted_in):
        report = followed.undo(action.action_id)
        assert report.problems == [] and report.done
        assert all(source.parent == renamed and source.exists() for _, source in report.done), report.done
    assert not (renamed / "Birds").exists(), "the folder the sort made, empty again, is removed"
    assert f"moved to {renamed / 'Birds'}" in followed.action_history()[0].text, "named where it is now"
    assert not old_root.exists(), "nothing is put back where the folder was"
    followed.close()


def test_a_move_that_moved_no_file_leaves_no_folder_behind(library, tmp_path, monkeypatch):
    from vitgallery.core.duplicates import actions

    def refused(source, destination):  # a read-only photo folder: the folder is made, the file stays
        destination.parent.mkdir(parents=True, exist_ok=True)
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(actions, "move_file", refused)
    selections = [GroupSelection(g.members, frozenset({g.members[0].path})) for g in library.duplicate_scan().groups()]
    report = library.act("move", selections, tmp_path / "new" / "duplicates")
    assert not report.done and len(report.problems) == 12
    assert not (tmp_path / "new").exists()
    report = library.move_into_folders([(selections[0].to_remove[0].path, tmp_path / "sorted" / "cats")])
    assert not report.done and not (tmp_path / "sorted").exists()


def no_model(embedder):
    """The embedder with its model taken away: any photo embedded, or taught, fails the test."""

    def refused(pixels):
        raise AssertionError(f"the model ran on {len(pixels)} photos")

    embedder.embed_pixels = embedder.embed_views = refused
    return embedder


def trash_two_of_p1(library) -> tuple[list[Path], int]:
    """Trash two photos of the p1 group through the library; (their paths, the action's id)."""
    group = group_of(library.duplicate_scan(), "p1.jpg")
    away = [library.root / "p1_small.jpg", library.root / "p1_crop.jpg"]
    report = library.act("trash", [GroupSelection(group.members, frozenset(m.path for m in group.members) - set(away))])
    assert sorted(source for source, _ in report.done) == sorted(away)
    return away, report.action_id


def test_photos_an_undo_puts_back_come_back_with_what_the_library_knew(library):
    """Undo of a resolve: the photos are back in search and the groups at once, with their vectors and
    features, and the next index does not run the model for them."""
    photos = library.status().photos
    before = {path.name: row for path in library.root.iterdir() if (row := library.store.file_by_path(path.name))}
    vectors = library.stored_vectors(library.root.iterdir())
    features = library.store.photo_features(row.id for row in before.values())
    away, action_id = trash_two_of_p1(library)
    assert library.status().photos == photos - 2 and not library.stored_vectors(away)

    library.undo(action_id)
    assert library.status().photos == photos
    back = {path.name: library.store.file_by_path(path.name) for path in away}
    for path in away:
        assert np.array_equal(library.stored_vectors([path])[path], vectors[path])
        old, new = before[path.name], back[path.name]
        assert (new.fingerprint, new.size, new.width, new.height, new.sharpness) == \
            (old.fingerprint, old.size, old.width, old.height, old.sharpness)
        assert library.store.photo_features([new.id]) == {new.id: features[old.id]}, "keypoints and grey copies"
    hits = library.search(library.root / "p1.jpg", k=6, verify=False)
    assert {path.name for path in away} <= {hit.path.name for hit in hits}, "searchable before any index"
    assert library.duplicate_scan_is_current(), "back under their ids with their pairs: the kept scan holds"
    assert names(group_of(library.last_duplicate_scan(), "p1.jpg")) >= {path.name for path in away}

    summary = library.index(no_model(load_embedder("tiny-test")), decode_workers=0)
    assert (summary.added, summary.updated, summary.removed, summary.teaching) == (0, 0, 0, 0)
    assert library.status().photos == photos


def test_an_index_run_that_listed_the_folder_before_an_undo_keeps_what_the_undo_brought_back(library):
    """The window indexes after a resolve; an undo meanwhile put photos back after the run's listing."""
    away, action_id = trash_two_of_p1(library)
    listed_before_the_undo = scan_root(library.root)
    assert not any(library.store.file_by_path(path.name) for path in away)
    library.undo(action_id)
    back = {path: library.store.file_by_path(path.name).id for path in away}
    summary = library.index(no_model(load_embedder("tiny-test")), decode_workers=0,
                            listing=lambda: listed_before_the_undo)
    assert summary.removed == 0
    assert {path: library.store.file_by_path(path.name).id for path in away} == back
    assert library.duplicate_scan_is_current()


def test_a_resolve_of_most_photos_keeps_the_search_space_so_an_undo_finds_the_scan_current(library):
    scan = library.duplicate_scan()
    fitted = library.store.whitening().key
    report = library.act("trash", [GroupSelection(g.members, frozenset({g.members[0].path})) for g in scan.groups()])
    assert len(report.done) == 12 and library.status().photos == 8
    library.index(no_model(load_embedder("tiny-test")), decode_workers=0)  # the window's index after a resolve
    assert library.store.whitening().key == fitted, "12 of 20 photos away: still the library's for 30 days"
    library.undo(report.action_id)
    assert library.duplicate_scan_is_current()

    library.act("trash", [GroupSelection(g.members, frozenset({g.members[0].path})) for g in scan.groups()])
    with library.store.transaction():
        library.store._db.execute("UPDATE away_files SET at = at - ?", (AWAY_KEPT_S + 1,))
    library.index(load_embedder("tiny-test"), decode_workers=0)
    assert library.store.whitening().key != fitted, "forgotten, they leave the fit"


def test_a_photo_restored_from_the_trash_by_hand_is_not_embedded_again(library):
    photos = library.status().photos
    away, action_id = trash_two_of_p1(library)
    for path in away:  # as a file manager's Restore does: the log knows nothing of it
        os.rename(home_trash() / "files" / path.name, path)
    summary = library.index(no_model(load_embedder("tiny-test")), decode_workers=0)
    assert (summary.added, summary.moved, summary.teaching) == (0, 2, 0)
    assert library.status().photos == photos

    report = library.undo(action_id)
    assert (report.done, report.back_by_hand, report.problems) == ([], away, [])
    assert report.summary() == "0 files put back; 2 already back in their place"
    assert not library.action_history()[0].undoable, "nothing left to put back"


def test_an_undo_of_photos_put_back_by_hand_brings_them_back_to_the_library(library, capsys):
    from vitgallery.cli import main

    photos = library.status().photos
    [by_hand, trashed], action_id = trash_two_of_p1(library)
    os.rename(home_trash() / "files" / by_hand.name, by_hand)  # a file manager's Restore, then the undo
    library.close()
    assert main(["duplicates", "--library", str(library.library_dir), "--undo", str(action_id)]) == 0
    assert capsys.readouterr().out.splitlines() == ["1 file put back; 1 already back in its place"]
    library = Library.open(library.root, library.library_dir)
    assert library.status().photos == photos and library.duplicate_scan_is_current(), "in the library at once"
    summary = library.index(no_model(load_embedder("tiny-test")), decode_workers=0)
    assert (summary.added, summary.moved, summary.removed) == (0, 0, 0)
    library.close()


@pytest.mark.parametrize("as_json", [False, True])
def test_an_undo_says_which_photos_it_put_back_need_the_index(library, capsys, as_json):
    from vitgallery.cli import main

    [changed, kept], action_id = trash_two_of_p1(library)
    in_trash = home_trash() / "files" / changed.name
    in_trash.write_bytes(in_trash.read_bytes() + b"edited while in the trash")
    library.close()
    command = ["duplicates", "--library", str(library.library_dir), "--undo", str(action_id)]
    assert main(command + ["--json"] * as_json) == 0
    out = capsys.readouterr().out
    if as_json:
        [report] = json.loads(out)["actions"]
        assert len(report["done"]) == 2 and report["problems"] == []
        assert report["to_index"] == [{"path": str(changed)}]
    else:
        assert out.splitlines() == [
            "2 files put back (1 of them not searchable until the next index: changed while away)",
            f"`vitgallery index {library.root}` makes 1 photo searchable again"]
    library = Library.open(library.root, library.library_dir)
    assert library.store.file_by_path(kept.name) and not library.store.file_by_path(changed.name)
    assert library.index(load_embedder("tiny-test"), decode_workers=0).added == 1
    library.close()


def test_a_report_of_one_file_reads_in_the_singular(tmp_path):
    from vitgallery.commands import _print_report
    from vitgallery.core.duplicates import ActionReport

    moved = ActionReport("trash", action_id=3, done=[(tmp_path / "a.jpg", tmp_path / "trash" / "a.jpg")],
                         problems=[(tmp_path / "b.jpg", "changed since the scan")])
    assert moved.summary() == "1 file moved to the trash; 1 left as it was"
    out = io.StringIO()
    _print_report(moved, out, SimpleNamespace(root=tmp_path, library_dir=tmp_path / "my library"))
    assert out.getvalue().splitlines()[0].endswith(
        f"(action 3; `vitgallery duplicates --undo 3 --library '{tmp_path / 'my library'}'` puts it back)")
    back = ActionReport("undo", done=[(tmp_path / "trash" / "a.jpg", tmp_path / "a.jpg")], to_index=[tmp_path / "a.jpg"])
    assert back.summary() == "1 file put back (not searchable until the next index: changed while away)"


def test_another_file_at_a_trashed_photos_place_is_embedded(library):
    """Only the same content gets the kept data back: here the same size and pixels, other bytes."""
    [path, _], action_id = trash_two_of_p1(library)
    original = bytearray((home_trash() / "files" / path.name).read_bytes())
    assert original[:4] == b"\xff\xd8\xff\xe0" and original[6:11] == b"JFIF\0"
    original[15] ^= 1  # the JFIF header's horizontal density: the pixels stay the same
    path.write_bytes(original)
    embedder = load_embedder("tiny-test")
    embed_pixels, embedded = embedder.embed_pixels, []
    embedder.embed_pixels = lambda pixels: embedded.append(len(pixels)) or embed_pixels(pixels)
    summary = library.index(embedder, decode_workers=0)
    assert summary.added == 1 and sum(embedded) == 1
    [(put_back, why)] = library.undo(action_id).problems
    assert put_back == path and why == f"another file is in its place now; the moved one is still at {home_trash() / 'files' / path.name}"


def test_what_is_kept_of_photos_taken_away_is_dropped_after_a_month(library):
    away, _ = trash_two_of_p1(library)
    assert library.store.away_sizes() == {path.stat().st_size for path in (home_trash() / "files").iterdir()}
    library.index(load_embedder("tiny-test"), decode_workers=0)
    assert len(library.store.away_sizes()) == 2
    with library.store.transaction():
        library.store._db.execute("UPDATE away_files SET at = at - ?", (AWAY_KEPT_S + 1,))
    library.index(load_embedder("tiny-test"), decode_workers=0)
    assert library.store.away_sizes() == set()


def test_a_schema_5_library_gains_the_separated_pairs(tmp_path):
    store = Store(library_of_schema(tmp_path / DB_NAME, 5, "separated_pairs"))
    assert store.get_meta("schema_version") == str(SCHEMA_VERSION) and store.separated_pairs() == set()
    store.save_separated_pairs([("a", "b")])
    assert store.separated_pairs() == {("a", "b")}
    store.close()


def test_the_cli_marks_a_photo_in_by_agreement(library, capsys):
    """At a sure threshold the crops are in their groups by matching their four copies just under it:
    the list marks them and says what the mark means, --json says why."""
    from vitgallery.cli import main

    library.close()
    lib = ["--library", str(library.library_dir), "--threshold", "0.9"]
    assert main(["duplicates", *lib]) == 0
    out = capsys.readouterr().out
    assert "match*: in the group as it matches several of its photos, none surely enough alone" in out
    marked = [line for line in out.splitlines() if re.search(r"match \d\.\d\d\* ", line)]
    assert marked and all("_crop" in line for line in marked)
    assert main(["duplicates", *lib, "--json"]) == 0
    members = [m for g in json.loads(capsys.readouterr().out)["groups"] for m in g["members"]]
    agreeing = [m for m in members if m["why"].startswith("matches 4 photos of this group, none surely enough alone")]
    assert len(agreeing) == len(marked) and all(m["similarity"] < 0.9 for m in agreeing)
    assert [m for m in members if m["agreeing"]] == agreeing and all(m["agreeing"] == 4 for m in agreeing)
    assert main(["duplicates", "--library", str(library.library_dir)]) == 0
    assert "match*" not in capsys.readouterr().out, "at the default every member passes on its own"


def test_the_cli_acts_asks_lists_and_undoes(library, tmp_path, capsys, monkeypatch):
    from vitgallery.cli import main

    library.close()
    lib = ["--library", str(library.library_dir)]
    before = sorted(p.name for p in library.root.iterdir())
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert main(["duplicates", *lib, "--trash"]) == 2
    assert "Move 12 photos from 3 groups to the trash? Add --yes" in capsys.readouterr().err
    assert sorted(p.name for p in library.root.iterdir()) == before, "nothing moves without an answer"

    assert main(["duplicates", *lib, "--trash", "--yes", "--export", str(tmp_path / "plan.csv")]) == 0
    out = capsys.readouterr().out
    assert (f"12 files moved to the trash (action 2; `vitgallery duplicates --undo 2 --library "
            f"{library.library_dir}` puts them back)") in out
    assert (tmp_path / "plan.csv").read_text().count("remove") == 12, "the list is written before files move"
    assert len(list(library.root.iterdir())) == len(before) - 12

    assert main(["duplicates", *lib, "--history"]) == 0
    history = capsys.readouterr().out.splitlines()
    assert history[0].startswith("    2  ") and history[0].endswith("(12 files)  (--undo 2)")
    assert "list exported to" in history[1]
    assert main(["duplicates", *lib, "--history", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["actions"]
    assert [(a["action_id"], a["kind"], a["undoable"]) for a in listed] == [(2, "trash", True), (1, "export", False)]
    assert main(["duplicates", *lib, "--undo", "2", "--trash"]) == 2
    assert "--undo goes alone: not with --trash" in capsys.readouterr().err
    assert main(["duplicates", *lib, "--undo", "2"]) == 0
    assert capsys.readouterr().out.startswith("12 files put back\n")
    assert sorted(p.name for p in library.root.iterdir()) == before
    assert main(["duplicates", *lib, "--undo", "2"]) == 1
    assert "nothing to put back: action 2 was undone already, or moved nothing" in capsys.readouterr().out
    assert main(["duplicates", *lib, "--undo", "2", "--json"]) == 1
    [undone] = json.loads(capsys.readouterr().out)["actions"]
    assert undone == {"kind": "undo", "action_id": 2, "done": [], "problems": [], "to_index": [],
                      "stopped": None, "library_not_updated": None}
    assert main(["duplicates", *lib, "--trash", "--move", str(tmp_path)]) == 2
    assert "choose one of --trash, --move" in capsys.readouterr().err
    assert main(["duplicates", *lib, "--move", str(library.root / "dups"), "--yes"]) == 2
    assert "inside the photo folder" in capsys.readouterr().err
    assert main(["duplicates", *lib, "--move", str(library.root / "dups")]) == 2  # said before it would ask
    said = capsys.readouterr().err
    assert "inside the photo folder" in said and "--yes" not in said
    assert main(["duplicates", *lib, "--move", str(library.root), "--yes"]) == 2
    assert f"{library.root} is the photo folder: the moved copies" in capsys.readouterr().err  # not "inside" itself
    assert main(["duplicates", *lib, "--export", str(tmp_path / "typo" / "list.csv")]) == 2
    captured = capsys.readouterr()
    assert f"{tmp_path / 'typo'} is not a folder" in captured.err and not (tmp_path / "typo").exists()
    assert captured.out == "", "said before the groups are listed"
    assert main(["duplicates", *lib, "--export", str(tmp_path / "list.txt")]) == 2
    captured = capsys.readouterr()
    assert "export as csv or json, not txt" in captured.err and captured.out == ""
    assert main(["duplicates", *lib, "--export", str(tmp_path / "list.csv")]) == 0
    assert f"photos listed in {tmp_path / 'list.csv'}" in capsys.readouterr().out


def test_the_cli_keeps_the_photos_chosen_in_the_window(library, tmp_path, capsys):
    from vitgallery.cli import main

    group = group_of(library.duplicate_scan(), "p1.jpg")
    flip = next(m.path for m in group.members if m.path.name == "p1_flip.jpg")
    library.remember_keep(group, [flip])
    library.close()
    lib = ["--library", str(library.library_dir)]
    assert main(["duplicates", *lib, "--keep", "size", "--json"]) == 0
    [listed] = [g for g in json.loads(capsys.readouterr().out)["groups"] if g["key"] == group.key]
    assert listed["keep_reason"] == "your choice (made in the window)"
    assert [m["path"] for m in listed["members"] if m["keep"]] == [str(flip)]
    assert main(["duplicates", *lib]) == 0
    out = capsys.readouterr().out
    assert "keep: your choice (made in the window)" in out
    listing = out.split("keep: your choice (made in the window)\n")[1].splitlines()
    assert listing[0].startswith("  keep ") and listing[0].endswith(str(flip)), "the kept photo first"
    largest = max(m.size for m in group.members)
    assert all(" kB " in line if largest < 1e5 else " MB " in line for line in listing[:len(group.members)]), \
        "small files in kB, all of a group in one unit"
    assert main(["duplicates", *lib, "--trash", "--yes"]) == 0
    capsys.readouterr()
    assert flip.exists() and not (library.root / "p1.jpg").exists()


def test_the_cli_says_a_photo_deleted_since_the_index_holds_its_group_until_the_next(library, tmp_path, capsys):
    from vitgallery.cli import main

    library.duplicate_scan()
    library.close()
    lib = ["--library", str(library.library_dir)]
    (library.root / "p1_flip.jpg").unlink()
    assert main(["duplicates", *lib, "--move", str(tmp_path / "dups"), "--yes"]) == 0
    captured = capsys.readouterr()
    assert (f"note: 1 photo of these groups changed or vanished since the last index ({library.root / 'p1_flip.jpg'}): "
            f"an action leaves their groups alone until `vitgallery index {library.root}` brings the library up to "
            "date") in captured.err
    assert "of its group vanished since the scan (find duplicates again to review the group as it is)" in captured.out
    assert main(["index", str(library.root), "--library", str(library.library_dir), "--model", "tiny-test"]) == 0
    capsys.readouterr()
    assert main(["duplicates", *lib, "--move", str(tmp_path / "dups"), "--yes"]) == 0
    captured = capsys.readouterr()
    assert "note:" not in captured.err and "files moved" in captured.out and "not touched" not in captured.out
    assert (library.root / "p1.jpg").exists(), "the group's kept photo stays"


def test_a_new_bulk_action_is_one_entry(monkeypatch, capsys):
    import dataclasses

    from vitgallery.commands import build_parser

    copy = dataclasses.replace(BULK_ACTIONS["move"], name="copy", label="Copy into a folder…",
                               help="copy the photos not kept into FOLDER")
    monkeypatch.setitem(BULK_ACTIONS, "copy", copy)
    assert build_parser().parse_args(["duplicates", "--copy", "/backup"]).copy == "/backup"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["duplicates", "--help"])
    assert "--copy FOLDER" in capsys.readouterr().out
