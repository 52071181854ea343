"""What a user of the window relies on: honest results, one consistent state, the photo viewer's
table stakes (preview, zoom, history, sort, thumbnail size, a narrow window, About)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap

from tests.ui.conftest import PHOTO_COUNT
from vitgallery.core.duplicates import ActionReport
from vitgallery.core.library import last_library_dir
from vitgallery.core.search import SearchHit
from vitgallery.ui import settings as opt
from vitgallery.ui.preview import ZoomView
from vitgallery.ui.results_model import Match, SortOrder
from vitgallery.ui.widgets import IndexEstimate, IndexProgressPanel
from vitgallery.ui.workers import QueryBox, Session

SEARCH_TIMEOUT_MS = 30_000


def search(qtbot, window, path: Path) -> None:
    with qtbot.waitSignal(window.results_shown, timeout=SEARCH_TIMEOUT_MS):
        window.find_similar(path)


def shown_paths(model) -> list[Path]:
    return [tile.path for tile in model.tiles()]


# -- results that say what they are ------------------------------------------------------------


def fake_hits(paths: list[Path], scores: list[float], inliers: list[int | None]) -> list[SearchHit]:
    return [
        SearchHit(path, score, score, count, number)
        for number, (path, score, count) in enumerate(zip(paths, scores, inliers))
    ]


def test_copies_similar_and_unlike_photos_are_told_apart(qtbot, indexed_window, monkeypatch) -> None:
    window = indexed_window
    paths = [window.folder_model.path_at(row) for row in range(1, 5)]
    hits = fake_hits(paths, [0.97, 0.9, 0.45, 0.05], [154, 73, 0, None])
    monkeypatch.setattr(Session, "search", lambda self, *args, **kwargs: hits)
    search(qtbot, window, window.folder_model.path_at(0))
    matches = [tile.match for tile in window.results_model.tiles()]
    assert matches == [Match.SAME, Match.SAME, Match.SIMILAR, Match.WEAK]
    status = window.search_page.status_text()
    assert "2 copies of this photo" in status and "1 similar photo" in status and "1 less alike" in status



def test_results_that_are_all_copies_say_there_may_be_more(qtbot, indexed_window, monkeypatch) -> None:
    window = indexed_window
    window.query_panel.count_spin.setValue(3)
    paths = [window.folder_model.path_at(row) for row in range(1, 4)]
    monkeypatch.setattr(Session, "search", lambda self, *args, **kwargs: fake_hits(paths, [0.97, 0.96, 0.95],
                                                                                    [154, 120, 90]))
    search(qtbot, window, window.folder_model.path_at(0))
    assert "3 copies of this photo (✓), perhaps more: raise Results to see them" in window.search_page.status_text()
    with qtbot.waitSignal(window.results_shown, timeout=SEARCH_TIMEOUT_MS):
        window.query_panel.count_spin.setValue(4)  # the same three came back: they are all there is
    assert "perhaps more" not in window.search_page.status_text()


def test_a_long_query_name_is_shortened_in_the_middle_within_the_panel(qtbot, indexed_window, tmp_path) -> None:
    window = indexed_window
    long_name = "IMG_" + "holiday_in_the_mountains_with_the_whole_family_" * 3 + "0042.jpg"
    query = tmp_path / long_name
    shutil.copy(window.folder_model.path_at(0), query)
    search(qtbot, window, query)
    caption = window.query_panel.caption
    shown = caption.text()
    assert caption.full_text() == long_name and caption.toolTip() == long_name
    assert shown != long_name and shown.startswith("IMG_holiday") and shown.endswith("0042.jpg") and "…" in shown
    assert caption.fontMetrics().horizontalAdvance(shown) <= caption.contentsRect().width()

def test_a_photo_like_nothing_in_the_library_says_so(qtbot, indexed_window, monkeypatch) -> None:
    window = indexed_window
    paths = [window.folder_model.path_at(row) for row in range(1, 4)]
    monkeypatch.setattr(Session, "search", lambda self, *args, **kwargs: fake_hits(paths, [0.1, 0.05, 0.0], [0, 3, 0]))
    search(qtbot, window, window.folder_model.path_at(0))
    assert "Nothing in the library looks like this photo" in window.search_page.status_text()
    assert "similar photos" not in window.search_page.status_text()


def test_a_box_like_nothing_in_the_library_says_it_is_the_part(qtbot, indexed_window, monkeypatch) -> None:
    window = indexed_window
    paths = [window.folder_model.path_at(row) for row in range(1, 4)]
    monkeypatch.setattr(Session, "search", lambda self, *args, **kwargs: fake_hits(paths, [0.1, 0.05, 0.0], [0, 3, 0]))
    search(qtbot, window, window.folder_model.path_at(0))
    with qtbot.waitSignal(window.results_shown, timeout=SEARCH_TIMEOUT_MS):
        window.query_panel.set_box(QueryBox(0.1, 0.1, 0.3, 0.3))
    status = window.search_page.status_text()
    assert "Searched with the part of the photo in the box" in status
    assert "Nothing in the library looks like this part of the photo" in status


def test_a_threshold_that_hides_every_result_says_so(qtbot, indexed_window) -> None:
    window = indexed_window
    search(qtbot, window, window.folder_model.path_at(0))
    window.query_panel.threshold_slider.setValue(100)  # no score reaches 1: every one is hidden
    page = window.search_page
    assert window.results_model.rowCount() == 0 and page.stack.currentWidget() is page.empty_label
    # the results under 0 stay hidden at the lowest minimum too: not counted among those it brings back
    related = sum(tile.score is None or tile.score >= 0 for tile in page.current.tiles)
    assert 0 < related < window.results_model.total_count()
    assert f"The {related} results related to it are below the minimum similarity 1.00" in page.empty_label.text()
    window.query_panel.threshold_slider.setValue(0)
    assert page.stack.currentWidget() is page.view


def test_a_threshold_that_hides_every_faded_result_does_not_speak_of_them(qtbot, indexed_window, monkeypatch) -> None:
    window = indexed_window
    paths = [window.folder_model.path_at(row) for row in range(1, 4)]
    monkeypatch.setattr(Session, "search", lambda self, *args, **kwargs: fake_hits(paths, [0.1, 0.05, 0.0], [0, 3, 0]))
    search(qtbot, window, window.folder_model.path_at(0))
    window.query_panel.threshold_slider.setValue(50)
    status = window.search_page.status_text()
    assert "Nothing in the library looks like this photo" in status and "shown faded" not in status


def test_results_under_the_lowest_minimum_are_called_unrelated(qtbot, indexed_window, monkeypatch) -> None:
    """The slider's lowest, 0.00, still hides scores under 0 (unrelated photos): the page must not ask
    the user to lower it further."""
    window = indexed_window
    paths = [window.folder_model.path_at(row) for row in range(1, 5)]
    hits = fake_hits(paths, [0.9, 0.2, -0.01, -0.3], [80, 0, None, None])
    monkeypatch.setattr(Session, "search", lambda self, *args, **kwargs: hits)
    window.query_panel.threshold_slider.setValue(0)
    search(qtbot, window, window.folder_model.path_at(0))
    assert shown_paths(window.results_model) == paths[:2]
    status = window.search_page.status_text()
    assert "2 unrelated (score under 0) not shown" in status and "minimum similarity" not in status

    monkeypatch.setattr(Session, "search", lambda self, *args, **kwargs: hits[2:])
    search(qtbot, window, window.folder_model.path_at(1))
    page = window.search_page
    assert page.stack.currentWidget() is page.empty_label
    assert "All 2 results scored under 0" in page.empty_label.text() and "Lower it" not in page.empty_label.text()

    # QA: "All 4 results are below the minimum similarity", where lowering it brings back 2
    monkeypatch.setattr(Session, "search", lambda self, *args, **kwargs: hits)
    window.query_panel.threshold_slider.setValue(95)
    search(qtbot, window, window.folder_model.path_at(0))
    assert page.stack.currentWidget() is page.empty_label
    assert page.empty_label.text().startswith("The 2 results related to it are below the minimum similarity 0.95")


def test_copies_the_minimum_similarity_hides_are_counted_as_copies(qtbot, indexed_window, monkeypatch) -> None:
    window = indexed_window
    paths = [window.folder_model.path_at(row) for row in range(1, 6)]
    hits = fake_hits(paths, [0.97, 0.9, 0.85, 0.2, -0.3], [150, 80, 40, None, None])
    monkeypatch.setattr(Session, "search", lambda self, *args, **kwargs: hits)
    window.query_panel.threshold_slider.setValue(95)
    search(qtbot, window, window.folder_model.path_at(0))
    assert window.search_page.status_text().startswith(
        "1 copy of this photo (✓) and 2 more hidden by the minimum similarity · 1 below the minimum similarity · "
        "1 unrelated (score under 0) not shown")
    window.query_panel.threshold_slider.setValue(99)
    assert window.search_page.status_text().startswith("3 copies of this photo (✓), hidden by the minimum similarity")


def test_a_failed_search_names_the_file_and_leaves_the_history(qtbot, indexed_window, tmp_path) -> None:
    window = indexed_window
    page = window.search_page
    good = window.folder_model.path_at(0)
    search(qtbot, window, good)
    results = shown_paths(window.results_model)
    not_a_photo = tmp_path / "readme.txt"
    not_a_photo.write_text("no pixels here")
    with qtbot.waitSignal(page.failed, timeout=SEARCH_TIMEOUT_MS):
        window.find_similar(not_a_photo)
    assert page.status_text().startswith("The search for readme.txt failed: ")
    assert not window.message_bar.isVisible(), "said once, beside its query, not again over the window"
    assert window.query_panel.caption.text() == "readme.txt: not searched"
    assert not window.query_panel.image.has_image(), "the photo searched before is not shown as this query"
    assert window.results_model.rowCount() == 0 and page.stack.currentWidget() is page.empty_label

    page.back()  # the failed query is gone from the history: back shows the one before, forward goes nowhere
    assert page.current is not None and page.current.source.path == good
    assert shown_paths(window.results_model) == results and "failed" not in page.status_text()
    assert window.query_panel.caption.text() == good.name
    assert not page.forward_action.isEnabled()
    search(qtbot, window, good)
    assert "failed" not in window.message_bar.text(), "a search that works again clears the old error"

    with qtbot.waitSignal(page.failed, timeout=SEARCH_TIMEOUT_MS):
        window.find_similar(not_a_photo)
    window.clear_query()  # "Back to the folder": the error goes with its query
    assert window.tabs.currentIndex() == 0 and "failed" not in page.status_text()


def test_a_query_photo_the_app_moves_is_searched_where_it_went(qtbot, indexed_window, photo_folder) -> None:
    window = indexed_window
    query = photo_folder / "img_00.jpg"
    search(qtbot, window, query)
    moved = photo_folder / "grouped" / query.name
    moved.parent.mkdir()
    shutil.move(query, moved)
    with qtbot.waitSignal(window.results_shown, timeout=SEARCH_TIMEOUT_MS):
        window.files_changed(ActionReport("move", 1, done=[(query, moved)]))
    assert window.search_page.current.source.path == moved
    assert "failed" not in window.message_bar.text() and window.results_model.rowCount() > 0


def test_a_photo_opened_before_its_folder_has_any_photo_indexed_is_searched_after(qtbot, make_window, slow_folder,
                                                                                 monkeypatch) -> None:
    """`vitgallery PHOTO` on a new folder: the search ran before the first photo was indexed and said
    "the search failed: the library is empty", an error left on screen above the results that followed."""
    from vitgallery.core.errors import EmptyLibrary

    search_library = Session.search
    asked = []

    def nothing_indexed_yet(self, *args, **kwargs):
        asked.append(1)
        if len(asked) == 1:
            raise EmptyLibrary()
        return search_library(self, *args, **kwargs)

    monkeypatch.setattr(Session, "search", nothing_indexed_yet)
    window = make_window()
    window.show()
    window.open_folder(slow_folder)
    failed = []
    window.search_page.failed.connect(failed.append)
    with qtbot.waitSignal(window.indexing_finished, timeout=120_000):
        window.find_similar(slow_folder / "p001.jpg")
        qtbot.waitUntil(lambda: "searched once the folder is indexed" in window.query_panel.caption.text(),
                        timeout=SEARCH_TIMEOUT_MS)
    qtbot.waitUntil(lambda: window.results_model.rowCount() > 0, timeout=SEARCH_TIMEOUT_MS)
    assert failed == [] and "failed" not in window.message_bar.text()


def test_a_library_location_holds_a_library_for_each_folder(qtbot, make_window, settings, photo_folder,
                                                            tmp_path) -> None:
    """The Settings' location was taken as one library: a second folder was refused, and every job then
    said "open a photo folder first"."""
    from tests.photos import make_photo

    settings.set(opt.LIBRARY_DIR, str(tmp_path / "libraries"))
    other = tmp_path / "other"
    other.mkdir()
    for number in range(3):
        make_photo(40 + number).save(other / f"o{number}.jpg")
    window = make_window(library_per_folder=True)
    window.show()
    for folder, count in ((photo_folder, PHOTO_COUNT), (other, 3)):
        with qtbot.waitSignal(window.indexing_finished, timeout=60_000) as finished:
            window.open_folder(folder)
        assert finished.args[0] is not None and finished.args[0].added == count
    assert len(list((tmp_path / "libraries").iterdir())) == 2

    (tmp_path / "a file").write_text("")
    settings.set(opt.LIBRARY_DIR, str(tmp_path / "a file"))
    window.open_folder(photo_folder)
    qtbot.waitUntil(lambda: "could not be opened" in window.message_bar.text(), timeout=30_000)
    assert "open a photo folder first" not in window.message_bar.text()


def test_results_from_a_partial_index_say_so_and_refresh_when_it_ends(qtbot, make_window, slow_folder) -> None:
    window = make_window()
    window.show()
    window.open_folder(slow_folder)
    wait_for_photos(qtbot, window, 12)
    searches: list[int] = []
    window.results_shown.connect(searches.append)
    with qtbot.waitSignal(window.results_shown, timeout=SEARCH_TIMEOUT_MS):
        window.find_similar(slow_folder / "p001.jpg")
    status = window.search_page.status_text()
    assert "indexed so far" in status and "refresh when indexing ends" in status
    partial_count = window.results_model.total_count()
    with qtbot.waitSignal(window.indexing_finished, timeout=120_000):
        pass
    qtbot.waitUntil(lambda: len(searches) >= 2, timeout=SEARCH_TIMEOUT_MS)
    assert "indexed so far" not in window.search_page.status_text()
    assert window.results_model.total_count() >= partial_count


# -- one state for every page ------------------------------------------------------------------


def test_results_refreshed_in_the_background_leave_the_user_on_their_page(qtbot, indexed_window) -> None:
    window = indexed_window
    search(qtbot, window, window.folder_model.path_at(0))
    window.tabs.setCurrentWidget(window.duplicates_view)
    with qtbot.waitSignal(window.results_shown, timeout=SEARCH_TIMEOUT_MS):
        window.search_page.library_changed()  # as the folder watcher's batch does
    assert window.tabs.currentWidget() is window.duplicates_view


def test_a_move_and_its_undo_update_every_page_at_once(qtbot, indexed_window, photo_folder: Path, tmp_path) -> None:
    window = indexed_window
    search(qtbot, window, photo_folder / "img_00.jpg")
    moved = window.results_model.path_at(0)
    elsewhere = tmp_path / "sorted-out" / moved.name
    elsewhere.parent.mkdir()
    shutil.move(moved, elsewhere)
    window.files_changed(ActionReport("move", 1, done=[(moved, elsewhere)]))
    assert moved not in shown_paths(window.folder_model), "the folder grid drops it at once"
    assert moved not in shown_paths(window.results_model), "so do the results"
    assert window.tabs.tabText(0) == f"Folder ({PHOTO_COUNT - 1})"
    # The library follows: the folder watcher's batch, or an index run while it is not watching yet.
    qtbot.waitUntil(lambda: window.count_label.text() == f"{PHOTO_COUNT - 1} photos indexed", timeout=60_000)

    shutil.move(elsewhere, moved)
    window.files_changed(ActionReport("undo", 1, done=[(elsewhere, moved)]))
    assert moved in shown_paths(window.folder_model)
    assert window.tabs.tabText(0) == f"Folder ({PHOTO_COUNT})"
    qtbot.waitUntil(lambda: window.count_label.text() == f"{PHOTO_COUNT} photos indexed", timeout=60_000)
    qtbot.waitUntil(lambda: moved in shown_paths(window.results_model), timeout=SEARCH_TIMEOUT_MS)


def test_photos_gone_all_at_once_are_forgotten_only_when_the_user_says_so(qtbot, card_window) -> None:
    window, folder = card_window
    for number in range(25):  # as an unplugged drive or a replaced folder would look
        (folder / f"p{number:02d}.jpg").unlink()
    with qtbot.waitSignal(window.indexing_finished, timeout=60_000) as finished:
        window.start_indexing()
    assert finished.args[0].missing_kept == 25 and finished.args[0].removed == 0
    assert window.count_label.text() == "30 photos indexed"
    assert "25 photos are gone" in window.message_bar.text() and window.message_bar.has_action()

    with qtbot.waitSignal(window.indexing_finished, timeout=60_000) as finished:
        window.message_bar.action_button.click()  # "Forget them"
    assert finished.args[0].removed == 25
    assert window.count_label.text() == "5 photos indexed"


def test_the_grid_follows_files_changed_outside_the_app(qtbot, indexed_window, photo_folder: Path) -> None:
    window = indexed_window
    gone = photo_folder / "img_05.jpg"
    gone.unlink()
    qtbot.waitUntil(lambda: gone not in shown_paths(window.folder_model), timeout=20_000)
    qtbot.waitUntil(lambda: window.count_label.text() == f"{PHOTO_COUNT - 1} photos indexed", timeout=60_000)


def test_a_folder_that_goes_and_comes_back_says_so_and_fills_the_grid_again(qtbot, indexed_window, photo_folder,
                                                                             tmp_path) -> None:
    window = indexed_window
    away = tmp_path / "renamed-away"
    photo_folder.rename(away)  # as a rename, a delete or an unmounted drive look
    qtbot.waitUntil(lambda: window.folder_model.rowCount() == 0, timeout=20_000)
    qtbot.waitUntil(lambda: "is missing or empty" in window.message_bar.text(), timeout=20_000)
    assert window.count_label.text() == f"{PHOTO_COUNT} photos indexed", "nothing left the library"

    away.rename(photo_folder)
    qtbot.waitUntil(lambda: window.folder_model.rowCount() == PHOTO_COUNT, timeout=30_000)
    qtbot.waitUntil(lambda: not window.is_indexing(), timeout=60_000)
    assert "is missing" not in window.message_bar.text()
    assert window.count_label.text() == f"{PHOTO_COUNT} photos indexed"
    gone = photo_folder / "img_05.jpg"  # and the folder is watched again
    gone.unlink()
    qtbot.waitUntil(lambda: gone not in shown_paths(window.folder_model), timeout=20_000)


def test_a_folder_without_photos_says_so_in_its_grid(qtbot, make_window, tmp_path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no photo here")
    window = make_window()
    window.show()
    with qtbot.waitSignal(window.folder_listed, timeout=30_000):
        window.open_folder(empty)
    assert window.folder_view.empty_text().startswith("No photos in this folder")
    text = window.folder_view.empty_text()
    assert "JPG" in text
    said = window.folder_view.viewport().grab().toImage()
    window.folder_view.set_empty_text("")
    assert window.folder_view.viewport().grab().toImage() != said, "the text is painted in the grid"


def test_index_now_lists_the_folder_again_for_the_grid(qtbot, indexed_window, photo_folder) -> None:
    window = indexed_window
    window.folder_model.clear()  # as a grid left empty while the folder was away
    with qtbot.waitSignal(window.indexing_finished, timeout=60_000):
        window.index_action.trigger()
    qtbot.waitUntil(lambda: window.folder_model.rowCount() == PHOTO_COUNT, timeout=20_000)


def test_a_photo_added_while_indexing_runs_is_indexed_without_restarting_the_run(
    qtbot, make_window, slow_folder: Path
) -> None:
    from tests.photos import make_photo

    window = make_window()
    window.show()
    summaries: list = []
    window.indexing_finished.connect(summaries.append)
    window.open_folder(slow_folder)
    wait_for_photos(qtbot, window, 8)
    make_photo(99, (120, 90)).save(slow_folder / "arrived.jpg")
    # Indexed by the run in progress, or once it ends (by the library watch, or one more run).
    qtbot.waitUntil(lambda: window.count_label.text() == "41 photos indexed", timeout=120_000)
    assert summaries and not summaries[0].cancelled, "the run in progress was not restarted"
    assert slow_folder / "arrived.jpg" in shown_paths(window.folder_model)


def test_the_window_and_the_cli_share_the_last_library(qtbot, indexed_window, tmp_path: Path) -> None:
    assert last_library_dir() == tmp_path / "library"


def test_a_folder_that_does_not_exist_is_said_and_never_becomes_a_library(
    qtbot, make_window, tmp_path: Path
) -> None:
    window = make_window()
    window.show()
    window.open_folder(tmp_path / "typo")
    assert window.message_bar.text() == (f"{tmp_path / 'typo'} is not there (moved, or a drive not mounted?): "
                                         "no library was made for it.")
    assert window.folder is None and not (tmp_path / "library").exists()
    photo = tmp_path / "photo.jpg"  # a recent folder that is now a file
    photo.write_bytes(b"")
    window.open_folder(photo)
    assert window.message_bar.text() == f"{photo} is a file, not a folder: no library was made for it."


def test_another_folder_opened_says_nothing_of_the_one_before(qtbot, indexed_window, tmp_path: Path) -> None:
    window = indexed_window
    window.statusBar().showMessage("Indexed in 3 s: 12 new")
    other = tmp_path / "other"
    other.mkdir()
    window.open_folder(other)
    assert window.count_label.text() == "" and window.statusBar().currentMessage() == "", \
        "the count and the summary were the other folder's"
    # this window's library is fixed to the first folder: the other's cannot open, and says so
    qtbot.waitUntil(window.message_bar.isVisible, timeout=30_000)
    assert window.count_label.text() == "", "the first folder's count did not come back"


# -- progress ------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_one_bar_over_embedding_and_learning_with_an_eta_that_stops_while_paused() -> None:
    clock = Clock()
    estimate = IndexEstimate(photos_before=0, clock=clock)
    estimate.update("embedding", 0, 100)
    clock.now = 10.0
    estimate.update("embedding", 50, 100)
    # a first index teaches from the decode that embeds: the teaching views ride along with each photo
    assert estimate.fraction() == pytest.approx(0.5)
    eta = estimate.eta_s()
    estimate.pause()
    clock.now = 100.0
    assert estimate.eta_s() == pytest.approx(eta), "paused: the ETA does not move"
    estimate.resume()
    clock.now = 110.0
    estimate.update("embedding", 100, 100)
    assert estimate.fraction() == pytest.approx(1.0)
    # A learning top-up (a library indexed before teaching rode along) says its size only when it
    # starts: its work joins the bar, which goes on from the share done instead of restarting at 0.
    estimate.update("learning", 0, 100)
    at_learning = estimate.fraction()
    assert 0.0 < at_learning < 1.0
    clock.now = 150.0
    estimate.update("learning", 50, 100)
    assert at_learning < estimate.fraction() < 1.0


def test_fitting_the_fast_model_cannot_pause_but_cancels(qtbot) -> None:
    panel = IndexProgressPanel()
    qtbot.addWidget(panel)
    panel.start("Starting…", photos_before=0)
    panel.show_step("Fitting the fast model…", pausable=False)
    assert not panel.pause_button.isEnabled() and panel.pause_button.toolTip()
    panel.update_progress("embedding", 1, 10, "/photos/a.jpg")
    assert panel.pause_button.isEnabled(), "embedding pauses again"
    panel.show_step("Fitting the fast model…", pausable=False)
    with qtbot.waitSignal(panel.cancel_requested):
        panel.cancel_button.click()
    assert panel.label.text() == "Cancelling…"
    assert not panel.pause_button.isEnabled() and not panel.cancel_button.isEnabled()


def test_photos_indexed_counts_up_during_the_run(qtbot, make_window, slow_folder: Path) -> None:
    window = make_window()
    window.show()
    counts: list[str] = []
    window.index_progress.connect(lambda progress: counts.append(window.count_label.text()))
    window.open_folder(slow_folder)
    wait_for_photos(qtbot, window, 16)
    numbers = sorted({int(text.split()[0].replace(",", "")) for text in counts if text})
    assert len(numbers) >= 3 and numbers[-1] >= 12
    window.cancel_indexing()


# -- the table stakes of a photo viewer ---------------------------------------------------------


def test_esc_leaves_the_results_and_back_brings_them_back(qtbot, indexed_window, photo_folder: Path) -> None:
    window = indexed_window
    search(qtbot, window, photo_folder / "img_00.jpg")
    first = shown_paths(window.results_model)
    search(qtbot, window, photo_folder / "img_07.jpg")
    second = shown_paths(window.results_model)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    qtbot.keyClick(window.results_view, Qt.Key.Key_Escape)
    assert window.tabs.currentIndex() == 0 and window.results_model.rowCount() == 0
    window.back_action.trigger()
    assert shown_paths(window.results_model) == second
    assert window.tabs.currentWidget() is window.search_page, "Back shows the results it brings back"
    window.back_action.trigger()
    assert shown_paths(window.results_model) == first
    assert window.query_panel.caption.text() == "img_00.jpg"
    window.forward_action.trigger()
    assert shown_paths(window.results_model) == second
    window.forward_action.trigger()  # to where Esc left the results: the folder
    assert window.tabs.currentIndex() == 0 and window.results_model.rowCount() == 0


def test_space_previews_with_zoom_one_to_one_and_what_the_file_is(qtbot, indexed_window) -> None:
    window = indexed_window
    view = window.folder_view
    view.setFocus()
    view.setCurrentIndex(window.folder_model.index(0))
    qtbot.keyClick(view, Qt.Key.Key_Space)
    preview = window._preview
    assert preview is not None and preview.isVisible()
    qtbot.waitUntil(preview.has_image, timeout=10_000)
    details = preview.status.text()
    assert "320 × 240" in details and "kB" in details and "modified" in details
    qtbot.keyClick(preview, Qt.Key.Key_1)
    assert preview.photo_view.zoom == pytest.approx(1.0) and preview.zoom_label.text() == "100 %"
    qtbot.keyClick(preview, Qt.Key.Key_Plus)
    assert preview.photo_view.zoom == pytest.approx(1.25)
    qtbot.keyClick(preview, Qt.Key.Key_0)
    assert preview.photo_view.fitted and preview.zoom_label.text().endswith(" % (fitted)")
    qtbot.keyClick(preview, Qt.Key.Key_Right)
    assert preview.current_path() == window.folder_model.path_at(1)
    preview.close()


def test_a_photo_shown_smaller_than_its_decode_is_drawn_averaged_not_as_moire(qtbot) -> None:
    stripes = np.zeros((1200, 1600), np.uint8)
    stripes[:, ::2] = 255  # one-pixel stripes: sampled at a fitted scale they show as bands of 0 to 255
    image = QImage(stripes.data, 1600, 1200, 1600, QImage.Format.Format_Grayscale8)
    view = ZoomView()
    qtbot.addWidget(view)
    view.resize(330, 260)
    view.show()
    view.set_photo(QPixmap.fromImage(image), 1600)

    def middle_row() -> np.ndarray:
        shown = view.viewport().grab().toImage()
        return np.array([shown.pixelColor(x, shown.height() // 2).value() for x in range(40, shown.width() - 40)])

    fitted = middle_row()
    assert view.zoom < 0.25 and abs(fitted.mean() - 127) < 5
    assert fitted.std() < 25, "averaged to grey (drawn shrunk by the view: std 74, bands from 0 to 255)"
    view.actual_size()
    assert middle_row().std() > 100, "1:1 shows the file's own stripes"


def test_results_sort_by_name_date_and_match(qtbot, indexed_window, photo_folder: Path) -> None:
    window = indexed_window
    search(qtbot, window, photo_folder / "img_00.jpg")
    ranked = shown_paths(window.results_model)
    combo = window.search_page.sort_combo
    combo.setCurrentIndex(combo.findData(SortOrder.NAME))
    assert [path.name for path in shown_paths(window.results_model)] == sorted(path.name for path in ranked)
    combo.setCurrentIndex(combo.findData(SortOrder.DATE))
    dates = [tile.date for tile in window.results_model.tiles()]
    assert dates == sorted(dates, reverse=True)
    combo.setCurrentIndex(combo.findData(SortOrder.RANK))
    assert shown_paths(window.results_model) == ranked
    assert window.settings.get(opt.RESULTS_SORT) == "rank"


def test_the_thumbnail_slider_resizes_every_grid(qtbot, indexed_window) -> None:
    window = indexed_window
    window.thumbnail_slider.setValue(224)
    assert window.folder_delegate.thumbnail_size == 224 == window.search_page.delegate.thumbnail_size
    assert window.settings.get(opt.THUMBNAIL_SIZE) == 224
    qtbot.waitUntil(lambda: window.thumbnails.size == 256, timeout=2_000)  # decoded at the next step up


def test_the_window_works_800_pixels_wide(qtbot, indexed_window) -> None:
    window = indexed_window
    assert window.minimumSizeHint().width() <= 800
    window.resize(800, 600)
    qtbot.waitUntil(lambda: window.width() == 800)
    assert window.tabs.width() > window.query_panel.width()


def test_about_names_the_version_the_library_and_the_log(qtbot, indexed_window, tmp_path: Path) -> None:
    text = indexed_window.about_text()
    assert "vitgallery 0." in text and str(tmp_path / "library") in text and "vitgallery.log" in text


def test_the_title_names_the_folder_once_and_the_grid_has_the_focus(qtbot, indexed_window, photo_folder) -> None:
    window = indexed_window
    assert window.windowTitle() == str(photo_folder)  # Qt adds the application's name
    assert not window.query_panel.count_spin.hasFocus()


# -- helpers shared with test_main_window's slow folder ---------------------------------------------


def wait_for_photos(qtbot, window, count: int) -> None:
    progress: list = []
    window.index_progress.connect(progress.append)
    qtbot.waitUntil(
        lambda: any(getattr(p, "phase", "") == "embedding" and p.done >= count for p in progress), timeout=60_000
    )


@pytest.fixture
def slow_folder(tmp_path: Path, monkeypatch, settings) -> Path:
    from tests.ui.test_main_window import make_photo, slow_embedder

    folder = tmp_path / "many"
    folder.mkdir()
    for number in range(40):
        make_photo(number, (120, 90)).save(folder / f"p{number:03d}.jpg")
    settings.set(opt.BATCH_SIZE, 4)
    monkeypatch.setattr("vitgallery.core.models.load_embedder", lambda *args, **kwargs: slow_embedder(0.1))
    return folder
