#!/usr/bin/env python3
"""How long a library's model takes to load, with OpenVINO's compiled-model cache empty and then filled.

    python bench/model_load.py PHOTOS --library DIR --weights W [--runs 3]

Each load runs in a fresh process (imports included in its wall time, reported apart) with its own
cache folder (XDG_CACHE_HOME): per run, one load with the folder empty (the model is compiled and
kept), then one with it filled (the compiled model is read back). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ONE_LOAD = """
import json, sys, time
started = time.perf_counter()
from vitgallery.core.library import Library
imported = time.perf_counter()
library = Library.open(sys.argv[1], sys.argv[2])
embedder = library.load_embedder(weights=sys.argv[3])
loaded = time.perf_counter()
print(json.dumps({"import_s": imported - started, "load_s": loaded - imported}))
"""


def load_once(photos: Path, library: Path, weights: str, cache: Path) -> dict:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    out = subprocess.run([sys.executable, "-c", ONE_LOAD, str(photos), str(library), weights], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("photos", type=Path)
    ap.add_argument("--library", type=Path, required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    empty, filled = [], []
    for _ in range(a.runs):
        with tempfile.TemporaryDirectory(prefix="vg-model-load-") as cache:
            empty.append(load_once(a.photos, a.library, a.weights, Path(cache)))
            filled.append(load_once(a.photos, a.library, a.weights, Path(cache)))
    print(json.dumps({
        "runs": a.runs,
        "load_s_cache_empty": [round(r["load_s"], 2) for r in empty],
        "load_s_cache_filled": [round(r["load_s"], 2) for r in filled],
        "median_load_s_cache_empty": round(statistics.median(r["load_s"] for r in empty), 2),
        "median_load_s_cache_filled": round(statistics.median(r["load_s"] for r in filled), 2),
        "median_import_s": round(statistics.median(r["import_s"] for r in empty + filled), 2),
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
