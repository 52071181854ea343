#!/usr/bin/env python3
"""The screenshots in docs/: the real window in the states a user meets, on a real library.

Run under an X server (Xvfb is enough), with a folder indexed by the real model:

    vitgallery index FOLDER --library LIB --weights dinov2_vits14_pretrain.pth
    xvfb-run -s '-screen 0 1280x800x24' python bench/screenshots.py FOLDER --library LIB \\
        --weights dinov2_vits14_pretrain.pth --same QUERY1 --nothing QUERY2 --out docs

QUERY1 is a photo with copies in FOLDER (an edited copy of one, not in the folder itself), QUERY2 one
like nothing in it. A damaged file in FOLDER shows on the Problems page. Each state is saved with ImageMagick's `import -window root` as
OUT/screenshot-<state>.png. A state whose library is indexed anew (the partial index) uses a scratch
copy of LIB, so LIB is left as it was.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from vitgallery.ui import settings as opt
from vitgallery.ui.app import apply_color_scheme, create_application
from vitgallery.ui.drop import QuerySource
from vitgallery.ui.main_window import MainWindow
from vitgallery.ui.settings import Settings
from vitgallery.ui.settings_dialog import SettingsDialog

WAIT_S = 600
OPENED: list[MainWindow] = []  # each window's jobs are waited for before the process exits


def wait_until(app: QApplication, condition: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the window did not get there in time")
        app.processEvents()
        time.sleep(0.02)


def settle(app: QApplication, seconds: float = 1.5) -> None:
    """Let thumbnails arrive and the window repaint before the capture."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def capture(app: QApplication, out: Path, state: str) -> None:
    settle(app)
    target = out / f"screenshot-{state}.png"
    subprocess.run(["import", "-window", "root", str(target)], check=True)
    print(f"saved {target}", flush=True)


def make_window(args: argparse.Namespace, work: Path, library: Path, weights: Path | None, size=(1280, 800)):
    settings = Settings.from_file(work / f"settings-{time.monotonic_ns()}.ini")
    settings.set(opt.MODEL, args.model)
    settings.set(opt.WEIGHTS, str(weights) if weights else "")
    settings.set(opt.THUMBNAIL_SIZE, 150)
    window = MainWindow(settings, library_dir=library, thumbnail_cache_dir=work / "thumbs")
    window.setGeometry(0, 0, *size)
    window.show()
    OPENED.append(window)
    return window


def searched(app: QApplication, window: MainWindow, query: Path) -> None:
    shown: list[int] = []
    window.results_shown.connect(shown.append)
    window.set_query(QuerySource(label=query.name, path=query))
    wait_until(app, lambda: bool(shown))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--library", type=Path, required=True, help="the folder's library, indexed with real weights")
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--model", default="dinov2-s14", help="tiny-test tries the script out in seconds")
    parser.add_argument("--same", type=Path, required=True, help="a query with copies in the folder")
    parser.add_argument("--nothing", type=Path, required=True, help="a query like nothing in the folder")
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args()
    app = create_application()
    apply_color_scheme(app, Qt.ColorScheme.Light)
    work = Path(tempfile.mkdtemp(prefix="vg-screenshots-"))

    # The start page: no folder opened yet (a library of its own, so none is remembered).
    window = make_window(args, work, work / "start-library", args.weights)
    capture(app, args.out, "start-page")
    window.close()

    window = make_window(args, work, args.library, args.weights)
    indexed: list[object] = []
    window.indexing_finished.connect(indexed.append)
    window.open_folder(args.folder)
    wait_until(app, lambda: bool(indexed))
    window.tabs.setCurrentWidget(window.folder_stack)
    capture(app, args.out, "folder")
    window.tabs.setCurrentWidget(window.problems_panel)
    capture(app, args.out, "problems")
    dialog = SettingsDialog(window.settings, window)
    dialog.show()
    dialog.move(window.x() + 240, window.y() + 120)
    capture(app, args.out, "settings")
    dialog.close()

    searched(app, window, args.same)
    capture(app, args.out, "same-and-similar")
    window.search_page.open_preview(0)
    preview = window.search_page.preview
    wait_until(app, lambda: preview is not None and preview.has_image())
    preview.setGeometry(60, 40, 1160, 700)
    preview.photo_view.actual_size()
    capture(app, args.out, "preview-1to1")
    preview.close()

    searched(app, window, args.nothing)
    capture(app, args.out, "nothing-alike")
    window.query_panel.threshold_slider.setValue(90)
    capture(app, args.out, "threshold-hides-all")
    window.query_panel.threshold_slider.setValue(0)

    window.resize(800, 600)
    searched(app, window, args.same)
    capture(app, args.out, "800px")
    window.close()

    # Dark palette: the duplicates page with its check boxes.
    apply_color_scheme(app, Qt.ColorScheme.Dark)
    window = make_window(args, work, args.library, args.weights)
    window.open_folder(args.folder)
    wait_until(app, lambda: window.duplicates_view.scan_button.isEnabled())
    window.tabs.setCurrentWidget(window.duplicates_view)
    scanned: list[int] = []
    window.duplicates_view.scan_finished.connect(scanned.append)
    window.duplicates_view.start_scan()
    wait_until(app, lambda: bool(scanned))
    window.duplicates_view.group_list.setCurrentRow(0)
    capture(app, args.out, "dark-duplicates")
    window.close()
    apply_color_scheme(app, Qt.ColorScheme.Light)

    # A first run: the weights file is missing, then a fresh library is indexed and searched early.
    window = make_window(args, work, work / "missing-weights-library", work / "moved-away.pth")
    window.open_folder(args.folder)
    wait_until(app, lambda: window.message_bar.has_action() and window.message_bar.isVisible())
    capture(app, args.out, "choose-weights")
    window.close()

    scratch = work / "fresh-library"
    window = make_window(args, work, scratch, args.weights)
    window.open_folder(args.folder)
    embedded: list[int] = []
    window.index_progress.connect(
        lambda progress: embedded.append(progress.done) if getattr(progress, "phase", "") == "embedding" else None
    )
    wait_until(app, lambda: bool(embedded) and embedded[-1] >= 24)
    searched(app, window, args.same)
    capture(app, args.out, "partial-index")
    window.close()
    for opened in OPENED:  # as the app does after its window closed: no thread left running at exit
        opened.jobs.wait(WAIT_S)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":  # decoding processes start from the forkserver and import this module
    sys.exit(main())
