"""GUI tests run offscreen with the tiny random ViT, so they take seconds and need no display."""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before anything imports Qt

import threading
import time
import weakref
from pathlib import Path

import pytest

# Imported here once, not in each window's worker thread: importing torch takes seconds, and a
# window closed during that import could not stop its worker in time.
import torch  # noqa: F401,E402
from PySide6.QtCore import QThread, qInstallMessageHandler

import vitgallery.core.library  # noqa: F401,E402
from vitgallery.ui import settings as opt
from vitgallery.ui.settings import Settings

PHOTO_COUNT = 12  # the shared `photo_folder` fixture (tests/conftest.py)


# What Qt says when a worker thread touches a widget or starts a timer: each is a crash waiting to happen.
THREAD_WARNINGS = (
    "Cannot create children for a parent that is in a different thread",
    "Timers cannot be started from another thread",
    "Timers cannot be stopped from another thread",
    "QObject::killTimer: Timers cannot be stopped from another thread",
    "QObject::startTimer: Timers can only be used with threads started with QThread",
    "Cannot send events to objects owned by a different thread",
    "QPixmap: It is not safe to use pixmaps outside the GUI thread",
)


@pytest.fixture(autouse=True)
def fail_on_thread_warnings():
    """Qt's warnings about objects used from the wrong thread fail the test that caused them."""
    caught: list[str] = []

    def handler(mode, context, message: str) -> None:
        if any(warning in message for warning in THREAD_WARNINGS):
            caught.append(message)
        if previous is not None:
            previous(mode, context, message)

    previous = qInstallMessageHandler(handler)
    yield
    qInstallMessageHandler(previous)
    assert not caught, f"Qt objects used from the wrong thread: {caught}"


@pytest.fixture(autouse=True)
def fail_on_leaked_threads(monkeypatch):
    """A test must stop every QThread it starts, and the app's Python threads must end (as in napari)."""
    started: list[weakref.ref[QThread]] = []
    original_start = QThread.start

    def tracking_start(self: QThread, *args) -> None:
        started.append(weakref.ref(self))
        original_start(self, *args)

    monkeypatch.setattr(QThread, "start", tracking_start)
    yield
    leaked = [ref() for ref in started if ref() is not None and ref().isRunning()]
    deadline = time.monotonic() + 5
    app_threads = [t for t in threading.enumerate() if t.name.startswith("vitgallery-")]
    for thread in app_threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    still_alive = [t.name for t in app_threads if t.is_alive()]
    for thread in leaked:
        thread.quit()
        thread.wait(5000)
    assert not leaked, f"test left QThreads running: {[t.objectName() for t in leaked]}"
    assert not still_alive, f"test left threads running: {still_alive}"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = Settings.from_file(tmp_path / "settings.ini")
    settings.set(opt.MODEL, "tiny-test")
    settings.set(opt.DEVICE, "cpu")
    settings.set(opt.BATCH_SIZE, 8)
    settings.set(opt.THUMBNAIL_SIZE, 96)
    return settings


@pytest.fixture
def make_window(qtbot, settings: Settings, tmp_path: Path):
    """Builds main windows on temporary settings, library and thumbnail cache; closes them after the test."""
    from vitgallery.ui.main_window import MainWindow

    windows: list[MainWindow] = []

    def make(settings_override: Settings | None = None, *, library_per_folder: bool = False) -> MainWindow:
        """`library_per_folder`: no library folder of the window's own, as the app starts (Settings' location)."""
        window = MainWindow(
            settings_override or settings,
            library_dir=None if library_per_folder else tmp_path / "library",
            thumbnail_cache_dir=tmp_path / "thumbs",
            decode_workers=0,
        )
        qtbot.addWidget(window)
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()


@pytest.fixture
def indexed_window(qtbot, make_window, photo_folder: Path):
    """A shown window on `photo_folder` whose first indexing run has finished."""
    window = make_window()
    window.show()
    with qtbot.waitSignal(window.indexing_finished, timeout=60_000) as finished:
        window.open_folder(photo_folder)
    assert finished.args[0] is not None and finished.args[0].added == PHOTO_COUNT
    return window


CARD_PHOTOS = 30  # the `card_window` fixture's folder


@pytest.fixture
def card_window(qtbot, make_window, tmp_path: Path):
    """(window, folder): a shown window on a folder of CARD_PHOTOS small photos, p00.jpg to p29.jpg, as a
    memory card holds them, whose first indexing run has finished."""
    from tests.photos import make_photo

    folder = tmp_path / "card"
    folder.mkdir()
    for number in range(CARD_PHOTOS):
        make_photo(number, (96, 72)).save(folder / f"p{number:02d}.jpg")
    window = make_window()
    window.show()
    with qtbot.waitSignal(window.indexing_finished, timeout=60_000):
        window.open_folder(folder)
    return window, folder
