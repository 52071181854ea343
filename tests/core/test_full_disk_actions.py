"""A full library disk during an action or its undo: the command says how far it got and exits 2, and
an action whose files all moved but whose library could not note them is undone without an index.

The full disk is a fake here (a Store write raising the StoreError a full disk raises); the real one,
on a small tmpfs, is in tests/reliability/test_disk_full.py."""

from __future__ import annotations

import json

import pytest

from tests.core.test_duplicates import write_near_duplicates
from vitgallery.cli import main
from vitgallery.core.duplicates.trash import home_trash
from vitgallery.core.library import Library
from vitgallery.core.models import load_embedder
from vitgallery.core.store import Store, StoreError

FULL = "the disk holding the library is full: free some space and run again (everything saved before is kept)"


@pytest.fixture
def library_dir(tmp_path):
    """A library of near-duplicates, indexed and closed: the commands open it themselves."""
    write_near_duplicates(tmp_path / "photos")
    library = Library.open(tmp_path / "photos", tmp_path / "library")
    library.index(load_embedder("tiny-test"), decode_workers=0)
    library.close()
    return tmp_path / "library"


def full_from_write(monkeypatch, method: str, nth: int) -> None:
    """Store.`method` fails as on a full disk from its `nth` call on."""
    calls = []
    write = getattr(Store, method)

    def fill_up(self, *args):
        calls.append(args)
        if len(calls) >= nth:
            raise StoreError(FULL)
        return write(self, *args)

    monkeypatch.setattr(Store, method, fill_up)


def trashed(library_dir, capsys) -> int:
    """The photos not kept moved to the trash by the CLI; the action's id."""
    assert main(["duplicates", "--library", str(library_dir), "--trash", "--yes", "--json"]) == 0
    [action] = json.loads(capsys.readouterr().out)["actions"]
    assert len(action["done"]) == 12
    return action["action_id"]


# An undo logs each file "restoring", moves it, then logs it "restored": the 1st write failing stops it
# before any file, the 3rd once one file is back.
@pytest.mark.parametrize(("nth_write", "put_back"), [(1, 0), (3, 1)], ids=["at-the-start", "part-way"])
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_an_undo_a_full_disk_stops_exits_2_as_an_action_does_and_says_how_far_it_got(
        library_dir, capsys, monkeypatch, nth_write, put_back, as_json):
    action_id = trashed(library_dir, capsys)
    undo = ["duplicates", "--library", str(library_dir), "--undo", str(action_id)]
    with monkeypatch.context() as full:
        full_from_write(full, "set_action_item_state", nth_write)
        assert main(undo + ["--json"] * as_json) == 2
    out = capsys.readouterr().out
    if as_json:
        [report] = json.loads(out)["actions"]
        assert report["stopped"] == FULL and len(report["done"]) == put_back
        assert len(report["problems"]) == 12 - put_back
        assert {p["reason"] for p in report["problems"]} == {"not touched: the undo stopped first"}
    else:
        lines = out.splitlines()
        assert lines[0] == (f"{put_back} file{'s' if put_back != 1 else ''} put back; {12 - put_back} left as they "
                            f"were; stopped before the end: {FULL}")
        assert len(lines) == 1 + 12 - put_back and lines[1].endswith(": not touched: the undo stopped first")
    assert len(list((home_trash() / "files").iterdir())) == 12 - put_back

    assert main(undo) == 0, "with room again, the same undo puts the rest back"
    assert capsys.readouterr().out.splitlines() == [f"{12 - put_back} files put back"]
    assert not any((home_trash() / "files").iterdir())


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_files_moved_that_a_full_disk_kept_the_library_from_noting_are_said_moved_and_undone_without_an_index(
        library_dir, capsys, monkeypatch, as_json):
    """The log of the moves was written, the library's rows were not moved with them (put_away_files):
    the report says the files moved and that undo puts them back, not that the action stopped; the undo
    finds the library holding them as they are, so nothing needs indexing."""
    photos = Library.open(library_dir=library_dir)
    photo_count, root = photos.status().photos, photos.root
    photos.close()
    act = ["duplicates", "--library", str(library_dir), "--trash", "--yes"]
    with monkeypatch.context() as full:
        full_from_write(full, "put_away_files", 1)
        assert main(act + ["--json"] * as_json) == 2
    out = capsys.readouterr().out
    if as_json:
        [report] = json.loads(out)["actions"]
        assert report["stopped"] is None and report["library_not_updated"] == FULL and len(report["done"]) == 12
        action_id = report["action_id"]
    else:
        [said] = [line for line in out.splitlines() if "moved to the trash" in line]
        assert "stopped" not in said
        assert said == (f"12 files moved to the trash; the library could not note what moved (its next index "
                        f"does): {FULL} (action 1; `vitgallery duplicates --undo 1 --library {library_dir}` puts "
                        "them back)")
        action_id = 1
    assert len(list((home_trash() / "files").iterdir())) == 12

    assert main(["duplicates", "--library", str(library_dir), "--undo", str(action_id)]) == 0
    assert capsys.readouterr().out.splitlines() == ["12 files put back"], "no index asked for"
    library = Library.open(root, library_dir)
    try:
        assert library.status().photos == photo_count
        assert library.index(load_embedder("tiny-test"), decode_workers=0).added == 0, "nothing needed indexing"
    finally:
        library.close()


def test_an_undo_whose_last_write_meets_a_full_disk_still_says_what_it_put_back(library_dir, capsys, monkeypatch):
    """Only the time of the undo could not be written: each file's state is logged, the report is not lost
    to an error."""
    action_id = trashed(library_dir, capsys)
    with monkeypatch.context() as full:
        full_from_write(full, "mark_undone", 1)
        assert main(["duplicates", "--library", str(library_dir), "--undo", str(action_id)]) == 0
    assert capsys.readouterr().out.splitlines() == ["12 files put back"]
    assert not any((home_trash() / "files").iterdir())
    assert main(["duplicates", "--library", str(library_dir), "--history"]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith("(12 files), 12 put back")
