#!/usr/bin/env python3
"""A large real library once indexed: its size on disk, query latency, and the duplicates scan (issue 18, point 4).

    python bench/make_12mp_corpus.py BASES /tmp/photos --count 8000 --long-side 1600
    /usr/bin/time -v vitgallery index /tmp/photos --library /tmp/lib --weights W    # time, peak memory
    python bench/library_scale.py /tmp/photos --library /tmp/lib --weights W [--queries 40]

Prints one JSON object:
* the library folder's size on disk, in all and per photo;
* the first search's cost (opening the library, loading the model, the index from its file);
* drop to first results: `Library.search` of a photo that is not in the library (a crop of one of
  them, written outside it, so the model embeds it and the SIFT re-rank checks the top candidates),
  p50 and p95 over `--queries` photos; and of a photo of the library (its stored vector);
* the duplicates scan (`Library.duplicate_scan`, keypoints stored at index time): seconds, groups;
  with `--scan-minutes M` it is cancelled after M minutes (it keeps what it verified) and the JSON
  says how far each phase got, for a library too large to scan in one sitting;
* this process's peak resident memory (VmHWM).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from PIL import Image

from vitgallery.core.library import Library


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def peak_rss_mb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024)
    raise SystemExit("needs Linux's /proc/self/status")


def crop_query(photo: Path, target: Path) -> Path:
    """The middle 80 % of a photo, saved outside the library: a query the model has to embed."""
    with Image.open(photo) as image:
        image = image.convert("RGB")
        w, h = image.size
        image.crop((w // 10, h // 10, w - w // 10, h - h // 10)).save(target, quality=90)
    return target


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def timings(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(percentile(values, 0.5), 1), "p95_ms": round(percentile(values, 0.95), 1),
            "mean_ms": round(statistics.fmean(values), 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("photos", type=Path)
    ap.add_argument("--library", type=Path, required=True)
    ap.add_argument("--weights")
    ap.add_argument("--queries", type=int, default=40)
    ap.add_argument("--no-duplicates", action="store_true", help="skip the duplicates scan")
    ap.add_argument("--scan-minutes", type=float, help="cancel the scan after this long and report how far it got")
    a = ap.parse_args()

    result: dict[str, object] = {}
    started = time.perf_counter()
    library = Library.open(a.photos, a.library)
    embedder = library.load_embedder(device="cpu", weights=a.weights)
    photos = sorted(p for p in a.photos.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))  # month folders too
    library.search(photos[0], k=20, embedder=embedder)  # the index is loaded on first use
    result["photos"] = library.photo_count()
    result["library_mb"] = round(folder_bytes(a.library) / 1e6, 1)
    result["library_kb_per_photo"] = round(folder_bytes(a.library) / 1e3 / max(1, library.photo_count()), 1)
    result["open_load_model_first_search_s"] = round(time.perf_counter() - started, 1)

    chosen = [photos[(2 * i + 1) * len(photos) // (2 * a.queries)] for i in range(a.queries)]
    with tempfile.TemporaryDirectory(prefix="vg-scale-queries-") as scratch:
        queries = [crop_query(photo, Path(scratch) / f"q{i}.jpg") for i, photo in enumerate(chosen)]
        dropped = []
        for query in queries:
            begun = time.perf_counter()
            library.search(query, k=20, embedder=embedder)
            dropped.append(1000 * (time.perf_counter() - begun))
    stored = []
    for photo in chosen:
        begun = time.perf_counter()
        library.search(photo, k=20, embedder=embedder)
        stored.append(1000 * (time.perf_counter() - begun))
    result["query_new_photo"] = timings(dropped)
    result["query_library_photo"] = timings(stored)
    print(json.dumps(result), file=sys.stderr, flush=True)

    if not a.no_duplicates:
        cancel = threading.Event()
        deadline = threading.Timer(60 * (a.scan_minutes or 0), cancel.set)
        if a.scan_minutes:
            deadline.start()
        phases: dict[str, dict[str, float]] = {}
        begun = time.perf_counter()

        def seen(p) -> None:  # when each phase started, and how far it got
            phase = phases.setdefault(p.phase, {"started_s": round(time.perf_counter() - begun, 1)})
            phase.update(done=p.done, total=p.total, at_s=round(time.perf_counter() - begun, 1))

        scan = library.duplicate_scan(progress=seen, cancel=cancel)
        deadline.cancel()
        result["duplicates_scan_s"] = round(time.perf_counter() - begun, 1)
        result["duplicates_scan_cancelled"] = scan.cancelled
        result["duplicates_scan_phases"] = phases
        result["duplicate_pairs"] = len(scan.pairs)
        result["duplicate_groups"] = len(scan.groups())
    library.close()
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
