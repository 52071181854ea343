"""Memory and time of a duplicates scan as the features it may hold in memory change.

Indexes the photos of the folders given (copied flat into one scratch folder) with a model, then
scans the library once per `--in-memory` value, each in a fresh process, and prints one JSON line per
scan: photos, candidate pairs, seconds, and the scanning process's peak resident memory (VmHWM, from
/proc on Linux: getrusage would report the parent's peak, which an exec'd child inherits), which
includes about 70 MB of imports and the index.

    python bench/duplicates_scale.py /tmp/vg-corpus/dup/images /tmp/vg-corpus-s2/dup/images ... \\
        --in-memory 256 4096 1000000 [--model tiny-test]

The tiny test model makes indexing quick; its neighbours are as many as a real model's (20 a photo),
so the scan verifies as many pairs, only different ones.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vitgallery.core.duplicates import scan_duplicates  # noqa: E402
from vitgallery.core.library import Library  # noqa: E402


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024)
    raise SystemExit("needs Linux's /proc/self/status")


def scan_once(photos: Path, library_dir: Path, in_memory: int) -> dict:
    library = Library.open(photos, library_dir)
    started = time.monotonic()
    scan = scan_duplicates(library, features_in_memory=in_memory)
    seconds = time.monotonic() - started
    library.close()
    return {"in_memory": in_memory, "photos": len(scan.files), "pairs": len(scan.pairs), "seconds": round(seconds, 1),
            "peak_rss_mb": peak_rss_mb()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="*", type=Path)
    parser.add_argument("--in-memory", nargs="+", type=int, default=[256, 4096, 1_000_000])
    parser.add_argument("--model", default="tiny-test")
    parser.add_argument("--weights")
    parser.add_argument("--scan-only", nargs=3, metavar=("PHOTOS", "LIBRARY", "IN_MEMORY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scan_only:
        photos, library_dir, in_memory = args.scan_only
        print(json.dumps(scan_once(Path(photos), Path(library_dir), int(in_memory))))
        return 0
    if not args.folders:
        parser.error("give at least one folder of photos")

    from vitgallery.core.models import load_embedder

    with tempfile.TemporaryDirectory() as scratch:
        photos, library_dir = Path(scratch) / "photos", Path(scratch) / "library"
        photos.mkdir()
        for n, folder in enumerate(args.folders):
            for image in sorted(folder.iterdir()):
                shutil.copy(image, photos / f"{n}-{image.name}")
        library = Library.open(photos, library_dir)
        started = time.monotonic()
        library.index(load_embedder(args.model, weights=args.weights))
        library.close()
        print(json.dumps({"indexed": len(list(photos.iterdir())), "seconds": round(time.monotonic() - started, 1)}),
              flush=True)
        for in_memory in args.in_memory:
            # each scan on a copy of the library as indexed: a scan kept in it would make the next instant
            scanned = Path(scratch) / f"library-{in_memory}"
            shutil.copytree(library_dir, scanned)
            subprocess.run([sys.executable, __file__, "--scan-only", str(photos), str(scanned), str(in_memory)],
                           check=True)
            shutil.rmtree(scanned)
    return 0


if __name__ == "__main__":
    sys.exit(main())
