"""What the reliability checks cost at a library size: checking the hnswlib payload before hnswlib loads
it (VectorIndex.load, index._check_payload), and the scan for damaged rows that starts every index run
(Store.drop_damaged_rows). Prints one JSON object; medians of --repeat runs.

    python bench/reliability_costs.py --photos 100000
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from vitgallery.core.index import VectorIndex, _check_payload, read_header
from vitgallery.core.store import EmbeddedFile, Store


def median_seconds(action, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((args.photos, args.dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        index = VectorIndex(args.dim, "bench", capacity=args.photos)
        started = time.perf_counter()
        for start in range(0, args.photos, 10_000):
            index.add(np.arange(start, min(start + 10_000, args.photos)), vectors[start:start + 10_000])
        build_s = time.perf_counter() - started
        path = folder / "index.hnsw"
        index.save(path, generation=1)
        header = read_header(path)
        load_s = median_seconds(lambda: VectorIndex.load(path, model_signature="bench", dim=args.dim), args.repeat)
        check_s = median_seconds(lambda: _check_payload(path, header, args.dim), args.repeat)

        store = Store(folder / "library.sqlite3")
        store.start_new_model("bench", args.dim)
        for start in range(0, args.photos, 10_000):
            store.add_embedded([EmbeddedFile(f"photos/{i:07d}.jpg", 1, 1, f"{i:032x}", 4000, 3000, None, 1.0, vectors[i])
                                for i in range(start, min(start + 10_000, args.photos))])
        scan_s = median_seconds(store.drop_damaged_rows, args.repeat)
        store.close()
    print(json.dumps({"photos": args.photos, "dim": args.dim, "payload_mb": round(header.payload_bytes / 2**20, 1),
                      "index_build_s": round(build_s, 1), "index_load_s": load_s, "payload_check_s": check_s,
                      "damaged_row_scan_s": scan_s}))


if __name__ == "__main__":
    main()
