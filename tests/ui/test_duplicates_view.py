from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from tests.core.test_duplicates import write_near_duplicates
from vitgallery.core.actions import home_trash
from vitgallery.core.duplicates import KeepRule
from vitgallery.core.library import Library
from vitgallery.core.models import load_embedder
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


def scanned(qtbot, view: DuplicatesView) -> DuplicatesView:
    with qtbot.waitSignal(view.scan_finished, timeout=120_000):
        view.start_scan()
    return view


def member_names(view: DuplicatesView) -> dict[str, bool]:
    items = (view.member_list.item(i) for i in range(view.member_list.count()))
    return {Path(item.data(PathRole)).name: item.checkState() == Qt.CheckState.Checked for item in items}


def test_scan_shows_groups_with_the_rules_keeper_checked(qtbot, make_view, library_dir):
    view = scanned(qtbot, make_view(library_dir))
    assert view.group_list.count() == 3 == len(view.groups)
    view.group_list.setCurrentRow(0)
    shown = member_names(view)
    assert len(shown) == 5 and sum(shown.values()) == 1
    seed = min(shown, key=len)  # p1.jpg, p4.jpg or p6.jpg: the original, highest resolution and largest
    assert shown[seed], "the highest resolution photo is kept by default"
    tips = [view.member_list.item(i).toolTip() for i in range(view.member_list.count())]
    assert "matched to" in tips[0] and all("matching points" in tip for tip in tips[1:]), "each says why it is there"
    assert "3 groups, 15 photos" in view.status_label.text()

    view.rule_combo.setCurrentIndex(view.rule_combo.findData(KeepRule.SHARPEST))
    group = view.groups[0]
    sharpest = max(group.members, key=lambda m: (m.sharpness, m.pixels, m.size))
    assert member_names(view)[sharpest.path.name] and view.keep_paths(group) == {sharpest.path}


def test_the_slider_regroups_without_scanning_again(qtbot, make_view, library_dir):
    view = scanned(qtbot, make_view(library_dir))
    counts = []
    for value in (1, 50, 99):
        view.threshold_slider.setValue(value)
        counts.append(sum(len(g.members) for g in view.groups))
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1]
    assert view.threshold_label.text() == "0.99"


def test_trash_the_rest_then_undo(qtbot, make_view, library_dir):
    view = scanned(qtbot, make_view(library_dir))
    root = view.groups[0].members[0].path.parent
    view.group_list.setCurrentRow(0)
    # the user also keeps a second photo of the first group
    extra = view.member_list.item(1)
    extra.setCheckState(Qt.CheckState.Checked)
    kept_extra = Path(extra.data(PathRole))
    before = sorted(p.name for p in root.iterdir())

    with qtbot.waitSignal(view.action_finished, timeout=30_000) as done:
        view.trash_rest()
    report = done.args[0]
    assert report.kind == "trash" and len(report.done) == 11 and not report.problems
    assert kept_extra.exists()
    assert len(list((home_trash() / "files").iterdir())) == 11
    [left] = view.groups  # only the two photos kept of the first group are still a pair
    assert {m.path for m in left.members} == {kept_extra, *view.keep_paths(left)} and len(left.members) == 2
    qtbot.waitUntil(lambda: view.history_combo.count() == 1 and view.undo_button.isEnabled())

    with qtbot.waitSignal(view.action_finished, timeout=30_000) as done:
        view.undo_selected()
    assert done.args[0].kind == "undo" and len(done.args[0].done) == 11
    assert sorted(p.name for p in root.iterdir()) == before
    assert view.group_list.count() == 3, "put back, the groups show again"
    qtbot.waitUntil(lambda: not view.undo_button.isEnabled())


def test_move_the_rest_and_export(qtbot, make_view, library_dir, tmp_path):
    view = scanned(qtbot, make_view(library_dir))
    with qtbot.waitSignal(view.action_finished, timeout=30_000) as done:
        view.export_list(tmp_path / "list.json")
    assert done.args[0].kind == "export" and (tmp_path / "list.json").exists()
    with qtbot.waitSignal(view.action_finished, timeout=30_000) as done:
        view.move_rest(tmp_path / "sorted-out")
    assert len(list((tmp_path / "sorted-out").iterdir())) == 12
    qtbot.waitUntil(lambda: view.history_combo.count() == 2)
    assert "moved to" in view.history_combo.itemText(0)


def test_not_duplicates_is_remembered_by_the_next_scan(qtbot, make_view, library_dir):
    view = scanned(qtbot, make_view(library_dir))
    view.group_list.setCurrentRow(1)
    hidden = view.groups[1].key
    view.mark_group("not_duplicates")
    qtbot.waitUntil(lambda: view.group_list.count() == 2)
    assert hidden not in [g.key for g in view.groups]

    again = scanned(qtbot, make_view(library_dir))
    assert again.group_list.count() == 2 and hidden not in [g.key for g in again.groups]
    assert "1 group hidden by your decisions" in again.status_label.text()


def test_cancel_and_an_empty_library(qtbot, make_view, tmp_path):
    empty = tmp_path / "empty-library"
    Library.open(tmp_path, empty).close()
    view = scanned(qtbot, make_view(empty))
    assert view.group_list.count() == 0 and not view.trash_button.isEnabled()


def test_the_main_window_has_a_duplicates_tab_on_its_library(qtbot, indexed_window):
    window = indexed_window
    tabs = [window.tabs.tabText(i) for i in range(window.tabs.count())]
    assert "Duplicates" in tabs
    view = window.duplicates_view
    qtbot.waitUntil(view.scan_button.isEnabled, timeout=10_000)
    window.tabs.setCurrentWidget(view)
    scanned(qtbot, view)
    assert view.group_list.count() == 0, "twelve different photos: no duplicates"
    assert "0 groups, 0 photos" in view.status_label.text()
