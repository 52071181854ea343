#!/usr/bin/env python3
"""A library of N x the photos of an indexed one, in minutes: for measuring the window's start and the
library's size at 100,000 photos without indexing 100,000 (issue 18, point 5).

    python bench/make_12mp_corpus.py BASES PHOTOS/m000 --count 1000 --long-side 1600
    vitgallery index PHOTOS --library LIB --weights W          # the 1,000 photos, in PHOTOS/m000
    python bench/replicate_library.py PHOTOS --library LIB --copies 99
    vitgallery index PHOTOS --library LIB --weights W          # rebuilds the index file: 100,000 vectors

Every photo of PHOTOS/m000 gets hard links in PHOTOS/m001 ... (same size and time, so an index run finds
them unchanged), and the library a row for each, with the original's vector, keypoints and grey copies;
the index file is removed, so the next run rebuilds it from the rows. What depends on how many photos
and rows there are (listing, the grid, the library's checks, loading the index) is as in a real library of
that size; what depends on their content is not (each picture is there N + 1 times), so it does not
stand in for a duplicates scan.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vitgallery.core.library import DB_NAME  # noqa: E402

ORIGINALS = "m000"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", type=Path, help=f"the library's folder; its photos are in {ORIGINALS}/")
    parser.add_argument("--library", type=Path, required=True)
    parser.add_argument("--copies", type=int, default=99)
    args = parser.parse_args()

    originals = sorted((args.photos / ORIGINALS).iterdir())
    db = sqlite3.connect(args.library / DB_NAME)
    indexed = db.execute("SELECT COUNT(*) FROM files WHERE path LIKE ?", (f"{ORIGINALS}/%",)).fetchone()[0]
    others = db.execute("SELECT COUNT(*) FROM files WHERE path NOT LIKE ?", (f"{ORIGINALS}/%",)).fetchone()[0]
    if indexed != len(originals) or others:
        sys.exit(f"the library should hold just the {len(originals)} photos of {ORIGINALS}/ (it holds "
                 f"{indexed} of them and {others} others): index that folder alone first")
    for copy in range(1, args.copies + 1):
        folder = args.photos / f"m{copy:03d}"
        folder.mkdir(exist_ok=True)
        for photo in originals:
            if not (folder / photo.name).exists():
                os.link(photo, folder / photo.name)
    with db:
        db.execute("CREATE TEMP TABLE copies (n INTEGER)")
        db.executemany("INSERT INTO copies VALUES (?)", [(n,) for n in range(1, args.copies + 1)])
        db.execute("CREATE TEMP TABLE originals AS SELECT * FROM files")
        db.execute("""INSERT INTO files (path, size, mtime_ns, fingerprint, width, height, taken_at, sharpness,
                                         vector, indexed_at, vector_generation)
                      SELECT printf('m%03d/', copies.n) || substr(o.path, :tail), o.size, o.mtime_ns, o.fingerprint,
                             o.width, o.height, o.taken_at, o.sharpness, o.vector, o.indexed_at, o.vector_generation
                      FROM originals o, copies ORDER BY copies.n, o.path""", {"tail": len(ORIGINALS) + 2})
        db.execute("""INSERT INTO keypoints (file_id, data, looks)
                      SELECT f.id, k.data, k.looks FROM files f
                      JOIN originals o ON o.path = :originals || '/' || substr(f.path, :tail)
                      JOIN keypoints k ON k.file_id = o.id
                      WHERE f.path NOT LIKE :originals || '/%'""", {"originals": ORIGINALS, "tail": len(ORIGINALS) + 2})
    total = db.execute("SELECT COUNT(*) FROM files").fetchone()[0]
    db.close()
    for name in ("index.hnsw", "index.json", "index.labels.npy"):
        (args.library / name).unlink(missing_ok=True)
    print(f"{total} photos in {args.library}; run `vitgallery index` once to rebuild its index file")


if __name__ == "__main__":
    main()
