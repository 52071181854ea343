from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import ImageOps
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGraphicsTextItem, QMessageBox

from tests.core.test_duplicates import write_near_duplicates
from tests.photos import make_photo
from vitgallery.core import library as core_library
from vitgallery.core import store as core_store
from vitgallery.core.duplicates import BULK_ACTIONS, DuplicateProgress, KeepRule, choose_keeper
from vitgallery.core.duplicates.trash import home_trash
from vitgallery.core.library import Library
from vitgallery.core.models import load_embedder
from vitgallery.core.words import size_text
from vitgallery.ui import duplicates_view
from vitgallery.ui.compare import PROPERTIES, CompareDialog
from vitgallery.ui.duplicates_view import DuplicatesView
from vitgallery.ui.results_model import PathRole
from vitgallery.ui.workers import JobRunner, Session


@pytest.fixture
def library_dir(tmp_path) -> Path:
    root = tmp_path / "photos"
    write_near_duplicates(root)
    library = Library.open(root, tmp_path / "library")
    library.index(load_embedder("tiny-test"), decode_workers=0)
    library.close()
    return tmp_path / "library"


@pytest.fixture
def make_view(qtbot, tmp_path):
    """A Duplicates page on a library opened by a session, as the window does."""
    made: list[tuple[DuplicatesView, JobRunner]] = []

    def make(library_dir: Path) -> DuplicatesView:
        session = Session()
        session.open_library(None, library_dir)
        runner = JobRunner(session)
        view = DuplicatesView(runner, thumbnail_cache_dir=tmp_path / "thumbs")
        view.set_library(library_dir)
        view.confirm = lambda question: True
        qtbot.addWidget(view)
        made.append((view, runner))
        return view

    yield make
    for view, runner in made:
        view.shutdown()
        assert runner.shutdown(5.0)
        runner.session.replace_library(None)


def active(qtbot, view: DuplicatesView) -> DuplicatesView:
    """Shown and active, so its shortcuts answer keys."""
    view.show()
    view.activateWindow()
    qtbot.waitUntil(view.isActiveWindow)
    view.member_list.setFocus()
    return view


def scanned(qtbot, view: DuplicatesView) -> DuplicatesView:
    with qtbot.waitSignal(view.scan_finished, timeout=120_000):
        view.start_scan()
    return view


def shown(view: DuplicatesView) -> list[tuple[str, bool]]:
    """The photos of the group on screen, in order, and whether each is kept."""
    items = (view.member_list.item(i) for i in range(view.member_list.count()))
    return [(Path(item.data(PathRole)).name, item.checkState() == Qt.CheckState.Checked) for item in items]


def photo_names(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir())


def select(view: DuplicatesView, *names: str) -> None:
    view.member_list.clearSelection()
    for i in range(view.member_list.count()):
        item = view.member_list.item(i)
        if Path(item.data(PathRole)).name in names:
            item.setSelected(True)


# -- the review of one group -----------------------------------------------------------------------


def test_each_group_shows_its_kept_photo_first_with_the_reason(qtbot, make_view, library_dir):
    view = scanned(qtbot, make_view(library_dir))
    assert view.group_list.count() == 3 == len(view.groups)
    view.group_list.setCurrentRow(0)
    photos = shown(view)
    assert len(photos) == 5 and [kept for _, kept in photos] == [True, False, False, False, False]
    original = photos[0][0]
    assert original in ("p1.jpg", "p4.jpg", "p6.jpg"), "the original, by the default keep-best rule"
    reason = choose_keeper(view.groups[0].members).reason
    assert view.member_list.item(0).text().endswith(f"Kept: {reason.split(';')[0]}")  # the rest is in the line above
    assert f"Keeping {original}" in view.keeper_label.text() and reason in view.keeper_label.text()
    assert view.group_title.text().startswith("Group 1 of 3 · 5 photos")
    # every row as tall as a square thumbnail, however wide the first row's photo (rows changed height)
    view.show()
    blank = view.group_list.group_model().placeholder.cacheKey()
    qtbot.waitUntil(lambda: view.group_list.row_data(0, Qt.ItemDataRole.DecorationRole).cacheKey() != blank,
                    timeout=10_000)
    assert view.group_list.sizeHintForRow(0) >= view.group_list.iconSize().height() == 64
    assert f"keeps {original}" in view.group_list.row_data(0)
    tips = [view.member_list.item(i).toolTip() for i in range(5)]
    assert sum("matched to" in tip for tip in tips) == 1 and sum("matching points" in tip for tip in tips) == 4
    assert "3 groups, 15 photos" in view.status_label.text()

    # at a sure setting a crop whose matches all fall just short is in by their agreement, and says so
    def agreeing():
        return [(group, m) for group in view.groups for m in group.members if m.agreeing]

    view.threshold_slider.setValue(90)
    qtbot.waitUntil(lambda: agreeing() != [], timeout=10_000)  # the crops match their four copies at 0.8-0.9
    group, member = agreeing()[0]
    view.group_list.setCurrentRow(view.groups.index(group))
    item = view.member_list.item([name for name, _ in shown(view)].index(member.path.name))
    assert item.text().endswith(f"match {member.similarity:.2f}, agrees with {member.agreeing}")
    assert f"In this group: matches {member.agreeing} photos of this group, none surely enough alone" in item.toolTip()
    view.threshold_slider.setValue(50)
    qtbot.waitUntil(lambda: agreeing() == [], timeout=10_000)
    view.group_list.setCurrentRow(0)

    view.rule_combo.setCurrentIndex(view.rule_combo.findData(KeepRule.SHARPEST))
    group = view.groups[0]
    sharpest = max(group.members, key=lambda m: (m.sharpness, m.pixels, m.size))
    assert shown(view)[0] == (sharpest.path.name, True) and view.keep_paths(group) == {sharpest.path}
    assert view.member_list.item(0).text().endswith("Kept: sharpest")


def test_a_group_row_asks_for_its_thumbnail_once_it_is_painted(qtbot, make_view, library_dir):
    view = make_view(library_dir)
    asked = []
    pixmap = view.thumbnails.pixmap
    view.thumbnails.pixmap = lambda path: asked.append(str(path)) or pixmap(path)
    scanned(qtbot, view)  # the list filled while hidden
    keepers = {view.group_list.row_data(row, PathRole) for row in range(view.group_list.count())}
    on_screen = {str(m.path) for m in view.current_group().members}  # the group shown asks for its photos
    assert len(keepers - on_screen) == 2 and not (keepers - on_screen) & set(asked)
    view.show()
    qtbot.waitUntil(lambda: (keepers - on_screen) <= set(asked), timeout=10_000)  # the rows drawn ask
    blank = view.group_list.group_model().placeholder.cacheKey()
    qtbot.waitUntil(lambda: all(view.group_list.row_data(row, Qt.ItemDataRole.DecorationRole).cacheKey() != blank
                                for row in range(3)), timeout=10_000)


def test_a_group_row_names_the_photo_the_user_keeps(qtbot, make_view, library_dir):
    view = active(qtbot, scanned(qtbot, make_view(library_dir)))
    view.group_list.setCurrentRow(0)
    first, second = shown(view)[0][0], shown(view)[1][0]
    changed = []
    view.group_list.model().dataChanged.connect(lambda top, bottom, roles: changed.append(top.row()))
    view.member_list.setCurrentRow(1)
    qtbot.keyClick(view.member_list, Qt.Key.Key_K)  # keep the second photo too: the row still shows the first
    assert view.group_list.row_data(0).endswith(f"keeps {first} and 1 more") and changed == [0]
    view.member_list.setCurrentRow([name for name, _ in shown(view)].index(first))
    qtbot.keyClick(view.member_list, Qt.Key.Key_R)  # no longer the first
    assert view.group_list.row_data(0).endswith(f"keeps {second}") and changed == [0, 0]


def test_a_narrow_group_list_elides_the_kept_name_in_its_middle(qtbot, make_view, library_dir):
    """Rows span the list: one as wide as its text brought a horizontal scroll bar and cut the name."""
    view = scanned(qtbot, make_view(library_dir))
    view.show()
    view.group_list.setFixedWidth(120)
    qtbot.waitUntil(lambda: view.group_list.viewport().width() < 120)
    row = view.group_list.visualRect(view.group_list.model().index(0, 0))
    assert row.width() == view.group_list.viewport().width()
    assert view.group_list.horizontalScrollBar().maximum() == 0


def test_the_page_opens_on_the_last_scan_at_once_and_says_how_old_it_is(qtbot, make_view, library_dir):
    groups = {frozenset(m.path.name for m in g.members) for g in scanned(qtbot, make_view(library_dir)).groups}
    again = make_view(library_dir)  # no scan started: the one kept in the library is shown
    again.show()
    qtbot.waitUntil(lambda: again.group_list.count() == 3, timeout=30_000)
    assert {frozenset(m.path.name for m in g.members) for g in again.groups} == groups
    assert "Scanned just now." in again.status_label.text() and "changed since" not in again.status_label.text()

    library = Library.open(None, library_dir)
    make_photo(50, (480, 360)).save(library.root / "new.jpg")
    library.index(load_embedder("tiny-test"), decode_workers=0)
    library.close()
    stale = make_view(library_dir)
    stale.show()
    qtbot.waitUntil(lambda: stale.group_list.count() == 3, timeout=30_000)
    assert "The library changed since" in stale.status_label.text()


def test_the_kept_scan_is_read_when_the_page_is_first_shown(qtbot, make_view, library_dir, monkeypatch):
    """Reading and grouping a large kept scan is seconds of Python in a job: not while the window starts
    on another page."""
    scanned(qtbot, make_view(library_dir))
    reads = []
    read = Library.last_duplicate_scan
    monkeypatch.setattr(Library, "last_duplicate_scan", lambda library: reads.append(1) or read(library))
    hidden = make_view(library_dir)
    qtbot.wait(300)
    assert reads == [] and hidden.group_list.count() == 0
    assert hidden.status_label.text() == duplicates_view.NO_SCAN_YET
    hidden.show()
    qtbot.waitUntil(lambda: hidden.group_list.count() == 3, timeout=30_000)
    hidden.hide()
    hidden.show()
    assert reads == [1], "read once"


def test_a_scan_an_earlier_version_of_the_check_made_is_said_to_be_outdated(qtbot, make_view, library_dir):
    """Its evidence cannot be read as this version measures it: the page says why it shows no groups."""
    scanned(qtbot, make_view(library_dir))
    library = Library.open(library_dir=library_dir)
    info = library.store.duplicate_scan_info()
    library.store.set_duplicate_scan_info({**info, "version": info["version"] - 1, "at": info["at"] - 3 * 86400})
    library.close()
    view = make_view(library_dir)
    view.show()
    qtbot.waitUntil(lambda: view.status_label.text() == duplicates_view.OUTDATED_SCAN.format(age="3 days ago"),
                    timeout=30_000)
    assert not view.groups


def test_a_library_never_scanned_says_so_once_shown(qtbot, make_view, tmp_path):
    (tmp_path / "photos").mkdir()
    Library.open(tmp_path / "photos", tmp_path / "library").close()
    view = make_view(tmp_path / "library")
    view.show()
    qtbot.waitUntil(lambda: view.status_label.text() == duplicates_view.NO_SCAN_YET, timeout=30_000)


def test_a_scan_waits_for_the_index_run_and_an_empty_page_says_what_it_needs(qtbot, make_view, tmp_path):
    """A scan during a first index grouped different objects on one background, all but one marked to go."""
    (tmp_path / "photos").mkdir()
    Library.open(tmp_path / "photos", tmp_path / "library").close()
    view = make_view(tmp_path / "library")
    view.set_library(None)
    assert view.status_label.text() == duplicates_view.NO_FOLDER and not view.scan_button.isEnabled()
    view.set_indexing(True)
    view.set_library(tmp_path / "library")
    view.show()
    qtbot.waitUntil(lambda: view.status_label.text() == duplicates_view.WAITS_FOR_INDEX, timeout=30_000)
    assert not view.scan_button.isEnabled() and view.scan_button.toolTip() == duplicates_view.WAITS_FOR_INDEX
    view.start_scan()  # a key or a menu cannot start one either
    assert view._scan_job is None
    view.set_indexing(False)
    assert view.status_label.text() == duplicates_view.NO_SCAN_YET and view.scan_button.isEnabled()


def test_a_scan_is_grouped_and_its_keepers_chosen_off_the_windows_thread(qtbot, make_view, library_dir,
                                                                          monkeypatch):
    """A library can hold thousands of groups: grouping them and choosing the keepers takes seconds there
    (docs/performance.md, issue 18 point 4), so the jobs do it, for a new scan, a kept one and a move
    of the threshold slider alike."""
    import threading

    from vitgallery.core.duplicates import groups as core_groups

    on_gui_thread = []
    grouping, choosing = core_groups.DuplicateScan.groups_and_hidden, duplicates_view.choose_keeper

    def groups(scan, *args, **kwargs):
        on_gui_thread.append(threading.current_thread() is threading.main_thread())
        return grouping(scan, *args, **kwargs)

    def choose(*args, **kwargs):
        on_gui_thread.append(threading.current_thread() is threading.main_thread())
        return choosing(*args, **kwargs)

    monkeypatch.setattr(core_groups.DuplicateScan, "groups_and_hidden", groups)
    monkeypatch.setattr(duplicates_view, "choose_keeper", choose)
    view = scanned(qtbot, make_view(library_dir))
    assert view.group_list.count() == 3 and "3 groups" in view.status_label.text()
    again = make_view(library_dir)
    again.show()
    qtbot.waitUntil(lambda: again.group_list.count() == 3, timeout=30_000)
    assert again.keep_paths(again.groups[0]) and "Scanned" in again.status_label.text()
    assert on_gui_thread and not any(on_gui_thread), "the keepers shown were chosen in the jobs"
    calls = len(on_gui_thread)
    again.threshold_slider.setValue(again.threshold_slider.value() + 1)  # the user regroups
    qtbot.waitUntil(lambda: len(on_gui_thread) > calls and not again._regrouping, timeout=30_000)
    assert not any(on_gui_thread), "the slider's regrouping ran in a job too"


def test_slider_steps_made_while_a_regrouping_runs_are_grouped_once_after_it(qtbot, make_view, library_dir,
                                                                            monkeypatch):
    import threading

    from vitgallery.core.duplicates import groups as core_groups

    view = scanned(qtbot, make_view(library_dir))
    grouping, release, thresholds = core_groups.DuplicateScan.groups_and_hidden, threading.Event(), []

    def slow_groups(scan, threshold, **kwargs):
        thresholds.append(threshold)
        release.wait(30)
        return grouping(scan, threshold, **kwargs)

    monkeypatch.setattr(core_groups.DuplicateScan, "groups_and_hidden", slow_groups)
    start = view.threshold_slider.value()
    for step in (10, 20, 30):  # arrow keys: each step asks while the first one is still grouping
        view.threshold_slider.setValue(start + step)
    qtbot.waitUntil(lambda: len(thresholds) == 1)
    release.set()
    qtbot.waitUntil(lambda: len(thresholds) == 2 and not view._regrouping, timeout=30_000)
    assert thresholds == [(start + 10) / 100, (start + 30) / 100], "the steps between were never grouped"
    assert [g.key for g in view.groups] == [g.key for g in view._scan.groups((start + 30) / 100)]


def test_the_badge_says_the_reason_a_keep_rule_gives(qtbot, make_view, library_dir, monkeypatch):
    # dupcore's keep rule names its reason (choice.reason); the page shows it as it is
    def choose(members, rule, folder=None):
        return SimpleNamespace(member=members[-1], reason="no edits seen; others padded", same_file=())

    monkeypatch.setattr(duplicates_view, "choose_keeper", choose)
    view = scanned(qtbot, make_view(library_dir))
    group = view.groups[0]
    assert view.keep_paths(group) == {group.members[-1].path}
    assert shown(view)[0] == (group.members[-1].path.name, True)
    assert view.member_list.item(0).text().endswith("Kept: no edits seen")
    assert "no edits seen; others padded" in view.keeper_label.text()


def test_the_tiles_of_a_group_always_fit_the_width(qtbot, make_view, tmp_path, monkeypatch):
    # Groups of eight, as a phone's edits make them: a tile was placed before its text was set, then
    # grew with it where it stood, and the third column went past the right edge (no scroll bar showed it)
    root = tmp_path / "photos"
    root.mkdir()
    for group, seed in enumerate((1, 4)):
        photo = make_photo(seed, (480, 360))
        for number, (edit, copy) in enumerate({
            "": photo, "squash-crop-jpeg": photo, "jpeg-color": photo.resize((240, 180)),
            "crop-crop": photo.crop((40, 30, 440, 330)), "crop-flip": ImageOps.mirror(photo),
            "text-border": photo.crop((20, 10, 460, 350)), "rotate-crop": photo.resize((400, 300)),
            "gray-blur-small": photo.crop((0, 0, 440, 330)),
        }.items()):
            copy.save(root / f"g{group:04d}_{number}{'_' if edit else ''}{edit}.jpg", quality=90 - 5 * number)
    library = Library.open(root, tmp_path / "library")
    library.index(load_embedder("tiny-test"), decode_workers=0)
    library.close()

    def choose(members, rule, folder=None):  # a reason on two lines, as "best copy" gives one
        return SimpleNamespace(member=members[0], reason="saved at a higher JPEG quality; others blocky", same_file=())

    monkeypatch.setattr(duplicates_view, "choose_keeper", choose)
    view = scanned(qtbot, make_view(tmp_path / "library"))
    view.resize(935, 660)
    view.show()
    tiles = view.member_list
    assert tiles.horizontalScrollBarPolicy() == Qt.ScrollBarPolicy.ScrollBarAlwaysOff
    assert [len(g.members) for g in view.groups] == [8, 8]
    for row in (0, 1, 0):
        view.group_list.setCurrentRow(row)
        qtbot.wait(100)
        rects = [tiles.visualItemRect(tiles.item(i)) for i in range(tiles.count())]
        assert len({r.top() for r in rects}) == 3, "three tiles a row"
        assert all(0 <= r.left() and r.right() < tiles.viewport().width() for r in rects), (row, rects)


def test_keys_keep_and_reject_photos_and_step_through_groups(qtbot, make_view, library_dir):
    view = active(qtbot, scanned(qtbot, make_view(library_dir)))
    group = view.current_group()
    keeper = view.shown_members()[0]
    first_candidate = view.selected_members()[0]
    assert first_candidate == view.shown_members()[1], "the first photo not kept is current"

    qtbot.keyClick(view.member_list, Qt.Key.Key_K)
    assert view.keep_paths(group) == {keeper.path, first_candidate.path}
    assert shown(view)[1] == (first_candidate.path.name, True)
    assert view.member_list.currentRow() == 2, "K steps on to the next photo"
    assert view.keep_reason(group) == "your choice"

    view.member_list.setCurrentRow(1)
    qtbot.keyClick(view.member_list, Qt.Key.Key_R)
    assert first_candidate.path not in view.keep_paths(group)
    select(view, shown(view)[0][0])
    qtbot.keyClick(view.member_list, Qt.Key.Key_R)
    assert len(view.keep_paths(group)) == 1, "the last kept photo stays kept"
    assert "always kept" in view.status_label.text()

    qtbot.keyClick(view.member_list, Qt.Key.Key_N)
    assert view.group_list.currentRow() == 1
    qtbot.keyClick(view.member_list, Qt.Key.Key_PageDown)
    assert view.group_list.currentRow() == 2
    qtbot.keyClick(view.member_list, Qt.Key.Key_P)
    assert view.group_list.currentRow() == 1


def test_ctrl_z_takes_back_keep_choices_group_by_group(qtbot, make_view, library_dir):
    view = active(qtbot, scanned(qtbot, make_view(library_dir)))
    first = view.current_group()
    by_rule = view.keep_paths(first)
    qtbot.keyClick(view.member_list, Qt.Key.Key_K)
    qtbot.keyClick(view.member_list, Qt.Key.Key_N)
    second = view.current_group()
    qtbot.keyClick(view.member_list, Qt.Key.Key_K)
    view.member_list.setCurrentRow(view.member_list.count() - 1)
    qtbot.keyClick(view.member_list, Qt.Key.Key_R)  # not kept already: no step to undo
    assert view.keep_reason(first) == view.keep_reason(second) == "your choice"
    qtbot.waitUntil(lambda: set(stored_keep_choices(library_dir)) == {first.key, second.key})

    qtbot.keyClick(view.member_list, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert view.current_group() is second and view.keep_reason(second) != "your choice"
    assert view.status_label.text().startswith("Keep choice taken back: the rule picks again (")
    view.undo_last()
    assert view.current_group() is first and view.keep_paths(first) == by_rule, "the group taken back is shown"
    qtbot.waitUntil(lambda: stored_keep_choices(library_dir) == {})
    view.undo_last()
    assert view.status_label.text().startswith("Nothing done here to undo")


def stored_keep_choices(library_dir: Path) -> dict[str, list[str]]:
    library = Library.open(None, library_dir)
    try:
        return library.store.keep_choices()
    finally:
        library.close()


def test_the_photos_a_user_keeps_stay_kept_after_a_restart_and_a_new_scan(qtbot, make_view, library_dir):
    view = active(qtbot, scanned(qtbot, make_view(library_dir)))
    group = view.current_group()
    by_rule = view.keep_paths(group)
    qtbot.keyClick(view.member_list, Qt.Key.Key_K)  # the first photo not kept: kept too
    chosen = view.keep_paths(group)
    assert len(chosen) == 2 and by_rule < chosen
    qtbot.waitUntil(lambda: stored_keep_choices(library_dir) == {group.key: sorted(map(str, chosen))})

    again = make_view(library_dir)  # the next start, on the scan kept in the library
    again.show()
    qtbot.waitUntil(lambda: again.group_list.count() == 3, timeout=30_000)
    same = next(g for g in again.groups if g.key == group.key)
    assert again.keep_paths(same) == chosen and again.keep_reason(same) == "your choice"
    assert again.selections()[again.groups.index(same)].keep == chosen, "what Resolve all would keep"
    scanned(qtbot, again)  # a new scan keeps it too
    assert again.keep_paths(next(g for g in again.groups if g.key == group.key)) == chosen

    again.group_list.setCurrentRow(again.groups.index(next(g for g in again.groups if g.key == group.key)))
    active(qtbot, again)
    select(again, *(p.name for p in chosen - by_rule))
    qtbot.keyClick(again.member_list, Qt.Key.Key_R)  # back to the rule's choice: nothing to remember
    qtbot.waitUntil(lambda: stored_keep_choices(library_dir) == {})
    qtbot.keyClick(again.member_list, Qt.Key.Key_K)
    qtbot.waitUntil(lambda: stored_keep_choices(library_dir) != {})
    # a new rule re-picks all, once the user agrees to lose their choices
    asked = []
    again.confirm_rule = lambda question: asked.append(question) is not None  # Cancel
    again.rule_combo.setCurrentIndex(again.rule_combo.findData(KeepRule.SHARPEST))
    assert asked == ["Keep the sharpest in every group? The photos you chose yourself in 1 group are then chosen "
                     "by the rule, and your choices are forgotten."]
    assert again.rule_combo.currentData() is not KeepRule.SHARPEST and again.keep_reason(
        next(g for g in again.groups if g.key == group.key)) == "your choice"
    again.confirm_rule = lambda question: True
    again.rule_combo.setCurrentIndex(again.rule_combo.findData(KeepRule.SHARPEST))
    qtbot.waitUntil(lambda: stored_keep_choices(library_dir) == {})
    again.set_preferred_folder(library_dir)  # another rule's folder: no question with no choice to lose


def test_the_sizes_of_one_groups_photos_are_said_in_one_unit():
    assert size_text(80_000) == "80 kB" and size_text(5_000, like=60_000) == "5 kB"
    assert size_text(80_000, like=1_200_000) == "0.08 MB" and size_text(1_200_000, like=80_000) == "1.2 MB"


def test_switching_groups_starts_each_at_the_top(qtbot, make_view, library_dir):
    view = scanned(qtbot, make_view(library_dir))
    view.resize(520, 420)
    view.show()
    qtbot.waitExposed(view)
    bar = view.member_list.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0)
    bar.setValue(bar.maximum())
    view.next_group()
    qtbot.waitUntil(lambda: bar.maximum() > 0)
    assert bar.value() == 0


def test_the_progress_text_is_never_clipped(qtbot, make_view, library_dir):
    view = make_view(library_dir)
    view.resize(900, 600)
    view.show()
    qtbot.waitExposed(view)
    view.start_scan()
    view._on_progress(DuplicateProgress("keypoints", 120, 318))
    bar = view.progress_bar
    assert bar.text() == "Reading photos: 120 of 318"
    assert bar.fontMetrics().horizontalAdvance(bar.text()) < bar.width() / 2
    qtbot.waitSignal(view.scan_finished, timeout=120_000).wait()


def test_compare_two_photos_side_by_side(qtbot, make_view, library_dir):
    view = scanned(qtbot, make_view(library_dir))
    original = shown(view)[0][0]
    small = original.replace(".jpg", "_small.jpg")
    select(view, original, small)
    dialog = view.compare_selected()
    qtbot.waitUntil(dialog.is_loaded, timeout=10_000)
    assert [m.path.name for m in dialog.members] == [original, small]
    room = dialog.screen().availableGeometry()  # the offscreen screen, 800 x 600: under the dialog's usual size
    assert dialog.width() <= room.width() and dialog.height() <= room.height(), "its buttons stay on the screen"
    assert {"Resolution", "File size", "Name"} <= set(dialog.differing_properties())
    assert dialog.table.item(0, 0).text() == "480 × 360" and dialog.table.item(0, 0).font().bold()
    assert dialog.table.item(0, 1).text() == "240 × 180" and not dialog.table.item(0, 1).font().bold()
    assert dialog.table.item(3, 0).text() == "none recorded"
    assert [dialog.table.item(4, side).text() for side in (0, 1)] == ["JPEG, saved at quality 92",
                                                                      "JPEG, saved at quality 85"]

    dialog.actual_size()
    assert [round(v.zoom, 3) for v in dialog.views] == [1.0, 1.0], "1:1: each file's own pixels"
    dialog.zoom_by(2.0)
    assert [round(v.zoom, 3) for v in dialog.views] == [2.0, 2.0]
    keep_left, keep_right = dialog.keep_buttons
    assert not keep_left.isEnabled() and keep_left.toolTip() == "Kept already, the other one not"
    keep_right.click()
    group = view.current_group()
    assert view.keep_paths(group) == {next(m.path for m in group.members if m.path.name == small)}

    # one photo selected: it is compared with the kept one
    select(view, original.replace(".jpg", "_crop.jpg"))
    dialog = view.compare_selected()
    assert [m.path.name for m in dialog.members] == [small, original.replace(".jpg", "_crop.jpg")]
    dialog.close()


def test_the_compare_dialog_stays_narrow_with_long_file_names(qtbot, make_view, library_dir, tmp_path):
    view = scanned(qtbot, make_view(library_dir))
    left, right = view.current_group().members[:2]
    named = []
    for n, member in enumerate((left, right)):
        long_name = tmp_path / f"IMG_20190814_Strandpromenade_und_Sonnenuntergang_{'x' * 90}_{n}.jpg"
        long_name.write_bytes(member.path.read_bytes())
        named.append(dataclasses.replace(member, path=long_name))
    dialog = CompareDialog(*named, view._jobs, view)
    qtbot.addWidget(dialog)
    qtbot.waitUntil(dialog.is_loaded, timeout=10_000)
    assert dialog.minimumSizeHint().width() < 700, "a name does not set the dialog's width"
    assert dialog.table.item(PROPERTIES.index("Name"), 0).text() == named[0].path.name, "the table has it whole"


def test_a_compared_file_that_is_gone_is_said_and_cannot_be_kept(qtbot, make_view, library_dir):
    view = scanned(qtbot, make_view(library_dir))
    left, right = view.current_group().members[:2]
    right.path.unlink()
    dialog = CompareDialog(left, right, view._jobs, view)
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.table.item(0, 1) is not None and "cannot show" in dialog.table.item(0, 1).text(),
                    timeout=10_000)
    assert dialog.table.item(PROPERTIES.index("Name"), 1).text() == right.path.name, "its name stays known"
    assert not dialog.keep_buttons[1].isEnabled() and dialog.keep_buttons[0].isEnabled()
    notes = [item.toPlainText() for item in dialog.views[1].scene().items() if isinstance(item, QGraphicsTextItem)]
    assert notes and notes[0].startswith("Cannot show this file:"), "said in the photo's place"
    qtbot.waitUntil(dialog.views[0].has_photo, timeout=10_000)
    dialog._show_zoom()
    assert dialog.zoom_label.text().split(" · ")[1].startswith("—"), "no zoom for a photo not shown"


# -- decisions that keep the rest of a group -------------------------------------------------------


def test_a_photo_taken_out_leaves_the_keep_choices_of_the_rest_as_they_were(qtbot, make_view, library_dir):
    """QA: keep A and B (K), take C out (T): the header read "Keeping A — no edits seen" and B would have been
    moved on Resolve; the command line, reading the choices kept in the library, agreed."""
    from vitgallery.core.library import Library

    view = active(qtbot, scanned(qtbot, make_view(library_dir)))
    group = view.current_group()
    kept = view.keep_paths(group)
    also = next(m.path for m in group.members if m.path not in kept)
    select(view, also.name)
    qtbot.keyClick(view.member_list, Qt.Key.Key_K)
    chosen = kept | {also}
    assert view.keep_paths(view.current_group()) == chosen and view.keep_reason(view.current_group()) == "your choice"
    leaving = next(m.path for m in group.members if m.path not in chosen)
    select(view, leaving.name)
    with qtbot.waitSignal(view.decisions_changed, timeout=30_000):
        qtbot.keyClick(view.member_list, Qt.Key.Key_T)
    rest = view.current_group()
    assert leaving not in {m.path for m in rest.members} and {m.path for m in rest.members} >= chosen
    assert view.keep_paths(rest) == chosen and view.keep_reason(rest) == "your choice"

    def kept_in_the_library() -> bool:  # as the command line reads it, once the window's job has saved it
        library = Library.open(library_dir=library_dir)
        try:
            return library.chosen_keeps([rest]) == {rest.key: frozenset(chosen)}
        finally:
            library.close()

    qtbot.waitUntil(kept_in_the_library, timeout=10_000)


def test_take_out_split_and_a_pair_not_duplicates_keep_the_rest(qtbot, make_view, library_dir):
    view = active(qtbot, scanned(qtbot, make_view(library_dir)))
    base = shown(view)[0][0].removesuffix(".jpg")
    order = [min(m.path.name for m in g.members) for g in view.groups]

    select(view, f"{base}_flip.jpg")
    with qtbot.waitSignal(view.decisions_changed, timeout=30_000):
        qtbot.keyClick(view.member_list, Qt.Key.Key_T)
    assert len(view.groups) == 3, "the rest of the group is still shown"
    # smaller now, it keeps its place in the review: "next group" goes on to the ones after it
    assert view.group_list.currentRow() == 0
    assert [min(m.path.name for m in g.members) for g in view.groups] == order
    assert sorted(name for name, _ in shown(view)) == sorted(f"{base}{s}.jpg" for s in ("", "_resaved", "_small", "_crop"))
    assert view.status_label.text() == f"{base}_flip.jpg left this group: it is in no group now (Ctrl+Z takes this back)."

    select(view, f"{base}_small.jpg", f"{base}_crop.jpg")
    assert view.pair_button.isEnabled() and view.take_out_button.text() == "Split off (T)"
    with qtbot.waitSignal(view.decisions_changed, timeout=30_000):
        qtbot.keyClick(view.member_list, Qt.Key.Key_D)
    left = {name for name, _ in shown(view)}
    assert len(left) == 3 and f"{base}.jpg" in left and f"{base}_resaved.jpg" in left
    assert len({f"{base}_small.jpg", f"{base}_crop.jpg"} & left) == 1, "one of the two left the group"
    [gone] = {f"{base}_small.jpg", f"{base}_crop.jpg"} - left
    assert view.status_label.text().startswith(f"{gone} left this group: it is not a duplicate of "), "and says so"
    assert ", closer to the rest of the group. It is " in view.status_label.text()

    # with the photo kept: the other one leaves, whichever of the two is more like the group
    [kept] = [path.name for path in view.keep_paths(view.current_group())]
    assert kept == f"{base}.jpg"
    select(view, f"{base}_resaved.jpg", kept)
    with qtbot.waitSignal(view.decisions_changed, timeout=30_000):
        qtbot.keyClick(view.member_list, Qt.Key.Key_D)
    assert kept in {name for name, _ in shown(view)} and f"{base}_resaved.jpg" not in {name for name, _ in shown(view)}
    assert view.status_label.text().startswith(
        f"{base}_resaved.jpg left this group: it is not a duplicate of {kept}, the photo kept. It is ")
    with qtbot.waitSignal(view.decisions_changed, timeout=30_000):
        qtbot.keyClick(view.member_list, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert f"{base}_resaved.jpg" in {name for name, _ in shown(view)}, "Ctrl+Z brings it back"

    view.group_list.setCurrentRow(1)
    other = shown(view)[0][0].removesuffix(".jpg")
    select(view, f"{other}_small.jpg", f"{other}_resaved.jpg")
    with qtbot.waitSignal(view.decisions_changed, timeout=30_000):
        view.take_out_selected()
    groups = {frozenset(m.path.name for m in g.members) for g in view.groups}
    assert frozenset({f"{other}_small.jpg", f"{other}_resaved.jpg"}) in groups, "split off as a group of its own"
    assert view.status_label.text().startswith("2 photos split off this group: they form a group of their own now")
    assert frozenset({f"{other}.jpg", f"{other}_crop.jpg", f"{other}_flip.jpg"}) in groups

    again = scanned(qtbot, make_view(library_dir))
    assert {frozenset(m.path.name for m in g.members) for g in again.groups} == groups, "kept in the library"

    view.group_list.setCurrentRow(next(n for n, g in enumerate(view.groups) if len(g.members) == 2))
    pair = {f"{other}_small.jpg", f"{other}_resaved.jpg"}
    select(view, *pair)
    with qtbot.waitSignal(view.decisions_changed, timeout=30_000):
        qtbot.keyClick(view.member_list, Qt.Key.Key_D)
    assert pair not in [{m.path.name for m in g.members} for g in view.groups]
    assert " are not duplicates of each other: their group is gone; " in view.status_label.text(), "said, not vanished"
    with qtbot.waitSignal(view.decisions_changed, timeout=30_000):
        qtbot.keyClick(view.member_list, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert {name for name, _ in shown(view)} == pair, "Ctrl+Z shows the group it brought back"
    assert view.status_label.text().startswith("Taken back: the photos link again as the scan found them (group ")
    select(view, f"{other}_small.jpg")
    with qtbot.waitSignal(view.decisions_changed, timeout=30_000):
        view.take_out_selected()
    assert view.status_label.text() == (f"{other}_small.jpg left this group: it is in no group now; "
                                        f"{other}_resaved.jpg, left alone, is in no group either (Ctrl+Z takes this back).")


def test_a_photo_that_leaves_with_the_ones_taken_out_is_said(qtbot, make_view, library_dir):
    """A crop in its group only by agreeing with its copies leaves when two of them are split off: said,
    not vanished from the review (QA: it left without a word)."""
    view = scanned(qtbot, make_view(library_dir))
    view.threshold_slider.setValue(90)
    qtbot.waitUntil(lambda: any(m.agreeing for g in view.groups for m in g.members), timeout=10_000)
    group = next(g for g in view.groups if any(m.agreeing for m in g.members))
    crop = next(m for m in group.members if m.agreeing)
    view.group_list.setCurrentRow(view.groups.index(group))
    split = [m.path.name for m in group.members[1:] if not m.agreeing][:2]
    select(view, *split)
    with qtbot.waitSignal(view.decisions_changed, timeout=30_000):
        view.take_out_selected()
    assert crop.path.name not in {name for name, _ in shown(view)}, "two copies fewer: too few agree"
    assert view.status_label.text().startswith("2 photos split off this group: ")
    assert f"; {crop.path.name} left with them, in this group only through them (Ctrl+Z" in view.status_label.text()


def test_not_duplicates_hides_the_whole_group_for_the_next_scan(qtbot, make_view, library_dir):
    view = scanned(qtbot, make_view(library_dir))
    view.group_list.setCurrentRow(1)
    hidden = view.groups[1].key
    view.mark_group("not_duplicates")
    qtbot.waitUntil(lambda: view.group_list.count() == 2)
    assert hidden not in [g.key for g in view.groups]

    again = scanned(qtbot, make_view(library_dir))
    assert again.group_list.count() == 2 and hidden not in [g.key for g in again.groups]
    assert "1 group hidden by your decisions (Decisions… lists them)" in again.status_label.text()

    # another session, where Ctrl+Z cannot reach it: the decision is listed and can be taken back
    with qtbot.waitSignal(again.decisions_shown, timeout=30_000) as shown_dialog:
        again.show_decisions()
    dialog = shown_dialog.args[0]
    assert dialog.list.count() == 1 and " · not duplicates · " in dialog.list.item(0).text()
    assert not dialog.review_button.isEnabled()
    dialog.list.item(0).setSelected(True)
    with qtbot.waitSignal(again.decisions_changed, timeout=30_000):
        dialog.review_button.click()
    assert again.group_list.count() == 3 and hidden in [g.key for g in again.groups]
    assert not again.decisions_button.isEnabled(), "nothing is hidden any more"
    assert scanned(qtbot, make_view(library_dir)).group_list.count() == 3, "forgotten in the library"


def test_photos_told_apart_in_an_earlier_session_are_listed_and_can_be_taken_back(qtbot, make_view, library_dir):
    view = active(qtbot, scanned(qtbot, make_view(library_dir)))
    before = {frozenset(m.path.name for m in g.members) for g in view.groups}
    taken = shown(view)[1][0]
    select(view, taken)
    with qtbot.waitSignal(view.decisions_changed, timeout=30_000):
        view.take_out_selected()
    assert {frozenset(m.path.name for m in g.members) for g in view.groups} != before

    again = scanned(qtbot, make_view(library_dir))  # a later session: Ctrl+Z cannot reach the step
    assert again.decisions_button.isEnabled(), "a photo taken out is a decision to review too"
    with qtbot.waitSignal(again.decisions_shown, timeout=30_000) as shown_dialog:
        again.show_decisions()
    dialog = shown_dialog.args[0]
    assert dialog.list.count() == 1 and dialog.list.item(0).text().startswith(f"{taken} · told apart from ")
    dialog.list.item(0).setSelected(True)
    with qtbot.waitSignal(again.decisions_changed, timeout=30_000):
        dialog.review_button.click()
    assert {frozenset(m.path.name for m in g.members) for g in again.groups} == before, "grouped as found again"
    assert not again.decisions_button.isEnabled()


def test_ctrl_z_takes_back_this_sessions_last_step_and_never_an_older_action(qtbot, make_view, library_dir, tmp_path):
    earlier = scanned(qtbot, make_view(library_dir))
    earlier.set_action("move", tmp_path / "out")
    with qtbot.waitSignal(earlier.action_finished, timeout=30_000):
        earlier.resolve_group()
    moved_earlier = sorted((tmp_path / "out").iterdir())
    assert moved_earlier

    view = active(qtbot, scanned(qtbot, make_view(library_dir)))  # another session on the library
    groups = {g.key: frozenset(m.path.name for m in g.members) for g in view.groups}
    qtbot.keyClick(view.member_list, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert "Nothing done here to undo" in view.status_label.text()
    assert sorted((tmp_path / "out").iterdir()) == moved_earlier, "the earlier session's action stays done"

    view.group_list.setCurrentRow(0)
    select(view, shown(view)[1][0])
    with qtbot.waitSignal(view.decisions_changed, timeout=30_000):
        qtbot.keyClick(view.member_list, Qt.Key.Key_T)
    view.mark_group("not_duplicates")
    qtbot.waitUntil(lambda: len(view.groups) == len(groups) - 1, timeout=30_000)
    with qtbot.waitSignal(view.decisions_changed, timeout=30_000):
        qtbot.keyClick(view.member_list, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert len(view.groups) == len(groups), "the group marked not duplicates is back"
    with qtbot.waitSignal(view.decisions_changed, timeout=30_000):
        qtbot.keyClick(view.member_list, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert {g.key: frozenset(m.path.name for m in g.members) for g in view.groups} == groups, "and the photo taken out"
    assert sorted((tmp_path / "out").iterdir()) == moved_earlier
    fresh = scanned(qtbot, make_view(library_dir)).groups
    assert sorted(fresh, key=lambda g: g.key) == sorted(view.groups, key=lambda g: g.key), "taken back in the library too"


# -- resolving -------------------------------------------------------------------------------------


def test_resolve_this_group_acts_on_it_alone_then_shows_the_next(qtbot, make_view, library_dir):
    view = active(qtbot, scanned(qtbot, make_view(library_dir)))
    view.confirm = lambda question: pytest.fail(f"an undoable action on one group asks nothing: {question}")
    view.set_action("trash")
    view.group_list.setCurrentRow(1)
    second, third = view.groups[1], view.groups[2]
    with qtbot.waitSignal(view.action_finished, timeout=30_000) as done:
        qtbot.keyClick(view.member_list, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    report = done.args[0]
    kept = view.keep_paths(second)
    assert sorted(source for source, _ in report.done) == sorted(m.path for m in second.members if m.path not in kept)
    assert view.group_list.count() == 2 and view.current_group().key == third.key
    assert view.status_label.text() == f"{len(report.done)} files moved to the trash (Ctrl+Z takes this back)"


def test_undo_of_a_resolve_shows_the_group_it_put_back(qtbot, make_view, library_dir, monkeypatch):
    view = active(qtbot, scanned(qtbot, make_view(library_dir)))
    view.set_action("trash")
    view.group_list.setCurrentRow(1)
    second = view.groups[1]
    with qtbot.waitSignal(view.action_finished, timeout=30_000):
        qtbot.keyClick(view.member_list, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert view.current_group().key != second.key
    with qtbot.waitSignal(view.action_finished, timeout=30_000) as done:
        qtbot.keyClick(view.member_list, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert done.args[0].kind == "undo"
    assert view.group_list.count() == 3 and view.current_group().key == second.key, "the group put back is on screen"
    assert view.group_list.currentRow() == 1, "in its place in the review, not last"
    said, checks = view.status_label.text(), []
    monkeypatch.setattr(view, "_on_scan_checked", lambda outcome, check=view._on_scan_checked: (
        checks.append(outcome), check(outcome)))
    view.library_changed()  # as the window says after any action
    qtbot.waitUntil(lambda: checks == [(True, set(), set())], timeout=10_000)
    assert view.status_label.text() == said, "back with their scan evidence: the scan is still current"


def test_what_an_action_did_stays_said_and_a_change_of_the_library_is_said_when_there_is_one(
        qtbot, make_view, library_dir, monkeypatch):
    view = active(qtbot, scanned(qtbot, make_view(library_dir)))
    view.set_action("trash")
    with qtbot.waitSignal(view.action_finished, timeout=30_000):
        qtbot.keyClick(view.member_list, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    said = view.status_label.text()
    assert "moved to the trash" in said
    checks = []
    monkeypatch.setattr(view, "_on_scan_checked", lambda outcome, check=view._on_scan_checked: (
        checks.append(outcome), check(outcome)))
    view.library_changed()  # as the window says after any action: its own keeps the scan current
    qtbot.waitUntil(lambda: checks == [(True, set(), set())], timeout=10_000)
    assert view.status_label.text() == said

    with view._jobs.session.use_library() as library:  # then indexing finds a new photo
        make_photo(50, (480, 360)).save(library.root / "new.jpg")
        library.index(load_embedder("tiny-test"), decode_workers=0)
    view.library_changed()
    # said after what the action did, which stays (a name clash's renamed file changes the library too)
    qtbot.waitUntil(lambda: view.status_label.text() == f"{said}. {duplicates_view.STALE_SCAN}", timeout=10_000)


def test_photos_deleted_behind_the_review_leave_it_and_the_counts(qtbot, make_view, library_dir, tmp_path):
    view = scanned(qtbot, make_view(library_dir))
    photos = sum(len(g.members) for g in view.groups)
    kept = next(iter(view.keep_paths(view.current_group())))
    kept.unlink()  # deleted in a file manager, the folder not indexed again yet
    view.library_changed()
    qtbot.waitUntil(lambda: "gone from the folder" in view.status_label.text(), timeout=10_000)
    assert kept not in {m.path for g in view.groups for m in g.members}
    assert sum(len(g.members) for g in view.groups) == photos - 1
    assert kept.name not in {name for name, _ in shown(view)} and kept not in view.keep_paths(view.current_group())
    assert view.status_label.text().startswith("1 photo of these groups is gone from the folder: left out of the review.")
    assert view.status_label.text().endswith(duplicates_view.STALE_SCAN)

    (library_dir.parent / "photos").rename(tmp_path / "unplugged")  # an unplugged drive deletes nothing
    listed = [g.members for g in view.groups]
    view.library_changed()
    qtbot.wait(500)
    assert [g.members for g in view.groups] == listed


def test_photos_moved_away_behind_the_review_and_back_are_reviewed_again(qtbot, make_view, library_dir, tmp_path):
    # as the command line's move and its undo do while the window is open: the groups emptied, and a
    # photo taken out then left its original "alone", so that the next scan grouped it without it
    view = active(qtbot, scanned(qtbot, make_view(library_dir)))
    before = {frozenset(m.path for m in g.members) for g in view.groups}
    root, aside = library_dir.parent / "photos", tmp_path / "aside"
    aside.mkdir()
    moved = [photo.rename(aside / photo.name) for photo in sorted(root.iterdir()) if photo.stem != "p1"]
    view.library_changed()
    qtbot.waitUntil(lambda: "gone from the folder" in view.status_label.text(), timeout=10_000)
    assert view.groups == [] and view.group_title.text() == "Nothing left to review"

    for photo in moved:
        photo.rename(root / photo.name)
    view.library_changed()
    qtbot.waitUntil(lambda: "back in the folder" in view.status_label.text(), timeout=10_000)
    assert view.status_label.text().startswith("14 photos left out of the review are back in the folder: "
                                               "reviewed again. 3 groups, 15 photos;"), "all grouped but p1.jpg"
    assert {frozenset(m.path for m in g.members) for g in view.groups} == before
    base = shown(view)[0][0].removesuffix(".jpg")
    select(view, f"{base}_flip.jpg")
    with qtbot.waitSignal(view.decisions_changed, timeout=30_000):
        qtbot.keyClick(view.member_list, Qt.Key.Key_T)
    assert len(shown(view)) == 4, "taken out of the whole group"

    changed = next(m.path for g in view.groups for m in g.members if m.path.name != f"{base}.jpg")
    changed.rename(aside / changed.name)
    view.library_changed()
    qtbot.waitUntil(lambda: "gone from the folder" in view.status_label.text(), timeout=10_000)
    make_photo(99, (480, 360)).save(changed)  # another picture under its name: not the photo the scan saw
    view.library_changed()
    qtbot.wait(500)
    assert changed not in {m.path for g in view.groups for m in g.members}


def test_resolve_all_asks_with_the_counts_and_cancel_is_the_default(qtbot, make_view, library_dir):
    view = scanned(qtbot, make_view(library_dir))
    box = view.confirmation_box("Move?")
    assert box.defaultButton() is box.button(QMessageBox.StandardButton.Cancel)
    assert box.escapeButton() is box.button(QMessageBox.StandardButton.Cancel)
    assert view.resolve_all_button.text() == "Resolve all 3 groups (12 photos)…"
    root = view.groups[0].members[0].path.parent
    before = photo_names(root)
    asked = []
    view.confirm = lambda question: asked.append(question) is not None  # answers Cancel
    view.resolve_all()
    assert asked[0].startswith("Move 12 photos from 3 groups to the trash?")
    assert photo_names(root) == before and view.group_list.count() == 3, "Cancel moves nothing"


def test_the_resolve_all_count_follows_what_is_kept(qtbot, make_view, library_dir, monkeypatch):
    from vitgallery.ui import duplicates_view

    view = active(qtbot, scanned(qtbot, make_view(library_dir)))

    def on_the_windows_thread(*args):
        raise AssertionError("the rule's choices, and what they leave, come from the grouping job")

    monkeypatch.setattr(duplicates_view, "_rule_choice", on_the_windows_thread)
    last = view.member_list.count() - 1
    view.member_list.setCurrentRow(last)  # K and R leave the selection where it is on the last photo
    qtbot.keyClick(view.member_list, Qt.Key.Key_K)
    assert view.resolve_all_button.text() == "Resolve all 3 groups (11 photos)…"
    qtbot.keyClick(view.member_list, Qt.Key.Key_R)
    assert view.resolve_all_button.text() == "Resolve all 3 groups (12 photos)…"
    changed_rows = []
    view.group_list.model().dataChanged.connect(lambda first, last, roles: changed_rows.append(first.row()))
    view.next_group()
    assert view.resolve_all_button.text() == "Resolve all 3 groups (12 photos)…"
    assert not changed_rows, "stepping to a group changes no row of the list (each change lays out every row)"
    view.set_action("move")
    assert view.resolve_all_button.toolTip().startswith("Move into a folder: the 12 photos not kept")


def test_with_nothing_left_to_resolve_resolve_all_counts_nothing(qtbot, make_view, library_dir):
    view = scanned(qtbot, make_view(library_dir))
    while view.groups:  # every group kept whole
        with qtbot.waitSignal(view.decisions_changed, timeout=30_000):
            view.mark_group("keep_all")
    assert view.resolve_all_button.text() == "Resolve all groups…" and not view.resolve_all_button.isEnabled()


def test_undo_pressed_with_the_keyboard_leaves_the_focus_in_the_page(qtbot, make_view, library_dir):
    view = active(qtbot, scanned(qtbot, make_view(library_dir)))
    view.set_action("trash")
    with qtbot.waitSignal(view.action_finished, timeout=30_000):
        qtbot.keyClick(view.member_list, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(view.undo_button.isEnabled)
    view.undo_button.setFocus()
    with qtbot.waitSignal(view.action_finished, timeout=30_000) as done:
        qtbot.keyClick(view.undo_button, Qt.Key.Key_Space)
    assert done.args[0].kind == "undo"
    assert view.member_list.hasFocus(), "the button went grey while it worked: its keys stay in the page"


def test_undo_of_an_action_undone_elsewhere_says_there_was_nothing_to_put_back(qtbot, make_view, library_dir):
    """QA: after `vitgallery duplicates --undo N` the window's Ctrl+Z said "0 files put back"."""
    from vitgallery.core.library import Library

    view = active(qtbot, scanned(qtbot, make_view(library_dir)))
    view.set_action("trash")
    with qtbot.waitSignal(view.action_finished, timeout=30_000) as moved:
        qtbot.keyClick(view.member_list, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(view.undo_button.isEnabled)
    elsewhere = Library.open(library_dir=library_dir)  # the command line, meanwhile
    assert elsewhere.undo(moved.args[0].action_id).done
    elsewhere.close()
    with qtbot.waitSignal(view.action_finished, timeout=30_000) as done:
        qtbot.keyClick(view.member_list, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert done.args[0].kind == "undo" and not done.args[0].done
    assert view.status_label.text().startswith(f"nothing to put back: action {moved.args[0].action_id} was undone "
                                               "already")


def test_resolve_all_to_the_trash_then_undo(qtbot, make_view, library_dir):
    view = active(qtbot, scanned(qtbot, make_view(library_dir)))
    root = view.groups[0].members[0].path.parent
    view.group_list.setCurrentRow(0)
    extra = view.member_list.item(1)  # the user also keeps a second photo of the first group
    extra.setCheckState(Qt.CheckState.Checked)
    kept_extra = Path(extra.data(PathRole))
    before = photo_names(root)

    with qtbot.waitSignal(view.action_finished, timeout=30_000) as done:
        view.resolve_all()
    report = done.args[0]
    assert report.kind == "trash" and len(report.done) == 11 and not report.problems
    assert kept_extra.exists() and len(list((home_trash() / "files").iterdir())) == 11
    assert view.group_list.count() == 0, "the two photos kept of a resolved group are not a new group"
    qtbot.waitUntil(lambda: view.history_combo.count() == 1 and view.undo_button.isEnabled())

    with qtbot.waitSignal(view.action_finished, timeout=30_000) as done:
        qtbot.keyClick(view.member_list, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert done.args[0].kind == "undo" and len(done.args[0].done) == 11
    assert photo_names(root) == before
    assert view.group_list.count() == 3, "put back, the groups show again"
    qtbot.waitUntil(lambda: not view.undo_button.isEnabled())


def test_an_action_taken_from_the_command_line_shows_in_the_done_list_when_the_user_comes_back(qtbot, make_view,
                                                                                               library_dir, tmp_path):
    """`vitgallery sort ...` in a terminal beside the window logs its action in the library: the Done list
    said it only once reopened. It reads the library again when the page shows and when the window is
    active again."""
    from PySide6.QtGui import QGuiApplication

    view = make_view(library_dir)
    with qtbot.waitSignal(view.history_changed):
        view.show()
    qtbot.wait(300)  # the reads the opening asked for are done
    elsewhere = Library.open(tmp_path / "photos", library_dir)  # as the command line opens it
    photos = sorted((tmp_path / "photos").glob("*.jpg"))
    elsewhere.move_into_folders([(photos[0], tmp_path / "sorted")])
    qtbot.wait(200)
    assert view.history_combo.count() == 0, "nothing tells the page yet"
    QGuiApplication.instance().applicationStateChanged.emit(Qt.ApplicationState.ApplicationActive)
    qtbot.waitUntil(lambda: view.history_combo.count() == 1)
    assert "moved" in view.history_combo.itemText(0) and view.undo_button.isEnabled()
    elsewhere.move_into_folders([(photos[1], tmp_path / "sorted")])
    elsewhere.close()
    view.hide()
    view.show()
    qtbot.waitUntil(lambda: view.history_combo.count() == 2)


def test_the_folder_asked_for_by_a_resolve_is_named_in_the_action_box(qtbot, make_view, library_dir, tmp_path,
                                                                        monkeypatch):
    view = active(qtbot, scanned(qtbot, make_view(library_dir)))
    monkeypatch.setattr(duplicates_view.QFileDialog, "getExistingDirectory",
                        lambda *args, **kwargs: str(tmp_path / "not-kept"))
    view.set_action("move")
    assert view.action_combo.currentText() == "Move into a folder…"
    with qtbot.waitSignal(view.action_finished, timeout=30_000):
        view.resolve_group()
    assert view.action_combo.currentText().endswith("/not-kept"), "the folder the next resolve uses"


def test_move_all_and_export_the_list(qtbot, make_view, library_dir, tmp_path):
    view = scanned(qtbot, make_view(library_dir))
    with qtbot.waitSignal(view.action_finished, timeout=30_000) as done:
        view.run_list_action("export", tmp_path / "list.json")
    assert done.args[0].kind == "export" and (tmp_path / "list.json").exists()
    view.set_action("move", tmp_path / "sorted-out")
    combo = view.action_combo
    full = combo.itemData(combo.currentIndex(), Qt.ItemDataRole.ToolTipRole)
    assert full == f"Move into a folder {tmp_path / 'sorted-out'}" and combo.currentText().endswith("/sorted-out")
    assert combo.sizeHint().width() > combo.fontMetrics().horizontalAdvance(combo.currentText()), "read whole"
    view.set_action("move", Path("/a/short"))
    assert combo.currentText() == "Move into a folder /a/short"
    view.set_action("move", tmp_path / "sorted-out")
    with qtbot.waitSignal(view.action_finished, timeout=30_000):
        view.resolve_all()
    assert len(list((tmp_path / "sorted-out").iterdir())) == 12
    qtbot.waitUntil(lambda: view.history_combo.count() == 2)
    assert "moved to" in view.history_combo.itemText(0)
    assert view.group_list.count() == 0 and view.group_title.text() == "Nothing left to review"


def test_a_move_into_the_photo_folder_is_refused_with_a_message(qtbot, make_view, library_dir):
    view = scanned(qtbot, make_view(library_dir))
    root = view.groups[0].members[0].path.parent
    before = photo_names(root)
    view.set_action("move", root / "duplicates")
    view.resolve_all()
    qtbot.waitUntil(lambda: view.status_label.text().startswith("Failed:"), timeout=30_000)
    assert "inside the photo folder" in view.status_label.text() and photo_names(root) == before


def test_a_folder_inside_the_photo_folder_is_refused_when_it_is_chosen(qtbot, make_view, library_dir, monkeypatch,
                                                                      tmp_path):
    view = scanned(qtbot, make_view(library_dir))
    root = view.groups[0].members[0].path.parent
    answers = [str(root / "sub"), str(tmp_path / "elsewhere")]
    monkeypatch.setattr(duplicates_view.QFileDialog, "getExistingDirectory", lambda *args: answers.pop(0))
    assert view.choose_target(BULK_ACTIONS["move"]) is None
    assert "inside the photo folder" in view.status_label.text() and "move" not in view.action_targets
    assert view.choose_target(BULK_ACTIONS["move"]) == tmp_path / "elsewhere" == view.action_targets["move"]


# -- the page's shape ------------------------------------------------------------------------------


def test_the_page_works_on_the_windows_library_only(qtbot, make_view, library_dir, monkeypatch, tmp_path):
    view = make_view(library_dir)
    opened = []
    monkeypatch.setattr(core_store.Store, "__init__", lambda *args: opened.append("a Store"))
    monkeypatch.setattr(core_library.Library, "open", lambda *args: opened.append("a Library"))
    scanned(qtbot, view)
    with qtbot.waitSignal(view.decisions_changed, timeout=30_000):
        view.mark_group("keep_all")
    view.set_action("move", tmp_path / "out")
    with qtbot.waitSignal(view.action_finished, timeout=30_000):
        view.resolve_group()
    with qtbot.waitSignal(view.action_finished, timeout=30_000):
        view.undo_last()
    assert opened == []


def test_a_new_bulk_action_is_one_entry(qtbot, make_view, library_dir, monkeypatch):
    copy = dataclasses.replace(BULK_ACTIONS["move"], name="copy", label="Copy into a folder…")
    report = dataclasses.replace(BULK_ACTIONS["export"], name="report", label="Print a report…")
    monkeypatch.setitem(BULK_ACTIONS, "copy", copy)
    monkeypatch.setitem(BULK_ACTIONS, "report", report)
    view = make_view(library_dir)
    assert [view.action_combo.itemText(i) for i in range(view.action_combo.count())] == [
        "Move to the trash", "Move into a folder…", "Copy into a folder…"]
    assert list(view.list_buttons) == ["export", "report"]


def test_cancel_and_an_empty_library(qtbot, make_view, tmp_path):
    empty = tmp_path / "empty-library"
    Library.open(tmp_path, empty).close()
    view = scanned(qtbot, make_view(empty))
    assert view.group_list.count() == 0 and not view.resolve_all_button.isEnabled()


def test_the_main_window_has_a_duplicates_tab_on_its_library(qtbot, indexed_window):
    window = indexed_window
    tabs = [window.tabs.tabText(i) for i in range(window.tabs.count())]
    assert "Duplicates" in tabs
    view = window.duplicates_view
    qtbot.waitUntil(view.scan_button.isEnabled, timeout=10_000)
    window.tabs.setCurrentWidget(view)
    scanned(qtbot, view)
    assert view.group_list.count() == 0, "twelve different photos: no duplicates"
    assert "No group of near-duplicates at the threshold 0.50" in view.status_label.text()
    assert view.group_title.text() == "No near-duplicates" and "lower match threshold" in view.keeper_label.text()


def test_a_group_across_folders_names_each_photos_folder(qtbot, make_view, tmp_path):
    root = tmp_path / "photos"
    write_near_duplicates(root)
    (root / "Phone backup").mkdir()
    for small in root.glob("p*_small.jpg"):
        small.rename(root / "Phone backup" / small.name)
    library = Library.open(root, tmp_path / "library")
    library.index(load_embedder("tiny-test"), decode_workers=0)
    library.close()
    view = scanned(qtbot, make_view(tmp_path / "library"))
    first = [view.member_list.item(i).text().split("\n")[0] for i in range(view.member_list.count())]
    assert sum(line.startswith("Phone backup/p") for line in first) == 1
    assert all(line.startswith(("photos/p", "Phone backup/p")) for line in first)


def test_in_a_short_window_a_whole_row_of_tiles_fits(qtbot, make_view, library_dir):
    view = scanned(qtbot, make_view(library_dir))
    view.resize(900, 500)
    view.show()
    tiles = view.member_list
    qtbot.waitUntil(lambda: tiles.gridSize().height() <= tiles.viewport().height(), timeout=5_000)
    assert tiles.iconSize().width() < duplicates_view.THUMBNAIL_SIZE
    view.resize(620, 500)  # the page's part of a 900-pixel window beside the query panel
    qtbot.waitUntil(lambda: 2 * tiles.gridSize().width() <= tiles.viewport().width(), timeout=5_000)
    assert tiles.visualItemRect(tiles.item(1)).top() == tiles.visualItemRect(tiles.item(0)).top(), "two a row"
    view.resize(900, 1000)
    qtbot.waitUntil(lambda: tiles.iconSize().width() == duplicates_view.THUMBNAIL_SIZE, timeout=5_000)


@pytest.mark.parametrize("unreadable", ["gone", "damaged"])
def test_every_row_of_a_compare_with_an_unreadable_file_ends_in_a_value_or_a_reason(
    qtbot, make_view, library_dir, unreadable
):
    """A file that could not be read left its side's rows "loading…" for good: once the other side loaded,
    the table was filled again with "loading…" for the side that had failed."""
    view = scanned(qtbot, make_view(library_dir))
    left, right = view.current_group().members[:2]
    if unreadable == "gone":
        right.path.unlink()
    else:
        right.path.write_bytes(right.path.read_bytes()[:200])  # a JPEG cut short in its header
    dialog = CompareDialog(left, right, view._jobs, view)
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: not dialog.keep_buttons[1].isEnabled() and dialog.views[0].has_photo(), timeout=10_000)
    cells = {(PROPERTIES[row], side): dialog.table.item(row, side).text()
             for row in range(len(PROPERTIES)) for side in (0, 1)}
    assert all(text and "loading" not in text for text in cells.values()), cells
    assert cells["Resolution", 1].startswith("cannot show this file:")
    assert cells["Name", 1] == right.path.name and cells["Folder", 1] == str(right.path.parent)
    assert cells["Resolution", 0] == "480 × 360", "the readable side says its values"
    if unreadable == "gone":
        assert cells["File size", 1] == "unknown"
    else:
        assert cells["File size", 1].startswith("200 bytes"), "what the file system says is still known"
