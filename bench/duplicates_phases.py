#!/usr/bin/env python3
"""Where a first full duplicates scan's time goes: its phases on a copy of a library, evidence forgotten.

    python bench/duplicates_phases.py PHOTOS --library DIR [--work SCRATCH]

Copies the library into a scratch folder, forgets any kept scan there (the pairs and the measured
photos, as a library indexed but never scanned), scans it once in this process and prints one JSON
object: the seconds from the scan's start to each phase's first progress report and to the end, the
photos decoded for a closer look, the pairs verified and the photos measured for the keep-best rule.
The library given is not changed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vitgallery.core.duplicates import scan as scan_module  # noqa: E402
from vitgallery.core.duplicates import scan_duplicates  # noqa: E402
from vitgallery.core.library import DB_NAME, Library  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("photos", type=Path)
    ap.add_argument("--library", type=Path, required=True)
    ap.add_argument("--work", type=Path, help="scratch folder for the copy (default: a temporary one)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="vg-dup-phases-", dir=a.work) as scratch:
        copy = Path(scratch) / "library"
        shutil.copytree(a.library, copy)
        with sqlite3.connect(copy / DB_NAME) as db:
            db.execute("DELETE FROM duplicate_pairs")
            db.execute("DELETE FROM duplicate_photos")
        decoded = []
        analyse = scan_module.analyse_photo

        def counted(path):
            decoded.append(path)
            return analyse(path)

        scan_module.analyse_photo = counted
        library = Library.open(a.photos, copy)
        phases: dict[str, float] = {}
        started = time.monotonic()
        scan = scan_duplicates(library, progress=lambda p: phases.setdefault(p.phase, round(time.monotonic() - started, 1)))
        print(json.dumps({"phases_started_s": phases, "total_s": round(time.monotonic() - started, 1),
                          "photos": len(scan.files), "pairs": len(scan.pairs),
                          "decoded_for_a_closer_look": len(decoded), "measured": len(scan.quality)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
