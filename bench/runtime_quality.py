#!/usr/bin/env python3
"""Retrieval quality of each runtime and precision on the same photos (issue 18, point 2).

    python bench/runtime_quality.py /tmp/vg-corpus/dup /tmp/vg-corpus/sem --weights W \
        --runtimes torch:bf16 openvino:int8 [--views rule|1|2|3]

Each photo of each task is decoded once, as indexing does (decode_for_model, with the teaching views
the library would embed for it, seeded by its name: as many as preprocess.teaching_views_per_photo
gives a library of that size, 1 on the dup corpora, 3 on sem, unless --views says); every runtime
embeds the same pixels. Per runtime and task: mAP of plain cosine, and of the library's recipe without
the SIFT re-rank (whitening fitted on the photos against their teaching views, exact search, top 100),
by the shared scorer; and the cosine of each runtime's vectors to the first runtime's. The re-rank is
left out so that only the vectors differ (it reorders the top 50 by keypoints, the same for every
runtime).

`openvino:int8` is calibrated as a library of the task's photos would be, by the app's own code
(openvino_runtime.calibration_inputs: 64 of its photos spread over it; Embedder.calibrate), once per
task, into a temporary folder. `--calibration FOLDER` calibrates every task on FOLDER's photos instead
(a library calibrated on other photos than it holds).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
from learning_lab import SCORER, SHRINK, load_scorer, rank  # bench/ is on the path

from vitgallery.core import openvino_runtime
from vitgallery.core.imageio import SUPPORTED_EXTENSIONS, Teaching, decode_for_model
from vitgallery.core.indexing import WHITENING_SAMPLE
from vitgallery.core.models import DEFAULT_MODEL, Embedder, load_embedder
from vitgallery.core.preprocess import teaching_views_per_photo
from vitgallery.core.whitening import LibraryWhitening

BATCH = 16


def decode_task(task: Path, size: int, views: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(names, model inputs (N, size, size, 3), teaching views (N, views, size, size, 3))."""
    paths = sorted(p for p in (task / "images").iterdir() if p.is_file())
    count = teaching_views_per_photo(min(WHITENING_SAMPLE, len(paths))) if views == "rule" else int(views)
    decoded = [decode_for_model(p, size, Teaching(zlib.crc32(p.name.encode()), views=count)) for p in paths]
    return [p.name for p in paths], np.stack([d.pixels for d in decoded]), np.stack([d.teaching_views for d in decoded])


def calibrated(embedder: Embedder, photos: Path, work: Path) -> Embedder:
    """The embedder as a library of `photos` would index with it: int8 calibrated on them, as the app does."""
    if not embedder.needs_calibration:
        return embedder
    started = time.monotonic()
    paths = [p for p in photos.iterdir() if p.suffix.lower() in SUPPORTED_EXTENSIONS]
    ready = embedder.calibrate(openvino_runtime.calibration_inputs(paths, embedder.input_size), work)
    print(f"# calibrated on {photos} in {time.monotonic() - started:.0f} s: {ready.signature}",
          file=sys.stderr, flush=True)
    return ready


def embed(embedder, pixels: np.ndarray) -> np.ndarray:
    return np.concatenate([embedder.embed_pixels(pixels[i:i + BATCH]) for i in range(0, len(pixels), BATCH)])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tasks", nargs="+", type=Path, help="corpus task folders (images/ and truth.json)")
    ap.add_argument("--weights", required=True)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--runtimes", nargs="+", default=["torch:bf16", "openvino:int8"], help="RUNTIME:PRECISION")
    ap.add_argument("--scorer", type=Path, default=SCORER)
    ap.add_argument("--calibration", type=Path,
                    help="calibrate int8 on this folder's photos for every task (default: each task's own)")
    ap.add_argument("--views", default="rule", choices=["rule", "1", "2", "3"],
                    help="teaching views per photo: the library's rule for the task's size, or a fixed count")
    a = ap.parse_args()

    score = load_scorer(a.scorer)
    embedders = {}
    work = tempfile.TemporaryDirectory(prefix="vg-runtime-quality-")
    for choice in a.runtimes:
        runtime, _, precision = choice.partition(":")
        embedders[choice] = load_embedder(a.model, weights=a.weights, device="cpu", runtime=runtime,
                                          precision=precision)
    size = next(iter(embedders.values())).input_size
    rows = []
    for task in a.tasks:
        truth = json.loads((task / "truth.json").read_text())
        names, pixels, views = decode_task(task, size, a.views)
        count = views.shape[1]
        reference = None
        for choice, loaded in embedders.items():
            embedder = calibrated(loaded, a.calibration or task / "images", Path(work.name))
            started = time.process_time()
            vectors, taught = embed(embedder, pixels), embed(embedder, views.reshape(-1, *views.shape[2:]))
            cpu_ms = 1000 * (time.process_time() - started) / ((1 + count) * len(names))
            # Each photo paired with each of its views, as Store.learning_pairs gives them.
            whitening = LibraryWhitening.fit_pairs(vectors, np.repeat(vectors, count, axis=0), taught, shrink=SHRINK)
            plain = score(truth, rank(vectors, names))["mAP"]
            whitened = score(truth, rank(whitening.apply(vectors), names))["mAP"]
            cosine = 1.0 if reference is None else float(np.sum(vectors * reference, axis=1).mean())
            reference = vectors if reference is None else reference
            rows.append((f"{task.parent.name}/{task.name} ({count} views)", choice, plain, whitened, cosine, cpu_ms))
            print(f"# {rows[-1]}", file=sys.stderr, flush=True)
    print("| task | runtime | mAP, plain cosine | mAP, whitened (no re-rank) | cosine to first | CPU ms/img |")
    print("|---|---|---|---|---|---|")
    for task, choice, plain, whitened, cosine, cpu_ms in rows:
        print(f"| {task} | {choice} | {plain:.2f} | {whitened:.2f} | {cosine:.4f} | {cpu_ms:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
