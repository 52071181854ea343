#!/usr/bin/env python3
"""The limit this machine puts on indexing, and how close a real first index comes to it (issue 18, point 1).

    python bench/make_12mp_corpus.py /tmp/vg-corpus/dup/images /tmp/vg-12mp --glob 'g*_0.jpg'
    python bench/index_limit.py --corpus /tmp/vg-12mp --weights W [--runtime torch|openvino] [--precision auto]

In one run:
1. the CPU cost per photo of each stage on one core (read + fingerprint, JPEG decode, model input,
   sharpness, keypoints, the teaching views of a sampled photo) and of the model for every runtime and
   precision available (one thread, batch 16);
2. the limit: photos/s that all cores allow for the first pass (decode + keypoints + one forward pass of
   the chosen model) and for the whole first index (plus the learning the library does);
3. the fp32 model-only rate: torch fp32 on photos decoded beforehand, every core, batch 16;
4. a real first index (Library.index with the chosen model, the app's plan of workers and threads) of
   the corpus into a fresh library: wall time of each phase (embedding, learning, fitting, saving),
   the CPU time of this process (the model), plus the decode workers' share from the stage costs.

Goals: the embedding phase >= 0.85 x the first-pass limit; the whole first index >= 0.7 x the fp32
model-only rate. On a machine shared with other jobs wall rates follow the CPU share each part got;
the CPU-time columns ("if the cores were ours") are what the same work would take on idle cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vitgallery.core import openvino_runtime
from vitgallery.core.imageio import (
    Teaching,
    decode_for_model,
    model_draft_size,
    open_image,
    photo_features,
    sharpness,
    squeeze_to_model,
    teaching_views,
    trim_frame,
    working_copy,
)
from vitgallery.core.pipeline import available_cores, plan_resources
from vitgallery.core.preprocess import teaching_views_per_photo
from vitgallery.core.scan import fingerprint_bytes

# Decode workers import this script again (forkserver): keep torch out of them.
if __name__ != "__mp_main__":
    import torch

    from vitgallery.core.indexing import WHITENING_SAMPLE, IndexProgress, planned_decoders
    from vitgallery.core.library import Library
    from vitgallery.core.models import DEFAULT_MODEL, Embedder, load_embedder

BATCH = 16
GOAL_EMBEDDING_OVER_LIMIT = 0.85
GOAL_INDEX_OVER_FP32_MODEL = 0.7


def cpu_ms_per(items: int, work: Callable[[], object]) -> float:
    started = time.process_time()
    work()
    return 1000 * (time.process_time() - started) / items


def stage_costs(paths: list[Path], size: int, views: int) -> dict[str, float]:
    datas = [p.read_bytes() for p in paths]
    draft = model_draft_size(size)
    decode_for_model(datas[0], size)  # first use: plugin registry, OpenCV
    images = [open_image(d, draft_size=draft) for d in datas]
    works = [working_copy(im) for im in images]
    n = len(paths)
    return {
        "read + fingerprint": cpu_ms_per(n, lambda: [fingerprint_bytes(p.read_bytes()) for p in paths]),
        "JPEG decode (draft) + EXIF": cpu_ms_per(n, lambda: [open_image(d, draft_size=draft) for d in datas]),
        "model input (working copy, trim, resize)": cpu_ms_per(
            n, lambda: [squeeze_to_model(trim_frame(working_copy(im)), size) for im in images]),
        "sharpness": cpu_ms_per(n, lambda: [sharpness(w) for w in works]),
        "keypoints (SIFT) + grey copies": cpu_ms_per(n, lambda: [photo_features(w) for w in works]),
        f"teaching views ({views}) of a taught photo": cpu_ms_per(n, lambda: [
            teaching_views(t, squeeze_to_model(t, size), Teaching(i, views))
            for i, t in enumerate(trim_frame(w) for w in works)]),
    }


def model_costs(embedders: dict[str, Embedder], pixels: np.ndarray) -> dict[str, float]:
    """CPU ms per photo, one thread (torch) or the plan's threads (OpenVINO: one on <= 2 cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    costs = {}
    try:
        for name, embedder in embedders.items():
            embedder.embed_pixels(pixels[:BATCH])  # warm-up
            costs[name] = cpu_ms_per(len(pixels), lambda e=embedder: [e.embed_pixels(pixels[i:i + BATCH])
                                                                       for i in range(0, len(pixels), BATCH)])
    finally:
        torch.set_num_threads(threads)
    return costs


def model_only_rate(embedder: Embedder, pixels: np.ndarray, threads: int) -> float:
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        embedder.embed_pixels(pixels[:BATCH])
        started = time.perf_counter()
        for i in range(0, len(pixels), BATCH):
            embedder.embed_pixels(pixels[i:i + BATCH])
        return len(pixels) / (time.perf_counter() - started)
    finally:
        torch.set_num_threads(previous)


def first_index(embedder: Embedder, corpus: Path) -> tuple[dict[str, float], int, int, float]:
    """(seconds per phase, photos, teaching photos, CPU seconds of this process). The decode workers
    are not counted: they are children of the forkserver, which outlives the run."""
    marks: dict[str, float] = {}

    def progress(p: IndexProgress) -> None:
        marks.setdefault(p.phase, time.perf_counter())

    cpu_before = _cpu_seconds()
    with tempfile.TemporaryDirectory() as lib_dir:
        library = Library.open(corpus, lib_dir)
        started = time.perf_counter()
        summary = library.index(embedder, progress=progress)
        marks["end"] = time.perf_counter()
        library.close()
    cpu = _cpu_seconds() - cpu_before
    order = [phase for phase in ("scanning", "embedding", "learning", "fitting", "saving", "end") if phase in marks]
    phases = {phase: marks[following] - marks[phase] for phase, following in zip(order, order[1:])}
    phases["total"] = marks["end"] - started
    return phases, summary.added, summary.teaching, cpu


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--runtime", default="torch")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--skip-variants", action="store_true", help="cost only the chosen model, not every variant")
    ap.add_argument("--stage-photos", type=int, default=16)
    ap.add_argument("--model-photos", type=int, default=48)
    ap.add_argument("--no-index", action="store_true", help="stage costs and limits only")
    a = ap.parse_args()

    paths = sorted(a.corpus.glob("*.jpg"))
    if not paths:
        print(f"no JPEGs in {a.corpus}", file=sys.stderr)
        return 1
    cores = available_cores()
    chosen = load_embedder(a.model, weights=a.weights, device="cpu", precision=a.precision, runtime=a.runtime)
    print(f"# chosen: {chosen.signature}; load {os.getloadavg()[0]:.1f}", file=sys.stderr)
    size = chosen.input_size
    taught = min(len(paths), WHITENING_SAMPLE)
    views = teaching_views_per_photo(taught)
    stages = stage_costs(paths[: a.stage_photos], size, views)
    pixels = np.stack([decode_for_model(p, size).pixels for p in paths[: a.model_photos]])
    variants = {f"torch {p}": ("torch", p) for p in ("fp32", "bf16", "int8")}
    if all(importlib.util.find_spec(name) for name in ("openvino", "nncf")):
        variants.update({f"openvino {p}": ("openvino", p) for p in ("bf16", "int8")})
    if a.skip_variants:
        variants = {"torch fp32": ("torch", "fp32")}
    embedders = {name: load_embedder(a.model, weights=a.weights, device="cpu", runtime=rt, precision=p)
                 for name, (rt, p) in variants.items()}
    chosen_name = f"{chosen.runtime} {chosen.precision}"
    embedders.setdefault(chosen_name, chosen)
    calibrated_models = tempfile.TemporaryDirectory(prefix="vg-index-limit-")
    uncalibrated = [name for name, embedder in embedders.items() if embedder.needs_calibration]
    if uncalibrated:  # OpenVINO int8, calibrated on the corpus as a library of it would be
        calibration = openvino_runtime.calibration_inputs(paths, size)
        for name in uncalibrated:
            embedders[name] = embedders[name].calibrate(calibration, Path(calibrated_models.name))
    models = model_costs(embedders, pixels)
    fp32_rates = [model_only_rate(embedders["torch fp32"], pixels, cores)]
    print(f"# stages and models measured; load {os.getloadavg()[0]:.1f}", file=sys.stderr)

    decode_ms = sum(ms for name, ms in stages.items() if not name.startswith("teaching"))
    first_pass_ms = decode_ms + models[chosen_name]
    # The learning the library does: each taught photo's views, made from its decode, embedded.
    learning_ms = taught / len(paths) * (stages[f"teaching views ({views}) of a taught photo"]
                                         + views * models[chosen_name])
    limit_first = 1000 * cores / first_pass_ms
    limit_whole = 1000 * cores / (first_pass_ms + learning_ms)
    fp32_cpu_rate = 1000 * cores / models["torch fp32"]

    result = None
    if not a.no_index:
        result = first_index(chosen, a.corpus)
        fp32_rates.append(model_only_rate(embedders["torch fp32"], pixels, cores))
    fp32_rate = statistics.mean(fp32_rates)

    photo_bytes = sum(p.stat().st_size for p in paths) / len(paths)
    plan = dataclasses.replace(plan_resources("cpu"),  # with the decoders Library.index plans for this run
                               decode_workers=planned_decoders(chosen, len(paths), taught, views, photo_bytes))
    print(f"\n{len(paths)} photos of {photo_bytes / 1e6:.1f} MB in {a.corpus}, "
          f"{cores} cores, plan {plan}; load average {os.getloadavg()[0]:.1f} at the end")
    print("\nCPU ms per photo, one core:")
    for name, ms in stages.items():
        print(f"  {name:<44}{ms:>8.1f}")
    print(f"  {'= decode, all of it (the first pass)':<44}{decode_ms:>8.1f}")
    for name, ms in models.items():
        mark = "  <- chosen" if name == chosen_name else ""
        print(f"  {'model, ' + name:<44}{ms:>8.1f}{mark}")
    print(f"\nlimit on {cores} idle cores with {chosen_name}: first pass {limit_first:.1f} photos/s; whole first "
          f"index, learning as the library does it ({taught} photos taught, {views} views each), {limit_whole:.1f} photos/s")
    print(f"fp32 model-only (torch, {cores} threads, batch {BATCH}): {fp32_rate:.1f} photos/s measured "
          f"(runs: {' '.join(f'{r:.1f}' for r in fp32_rates)}); {fp32_cpu_rate:.1f} if the cores were ours")
    if result is not None:
        phases, photos, teaching, cpu = result
        embedding_rate = photos / phases["embedding"]
        whole_rate = photos / phases["total"]
        # The workers' share from the stage costs of this run: every photo decoded, the taught ones' views.
        worker_ms = decode_ms + teaching / photos * stages[f"teaching views ({views}) of a taught photo"]
        cpu_rate = 1000 * cores / (1000 * cpu / photos + worker_ms)
        print(f"\nfirst index (Library.index, {photos} photos, {teaching} taught): "
              + ", ".join(f"{k} {v:.1f} s" for k, v in phases.items()))
        print(f"  embedding phase {embedding_rate:.1f} photos/s = {embedding_rate / limit_first:.2f} x the first-pass "
              f"limit (goal >= {GOAL_EMBEDDING_OVER_LIMIT})")
        print(f"  whole index {whole_rate:.1f} photos/s = {whole_rate / fp32_rate:.2f} x the fp32 model-only rate "
              f"(goal >= {GOAL_INDEX_OVER_FP32_MODEL})")
        print(f"  CPU time {1000 * cpu / photos:.1f} ms per photo in this process (the model) + {worker_ms:.1f} in "
              f"the decode workers (stage costs): {cpu_rate:.1f} photos/s if the cores were ours = "
              f"{cpu_rate / fp32_cpu_rate:.2f} x fp32 model-only the same way")
    return 0


if __name__ == "__main__":
    sys.exit(main())
