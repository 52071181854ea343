#!/usr/bin/env python3
"""The folder grid filling from a listing: the GUI thread's time per turn as a large folder opens.

usage: python bench/folder_listing.py N [N ...] [--folders F] [--growth G] [--first F] [--direct | --view] [--grid-order]

N synthetic photo paths in F folders (100; 1: one flat folder), listed folder by folder as scan_root
walks them, reach the folder grid's model (sorted by name, as the window opens a folder) in the
window's chunks (workers.listing_chunks: F photos, then each chunk G times the one before). The window
feeds them to the model through a TileFeed, a slice per turn of the event loop; --direct appends each
chunk as it arrives, as the window did before. With --grid-order the listing comes sorted by the grid's
key, as the window's listing worker sorts it since stop 32 (workers.sorted_in_runs); without it, in
the walk's order, which the feed must merge into the rows shown. Prints one JSON line per N: the turns (or chunks), the
longest and their total, in milliseconds. No view is attached: a view adds its own layout of the rows.
With --view the folder grid (PhotoGridView, 1200x800, offscreen) shows the model and the event loop
runs the feed as the window's does: it prints the longest gaps a 1 ms heartbeat saw until the grid holds
every photo and 2 s more (its batched layout of the rows included).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from vitgallery.ui.results_model import (  # noqa: E402
    PhotoGridView,
    PhotoListModel,
    PhotoTile,
    PhotoTileDelegate,
    SortOrder,
    TileFeed,
    listing_key,
)
from vitgallery.ui.workers import (  # noqa: E402
    LISTING_CHUNK_GROWTH,
    LISTING_FIRST_CHUNK,
    listing_chunks,
    sorted_in_runs,
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("counts", type=int, nargs="+")
    ap.add_argument("--first", type=int, default=LISTING_FIRST_CHUNK)
    ap.add_argument("--growth", type=int, default=LISTING_CHUNK_GROWTH)
    ap.add_argument("--folders", type=int, default=100)
    ap.add_argument("--grid-order", action="store_true", help="the listing sorted by the grid's key, as the window's")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--direct", action="store_true", help="append each listing chunk at once (before TileFeed)")
    mode.add_argument("--view", action="store_true", help="a grid view on the model; the event loop's gaps")
    a = ap.parse_args()
    app = QApplication.instance() or QApplication([])  # noqa: F841 (models need an application)
    for count in a.counts:
        per_folder = -(-count // a.folders)
        photos = [(Path(f"/photos/{i // per_folder:03d}/IMG_{i % per_folder:06d}.jpg"), 1.7e9 + i)
                  for i in range(count)]
        if a.grid_order:
            key = listing_key(SortOrder.NAME)
            photos = sorted_in_runs(photos, key=lambda photo: key(*photo))
        model = PhotoListModel()
        model.set_sort_order(SortOrder.NAME)
        turns_ms: list[float] = []
        if a.view:
            print(json.dumps({"photos": count, "folders": a.folders, "mode": "view", "grid_order": a.grid_order,
                              **view_gaps(model, photos, a.first, a.growth)}),
                  flush=True)
            continue
        if a.direct:
            for chunk in listing_chunks(photos, a.first, a.growth):
                started = time.perf_counter()
                model.append_tiles(PhotoTile(path, date=date) for path, date in chunk)
                turns_ms.append((time.perf_counter() - started) * 1000)
        else:
            feed = TileFeed(model)
            for chunk in listing_chunks(photos, a.first, a.growth):
                feed.add(chunk)
            while model.rowCount() < count:  # each call is what one turn of the window's event loop does
                started = time.perf_counter()
                feed._feed()
                turns_ms.append((time.perf_counter() - started) * 1000)
        assert model.rowCount() == count
        print(json.dumps({"photos": count, "folders": a.folders, "mode": "direct" if a.direct else "feed",
                          "grid_order": a.grid_order,
                          "turns": len(turns_ms), "longest_ms": round(max(turns_ms), 1),
                          "total_ms": round(sum(turns_ms), 1)}), flush=True)
    return 0


def view_gaps(model: PhotoListModel, photos: list[tuple[Path, float]], first: int, growth: int) -> dict:
    """The event loop's gaps while a grid view shows the model fed the whole listing (see the docstring)."""
    view = PhotoGridView(model, PhotoTileDelegate(160))
    view.resize(1200, 800)
    view.show()
    app = QApplication.instance()
    for _ in range(20):
        app.processEvents()
    gaps: list[float] = []
    last = [time.perf_counter()]

    def beat() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    heartbeat = QTimer(interval=1, timeout=beat)
    heartbeat.start()
    feed = TileFeed(model)
    started = time.perf_counter()
    filled = None
    for chunk in listing_chunks(photos, first, growth):
        feed.add(chunk)
    while filled is None or time.perf_counter() - filled < 2.0:
        app.processEvents()
        if filled is None and model.rowCount() == len(photos):
            filled = time.perf_counter()
    heartbeat.stop()
    view.close()
    longest = sorted(gaps, reverse=True)
    return {"filled_s": round(filled - started, 2), "longest_gaps_ms": [round(g * 1000, 1) for g in longest[:5]],
            "gaps_over_50ms": sum(g > 0.05 for g in gaps)}


if __name__ == "__main__":
    sys.exit(main())
