#!/usr/bin/env python3
"""What a library's int8 calibration costs, and what each of its steps buys (issue 18, points 1 and 2).

    python bench/lab/quantise_lab.py time PHOTOS --weights W --variants default no-smooth-quant ...
    python bench/lab/quantise_lab.py quality TASK... --weights W --variant NAME [--scorer S]

`time`: each variant quantises the same inputs (openvino_runtime.calibration_inputs of PHOTOS, the 64
photos the app takes, or the first half of them for `photos-32`) in a fresh process with an empty
cache folder, then again with the cache the first run left (the model's fp32 conversion kept): wall
and CPU seconds of Embedder.calibrate, and the gaps over 50 ms a thread sleeping 2 ms at a time saw
(the interpreter held: what a window's event loop would wait). `quality`: bench/runtime_quality.py's openvino:int8 with the variant's
settings (its table: plain and whitened mAP, no re-rank), to hold against torch bf16's figures there.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/

# nncf.quantize keyword arguments of each variant; "photos" is how many photos calibrate.
VARIANTS = {
    "default": {},
    "no-smooth-quant": {"smooth_quant": False},
    "no-bias-correction": {"bias_correction": False},
    "photos-32": {"photos": 32},
    "photos-32-no-smooth-quant": {"photos": 32, "smooth_quant": False},
    "cpu-target": {"target_cpu": True},
}


def apply_variant(name: str) -> None:
    """Patch the app's quantisation to the variant's settings (this process only)."""
    import nncf
    from nncf.quantization.advanced_parameters import (
        AdvancedQuantizationParameters,
        AdvancedSmoothQuantParameters,
    )

    from vitgallery.core import openvino_runtime

    settings = VARIANTS[name]
    quantize = nncf.quantize

    def patched(model, dataset, **kwargs):
        advanced = AdvancedQuantizationParameters()
        if settings.get("smooth_quant") is False:
            advanced.smooth_quant_alphas = AdvancedSmoothQuantParameters(matmul=-1)
        if settings.get("bias_correction") is False:
            advanced.disable_bias_correction = True
        if settings.get("target_cpu"):
            kwargs["target_device"] = nncf.TargetDevice.CPU
        return quantize(model, dataset, advanced_parameters=advanced, **kwargs)

    nncf.quantize = patched
    inputs = openvino_runtime.calibration_inputs
    photos = settings.get("photos", openvino_runtime.CALIBRATION_PHOTOS)
    openvino_runtime.calibration_inputs = lambda paths, size, **kw: inputs(paths, size, count=photos, **kw)


def time_one(photos: Path, weights: str, variant: str) -> dict:
    from vitgallery.core import openvino_runtime
    from vitgallery.core.models import load_embedder

    apply_variant(variant)
    embedder = load_embedder("dinov2-s14", weights=weights, device="cpu", runtime="openvino", precision="int8")
    paths = sorted(p for p in photos.iterdir() if p.is_file())
    inputs = openvino_runtime.calibration_inputs(paths, embedder.input_size)
    gaps: list[float] = []
    done = threading.Event()

    def heartbeat() -> None:
        last = time.perf_counter()
        while not done.is_set():
            time.sleep(0.002)
            now = time.perf_counter()
            gaps.append((now - last) * 1000)
            last = now

    watcher = threading.Thread(target=heartbeat)
    watcher.start()
    wall, cpu = time.monotonic(), time.process_time()
    with tempfile.TemporaryDirectory() as folder:
        embedder.calibrate(inputs, Path(folder))
    done.set()
    watcher.join()
    return {"variant": variant, "photos": len(inputs), "wall_s": round(time.monotonic() - wall, 1),
            "cpu_s": round(time.process_time() - cpu, 1), "gaps_over_50ms": sum(g > 50 for g in gaps),
            "longest_gap_ms": round(max(gaps, default=0.0))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["time", "quality", "time-one"])
    ap.add_argument("paths", nargs="+", type=Path)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--variant", default="default", choices=list(VARIANTS))
    ap.add_argument("--scorer", type=Path)
    a = ap.parse_args()
    if a.mode == "time-one":
        print(json.dumps(time_one(a.paths[0], a.weights, a.variant)), flush=True)
        return 0
    if a.mode == "time":
        for variant in a.variants:  # a fresh process each: no variant inherits another's warm caches
            with tempfile.TemporaryDirectory(prefix="vg-quantise-cache-") as cache:
                for _ in ("conversion made", "conversion kept"):
                    subprocess.run([sys.executable, __file__, "time-one", str(a.paths[0]), "--weights", a.weights,
                                    "--variant", variant], check=True, stderr=subprocess.DEVNULL,
                                   env={**os.environ, "XDG_CACHE_HOME": cache})
        return 0
    apply_variant(a.variant)
    import runtime_quality

    sys.argv = ["runtime_quality.py", *map(str, a.paths), "--weights", a.weights, "--runtimes", "openvino:int8",
                *(["--scorer", str(a.scorer)] if a.scorer else [])]
    return runtime_quality.main()


if __name__ == "__main__":
    sys.exit(main())
