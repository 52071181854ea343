"""The job runner: the one route from the window to the core."""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from tests.photos import make_photo
from vitgallery.core.library import Library, LibraryError
from vitgallery.core.models import MODELS, Embedder, load_embedder
from vitgallery.core.scan import FoundFile, ScanResult
from vitgallery.ui import workers
from vitgallery.ui.workers import (
    JobRunner,
    ModelChoice,
    NoLibraryError,
    ProgressThrottle,
    Session,
    WorkerError,
    listing_chunks,
)


@pytest.fixture
def runner(qtbot):
    runner = JobRunner(Session())
    yield runner
    assert runner.shutdown(5.0)
    runner.session.replace_library(None)


@dataclass(frozen=True)
class Step:
    phase: str
    done: int
    total: int


def test_results_and_errors_arrive_on_the_gui_thread(qtbot, runner) -> None:
    gui = threading.current_thread()
    seen: list[tuple[str, object, threading.Thread]] = []

    def fails(progress, cancel):
        raise LibraryError("the library is empty: index a folder first")

    def breaks(progress, cancel):
        raise RuntimeError("a bug")

    runner.submit(lambda progress, cancel: 42, on_finished=lambda value: seen.append(("ok", value, threading.current_thread())))
    runner.submit(fails, on_failed=lambda error: seen.append(("expected", error, threading.current_thread())))
    runner.submit(breaks, on_failed=lambda error: seen.append(("bug", error, threading.current_thread())))
    qtbot.waitUntil(lambda: len(seen) == 3)
    assert all(thread is gui for _, _, thread in seen)
    by_kind = {kind: value for kind, value, _ in seen}
    assert by_kind["ok"] == 42
    assert by_kind["expected"] == WorkerError("the library is empty: index a folder first")
    assert by_kind["bug"].unexpected and "RuntimeError: a bug" in by_kind["bug"].message


def test_a_job_cancelled_before_it_starts_never_runs(qtbot, runner) -> None:
    release = threading.Event()
    ran: list[str] = []
    ended: list[str] = []
    runner.submit(lambda progress, cancel: release.wait(5), lane="one")
    # on_ended is connected before the job can run: a signal sent before a waitSignal connects is lost
    skipped = runner.submit(lambda progress, cancel: ran.append("skipped"), lane="one",
                            on_ended=lambda: ended.append("skipped"))
    skipped.cancel()
    release.set()
    qtbot.waitUntil(lambda: ended == ["skipped"], timeout=5000)
    assert ran == []


def test_progress_is_throttled_but_each_phase_and_the_end_come_through() -> None:
    sent: list[Step] = []
    throttle = ProgressThrottle(sent.append, interval_s=60)
    for done in range(100):
        throttle(Step("embedding", done, 100))
    throttle(Step("embedding", 100, 100))
    throttle(Step("learning", 0, 10))
    assert [(step.phase, step.done) for step in sent] == [("embedding", 0), ("embedding", 100), ("learning", 0)]


def test_library_jobs_wait_for_the_library_being_opened(qtbot, runner, photo_folder: Path, tmp_path: Path) -> None:
    library = Library.open(photo_folder, tmp_path / "library")
    library.index(load_embedder("tiny-test", device="cpu"), decode_workers=0)
    library.close()
    counts: list[int] = []
    failures: list[WorkerError] = []
    runner.open_library(photo_folder, tmp_path / "library")
    # Submitted right after, on another lane: it must see the library, not "no library".
    runner.submit_library(
        lambda library, progress, cancel: library.photo_count(),
        lane="search",
        on_finished=counts.append,
        on_failed=failures.append,
    )
    qtbot.waitUntil(lambda: bool(counts or failures), timeout=30_000)
    assert counts == [12] and not failures


def test_without_a_library_a_job_says_so(qtbot, runner) -> None:
    failures: list[WorkerError] = []
    runner.submit_library(lambda library, progress, cancel: None, on_failed=failures.append)
    qtbot.waitUntil(lambda: bool(failures))
    assert failures[0].message == str(NoLibraryError("open a photo folder first"))


def test_the_model_indexing_loaded_searches_its_library_without_loading_again(tmp_path: Path, monkeypatch) -> None:
    """Indexing loads OpenVINO int8 before its calibration; the library's own model is made from it
    for a search (its calibrated file compiled), and it stays the one indexing wants."""
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    spec = dataclasses.replace(MODELS["tiny-test"], weights_url="https://example.invalid/tiny.pth")
    loads: list[str] = []

    def load(name, **kwargs):  # the tiny model as if it were a real one, which "auto" runs with OpenVINO
        loads.append("index")
        return Embedder(spec, spec.build(), "random-seed-0", torch.device("cpu"), precision="auto", runtime="auto")

    monkeypatch.setattr(workers, "_load_embedder", load)
    monkeypatch.setattr(Library, "load_embedder", lambda library, **kwargs: loads.append("search"))
    root = tmp_path / "photos"
    root.mkdir()
    for seed in range(4):
        make_photo(seed).save(root / f"img_{seed}.jpg")
    session = Session()
    library = Library.open(root, tmp_path / "library")
    choice = ModelChoice("tiny-test", None, "cpu")
    library.index(session.index_embedder(library, choice), decode_workers=0)
    assert "|cal:" in library.model_signature

    searching = session.search_embedder(library, choice)
    assert searching.signature == library.model_signature
    make_photo(9).save(tmp_path / "outside.jpg")  # a photo from outside needs the model
    assert session.search(library, tmp_path / "outside.jpg", 3, choice, lambda: loads.append("said loading"))
    assert session.index_embedder(library, choice) is searching
    assert loads == ["index"], "one load: no second one for searching, none again to index"
    library.close()


def test_automatic_precision_chosen_again_loads_what_automatic_picks(tmp_path: Path, monkeypatch) -> None:
    """Automatic, then fp32, then automatic again in Settings: the model goes back to int8 at once (it
    stayed fp32 until the next start, which then embedded every photo again)."""
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    spec = dataclasses.replace(MODELS["tiny-test"], weights_url="https://example.invalid/tiny.pth")
    loads: list[str] = []

    def load(name, *, precision, **kwargs):  # the tiny model as a real one: "auto" runs it with OpenVINO
        loads.append(precision)
        return Embedder(spec, spec.build(), "random-seed-0", torch.device("cpu"), precision=precision, runtime="auto")

    monkeypatch.setattr(workers, "_load_embedder", load)
    root = tmp_path / "photos"
    root.mkdir()
    session = Session()
    library = Library.open(root, tmp_path / "library")
    precisions = [session.index_embedder(library, ModelChoice("tiny-test", None, "cpu", precision)).precision
                  for precision in ("auto", "fp32", "auto", "int8")]
    assert precisions == ["int8", "fp32", "int8", "int8"]
    assert loads == ["auto", "fp32", "auto"], "int8 asked outright is the model automatic loaded"
    library.close()


def test_a_listing_reaches_the_grid_in_chunks_that_double():
    """The grid sorts all it holds at each chunk: a large folder comes in a few of them, the first at once."""
    items = list(range(3500))
    chunks = list(listing_chunks(items, first=400, growth=2))
    assert [len(chunk) for chunk in chunks] == [400, 800, 1600, 700]
    assert [item for chunk in chunks for item in chunk] == items
    assert list(listing_chunks([], first=400)) == []


def test_a_listing_names_the_folders_that_hold_photos_for_the_window_to_watch(tmp_path: Path) -> None:
    """Root first, then every folder holding a photo in path order (worked out from the relative paths,
    not from a Path per photo): not a folder without photos, not a hidden one."""
    for rel in ("top.jpg", "a/one.jpg", "a/b/two.jpg", "a-b/three.jpg", "a b/four.jpg", ".hidden/five.jpg",
                "c/notes.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith(".jpg"):
            make_photo(len(rel)).save(tmp_path / rel)
        else:
            (tmp_path / rel).write_text("not a photo")
    listing = workers.list_folder(tmp_path)(lambda chunk: None, threading.Event())
    holding = sorted({path.parent for path, _ in listing.photos} - {tmp_path})
    assert listing.folders == [tmp_path, *holding]
    assert holding == [tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a b", tmp_path / "a-b"]


def test_a_listing_handed_to_an_index_run_is_given_once_and_waited_for() -> None:
    """The run waits for the window's listing; the first answer counts (the listing job's scan, not its
    cleanup's None after it); a cancelled run stops waiting."""
    handoff = workers.ListingHandoff()
    cancel = threading.Event()
    cancel.set()
    assert handoff.take(cancel) is None, "cancelled before any listing: the run does not wait"

    scan = ScanResult(files=[FoundFile("a.jpg", 1, 2)])
    threading.Timer(0.1, handoff.give, args=(scan,)).start()
    assert handoff.take(threading.Event()) is scan
    handoff.give(None)
    assert handoff.take(threading.Event()) is scan

    ended_without = workers.ListingHandoff()
    ended_without.give(None)
    assert ended_without.take(threading.Event()) is None


def test_a_listing_is_handed_over_before_the_grid_gets_its_first_chunk(tmp_path: Path) -> None:
    for number in range(3):
        make_photo(number).save(tmp_path / f"p{number}.jpg")
    handoff = workers.ListingHandoff()
    given_before_chunk = []
    listing = workers.list_folder(tmp_path, handoff)(
        lambda chunk: given_before_chunk.append(handoff.take(threading.Event()) is not None), threading.Event())
    assert given_before_chunk == [True]
    assert [f.path for f in handoff.take(threading.Event()).files] == ["p0.jpg", "p1.jpg", "p2.jpg"]
    assert [path for path, _ in listing.photos] == [tmp_path / f"p{n}.jpg" for n in range(3)]


def test_a_listing_is_made_with_the_collector_paused_and_leaves_it_on(tmp_path: Path) -> None:
    """A listing of 100,000 photos makes objects that live on in the grid; collector passes meanwhile
    walked them all, holding the interpreter from the window (issue 18 point 5)."""
    import gc

    make_photo(0).save(tmp_path / "p0.jpg")
    collector_on = []
    assert gc.isenabled()
    workers.list_folder(tmp_path)(lambda chunk: collector_on.append(gc.isenabled()), threading.Event())
    assert collector_on == [False] and gc.isenabled()



def test_a_preloaded_library_is_taken_only_by_its_own_folder(tmp_path: Path, photo_folder: Path, monkeypatch) -> None:
    session = Session()
    assert not session.preload_library(photo_folder, tmp_path / "lib") and not (tmp_path / "lib").exists(), \
        "no library yet: none is made before the window shows"
    library = Library.open(photo_folder, tmp_path / "lib")
    library.index(load_embedder("tiny-test"), decode_workers=0)
    library.close()
    assert session.preload_library(photo_folder, tmp_path / "lib"), "its index file loaded"
    opened: list[Path] = []
    open_library = Library.open.__func__
    monkeypatch.setattr(Library, "open", classmethod(lambda cls, *args, **kw: opened.append(args[0])
                                                     or open_library(cls, *args, **kw)))
    assert session.open_library(photo_folder, tmp_path / "lib").photo_count > 0
    assert opened == [], "the window's first open takes the preloaded library"

    assert session.preload_library(photo_folder, tmp_path / "lib")
    other = tmp_path / "other"
    other.mkdir()
    make_photo(1).save(other / "a.jpg")
    session.open_library(other, tmp_path / "other-lib")  # another folder opened instead
    assert opened[-1] == other
    with session.use_library() as library:
        assert library.root == other
    assert not session.preload_library(tmp_path / "moved", tmp_path / "lib"), "the library of another folder"
    session.replace_library(None)


def test_sorting_in_runs_is_sorting():
    items = [(n % 7, n) for n in range(1000)][::-1]
    assert workers.sorted_in_runs(items, lambda item: item[0], run=33) == sorted(items, key=lambda item: item[0]), \
        "stable: equal keys keep their order"
    assert workers.sorted_in_runs([], lambda item: item) == []


def test_weights_that_cannot_be_downloaded_are_said_in_the_window_s_words(tmp_path, monkeypatch):
    """The CLI is told to pass --weights FILE; the window, to choose the file (its button does)."""
    import urllib.error

    from vitgallery.core.models import ModelLoadError, download_weights

    def offline(url, path, progress=True):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(ModelLoadError) as failed:
        download_weights(MODELS["dinov2-s14"], progress=False)
    assert "pass it with --weights FILE" in str(failed.value) and "<urlopen error" not in str(failed.value)
    said = workers.describe_error(failed.value)
    assert said.model_failed and said.message.startswith(
        "The dinov2-s14 weights are not on this computer yet and cannot be downloaded now "
        "([Errno -2] Name or service not known).")
    assert "--weights" not in said.message and said.message.endswith("choose that file.")
