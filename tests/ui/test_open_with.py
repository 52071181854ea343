"""`vitgallery PHOTO`, as the desktop's "Open with" and "Find Similar Photos…" run it: the window opens
on the photo's folder and finds photos like it, once the folder is indexed if it is new."""

from __future__ import annotations

from pathlib import Path

import pytest

import vitgallery.ui.app
from vitgallery.cli import main


@pytest.fixture
def run_app_calls(monkeypatch) -> list[tuple[tuple, dict]]:
    calls: list[tuple[tuple, dict]] = []
    monkeypatch.setattr("vitgallery.ui.platform_check.display_problem", lambda: None)
    monkeypatch.setattr(vitgallery.ui.app, "run_app", lambda *args, **kwargs: calls.append((args, kwargs)) or 0)
    return calls


def test_the_desktop_entrys_command_lines_reach_the_window(run_app_calls, photo_folder: Path) -> None:
    photo = photo_folder / "trip" / "img_10.jpg"
    assert main([str(photo)]) == 0  # Exec=vitgallery %f
    assert main(["--find-similar", str(photo)]) == 0  # the action, with a photo
    assert main(["--find-similar"]) == 0  # the action from the launcher: no photo, ask for one
    assert main([str(photo_folder), "--verbose"]) == 0
    plain = {"weights": None, "query": None, "choose_query": False, "verbose": False}
    assert run_app_calls == [
        ((photo.parent, None), {**plain, "query": photo}),
        ((photo.parent, None), {**plain, "query": photo}),
        ((None, None), {**plain, "choose_query": True}),
        ((photo_folder, None), {**plain, "verbose": True}),
    ]


def test_a_photo_of_a_new_folder_is_searched_once_the_folder_is_indexed(
    qtbot, make_window, photo_folder: Path
) -> None:
    photo = photo_folder / "img_03.jpg"
    window = make_window()
    window.show()
    with qtbot.waitSignal(window.results_shown, timeout=90_000) as shown:
        window.open_folder(photo.parent)  # what run_app does for `vitgallery PHOTO`
        window.find_similar(photo)
    assert shown.args[0] > 0
