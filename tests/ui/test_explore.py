"""The window's explore tools: why a result matched (in its preview), a box drawn on the query, and
results marked "more like this" / "not this". Tiny random model: its cosines rank nothing, so the
tests rest on what the keypoints verify and on what the marks must do whatever the ranking."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication, QWidget

from tests.photos import make_photo
from vitgallery.ui.drop import QuerySource
from vitgallery.ui.marks import Mark
from vitgallery.ui.results_model import Match
from vitgallery.ui.workers import QueryBox

SEARCH_TIMEOUT_MS = 30_000
EXPLAIN_TIMEOUT_MS = 30_000


def searched(qtbot, window, query: Path) -> None:
    with qtbot.waitSignal(window.results_shown, timeout=SEARCH_TIMEOUT_MS):
        window.set_query(QuerySource(label=query.name, path=query))


def drag(widget: QWidget, start: QPointF, end: QPointF) -> None:
    """A left-button drag (QTest's mouseMove carries no button)."""
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    for kind, at, button, buttons in (
        (QEvent.Type.MouseButtonPress, start, left, left),
        (QEvent.Type.MouseMove, (start + end) / 2, none, left),
        (QEvent.Type.MouseMove, end, none, left),
        (QEvent.Type.MouseButtonRelease, end, left, none),
    ):
        event = QMouseEvent(kind, at, widget.mapToGlobal(at), button, buttons, Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(widget, event)


@pytest.fixture
def collage(tmp_path: Path, photo_folder: Path) -> Path:
    """A photo of the library pasted into the right half of an unrelated one."""
    photo = make_photo(40, (640, 240))
    photo.paste(Image.open(photo_folder / "img_05.jpg"), (320, 0))
    path = tmp_path / "collage.jpg"
    photo.save(path, quality=95)
    return path


def test_why_it_matched_shows_heat_lines_legend_opacity_and_attention(qtbot, indexed_window, photo_folder, tmp_path):
    window = indexed_window
    copy = tmp_path / "copy.jpg"
    make_photo(3).resize((288, 216)).save(copy, quality=90)  # an edited copy of img_03, outside the library
    searched(qtbot, window, copy)
    row = window.results_model.row_of(photo_folder / "img_03.jpg")
    assert row is not None and window.results_model.tile_at(row).match is Match.SAME

    preview = window.search_page.open_preview(row)
    assert preview is not None and preview.explain_button.isVisible()
    qtbot.keyClick(preview, Qt.Key.Key_W)
    view = preview.explain_view
    assert preview.pages.currentWidget() is view
    qtbot.waitUntil(lambda: view.outcome is not None, timeout=EXPLAIN_TIMEOUT_MS)

    outcome = view.outcome
    assert outcome.request.result == photo_folder / "img_03.jpg"
    assert view.line_count() > 0  # verified: the matched keypoints are drawn
    assert "keypoints match" in view.status.text()
    # the points drawn are the ones the search counted (both found as an index and a search find them)
    assert outcome.inliers == window.results_model.tile_at(row).inliers
    # which result is explained, and what the search said of it beside the measure the heat shows
    assert view.status.text().startswith("img_03.jpg: in the search, the same photo: "), view.status.text()
    assert "(score " in view.status.text() and " · vector similarity " in view.status.text()
    assert "the same scene" not in view.status.text(), "the search's words say what the points alone cannot"
    low, high = outcome.similarity_range
    assert low < high and view.legend_high.text() == f"{high:.2f}"
    assert not outcome.query.similarity.isNull() and outcome.query.similarity.size() == outcome.query.photo.size()

    view.opacity_slider.setValue(20)
    assert view.opacity() == pytest.approx(0.2)
    assert view.attention_box.isEnabled()  # the tiny ViT has a CLS token
    view.attention_box.setChecked(True)
    assert view.showing_attention() and "attention" in view.legend_text.text()
    view.canvas.grab()  # paints the pair, layers and lines without error

    # Stepping to another result explains that one; W goes back to the photo.
    qtbot.keyClick(preview, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: view.outcome is not None and view.outcome.request.result == preview.current_path(),
                    timeout=EXPLAIN_TIMEOUT_MS)
    qtbot.keyClick(preview, Qt.Key.Key_W)
    assert preview.pages.currentIndex() == 0
    preview.close()


def test_a_result_that_is_not_the_same_photo_is_explained_without_lines(qtbot, indexed_window, photo_folder):
    window = indexed_window
    searched(qtbot, window, photo_folder / "img_00.jpg")
    row = next(r for r in range(window.results_model.rowCount()) if not window.results_model.tile_at(r).verified)
    preview = window.search_page.open_preview(row)
    preview.explain_button.click()
    qtbot.waitUntil(lambda: preview.explain_view.outcome is not None, timeout=EXPLAIN_TIMEOUT_MS)
    assert preview.explain_view.line_count() == 0
    assert "do not verify" in preview.explain_view.status.text()
    assert "looks alike" not in preview.explain_view.status.text(), "the grid may have faded it as unlike"
    preview.close()


def test_a_smooth_copy_verified_by_its_grey_levels_is_not_called_another_scene(qtbot, indexed_window, photo_folder):
    """The search's ✓ for a picture too smooth for keypoints (its shapes and shades align): Explain finds no
    keypoint lines, and says why without contradicting the ✓."""
    window = indexed_window
    searched(qtbot, window, photo_folder / "img_00.jpg")
    model = window.results_model
    tiles = model.tiles()
    unverified = next(n for n, tile in enumerate(tiles) if not tile.verified)
    tiles[unverified] = replace(tiles[unverified], match=Match.SAME, likeness=0.98)  # as the search gives it
    model.set_tiles(tiles)
    preview = window.search_page.open_preview(model.row_of(tiles[unverified].path))
    preview.explain_button.click()
    view = preview.explain_view
    qtbot.waitUntil(lambda: view.outcome is not None, timeout=EXPLAIN_TIMEOUT_MS)
    assert view.outcome.request.verified_without_keypoints and view.line_count() == 0
    assert "shapes and shades align with 98%" in view.status.text()
    assert "too few keypoints to verify this pair alone: the search's ✓ is the duplicates check's" in view.status.text()
    assert "not the same scene" not in view.status.text()
    preview.close()


def test_a_box_drawn_on_the_query_searches_that_part_and_clearing_it_the_whole(
    qtbot, indexed_window, photo_folder, collage
):
    window = indexed_window
    searched(qtbot, window, collage)
    panel = window.query_panel
    assert panel.box_hint.isVisible() and not panel.clear_box_button.isVisible()
    photo = panel.image.photo_rect()
    assert photo is not None

    # The right half of the collage is img_05: a box around it finds img_05, verified by keypoints.
    with qtbot.waitSignal(window.results_shown, timeout=SEARCH_TIMEOUT_MS):
        drag(panel.image, QPointF(photo.center().x() + 2, photo.top() + 1), photo.bottomRight() - QPointF(1, 1))
    box = panel.box()
    assert box is not None and box.left == pytest.approx(0.5, abs=0.02) and box.width == pytest.approx(0.5, abs=0.02)
    assert window.search_page.current.box == box
    verified = [t.path for t in window.results_model.tiles() if t.verified]
    assert verified == [photo_folder / "img_05.jpg"]
    assert "box" in window.search_page.status_text()
    assert panel.clear_box_button.isVisible() and not panel.box_hint.isVisible()

    with qtbot.waitSignal(window.results_shown, timeout=SEARCH_TIMEOUT_MS):
        panel.clear_box_button.click()
    assert panel.box() is None and window.search_page.current.box is None
    assert "box" not in window.search_page.status_text()


def test_a_click_or_a_small_drag_draws_no_box(qtbot, indexed_window, collage):
    window = indexed_window
    searched(qtbot, window, collage)
    panel = window.query_panel
    centre = panel.image.photo_rect().center()
    drag(panel.image, centre, centre + QPointF(2, 2))
    assert panel.box() is None and window.search_page.current.box is None


def test_query_box_shares_become_pixels_of_the_full_size_photo(tmp_path):
    path = tmp_path / "big.jpg"
    make_photo(1, (1600, 1200)).save(path)
    region = QueryBox(0.5, 0.25, 0.25, 0.5).region(path)
    assert (region.x, region.y, region.width, region.height) == (800, 300, 400, 600)


def tile_button(window, row: int, mark: Mark) -> QPoint:
    rect = window.results_view.visualRect(window.results_model.index(row))
    return window.search_page.delegate.button_rects(rect)[mark].center()


def test_marks_from_the_tile_buttons_and_keys_refine_the_results_and_clear_with_one_click(
    qtbot, indexed_window, photo_folder
):
    window = indexed_window
    searched(qtbot, window, photo_folder / "img_00.jpg")
    page, model, view = window.search_page, window.results_model, window.results_view
    first = [t.path for t in model.tiles()]
    liked, unliked = first[4], first[1]

    with qtbot.waitSignal(window.results_shown, timeout=SEARCH_TIMEOUT_MS):
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=tile_button(window, 4, Mark.LIKE))
    assert page.mark_of(liked) is Mark.LIKE
    # The query moved towards the liked photo: it now ranks first, its mark on its tile.
    assert model.tiles()[0].path == liked
    assert page.clear_marks_button.isVisible() and "+1" in page.clear_marks_button.text()

    row = model.row_of(unliked)
    view.setCurrentIndex(model.index(row))
    view.setFocus()
    with qtbot.waitSignal(window.results_shown, timeout=SEARCH_TIMEOUT_MS):
        qtbot.keyClick(view, Qt.Key.Key_Minus)
    assert page.mark_of(unliked) is Mark.UNLIKE
    assert unliked not in [t.path for t in model.tiles()]  # "not this" leaves the results
    assert "Refined by 1" in page.status_text()
    view.grab()  # tiles with marks and hover buttons paint

    # A second click on a tile's lit button takes its mark off.
    with qtbot.waitSignal(window.results_shown, timeout=SEARCH_TIMEOUT_MS):
        qtbot.mouseClick(
            view.viewport(), Qt.MouseButton.LeftButton, pos=tile_button(window, model.row_of(liked), Mark.LIKE)
        )
    assert page.mark_of(liked) is None

    # A "not this" photo has left the results: the marks button's list takes its mark off.
    menu = page.clear_marks_button.menu()
    menu.aboutToShow.emit()
    [take_off] = menu.actions()
    assert take_off.text() == f"Take off “not this”: {unliked.name}"
    with qtbot.waitSignal(window.results_shown, timeout=SEARCH_TIMEOUT_MS):
        take_off.trigger()
    assert page.mark_of(unliked) is None and unliked in [t.path for t in model.tiles()]

    with qtbot.waitSignal(window.results_shown, timeout=SEARCH_TIMEOUT_MS):
        qtbot.keyClick(view, Qt.Key.Key_Minus)
    with qtbot.waitSignal(window.results_shown, timeout=SEARCH_TIMEOUT_MS):
        page.clear_marks_button.click()
    assert not page.clear_marks_button.isVisible()
    assert [t.path for t in model.tiles()] == first


def test_a_refined_search_keeps_the_photo_the_user_is_on(qtbot, indexed_window, photo_folder):
    """Marking a result searched again and put the selection back on the best match: a keyboard user's
    next − then marked a true copy."""
    window = indexed_window
    searched(qtbot, window, photo_folder / "img_00.jpg")
    page, model, view = window.search_page, window.results_model, window.results_view
    assert model.rowCount() >= 4
    on = model.path_at(2)
    view.setCurrentIndex(model.index(2))
    with qtbot.waitSignal(window.results_shown, timeout=SEARCH_TIMEOUT_MS):
        page.mark_paths([model.path_at(model.rowCount() - 1)], Mark.LIKE)
    assert view.currentIndex().isValid() and model.path_at(view.currentIndex().row()) == on


def test_marking_without_a_query_searches_nothing(qtbot, indexed_window):
    page = indexed_window.search_page
    with qtbot.assertNotEmitted(indexed_window.results_shown, wait=200):
        page.toggle_mark(Path("anything.jpg"), Mark.LIKE)
    assert page.mark_of(Path("anything.jpg")) is None and page.current is None


def test_each_query_in_the_history_keeps_its_box_and_marks(qtbot, indexed_window, photo_folder, collage):
    window = indexed_window
    page, panel = window.search_page, window.query_panel
    searched(qtbot, window, collage)
    box = QueryBox(0.5, 0.0, 0.5, 1.0)
    with qtbot.waitSignal(window.results_shown, timeout=SEARCH_TIMEOUT_MS):
        panel.set_box(box)
    liked = window.results_model.path_at(0)
    with qtbot.waitSignal(window.results_shown, timeout=SEARCH_TIMEOUT_MS):
        page.mark_paths([liked], Mark.LIKE)

    searched(qtbot, window, photo_folder / "img_01.jpg")
    assert panel.box() is None and page.mark_of(liked) is None and not page.clear_marks_button.isVisible()

    page.back()
    assert panel.box() == box and panel.clear_box_button.isVisible()
    assert page.mark_of(liked) is Mark.LIKE and page.clear_marks_button.isVisible()


def test_the_results_menu_sets_the_marks_apart_from_the_windows_actions(qtbot, make_window):
    actions = make_window().search_page.view._tile_actions
    labels = [action.text if action is not None else None for action in actions]
    assert labels[labels.index("Not this (−)") + 1] is None, "a separator before Find similar photos"
