"""`vitgallery PHOTO`, as the desktop's "Open with" and "Find similar" run it: the window opens on the
photo's folder and finds photos like it."""

from __future__ import annotations

from pathlib import Path

import pytest

import vitgallery.ui.app
from vitgallery.cli import main


@pytest.fixture
def run_app_calls(monkeypatch) -> list[tuple[tuple, dict]]:
    calls: list[tuple[tuple, dict]] = []
    monkeypatch.setattr(vitgallery.ui.app, "run_app", lambda *args, **kwargs: calls.append((args, kwargs)) or 0)
    return calls


def test_a_photo_opens_its_folder_and_is_searched(run_app_calls, photo_folder: Path) -> None:
    photo = photo_folder / "trip" / "img_10.jpg"
    assert main([str(photo)]) == 0
    assert main([str(photo_folder), "--verbose"]) == 0
    assert main(["--find-similar"]) == 0
    assert main(["--find-similar", str(photo)]) == 0
    folder = dict(photo=None, choose_photo=False, verbose=False)
    assert run_app_calls == [
        ((photo.parent, None), {**folder, "photo": photo}),
        ((photo_folder, None), {**folder, "verbose": True}),
        ((None, None), {**folder, "choose_photo": True}),
        ((photo.parent, None), {**folder, "photo": photo}),  # a photo given: nothing to ask for
    ]


def test_open_photo_searches_once_a_new_folder_is_indexed_and_at_once_after(
    qtbot, make_window, photo_folder: Path
) -> None:
    photo = photo_folder / "img_03.jpg"
    window = make_window()
    window.show()
    with qtbot.waitSignals([window.indexing_finished, window.results_shown], order="strict", timeout=60_000):
        window.open_photo(photo)
    assert window.folder == photo_folder
    assert window.results_model.rowCount() > 0
    assert photo.name in window.query_panel.caption.text()

    again = make_window()  # the library now holds the folder: no waiting for indexing
    again.show()
    with qtbot.waitSignal(again.results_shown, timeout=60_000):
        again.open_photo(photo)
    assert again.results_model.rowCount() > 0 and photo.name in again.query_panel.caption.text()
