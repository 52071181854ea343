#!/usr/bin/env python3
"""The folder grid filling from a listing: the GUI thread's time per chunk as a large folder opens.

usage: python bench/folder_listing.py N [N ...] [--growth G] [--first F]

For N synthetic photo paths (100 folders of N/100 names), the folder grid's model (sorted by name, as
the window opens a folder) takes the listing in the window's chunks (workers.listing_chunks: F photos,
then each chunk G times the one before; --growth 1 is the fixed chunks of 400 used before) and the
milliseconds of each append are timed. Prints one JSON line per N: the chunks, the longest append and
their total. No view is attached: a view adds its own layout of the rows at each reset.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtWidgets import QApplication  # noqa: E402

from vitgallery.ui.results_model import PhotoListModel, PhotoTile, SortOrder  # noqa: E402
from vitgallery.ui.workers import LISTING_CHUNK_GROWTH, LISTING_FIRST_CHUNK, listing_chunks  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("counts", type=int, nargs="+")
    ap.add_argument("--first", type=int, default=LISTING_FIRST_CHUNK)
    ap.add_argument("--growth", type=int, default=LISTING_CHUNK_GROWTH)
    a = ap.parse_args()
    app = QApplication.instance() or QApplication([])  # noqa: F841 (models need an application)
    for count in a.counts:
        photos = [(Path(f"/photos/{i % 100:03d}/IMG_{i:06d}.jpg"), 1.7e9 + i) for i in range(count)]
        model = PhotoListModel()
        model.set_sort_order(SortOrder.NAME)
        appends_ms = []
        for chunk in listing_chunks(photos, a.first, a.growth):
            started = time.perf_counter()
            model.append_tiles(PhotoTile(path, date=date) for path, date in chunk)
            appends_ms.append((time.perf_counter() - started) * 1000)
        assert model.rowCount() == count
        print(json.dumps({"photos": count, "first": a.first, "growth": a.growth, "chunks": len(appends_ms),
                          "longest_append_ms": round(max(appends_ms), 1),
                          "total_ms": round(sum(appends_ms), 1)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
