from __future__ import annotations

import argparse
import base64
import fcntl
import http.server
import io
import json
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.photos import make_photo, save_copies, smooth_picture
from vitgallery import commands
from vitgallery.cli import build_window_parser, main
from vitgallery.commands import build_parser
from vitgallery.core import search as search_module
from vitgallery.core.duplicates.features import grouped_unverified
from vitgallery.core.keypoints import NO_MATCH, VERIFIED_INLIERS
from vitgallery.core.library import INDEX_LOCK_NAME, Library
from vitgallery.core.models import ModelLoadError
from vitgallery.core.rerank import verified_score


@pytest.fixture
def indexed(photo_folder, tmp_path, capsys):
    lib = tmp_path / "lib"
    assert main(["index", str(photo_folder), "--library", str(lib), "--model", "tiny-test", "--workers", "0"]) == 0
    out = capsys.readouterr()
    assert "added 12" in out.out
    return photo_folder, lib


NEWLINE_NAME = "new\nline.jpg"
NOT_UTF8_NAME = os.fsdecode(b"M\xfcnchen.jpg")  # Latin-1: Python holds the odd byte as a surrogate escape


@pytest.fixture
def odd_names(photo_folder, tmp_path, capsys):
    """The photo folder with re-saved copies of two of its photos under names that neither a terminal nor
    JSON can show as they are (a newline, a byte that is not UTF-8), indexed."""
    make_photo(1).save(photo_folder / NEWLINE_NAME, quality=70)
    make_photo(2).save(photo_folder / NOT_UTF8_NAME, quality=70)
    lib = tmp_path / "lib"
    assert main(["index", str(photo_folder), "--library", str(lib), "--model", "tiny-test", "--workers", "0"]) == 0
    capsys.readouterr()
    return photo_folder, lib


def real_path(entry: dict, key: str = "path") -> str:
    """The path a --json entry names: its text is valid UTF-8; `key_bytes` carries a name that is not."""
    entry[key].encode("utf-8")  # strict: no lone surrogates
    if f"{key}_bytes" in entry:
        return os.fsdecode(base64.b64decode(entry[f"{key}_bytes"]))
    return entry[key]


def listed_bytes(document: dict, text: str) -> dict[str, str]:
    """The `path_bytes` of a name listed as a plain string, from the document's map, if it has one."""
    raw = document.get("path_bytes", {}).get(text)
    return {"path_bytes": raw} if raw else {}


def test_search_json_for_library_and_outside_images(indexed, tmp_path, capsys):
    root, lib = indexed
    outside = tmp_path / "q.jpg"
    make_photo(5).save(outside, quality=70)
    queries = [str(root / "img_01.jpg"), str(outside)]
    assert main(["search", *queries, "--library", str(lib), "--k", "4", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert list(result) == queries
    for hits in result.values():
        assert len(hits) == 4
        scores = [h["score"] for h in hits]
        assert scores == sorted(scores, reverse=True)
    copy = next(h for h in result[str(outside)] if h["path"] == str(root / "img_05.jpg"))
    assert copy["inliers"] >= VERIFIED_INLIERS and copy["verified"], "the re-saved copy is verified"
    for hit in result[str(outside)]:
        # why it ranked where it did: the matching points when they verify it (or its cosine, where that
        # is higher), else its cosine
        # or grouped by the duplicates check on fewer points or, a smooth picture's copy, its grey levels
        grouped = hit["agreement"] is not None or hit["likeness"] is not None
        assert isinstance(hit["inliers"], int) and hit["verified"] == (hit["inliers"] >= VERIFIED_INLIERS or grouped)
        expected = max(verified_score(hit["inliers"]), hit["cosine"]) if hit["verified"] else hit["cosine"]
        assert hit["score"] == pytest.approx(float(expected), abs=1e-5)
    assert main(["search", str(outside), "--library", str(lib), "--k", "4", "--json", "--no-verify"]) == 0
    plain = json.loads(capsys.readouterr().out)[str(outside)]
    assert all(h["inliers"] is None and h["score"] == h["cosine"] for h in plain)


def test_search_marks_a_smooth_copy_aligned_by_its_grey_levels(photo_folder, tmp_path, capsys, monkeypatch):
    """✓look: too few keypoints, but its shapes and shades align with the query's (as on the Duplicates page)."""
    original = smooth_picture(21)
    original.save(photo_folder / "smooth.jpg", quality=90)
    original.crop((96, 48, 576, 408)).save(photo_folder / "smooth_crop.jpg", quality=90)
    lib = tmp_path / "lib"
    assert main(["index", str(photo_folder), "--library", str(lib), "--model", "tiny-test", "--workers", "0"]) == 0
    # the tiny test model's vectors say little: judged as if they looked as alike as real copies do, and on
    # the grey levels alone (a crop's few keypoints may fit a map, and the aligned pixels then decide)
    monkeypatch.setattr(search_module, "may_be_grouped", lambda inliers, cosine: inliers < VERIFIED_INLIERS)
    monkeypatch.setattr(search_module, "grouped_unverified",
                        lambda query, candidate, found, cosine: grouped_unverified(query, candidate, NO_MATCH, 0.9))
    query = str(photo_folder / "smooth.jpg")
    capsys.readouterr()
    assert main(["search", query, "--library", str(lib), "--k", "3", "--json"]) == 0
    crop = next(h for h in json.loads(capsys.readouterr().out)[query] if h["path"].endswith("smooth_crop.jpg"))
    assert crop["verified"] and crop["inliers"] < VERIFIED_INLIERS and crop["likeness"] > 0.97
    assert main(["search", query, "--library", str(lib), "--k", "3"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.endswith("smooth_crop.jpg"))
    assert "✓look" in line


def test_index_again_uses_the_weights_file_the_library_was_indexed_with(indexed, tmp_path, monkeypatch):
    """Offline, `vitgallery index FOLDER` without --weights tried to download the official weights,
    where search, watch and the window load the file the library remembers."""
    from vitgallery.core.store import Store

    root, lib = indexed
    weights = tmp_path / "dinov2_vits14_pretrain.pth"
    weights.write_bytes(b"weights")
    store = Store(lib / "library.sqlite3")
    store.set_meta("weights_path", str(weights))
    store.close()
    asked = []
    load = commands.load_embedder

    def recorded(name, weights=None, **kw):
        asked.append(weights)
        if name != "tiny-test":
            raise ModelLoadError("no download in a test")
        return load(name, weights=None, **kw)

    monkeypatch.setattr(commands, "load_embedder", recorded)
    assert main(["index", str(root), "--library", str(lib), "--model", "tiny-test", "--workers", "0"]) == 0
    assert asked == [weights]
    assert main(["index", str(root), "--library", str(lib), "--model", "vit-b16", "--workers", "0"]) != 0
    assert asked[-1] is None, "another model does not take that file"


def test_a_terminal_that_cannot_write_a_check_mark_gets_it_escaped(indexed, tmp_path, monkeypatch):
    """In an ISO-8859-1 locale `vitgallery search` failed on its ✓ with a UnicodeEncodeError."""
    root, lib = indexed
    outside = tmp_path / "q.jpg"
    make_photo(5).save(outside, quality=70)  # a copy of img_05: a verified hit, marked ✓
    latin1 = io.TextIOWrapper(io.BytesIO(), encoding="latin-1")
    monkeypatch.setattr(sys, "stdout", latin1)
    assert main(["search", str(outside), "--library", str(lib), "--k", "3"]) == 0
    latin1.flush()
    assert b"\\u2713" in latin1.buffer.getvalue()
    with pytest.raises(SystemExit) as ended:  # `-v` before `--version` was taken for a folder's name
        main(["-v", "--version"])
    assert ended.value.code == 0


def test_search_leaves_out_a_photo_deleted_since_the_last_index_and_the_next_takes_its_place(indexed, tmp_path,
                                                                                             capsys):
    root, lib = indexed
    outside = tmp_path / "q.jpg"
    make_photo(5).save(outside, quality=70)
    (root / "img_05.jpg").unlink()  # the query's copy, its best hit
    assert main(["search", str(outside), "--library", str(lib), "--k", "4", "--json"]) == 0
    captured = capsys.readouterr()
    paths = [hit["path"] for hit in json.loads(captured.out)[str(outside)]]
    assert len(paths) == 4 and str(root / "img_05.jpg") not in paths, "--k 4 gives 4"
    assert captured.err.count("1 result(s) left out: deleted since the last index") == 1

    library = Library.open(library_dir=lib)
    ranked = [hit.path for hit in library.search(root / "img_03.jpg", k=12)]
    library.close()
    for path in ranked[:7]:  # most of the best hits deleted: more are asked for until two are there
        path.unlink(missing_ok=True)
    present = [path for path in ranked if path.exists()][:2]
    gone = sum(not path.exists() for path in ranked[:ranked.index(present[-1])])
    assert main(["search", str(root / "img_03.jpg"), "--library", str(lib), "--k", "2", "--json"]) == 0
    captured = capsys.readouterr()
    assert [hit["path"] for hit in json.loads(captured.out)[str(root / "img_03.jpg")]] == [str(p) for p in present]
    assert f"{gone} result(s) left out" in captured.err and gone >= 7, captured.err


def test_search_defaults_to_the_last_library_and_status(indexed, capsys):
    root, lib = indexed
    assert main(["search", str(root / "img_02.jpg"), "--k", "2"]) == 0
    assert "img_02.jpg" in capsys.readouterr().out
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "photos       : 12" in out and "tiny-test" in out and "index size   : 12" in out
    assert "on disk now  : as indexed" in out
    (root / "img_00.jpg").unlink()
    make_photo(40).save(root / "new.jpg")
    (root / "cut.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    assert main(["status"]) == 0
    assert "on disk now  : 2 photos new or changed and 1 photo gone since the last index" in capsys.readouterr().out
    assert main(["groups", "--min-size", "2", "--json"]) == 0
    err = capsys.readouterr().err
    assert f"note: 2 photos new or changed and 1 photo gone since the last index: `vitgallery index {root}`" in err
    assert main(["index", str(root), "--library", str(lib), "--model", "tiny-test", "--workers", "0"]) == 0
    capsys.readouterr()
    assert main(["status"]) == 0
    assert "on disk now  : as indexed" in capsys.readouterr().out, "a file skipped as it is now is not a change"
    root.rename(root.with_name("unplugged"))
    assert main(["groups", "--min-size", "2"]) == 0
    assert "note: the photo folder " in capsys.readouterr().err


def test_status_names_a_library_given_relatively_in_full(indexed, capsys, monkeypatch):
    root, lib = indexed
    monkeypatch.chdir(lib.parent)
    assert main(["status", "--library", lib.name]) == 0
    assert f"library      : {lib}\n" in capsys.readouterr().out


def test_status_and_duplicates_say_an_index_is_running(indexed, capsys):
    root, lib = indexed
    with open(lib / INDEX_LOCK_NAME, "a") as held:  # as an index run in another process holds it
        fcntl.flock(held, fcntl.LOCK_EX)
        assert main(["status", "--library", str(lib)]) == 0
        assert "photos       : 12  (being indexed now: more to come)" in capsys.readouterr().out
        assert main(["duplicates", "--library", str(lib)]) == 0
        assert "note: the library is being indexed now" in capsys.readouterr().err
    assert main(["status", "--library", str(lib)]) == 0
    assert "being indexed" not in capsys.readouterr().out


def test_an_interrupted_first_index_is_the_library_later_commands_use(photo_folder, tmp_path, capsys, monkeypatch):
    lib = tmp_path / "lib"
    embedding = commands.TerminalProgress.__call__

    def interrupt_after_a_batch(self, p):
        embedding(self, p)
        if p.phase == "embedding" and p.done >= 4:
            raise KeyboardInterrupt

    monkeypatch.setattr(commands.TerminalProgress, "__call__", interrupt_after_a_batch)
    assert main(["index", str(photo_folder), "--library", str(lib), "--model", "tiny-test", "--workers", "0",
                 "--batch-size", "4"]) == 130
    capsys.readouterr()
    assert main(["status"]) == 0, "what the interrupted run embedded is searchable without --library"
    assert str(lib) in capsys.readouterr().out


def test_ctrl_c_ends_the_processes_a_command_still_runs(photo_folder, tmp_path, monkeypatch):
    """Python's exit waits for every child process: a decode worker that a second Ctrl+C left waiting for work
    held `vitgallery index` forever (QA: 3 of 12 runs hung)."""
    started = []
    embedding = commands.TerminalProgress.__call__

    def interrupt_with_a_worker_left(self, p):
        embedding(self, p)
        if p.phase == "embedding" and not started:
            started.append(multiprocessing.get_context("forkserver").Process(target=time.sleep, args=(60,)))
            started[0].start()
            raise KeyboardInterrupt

    monkeypatch.setattr(commands.TerminalProgress, "__call__", interrupt_with_a_worker_left)
    assert main(["index", str(photo_folder), "--library", str(tmp_path / "lib"), "--model", "tiny-test",
                 "--workers", "0"]) == 130
    started[0].join(10)
    assert not started[0].is_alive()


def test_sigterm_stops_a_command_as_ctrl_c_does(photo_folder, tmp_path, capsys, monkeypatch):
    """QA: `kill` of an index ended it at once (a leaked-semaphore warning, no word of what was kept)."""
    embedding = commands.TerminalProgress.__call__

    def terminated_after_a_batch(self, p):
        embedding(self, p)
        if p.phase == "embedding" and p.done >= 4:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(commands.TerminalProgress, "__call__", terminated_after_a_batch)
    assert main(["index", str(photo_folder), "--library", str(tmp_path / "lib"), "--model", "tiny-test",
                 "--workers", "0", "--batch-size", "4"]) == 130
    assert "interrupted: what was embedded so far is saved" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL, "the handler goes with the command"


def test_a_folder_without_photos_says_so_and_does_not_become_the_library_used_last(indexed, tmp_path, capsys):
    _, lib = indexed
    empty = tmp_path / "notes"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a photo")
    assert main(["index", str(empty), "--library", str(tmp_path / "empty-lib"), "--model", "tiny-test"]) == 0
    said = capsys.readouterr()
    assert f"no photos in {empty}: vitgallery reads AVIF, BMP" in said.err
    assert main(["status"]) == 0 and str(lib) in capsys.readouterr().out


def test_organising_a_folder_the_last_library_does_not_hold_needs_its_library(indexed, tmp_path, capsys):
    """Without --library the library used last serves only folders in its photo folder: sorting others
    with it would embed them with another library's model, and its undo could not put them back."""
    root, _ = indexed
    elsewhere = tmp_path / "elsewhere"
    for name in ("Inbox", "Sorted/a", "Sorted/b"):
        (elsewhere / name).mkdir(parents=True)
    assert main(["sort", str(elsewhere / "Inbox"), "--examples", str(elsewhere / "Sorted")]) == 2
    err = capsys.readouterr().err
    assert "not in a library: the one used last is for" in err and str(root) in err
    assert main(["watch", str(tmp_path / "nowhere")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_a_folder_through_a_link_has_the_library_of_where_it_leads(photo_folder, tmp_path, capsys):
    tiny = ["--model", "tiny-test", "--workers", "0"]
    assert main(["index", str(photo_folder), *tiny]) == 0
    link = tmp_path / "pics_link"  # ~/Pictures linking to a drive, say
    link.symlink_to(photo_folder, target_is_directory=True)
    capsys.readouterr()
    assert main(["index", str(link), *tiny]) == 0
    out = capsys.readouterr()
    assert "added 0," in out.out and "unchanged 12" in out.out, "not a second library embedding all again"
    assert f"indexing {photo_folder} " in out.err
    assert main(["arrange", str(link / "trip")]) == 0
    assert sorted(capsys.readouterr().out.split()) == sorted(str(p) for p in (photo_folder / "trip").iterdir())


def test_watch_through_a_link_watches_the_library_of_where_it_leads(photo_folder, tmp_path, capsys, monkeypatch):
    assert main(["index", str(photo_folder), "--model", "tiny-test", "--workers", "0"]) == 0
    link = tmp_path / "pics_link"
    link.symlink_to(photo_folder, target_is_directory=True)
    watched = []

    class Watcher:  # the watch itself runs until Ctrl+C: what matters is which library it is given
        def __init__(self, library, *args, **kwargs):
            watched.append(library.root)
            raise KeyboardInterrupt

    monkeypatch.setattr(commands, "FolderWatcher", Watcher)
    assert main(["watch", str(link), "--workers", "0"]) == 130
    assert watched == [photo_folder] and "has no library yet" not in capsys.readouterr().err


def test_index_summary_lists_skip_reasons(photo_folder, tmp_path, capsys):
    (photo_folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    assert main(["index", str(photo_folder), "--library", str(tmp_path / "l"), "--model", "tiny-test",
                 "--workers", "0"]) == 0
    out = capsys.readouterr().out
    assert "skipped 1: " in out and "(broken.jpg)" in out, "the summary names the photo it skipped"
    assert "`vitgallery status`" not in out, "nothing more to list"
    assert "learned from 12 photos" in out  # every photo of a small library teaches the whitening
    for n in range(4):
        (photo_folder / f"cut{n}.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    assert main(["index", str(photo_folder), "--library", str(tmp_path / "l"), "--model", "tiny-test",
                 "--workers", "0"]) == 0
    out = capsys.readouterr().out
    assert "skipped 5: truncated file (" in out and ", …)" in out, "a few named, this run's skips only"
    assert "`vitgallery status` lists the photos skipped" in out


def test_user_errors_are_messages_not_tracebacks(tmp_path, capsys):
    assert main(["search", str(tmp_path / "x.jpg"), "--library", str(tmp_path / "none")]) == 2
    assert "no library" in capsys.readouterr().err
    assert main(["index", str(tmp_path / "missing"), "--library", str(tmp_path / "l"),
                 "--model", "tiny-test"]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert not (tmp_path / "l").exists(), "a typo never becomes a library"
    (tmp_path / "p").mkdir()
    make_photo(1).save(tmp_path / "p" / "one.jpg")
    assert main(["index", str(tmp_path / "p" / "one.jpg"), "--library", str(tmp_path / "l")]) == 2
    err = capsys.readouterr().err
    assert "one.jpg is a file, not a folder" in err and f"`vitgallery index {tmp_path / 'p'}`" in err
    assert not (tmp_path / "l").exists()
    with pytest.raises(SystemExit) as stopped:
        main(["index", str(tmp_path / "p"), "--weights", str(tmp_path / "nope.pth")])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "no weights file at" in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        main(["index", str(tmp_path / "p"), "--weights", str(tmp_path)])
    assert f"{tmp_path} is a folder: give the weights file in it" in capsys.readouterr().err
    (tmp_path / "damaged.pth").write_bytes(b"not a checkpoint")
    assert main(["index", str(tmp_path / "p"), "--weights", str(tmp_path / "damaged.pth")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err


def test_query_that_is_not_an_image(indexed, tmp_path, capsys):
    root, lib = indexed
    bogus = tmp_path / "bogus.jpg"
    bogus.write_text("not an image")
    good = root / "img_01.jpg"
    assert main(["search", str(bogus), str(good), "--library", str(lib), "--k", "2"]) == 2
    said = capsys.readouterr()
    assert said.err.startswith(f"error: {bogus}: ")
    assert said.out.splitlines()[0] == str(good), "a failed query has its error, not an empty heading"
    assert main(["search", str(bogus), str(good), "--library", str(lib), "--k", "2", "--json"]) == 2
    result = json.loads(capsys.readouterr().out)
    assert list(result) == [str(bogus), str(good)] and result[str(bogus)] == [] and len(result[str(good)]) == 2


def test_numbers_are_checked_before_anything_runs(indexed, capsys):
    root, lib = indexed
    for args, complaint in (
        (["search", str(root / "img_01.jpg"), "--library", str(lib), "--k", "-3"], "-3 is less than 1"),
        (["search", str(root / "img_01.jpg"), "--library", str(lib), "--k", "0"], "0 is less than 1"),
        (["duplicates", "--library", str(lib), "--threshold", "2"], "2 is not between 0 and 1"),
        (["duplicates", "--library", str(lib), "--threshold", "0"], "0 groups photos that do not match at all"),
        (["index", str(root), "--library", str(lib), "--batch-size", "0"], "0 is less than 1"),
        (["groups", "--library", str(lib), "--min-size", "0"], "0 is less than 2: a group has at least 2 photos"),
        (["groups", "--library", str(lib), "--min-size", "1"], "1 is less than 2: a group has at least 2 photos"),
    ):
        with pytest.raises(SystemExit) as stopped:
            main(args)
        assert stopped.value.code == 2
        assert complaint in capsys.readouterr().err


def test_a_url_query_is_downloaded_not_read_as_a_path(indexed, tmp_path, capsys):
    root, lib = indexed
    body = (root / "img_04.jpg").read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/photos/img_04.jpg"
        assert main(["search", url, "--library", str(lib), "--k", "1", "--json"]) == 0
        result = json.loads(capsys.readouterr().out)
        assert list(result) == [url] and result[url][0]["path"] == str(root / "img_04.jpg")
    finally:
        server.shutdown()
        server.server_close()
    assert main(["search", "http://127.0.0.1:9/gone.jpg", "--library", str(lib)]) == 2
    err = capsys.readouterr().err
    assert "could not download http://127.0.0.1:9/gone.jpg" in err  # the address as given, '//' and all


def test_a_non_image_query_is_refused_before_the_model_loads(indexed, tmp_path, capsys, monkeypatch):
    root, lib = indexed

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded for a query that is not an image")

    monkeypatch.setattr(Library, "load_embedder", no_model)
    notes = tmp_path / "notes.jpg"
    notes.write_text("shopping list")
    assert main(["search", str(notes), str(tmp_path / "missing.jpg"), "--library", str(lib)]) == 2
    err = capsys.readouterr().err
    assert f"error: {notes}:" in err and "no such file" in err
    assert f"error: {tmp_path / 'missing.jpg'}: no such file\n" in err, "the path once, then why"
    (tmp_path / "loop.jpg").symlink_to(tmp_path / "loop.jpg")
    assert main(["search", str(tmp_path / "loop.jpg"), "--library", str(lib)]) == 2
    assert "a link that leads to no file (a loop, or its target is gone)" in capsys.readouterr().err


def test_a_mistyped_command_is_an_error_not_a_window(monkeypatch, tmp_path, capsys):
    def no_window(*args, **kwargs):
        raise AssertionError("the window was started")

    monkeypatch.setattr("vitgallery.ui.app.run_app", no_window)
    for argv, complaint in (
        (["serach", "photo.jpg"], "did you mean 'search'"),
        (["statuss"], "did you mean 'status'"),
        (["--weights", str(Path(__file__)), "index", str(tmp_path)], "the command goes first: `vitgallery index …`"),
        ([str(tmp_path / "nowhere")], "not a command"),
        ([str(Path(__file__))], "neither a folder nor a photo"),
    ):
        with pytest.raises(SystemExit) as stopped:
            main(argv)
        assert stopped.value.code == 2
        assert complaint in capsys.readouterr().err


def test_a_mistyped_option_is_said_with_the_commands_own_usage(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["-v", "sort", str(tmp_path), "--examples", str(tmp_path), "--jsn"])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and "vitgallery sort: error: unrecognized arguments: --jsn" in err
    assert err.startswith("usage: vitgallery sort") and "--examples DIR" in err


def test_the_window_takes_a_weights_file_and_a_folder_or_a_photo(photo_folder, tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr("vitgallery.ui.platform_check.display_problem", lambda: None)
    monkeypatch.setattr("vitgallery.ui.app.run_app", lambda *args, **kwargs: started.append((args, kwargs)) or 0)
    weights = tmp_path / "weights.pth"
    weights.write_bytes(b"weights")
    assert main(["--weights", str(weights), str(photo_folder)]) == 0
    plain = {"choose_query": False, "verbose": False}
    assert started[-1] == ((photo_folder, None), {"weights": weights, "query": None, **plain})
    photo = photo_folder / "img_03.jpg"
    assert main([str(photo)]) == 0
    assert started[-1] == ((photo_folder, None), {"weights": None, "query": photo, **plain})
    with pytest.raises(SystemExit):
        main(["--weights", str(tmp_path / "none.pth"), str(photo_folder)])


def test_no_display_is_said_before_qt_starts(monkeypatch, capsys, photo_folder):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    assert main([str(photo_folder)]) == 1
    assert "no display" in capsys.readouterr().err


def test_a_display_where_no_server_answers_is_said_before_qt_aborts(monkeypatch):
    from vitgallery.ui import platform_check

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(platform_check, "missing_libraries", lambda binary: [])
    gone = platform_check.display_problem({"DISPLAY": ":987"})
    assert gone is not None and "no display answers at DISPLAY=:987" in gone
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:  # an X server's abstract socket
        server.bind("\0/tmp/.X11-unix/X987")
        server.listen(1)
        assert platform_check.display_problem({"DISPLAY": ":987.0"}) is None
    assert platform_check.display_problem({"DISPLAY": "a:b:c"}) is None, "a form it does not know: left to Qt"


def test_help_is_written_for_users(capsys):
    parser = build_parser()
    parsers = [parser, build_window_parser()]
    parsers += [choice for action in parser._actions if isinstance(action, argparse._SubParsersAction)
                for choice in action.choices.values()]
    for each in parsers:
        for action in each._actions:
            if not isinstance(action, argparse._SubParsersAction):  # each command has its own help
                assert action.help, f"{each.prog}: {action.option_strings or action.dest} has no help"
        text = each.format_help()
        assert "tiny-test" not in text and "vitgallery.cli" not in text, each.prog
    with pytest.raises(SystemExit):
        main(["--help"])
    said = capsys.readouterr().out
    usage = said.split("\n\n")[0]
    for option in ("--weights FILE", "--library DIR", "--find-similar", "FOLDER | PHOTO"):
        assert option in usage and f"\n  {option} " in said, f"{option} is in the usage line and described"


def test_an_action_that_moves_no_file_fails_and_json_says_what_each_did(odd_names, tmp_path, capsys,
                                                                         monkeypatch):
    root, lib = odd_names
    duplicates = ["duplicates", "--library", str(lib)]
    (tmp_path / "a file").write_text("")
    blocked = tmp_path / "a file" / "dups"  # no folder can be made under a file, even by root
    assert main([*duplicates, "--move", str(blocked), "--yes"]) == 1
    assert "0 files moved; 2 left as they were" in capsys.readouterr().out

    assert main([*duplicates, "--move", str(blocked), "--yes", "--json"]) == 1
    [failed] = json.loads(capsys.readouterr().out)["actions"]
    assert failed["kind"] == "move" and failed["done"] == []
    assert sorted(real_path(p) for p in failed["problems"]) == sorted(str(root / n) for n in (NEWLINE_NAME,
                                                                                               NOT_UTF8_NAME))
    assert all(p["reason"].startswith("not moved:") for p in failed["problems"])

    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda: "n")
    assert main([*duplicates, "--trash", "--json"]) == 1
    out = capsys.readouterr()
    assert json.loads(out.out)["actions"] == [], "stdout holds the document alone"
    assert "Move 2 photos from 2 groups to the trash?" in out.err and "nothing was moved" in out.err
    for key in (KeyboardInterrupt, EOFError):  # QA: Ctrl+C at the question said moved files could be undone

        def pressed(key=key):
            raise key

        monkeypatch.setattr("builtins.input", pressed)
        assert main([*duplicates, "--trash"]) == 1
        said = capsys.readouterr()
        assert said.out.rstrip().endswith("\nnothing was moved") and "--history" not in said.err
        assert "interrupted" not in said.err

    assert main([*duplicates, "--move", str(tmp_path / "dups"), "--yes", "--json"]) == 0
    out = capsys.readouterr()
    [moved] = json.loads(out.out)["actions"]
    assert f"(action {moved['action_id']};" in out.err and moved["problems"] == []
    moves = {real_path(m, "from"): real_path(m, "to") for m in moved["done"]}
    assert moves == {str(root / n): str(tmp_path / "dups" / n) for n in (NEWLINE_NAME, NOT_UTF8_NAME)}
    assert all(Path(to).is_file() for to in moves.values())


def test_sort_fails_when_no_photo_could_move(odd_names, tmp_path, capsys, monkeypatch):
    _, lib = odd_names
    examples, unsorted = tmp_path / "Sorted", tmp_path / "unsorted"
    for scene in range(3):
        save_copies(scene, examples / f"scene{scene}", copies=("a", "b"))
    [photo] = save_copies(1, unsorted, copies=("c",))
    apply = commands.apply_suggestions

    def vanished_first(library, suggestions, stop):
        photo.unlink()
        return apply(library, suggestions, stop)

    monkeypatch.setattr(commands, "apply_suggestions", vanished_first)
    assert main(["sort", str(unsorted), "--examples", str(examples), "--library", str(lib), "--apply"]) == 1
    assert "0 files moved; 1 left as it was" in capsys.readouterr().err


def test_json_carries_the_bytes_of_a_name_that_is_not_utf8(odd_names, tmp_path, capsys):
    root, lib = odd_names
    # The lists of arrange and groups stay lists of strings; "path_bytes" maps a shown name to its bytes.
    assert main(["arrange", str(root), "--library", str(lib), "--json"]) == 0
    arranged = json.loads(capsys.readouterr().out)
    order = [real_path({"path": text, **listed_bytes(arranged, text)}) for text in arranged["order"]]
    assert str(root / NOT_UTF8_NAME) in order and str(root / NEWLINE_NAME) in order

    assert main(["groups", "--library", str(lib), "--json"]) == 0
    grouping = json.loads(capsys.readouterr().out)
    named = [*(m for g in grouping["groups"] for m in g["members"]), *grouping["ungrouped"]]
    assert all(isinstance(text, str) for text in named)
    real = [real_path({"path": text, **listed_bytes(grouping, text)}) for text in named]
    assert sorted(real) == sorted(map(str, root.rglob("*.jpg")))
    assert all(g["representative"] == g["members"][0] for g in grouping["groups"])

    examples, unsorted = tmp_path / "Sorted", tmp_path / "unsorted"
    for scene in range(3):
        save_copies(scene, examples / f"scene{scene}", copies=("a", "b"))
    [photo] = save_copies(1, unsorted, copies=("c",))
    photo = photo.rename(unsorted / NOT_UTF8_NAME)
    assert main(["sort", str(unsorted), "--examples", str(examples), "--library", str(lib), "--json",
                 "--apply"]) == 0
    result = json.loads(capsys.readouterr().out)
    [suggestion] = result["suggestions"]
    assert real_path(suggestion) == str(photo) and real_path(suggestion, "folder") == str(examples / "scene1")
    [moved] = result["moved"]
    assert real_path(moved, "from") == str(photo)
    assert real_path(moved, "to") == str(examples / "scene1" / photo.name)


def test_text_output_keeps_each_name_on_its_line(odd_names, capsys):
    root, lib = odd_names
    for args in (["search", str(root / "img_01.jpg"), "--k", "14"], ["duplicates"], ["arrange", str(root)],
                 ["groups"]):
        assert main([*args, "--library", str(lib)]) == 0
        out = capsys.readouterr().out
        assert "new\\nline.jpg" in out and "\nline.jpg" not in out, args
        assert "M\\xfcnchen.jpg" in out, args


def test_arranging_a_folder_without_photos_says_so_instead_of_a_blank_line(indexed, capsys):
    root, lib = indexed
    (root / "empty").mkdir()
    assert main(["arrange", str(root / "empty"), "--library", str(lib)]) == 0
    said = capsys.readouterr()
    assert said.out == "" and said.err == f"no photos in {root / 'empty'}\n"


@pytest.mark.parametrize("buffering", [1, -1], ids=["each line written", "written at the end"])
def test_a_reader_that_stops_early_ends_the_command_quietly(indexed, monkeypatch, capsys, buffering):
    """`vitgallery arrange FOLDER | head -1`: head exits, the pipe closes under the command."""
    root, lib = indexed
    read_end, write_end = os.pipe()
    os.close(read_end)
    with open(write_end, "w", buffering=buffering) as closed_pipe:
        monkeypatch.setattr(sys, "stdout", closed_pipe)
        assert main(["arrange", str(root), "--library", str(lib)]) == 141
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(("command", "said"), [
    (["index", "PHOTOS"], "interrupted: what was embedded so far is saved"),
    (["sort", "PHOTOS", "--examples", "SORTED", "--apply"], "interrupted: any files it had moved are in `vitgallery duplicates --history`"),
    (["arrange", "PHOTOS"], "interrupted\n"),
])
def test_ctrl_c_says_what_the_interrupted_command_kept(command, said, monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(commands, f"cmd_{command[0]}", interrupted)
    assert commands.main(command) == 130
    assert capsys.readouterr().err.startswith(said)


def test_ctrl_c_before_any_photo_was_embedded_says_nothing_was(photo_folder, tmp_path, capsys, monkeypatch):
    def interrupted(self, *args, **kwargs):  # as while the int8 model is fitted, before the first batch
        raise KeyboardInterrupt

    monkeypatch.setattr(Library, "index", interrupted)
    assert main(["index", str(photo_folder), "--library", str(tmp_path / "lib"), "--model", "tiny-test"]) == 130
    assert capsys.readouterr().err.endswith("interrupted: nothing new was embedded yet; the library is as it was\n")


def test_status_says_a_renamed_photo_is_renamed_not_new_and_gone(indexed, capsys):
    root, lib = indexed
    (root / "img_03.jpg").rename(root / "trip" / "beach.jpg")
    (root / "img_04.jpg").unlink()
    assert main(["status", "--library", str(lib)]) == 0
    assert "on disk now  : 1 photo renamed or moved and 1 photo gone since the last index" in capsys.readouterr().out
    assert main(["groups", "--library", str(lib), "--min-size", "2"]) == 0
    assert (f"note: 1 photo renamed or moved and 1 photo gone since the last index: `vitgallery index {root}` brings "
            "the library up to date") in capsys.readouterr().err
    assert main(["index", str(root), "--library", str(lib), "--model", "tiny-test", "--workers", "0"]) == 0
    assert "added 0, updated 0, moved 1, removed 1" in capsys.readouterr().out, "as status said"


def test_index_and_status_list_a_pipe_and_a_link_to_a_missing_file_as_skipped(indexed, tmp_path, capsys):
    root, lib = indexed
    os.mkfifo(root / "pipe.jpg")
    (root / "trip" / "gone.jpg").symlink_to(tmp_path / "deleted.jpg")
    assert main(["status", "--library", str(lib)]) == 0  # before the index: said as what it will find
    out = capsys.readouterr().out
    assert "skipped      : 0" in out and "on disk now  : 2 entries that cannot be read since the last index" in out
    assert "  cannot read pipe.jpg: not a regular file (a named pipe)\n" in out and "  cannot read trip/gone.jpg: a link" in out
    assert main(["index", str(root), "--library", str(lib), "--model", "tiny-test", "--workers", "0"]) == 0
    out = capsys.readouterr().out
    assert "unchanged 12, skipped 2" in out
    assert "skipped 1: not a regular file (a named pipe) (pipe.jpg)" in out
    assert "skipped 1: a link to a missing file (its target was moved or deleted, or is on a drive not mounted) " \
           "(trip/gone.jpg)" in out
    assert main(["status", "--library", str(lib)]) == 0
    out = capsys.readouterr().out
    assert "skipped      : 2" in out and "on disk now  : as indexed" in out
    assert "  skipped pipe.jpg: not a regular file (a named pipe)\n" in out and "  skipped trip/gone.jpg: a link" in out


def test_a_folder_indexed_through_a_link_keeps_that_library_when_indexed_by_its_own_path(photo_folder, tmp_path,
                                                                                          capsys):
    tiny = ["--model", "tiny-test", "--workers", "0"]
    link = tmp_path / "pics_link"  # `vitgallery index ~/Pictures`, ~/Pictures linking to a drive
    link.symlink_to(photo_folder, target_is_directory=True)
    assert main(["index", str(link), *tiny]) == 0
    capsys.readouterr()
    assert main(["index", str(photo_folder), *tiny]) == 0
    out = capsys.readouterr()
    assert "added 0," in out.out and "unchanged 12" in out.out, "not a second library embedding all again"
    assert f"indexing {link} " in out.err
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert f"photo folder : {link}\n" in out and "photos       : 12" in out and "on disk now  : as indexed" in out
    libraries = Path(os.environ["XDG_DATA_HOME"]) / "vitgallery" / "libraries"
    assert len(list(libraries.iterdir())) == 1


def test_ctrl_c_before_a_command_starts_says_interrupted_not_a_traceback(monkeypatch, capsys):
    """QA: Ctrl+C in the first 0.3 s (importing, reading the options) printed a Python traceback."""
    def pressed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(commands, "build_parser", pressed)
    assert main(["status"]) == 130
    assert capsys.readouterr().err == "interrupted\n"
