#!/usr/bin/env python3
"""The folder grid's paint, alone and beside a thread running Python (a job), as the window paints it.

    QT_QPA_PLATFORM=offscreen python bench/tile_paint.py [--paints 30] [--runs 3]

A grid of 2,000 tiles, 1200x800, every tile with a ready thumbnail (one pixmap; no loader), the
window's 1 ms switch interval. Each paint is a repaint of the viewport. Every call from the paint into
Qt gives the interpreter lock up, and a job running Python beside it may take it for up to the switch
interval: what matters is how many such calls a tile costs (docs/performance.md, issue 18 point 5).
Prints, per run, the median and the longest paint, quiet and with a busy thread.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtCore import QObject, Signal  # noqa: E402
from PySide6.QtGui import QColor, QPixmap  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from vitgallery.ui.app import WINDOW_SWITCH_INTERVAL_S  # noqa: E402
from vitgallery.ui.results_model import PhotoGridView, PhotoListModel, PhotoTileDelegate  # noqa: E402


class ReadyThumbnails(QObject):
    """Stands for the thumbnail loader once every thumbnail on screen is loaded."""

    thumbnail_ready = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.image = QPixmap(160, 120)
        self.image.fill(QColor("teal"))

    def pixmap(self, path: Path) -> QPixmap:
        return self.image

    def has_failed(self, path: Path) -> bool:
        return False


def paint_ms(view: PhotoGridView, paints: int) -> list[float]:
    times = []
    for _ in range(paints):
        started = time.perf_counter()
        view.viewport().repaint()
        times.append((time.perf_counter() - started) * 1000)
    return times


def busy_job(stop: threading.Event) -> None:
    """Python that runs until told to stop, as a job's loop over a library's rows does."""
    count = 0
    while not stop.is_set():
        count += 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paints", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    sys.setswitchinterval(WINDOW_SWITCH_INTERVAL_S)
    app = QApplication([])
    thumbnails = ReadyThumbnails()
    model = PhotoListModel(thumbnails)
    model.append_paths([Path(f"/photos/p{i:05d}.jpg") for i in range(2000)])
    view = PhotoGridView(model, PhotoTileDelegate(160))
    view.resize(1200, 800)
    view.show()
    for _ in range(20):
        app.processEvents()
    shown = sum(view.visualRect(model.index(row, 0)).intersects(view.viewport().rect())
                for row in range(model.rowCount()))
    for run in range(args.runs):
        quiet = paint_ms(view, args.paints)
        stop = threading.Event()
        thread = threading.Thread(target=busy_job, args=(stop,))
        thread.start()
        busy = paint_ms(view, args.paints)
        stop.set()
        thread.join()
        print(json.dumps({"run": run + 1, "tiles_shown": shown,
                          "quiet_ms": [round(statistics.median(quiet), 1), round(max(quiet), 1)],
                          "beside_a_busy_thread_ms": [round(statistics.median(busy), 1), round(max(busy), 1)]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
