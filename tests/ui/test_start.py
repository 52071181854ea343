"""The start sequence: a splash while torch and the core import on the GUI thread, then the window.

On a worker thread the same import held the interpreter lock and froze the shown window for 300 ms
(docs/performance.md, issue 18 point 5); the speed is measured by bench/gui_responsiveness.py.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication

from vitgallery.ui import app as app_module
from vitgallery.ui.app import WINDOW_SWITCH_INTERVAL_S, StartupSplash, start_window
from vitgallery.ui.main_window import MainWindow
from vitgallery.ui.settings import Settings
from vitgallery.ui.workers import load_model_runtime

OPENVINO = importlib.util.find_spec("openvino") is not None  # the "auto" runtime's, imported where installed
EXPECTED_STEPS = [
    "Loading the model runtime (torch)…",
    "Loading the model runtime (timm)…",
    *(["Loading the model runtime (openvino)…"] if OPENVINO else []),
    "Loading the photo library…",
]


def visible_splashes() -> list[StartupSplash]:
    return [widget for widget in QApplication.topLevelWidgets()
            if isinstance(widget, StartupSplash) and widget.isVisible()]


def test_the_splash_says_each_step_then_the_window_replaces_it(qtbot, monkeypatch, settings: Settings,
                                                                 tmp_path: Path) -> None:
    said: list[str] = []
    original_say = StartupSplash.say
    monkeypatch.setattr(StartupSplash, "say", lambda splash, text: said.append(text) or original_say(splash, text))
    splash_when_built: list[bool] = []

    def build() -> MainWindow:
        splash_when_built.append(bool(visible_splashes()))
        window = MainWindow(settings, library_dir=tmp_path / "library", thumbnail_cache_dir=tmp_path / "thumbs",
                            decode_workers=0)
        qtbot.addWidget(window)
        return window

    window = start_window(build)

    assert said == EXPECTED_STEPS
    assert splash_when_built == [True], "the splash is up while the runtime loads and the window is built"
    assert window.isVisible()
    qtbot.waitUntil(lambda: not visible_splashes())
    assert not window.message_bar.isVisible()


def test_the_start_opens_the_library_with_its_index_before_the_window_shows(qtbot, monkeypatch, make_window,
                                                                            photo_folder: Path) -> None:
    from vitgallery.core import index_cache
    from vitgallery.core.library import Library

    first = make_window()
    with qtbot.waitSignal(first.indexing_finished, timeout=60_000):
        first.open_folder(photo_folder)
    first.close()
    loads: list[bool] = []  # whether the splash was up
    load = index_cache.load_index
    monkeypatch.setattr(index_cache, "load_index",
                        lambda *args, **kw: loads.append(bool(visible_splashes())) or load(*args, **kw))
    opened: list[Path] = []
    open_library = Library.open.__func__
    monkeypatch.setattr(Library, "open", classmethod(lambda cls, *args, **kw: opened.append(args[0])
                                                     or open_library(cls, *args, **kw)))

    window = start_window(make_window, lambda window: photo_folder)
    assert loads == [True] and len(opened) == 1, "the library and its index, behind the splash"
    with qtbot.waitSignal(window.indexing_finished, timeout=60_000) as finished:
        window.open_folder(photo_folder)
    assert finished.args[0] is not None and finished.args[0].added == 0
    assert len(opened) == 1, "the window's job took the library opened at the start"
    with qtbot.waitSignal(window.results_shown, timeout=60_000):
        window.find_similar(photo_folder / "img_03.jpg")
    assert loads == [True], "nor does the first search load the index again"


def test_torch_is_imported_before_the_window_is_built(tmp_path: Path) -> None:
    """In a fresh interpreter (this one imported torch in conftest): nothing is left to import on a
    worker thread once the window is shown."""
    script = textwrap.dedent(f"""
        import gc, json, os, sys
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        from vitgallery.ui.app import create_application, start_window
        from vitgallery.ui.main_window import MainWindow
        from vitgallery.ui.settings import Settings

        app = create_application()
        seen = {{"before": sorted(m for m in ("torch", "timm") if m in sys.modules)}}
        work = {str(tmp_path)!r}

        def build():
            seen["when_built"] = sorted(m for m in ("torch", "timm", "openvino", "vitgallery.core.library")
                                        if m in sys.modules)
            settings = Settings.from_file(os.path.join(work, "settings.ini"))
            return MainWindow(settings, library_dir=os.path.join(work, "library"),
                              thumbnail_cache_dir=os.path.join(work, "thumbs"), decode_workers=0)

        window = start_window(build)
        seen["shown"] = window.isVisible()
        seen["switch_interval"] = sys.getswitchinterval()
        seen["frozen_out_of_gc"] = gc.get_freeze_count() > 100_000  # the runtime's and the window's objects
        seen["gc_on"] = gc.isenabled()  # paused only while they were made
        window.close()
        print(json.dumps(seen))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    loaded = sorted(["timm", "torch", "vitgallery.core.library", *(["openvino"] if OPENVINO else [])])
    assert seen == {"before": [], "when_built": loaded, "shown": True,
                    "switch_interval": pytest.approx(WINDOW_SWITCH_INTERVAL_S), "frozen_out_of_gc": True,
                    "gc_on": True}


def test_a_runtime_that_cannot_load_is_named_and_stops_the_steps(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "timm", None)  # makes `import timm` fail
    said: list[str] = []

    problem = load_model_runtime(said.append)

    assert said == EXPECTED_STEPS[:2]
    assert problem is not None
    assert problem.startswith("timm cannot be loaded (ModuleNotFoundError")
    assert "not indexed or searched" in problem


def test_a_runtime_that_fails_in_any_way_while_importing_is_named(monkeypatch) -> None:
    """A broken install raises what it likes (a torch built for another CPU: RuntimeError)."""

    def broken(name: str):
        raise RuntimeError("this build of torch needs AVX2")

    monkeypatch.setattr("vitgallery.ui.workers.importlib.import_module", broken)

    problem = load_model_runtime(lambda step: None)

    assert problem is not None
    assert problem.startswith("torch cannot be loaded (RuntimeError: this build of torch needs AVX2)")


def test_the_window_opens_without_the_runtime_and_says_why(qtbot, monkeypatch, settings: Settings,
                                                           tmp_path: Path) -> None:
    monkeypatch.setattr(app_module, "load_model_runtime",
                        lambda step: "torch cannot be loaded (No module named 'torch'): photos can be browsed")

    def build() -> MainWindow:
        window = MainWindow(settings, library_dir=tmp_path / "library", thumbnail_cache_dir=tmp_path / "thumbs",
                            decode_workers=0)
        qtbot.addWidget(window)
        return window

    window = start_window(build)

    assert window.isVisible()
    assert window.message_bar.isVisible()
    assert "torch cannot be loaded" in window.message_bar.text()
