"""Reviewing duplicates through the Library: decisions about pairs and groups, actions, undo, history."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.core.test_duplicates import names, write_near_duplicates
from vitgallery.core.duplicates import (
    BULK_ACTIONS,
    ActionError,
    DuplicateScan,
    GroupSelection,
    PairEvidence,
    fingerprint_pair,
)
from vitgallery.core.duplicates.trash import home_trash
from vitgallery.core.library import DB_NAME, Library
from vitgallery.core.models import load_embedder
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


def test_a_schema_5_library_gains_the_separated_pairs(tmp_path):
    path = tmp_path / DB_NAME
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute("DROP TABLE separated_pairs")
    db.execute("UPDATE meta SET value = '5' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    store = Store(path)
    assert store.get_meta("schema_version") == str(SCHEMA_VERSION) and store.separated_pairs() == set()
    store.save_separated_pairs([("a", "b")])
    assert store.separated_pairs() == {("a", "b")}
    store.close()


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
    assert "12 files moved to the trash (action 2; `vitgallery duplicates --undo 2` puts them back)" in out
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
    assert capsys.readouterr().out.startswith("12 files put back; `vitgallery index` adds them to the library again")
    assert sorted(p.name for p in library.root.iterdir()) == before
    assert main(["duplicates", *lib, "--undo", "2"]) == 1
    assert "nothing to put back: action 2 was undone already, or moved nothing" in capsys.readouterr().out
    assert main(["duplicates", *lib, "--undo", "2", "--json"]) == 1
    [undone] = json.loads(capsys.readouterr().out)["actions"]
    assert undone == {"kind": "undo", "action_id": 2, "done": [], "problems": []}
    assert main(["duplicates", *lib, "--trash", "--move", str(tmp_path)]) == 2
    assert "choose one of --trash, --move" in capsys.readouterr().err
    assert main(["duplicates", *lib, "--move", str(library.root / "dups"), "--yes"]) == 2
    assert "inside the photo folder" in capsys.readouterr().err


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
