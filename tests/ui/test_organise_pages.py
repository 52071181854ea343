"""Organising in the window (issue 17): the folder grid by likeness, the Groups and Sort pages, and the
folder watched while the window is open. Offscreen, with the tiny test model."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from tests.photos import make_photo, save_copies
from vitgallery.core.organise.groups import Grouping, PhotoGroup
from vitgallery.core.organise.sort import SortPlan, SortSuggestion
from vitgallery.core.words import count_text
from vitgallery.ui import settings as opt
from vitgallery.ui.groups_page import fitted_title, group_title
from vitgallery.ui.results_model import SortOrder
from vitgallery.ui.widgets import confirmation_box

SCENES = 4


@pytest.fixture
def scenes_folder(tmp_path) -> Path:
    """SCENES scenes x 3 copies, named so that no copies sit together by name."""
    root = tmp_path / "scenes"
    for scene in range(SCENES):
        for path in save_copies(scene, root):
            path.rename(root / f"{path.stem[-1]}{scene}_{path.stem}.jpg")  # a0_s0_a, b0_s0_b... by copy first
    return root


@pytest.fixture
def scenes_window(qtbot, make_window, scenes_folder):
    window = make_window()
    window.show()
    with qtbot.waitSignal(window.indexing_finished, timeout=60_000) as finished:
        window.open_folder(scenes_folder)
    assert finished.args[0] is not None and finished.args[0].added == 3 * SCENES
    return window


def scene_of(path: Path) -> str:
    return path.stem.split("_")[1]


# -- arrange ---------------------------------------------------------------------------------------


def test_the_folder_grid_sorts_by_likeness(qtbot, scenes_window):
    window = scenes_window
    by_name = [tile.path for tile in window.folder_model.tiles()]
    assert scene_of(by_name[0]) != scene_of(by_name[1])  # by name the copies are far apart
    combo = window.folder_sort_combo
    with qtbot.waitSignal(window.folder_arranger.arranged, timeout=20_000):
        combo.setCurrentIndex(combo.findData(SortOrder.LIKENESS))
    order = [tile.path for tile in window.folder_model.tiles()]
    assert sorted(order) == sorted(by_name)
    assert copies_together(order), order
    assert window.settings.get(opt.FOLDER_SORT) == "likeness"


def copies_together(order: list[Path]) -> bool:
    for scene in range(SCENES):
        places = [i for i, path in enumerate(order) if scene_of(path) == f"s{scene}"]
        if max(places) - min(places) != 2:
            return False
    return True


def test_a_window_sorted_by_likeness_arranges_the_folder_once_it_is_indexed(
    qtbot, make_window, settings, scenes_folder
):
    settings.set(opt.FOLDER_SORT, SortOrder.LIKENESS.value)
    window = make_window()
    window.show()
    with qtbot.waitSignal(window.indexing_finished, timeout=60_000):
        window.open_folder(scenes_folder)
    qtbot.waitUntil(lambda: copies_together([tile.path for tile in window.folder_model.tiles()]), timeout=20_000)
    assert not window.message_bar.isVisible(), window.message_bar.text()


# -- groups ----------------------------------------------------------------------------------------


def test_groups_page_finds_names_queries_moves_and_undoes(qtbot, scenes_window, tmp_path):
    window = scenes_window
    page = window.groups_page
    window.tabs.setCurrentWidget(page)
    with qtbot.waitSignal(page.grouped, timeout=20_000) as grouped:
        page.find_button.click()
    assert grouped.args[0] == SCENES
    groups = page.groups
    assert all(len(g.members) == 3 and len({scene_of(p) for p in g.members}) == 1 for g in groups)
    assert page.strip_list.count() == SCENES and "3 photos" in page.strip_list.item(0).text()
    page.strip_list.setCurrentRow(1)
    assert [t.path for t in page.members_model.tiles()] == list(groups[1].members)

    with qtbot.waitSignal(page.named, timeout=10_000):
        page.name_edit.setText("Beach")
        page.name_button.click()
    assert page.strip_list.item(1).text().startswith("Beach · 3 photos")
    with qtbot.waitSignal(page.grouped, timeout=20_000):  # found again: the name is the library's
        page.find()
    assert [g.name for g in page.groups].count("Beach") == 1

    with qtbot.waitSignal(window.results_shown, timeout=20_000):
        page.query_button.click()
    assert window.tabs.currentWidget() is window.search_page

    window.tabs.setCurrentWidget(page)
    page.strip_list.setCurrentRow(0)
    moving = page.current_group()
    target = window.folder / "grouped"
    with qtbot.waitSignal(page.action_finished, timeout=10_000) as moved:
        page.move_current(target)
    assert moved.args[0].action_id is not None
    assert all((target / p.name).exists() and not p.exists() for p in moving.members)
    qtbot.waitUntil(lambda: window.folder_model.row_of(target / moving.members[0].name) is not None, timeout=10_000)
    qtbot.waitUntil(lambda: " of at least " in page.status_label.text(), timeout=20_000)  # the groups found again
    assert page.status_label.text().startswith(f"3 files moved into {target}. "), "what the move did is still said"
    assert page.current_group().fingerprints == moving.fingerprints, "the moved group, found again, stays selected"
    history = window.duplicates_view.history_combo  # the move is in the one history every page shares
    qtbot.waitUntil(lambda: history.count() == 1 and "grouped" in history.itemText(0), timeout=10_000)
    assert window.duplicates_view.undo_button.isEnabled()
    assert page.undo_button.isEnabled()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    page.undo_button.setFocus()
    with qtbot.waitSignal(page.action_finished, timeout=10_000):
        qtbot.keyClick(page.undo_button, Qt.Key.Key_Space)
    assert all(p.exists() for p in moving.members)
    assert page.strip_list.hasFocus(), "Undo went grey while it worked: the keys stay in the page"
    qtbot.waitUntil(lambda: window.folder_model.row_of(moving.members[0]) is not None, timeout=10_000)
    qtbot.waitUntil(lambda: not window.duplicates_view.undo_button.isEnabled(), timeout=10_000)  # undone there too


def test_a_group_move_undone_from_the_done_list_leaves_nothing_to_undo_on_the_groups_page(qtbot, scenes_window):
    window = scenes_window
    page = window.groups_page
    with qtbot.waitSignal(page.grouped, timeout=20_000):
        page.find()
    page.strip_list.setCurrentRow(0)
    moving = page.current_group()
    with qtbot.waitSignal(page.action_finished, timeout=10_000):
        page.move_current(window.folder / "grouped")
    history = window.duplicates_view.history_combo
    qtbot.waitUntil(lambda: history.count() == 1 and window.duplicates_view.undo_button.isEnabled(), timeout=10_000)
    assert page.undo_button.isEnabled()
    with qtbot.waitSignal(window.duplicates_view.action_finished, timeout=10_000):
        window.duplicates_view.undo_button.click()
    assert all(p.exists() for p in moving.members)
    qtbot.waitUntil(lambda: not page.undo_button.isEnabled(), timeout=10_000)


def test_the_size_control_finds_groups_again(qtbot, scenes_window):
    page = scenes_window.groups_page
    with qtbot.waitSignal(page.grouped, timeout=20_000):
        page.find()
    with qtbot.waitSignal(page.grouped, timeout=20_000) as grouped:
        page.size_spin.setValue(4)
    assert grouped.args[0] == 0 and page.strip_list.count() == 0
    assert "at least 4" in page.status_label.text() and "not among them" not in page.status_label.text()


def test_groups_found_again_without_the_group_shown_say_so(qtbot, scenes_window):
    page = scenes_window.groups_page
    with qtbot.waitSignal(page.grouped, timeout=20_000):
        page.find()
    page.strip_list.setCurrentRow(1)
    shown, others = page.groups[1], [g for i, g in enumerate(page.groups) if i != 1]
    job = object()
    page._job = job
    page._on_grouped(job, Grouping(others, list(shown.members)), False)  # as a larger smallest size may find them
    assert page.current_group() is None and page.members_model.rowCount() == 0
    assert page.status_label.text().endswith("The group shown before is not among them: choose one above.")


def test_groups_found_while_indexing_say_they_are_of_the_photos_indexed_so_far(qtbot, scenes_window):
    page = scenes_window.groups_page
    page.set_indexing(True)
    with qtbot.waitSignal(page.grouped, timeout=20_000):
        page.find()
    assert "Of the photos indexed so far: they are found again when indexing is done." in page.status_label.text()
    page.set_indexing(False)
    with qtbot.waitSignal(page.grouped, timeout=20_000):
        page.find()
    assert "so far" not in page.status_label.text()


# -- sort ------------------------------------------------------------------------------------------


@pytest.fixture
def sort_window(qtbot, make_window, tmp_path):
    """A library of the scenes' third copies, and Sorted/scene0..2 with the two other copies each."""
    root = tmp_path / "library-photos"
    for scene in range(SCENES):
        save_copies(scene, root, copies="c")
    for scene in range(3):
        save_copies(scene, root / "Sorted" / f"scene{scene}", copies="ab")
    window = make_window()
    window.show()
    with qtbot.waitSignal(window.indexing_finished, timeout=60_000):
        window.open_folder(root)
    window.sort_page.confirm = lambda question: True  # "Move all with a folder" asks first
    return window, root


def test_sort_page_trains_suggests_and_moves_one_then_all_then_undoes(qtbot, sort_window):
    window, root = sort_window
    page = window.sort_page
    window.tabs.setCurrentWidget(page)
    assert page.unsorted_edit.text() == "", "the photos to sort are the user's to name, not the whole library"
    page.set_folders(root / "Sorted", root)
    phases = []
    page.progress_bar.valueChanged.connect(
        lambda value: phases.append((page.progress_bar.format(), page.status_label.text())))
    with qtbot.waitSignal(page.suggested, timeout=30_000) as suggested:
        page.suggest_button.click()
    assert suggested.args[0] == SCENES and page.table.rowCount() == SCENES
    assert ("Training on the examples: %v of %m", "Training on the examples…") in phases, \
        "the status line and the bar name the same step"
    likeliest = {s.path.name: s.likeliest.name for s in page.suggestions}
    assert all(likeliest[f"s{scene}_c.jpg"] == f"scene{scene}" for scene in range(3))
    assert "held out" in page.status_label.text()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    page.table.setFocus()
    page.table.setCurrentCell(0, 0)
    qtbot.waitUntil(page.table.hasFocus)
    qtbot.keyClick(page.table, Qt.Key.Key_Tab)
    assert not page.table.hasFocus() and page.table.currentColumn() == 0, "Tab leaves the table for the buttons"

    # Accept one: its folder chosen in its row, the row selected, moved.
    first = root / "s0_c.jpg"
    page.change_folder(first, root / "Sorted" / "scene0")
    page.table.selectRow(next(i for i, s in enumerate(page.suggestions) if s.path == first))
    page.accept_selected_button.setFocus()
    with qtbot.waitSignal(page.action_finished, timeout=10_000):
        qtbot.keyClick(page.accept_selected_button, Qt.Key.Key_Space)
    assert (root / "Sorted" / "scene0" / "s0_c.jpg").exists() and not first.exists()
    assert page.table.rowCount() == SCENES - 1
    assert page.table.hasFocus(), "the button went grey while it moved the photo: the keys stay in the page"

    # Accept all: every row with a folder; one changed to another folder, one left where it is.
    page.change_folder(root / "s1_c.jpg", root / "Sorted" / "scene2")
    page.change_folder(root / "s3_c.jpg", None)
    chosen = {s.path: s.folder for s in page.suggestions if s.folder is not None}
    asked = []
    page.confirm = lambda question: asked.append(question) is None
    with qtbot.waitSignal(page.action_finished, timeout=10_000):
        page.accept_all_button.click()
    assert asked == [f"Move {count_text(len(chosen), 'photo')} from {root} (and the folders in it) into "
                     f"{count_text(len(set(chosen.values())), 'folder')} of {root / 'Sorted'}? "
                     "Photos marked \"Leave it\" stay where they are; Undo puts the moved ones back."]
    assert (root / "Sorted" / "scene2" / "s1_c.jpg").exists() and (root / "s3_c.jpg").exists()
    assert all((folder / path.name).exists() for path, folder in chosen.items())
    assert [s.path.name for s in page.suggestions] == ["s3_c.jpg"]

    with qtbot.waitSignal(page.action_finished, timeout=10_000) as undone:
        page.undo_button.click()
    assert undone.args[0].kind == "undo" and (root / "s1_c.jpg").exists()
    assert {s.path.name for s in page.suggestions} == {"s3_c.jpg", *(p.name for p in chosen)}


def test_photos_sorted_in_from_outside_the_library_go_back_there_on_undo(qtbot, sort_window, tmp_path):
    window, root = sort_window
    page = window.sort_page
    downloads = tmp_path / "Downloads"
    save_copies(1, downloads, copies="c")
    (downloads / "broken.jpg").write_bytes(b"\xff\xd8 not a photo")
    page.set_folders(root / "Sorted", downloads)
    with qtbot.waitSignal(page.suggested, timeout=30_000):
        page.suggest_button.click()
    assert "1 photo could not be read: broken.jpg (" in page.status_label.text(), "the file is named, not only counted"
    with qtbot.waitSignal(page.action_finished, timeout=10_000) as moved:
        page.accept_all_button.click()
    assert moved.args[0].done and [p.name for p in downloads.iterdir()] == ["broken.jpg"]
    with qtbot.waitSignal(page.action_finished, timeout=10_000) as undone:
        page.undo_button.click()
    assert not undone.args[0].problems and sorted(p.name for p in downloads.iterdir()) == ["broken.jpg", "s1_c.jpg"]


def test_move_all_asks_first_and_the_page_keeps_its_folders_for_the_next_start(qtbot, sort_window, make_window,
                                                                                settings):
    window, root = sort_window
    page = window.sort_page
    page.set_folders(root / "Sorted", root)
    with qtbot.waitSignal(page.suggested, timeout=30_000):
        page.suggest_button.click()
    box = confirmation_box(page, "Sort", "Move?", "Move")
    assert box.defaultButton() is box.button(QMessageBox.StandardButton.Cancel)
    assert box.escapeButton() is box.button(QMessageBox.StandardButton.Cancel)
    before = sorted(p.name for p in root.glob("*.jpg"))
    page.confirm = lambda question: False  # Cancel
    page.accept_all_button.click()
    assert sorted(p.name for p in root.glob("*.jpg")) == before and page.table.rowCount() == SCENES
    assert page.undo_button.isEnabled() is False

    window.close()
    settings.sync()
    reopened = make_window()
    assert reopened.sort_page.examples_edit.text() == str(root / "Sorted")
    assert reopened.sort_page.unsorted_edit.text() == str(root)


def test_a_sort_undo_a_file_blocked_can_be_tried_again_and_the_done_list_brings_rows_back(qtbot, sort_window):
    window, root = sort_window
    page = window.sort_page
    page.set_folders(root / "Sorted", root)
    with qtbot.waitSignal(page.suggested, timeout=30_000):
        page.suggest_button.click()
    with qtbot.waitSignal(page.action_finished, timeout=10_000) as moved:
        page.accept_all_button.click()
    blocked, _ = moved.args[0].done[0]
    blocked.write_bytes(b"another file in its place")
    with qtbot.waitSignal(page.action_finished, timeout=10_000) as undone:
        page.undo_button.click()
    assert [path for path, _ in undone.args[0].problems] == [blocked]
    assert blocked not in {s.path for s in page.suggestions}
    assert page.undo_button.isEnabled(), "the photo left away can be tried again"

    blocked.unlink()
    history = window.duplicates_view
    qtbot.waitUntil(lambda: history.undo_button.isEnabled(), timeout=10_000)
    with qtbot.waitSignal(history.action_finished, timeout=10_000):
        history.undo_button.click()  # the Done list's Undo, not the page's
    assert blocked.exists() and blocked in {s.path for s in page.suggestions}
    assert not page.undo_button.isEnabled()


def test_suggestions_whose_photos_another_page_moved_and_put_back_come_back(qtbot, sort_window):
    window, root = sort_window
    page = window.sort_page
    page.set_folders(root / "Sorted", root)
    with qtbot.waitSignal(page.suggested, timeout=30_000):
        page.suggest_button.click()
    unsorted = root / "s0_c.jpg"
    groups = window.groups_page
    with qtbot.waitSignal(groups.grouped, timeout=20_000):
        groups.find()
    groups.strip_list.setCurrentRow(next(n for n, g in enumerate(groups.groups) if unsorted in g.members))
    with qtbot.waitSignal(groups.action_finished, timeout=10_000):
        groups.move_current(root / "elsewhere")
    assert unsorted not in {s.path for s in page.suggestions}
    qtbot.waitUntil(lambda: " of at least " in groups.status_label.text(), timeout=20_000)  # found again
    assert all(p.parent == root / "elsewhere" for p in groups.current_group().members), \
        "the group moved is selected where it is found again, not the one that moved up into its row"
    with qtbot.waitSignal(groups.action_finished, timeout=10_000):
        groups.undo_button.click()
    assert unsorted.exists() and unsorted in {s.path for s in page.suggestions}
    assert page.table.rowCount() == SCENES


def test_a_confident_suggestion_unlike_the_examples_reads_not_sure(qtbot, sort_window):
    window, root = sort_window
    page = window.sort_page
    job = object()
    page._job = job
    folder = root / "Sorted" / "scene0"
    plan = SortPlan([SortSuggestion(root / "s0_c.jpg", None, folder, 0.99),
                     SortSuggestion(root / "s1_c.jpg", folder, folder, 0.97)], "head", {"head": 1.0}, 2, [folder])
    page._on_suggested(job, plan)
    assert page.table.item(0, 2).text() == "99% · not sure: unlike the examples", "the row says why"
    assert page.table.item(1, 2).text() == "97%"
    assert "1 sure, 1 not sure (below 95%, or unlike the folder's examples)" in page.status_label.text()



def test_the_sort_table_orders_by_the_column_clicked_and_moves_the_rows_it_shows(qtbot, sort_window):
    window, root = sort_window
    page = window.sort_page
    job = object()
    page._job = job
    folder, other = root / "Sorted" / "scene0", root / "Sorted" / "scene1"
    plan = SortPlan([SortSuggestion(root / "s0_c.jpg", folder, folder, 0.96),
                     SortSuggestion(root / "s1_c.jpg", None, other, 0.99),
                     SortSuggestion(root / "s2_c.jpg", other, other, 0.98)], "head", {"head": 1.0}, 2, [folder, other])
    page._on_suggested(job, plan)
    header = page.table.horizontalHeader()
    header.setSortIndicator(2, Qt.SortOrder.DescendingOrder)  # as a click on Confidence does
    shown = [page.table.item(row, 0).text() for row in range(page.table.rowCount())]
    assert shown == ["s2_c.jpg", "s0_c.jpg", "s1_c.jpg"], "the sure ones first, then by confidence"
    assert [s.path.name for s in page.suggestions] == shown
    page.table.selectRow(0)
    with qtbot.waitSignal(page.action_finished, timeout=10_000):
        page.accept_selected_button.click()
    assert (other / "s2_c.jpg").exists() and (root / "s0_c.jpg").exists(), "the row selected is the photo moved"
    header.setSortIndicator(0, Qt.SortOrder.AscendingOrder)
    assert [page.table.item(row, 0).text() for row in range(page.table.rowCount())] == ["s0_c.jpg", "s1_c.jpg"]

def test_sort_page_fine_tunes_the_model_when_asked(qtbot, sort_window):
    window, root = sort_window
    page = window.sort_page
    page.set_folders(root / "Sorted", root)
    page.finetune_box.setChecked(True)
    phases = []
    page.progress_bar.valueChanged.connect(lambda value: phases.append(page.progress_bar.format()))
    with qtbot.waitSignal(page.suggested, timeout=60_000):
        page.suggest_button.click()
        assert not page.finetune_box.isEnabled()
    assert any(text.startswith("Fine-tuning the model") for text in phases)
    assert page.finetune_box.isEnabled() and page.table.rowCount() == SCENES
    tuned = page._plan.right_on_held_out("finetuned")
    assert tuned.endswith(f" of {page._plan.held_out}"), "counts, not a percentage of a few"
    assert (f"Sorted by the fine-tuned model; it sorted {tuned} examples held out right" in page.status_label.text()
            or f"The fine-tuned model sorted {tuned} right, no more than that" in page.status_label.text())


def test_sort_can_be_cancelled_and_bad_folders_get_a_message(qtbot, sort_window, tmp_path):
    window, root = sort_window
    page = window.sort_page
    page.set_folders(root / "Sorted", root)
    page.examples_edit.setText(page.examples_edit.text() + "  ")  # as a pasted path may end
    with qtbot.waitSignal(page.suggested, timeout=30_000):
        page.suggest()
    assert page.accept_all_button.isEnabled()
    page.set_folders(tmp_path / "nowhere", root)
    page.suggest()
    qtbot.waitUntil(lambda: page.status_label.text().startswith("Failed:"), timeout=10_000)
    assert "is not a folder" in page.status_label.text()
    assert page.table.rowCount() == 0 and not page.accept_all_button.isEnabled(), "no suggestion of the run before"
    page.set_folders(root / "Sorted", root)
    page.suggest()
    page.cancel()
    assert "Cancelled" in page.status_label.text() and page.suggest_button.isEnabled()
    assert not list((root / "Sorted" / "scene0").glob("s*_c.jpg"))


# -- staying current -------------------------------------------------------------------------------


def test_new_and_deleted_photos_are_followed_while_the_window_is_open(qtbot, indexed_window, photo_folder):
    window = indexed_window
    qtbot.waitUntil(lambda: window.library_watch.watching, timeout=20_000)
    changed = []
    window.library_changed.connect(lambda: changed.append(1))
    runs = []
    window.indexing_finished.connect(runs.append)
    new = photo_folder / "trip" / "new.jpg"
    make_photo(77).save(new, quality=90)
    qtbot.waitUntil(lambda: window.count_label.text().startswith("13 "), timeout=20_000)
    qtbot.waitUntil(lambda: window.folder_model.row_of(new) is not None, timeout=10_000)
    assert changed, "the pages were told"
    moved = photo_folder / "moved.jpg"
    shutil.move(new, moved)
    (photo_folder / "img_00.jpg").unlink()
    qtbot.waitUntil(lambda: window.count_label.text().startswith("12 "), timeout=20_000)
    qtbot.waitUntil(
        lambda: window.folder_model.row_of(moved) is not None and window.folder_model.row_of(new) is None
        and window.folder_model.row_of(photo_folder / "img_00.jpg") is None,
        timeout=10_000,
    )
    assert not runs, "no full index run: the watcher applied the changes"


def test_a_photo_saved_over_in_place_gets_a_new_thumbnail(qtbot, indexed_window, photo_folder):
    window = indexed_window
    qtbot.waitUntil(lambda: window.library_watch.watching, timeout=20_000)
    photo = photo_folder / "img_00.jpg"
    qtbot.waitUntil(lambda: window.thumbnails.pixmap(photo) is not None, timeout=10_000)
    before = window.thumbnails.pixmap(photo).toImage()
    Image.new("RGB", (320, 240), (250, 20, 20)).save(photo, quality=90)  # an editor saving over it
    os.utime(photo, ns=(time.time_ns(), time.time_ns() + 10**9))  # a coarse file system: the time must move
    qtbot.waitUntil(lambda: (shown := window.thumbnails.pixmap(photo)) is not None and shown.toImage() != before,
                    timeout=30_000)
    red = window.thumbnails.pixmap(photo).toImage().pixelColor(40, 40)
    assert red.red() > 200 and red.green() < 80, "the new picture, not the old one"
    assert window.folder_model.row_of(photo) is not None


def test_photos_gone_all_at_once_while_watched_are_kept_until_the_user_says(qtbot, card_window):
    window, folder = card_window
    qtbot.waitUntil(lambda: window.library_watch.watching, timeout=20_000)
    for number in range(25):  # as an unplugged drive or a replaced folder would look
        (folder / f"p{number:02d}.jpg").unlink()
    qtbot.waitUntil(lambda: "25 photos are gone" in window.message_bar.text(), timeout=30_000)
    assert window.message_bar.has_action() and window.count_label.text() == "30 photos indexed"


def test_a_long_group_name_is_shortened_and_keeps_the_photo_count(qtbot, scenes_window):
    metrics = scenes_window.groups_page.strip_list.fontMetrics()
    long_title = group_title(PhotoGroup((Path("a.jpg"),) * 25, frozenset(), "Häuser und Städte " * 6), 1)
    width = metrics.horizontalAdvance("Häuser und Städte · 25 photos")
    fitted = fitted_title(long_title, metrics, width)
    assert fitted.endswith("… · 25 photos") and metrics.horizontalAdvance(fitted) <= width
    assert fitted_title("Group 2 · 3 photos", metrics, width) == "Group 2 · 3 photos"
