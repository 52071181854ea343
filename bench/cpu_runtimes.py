#!/usr/bin/env python3
"""CPU inference runtimes against torch on the same model (issue 18, point 2).

    python bench/cpu_runtimes.py --weights W --images /tmp/vg-corpus/dup/images \
        --calibration /tmp/vg-corpus-s2/sem/images [--rounds 3] [--batch-size 16] [--threads 2]

Each variant is the whole vector head the app runs (uint8 NHWC pixels -> normalised -> ViT -> CLS ->
unit vector), so the runtimes do the same work:
  torch-fp32, torch-bf16, torch-int8   the Embedder as the app runs it (autocast, dynamic quantisation)
  ov-f32, ov-bf16                      OpenVINO, the torch model converted, f32 or bf16 inference precision
  ov-int8                              OpenVINO, int8 weights and activations (nncf.quantize, post-training,
                                       transformer preset), calibrated on synthetic pictures
  ov-int8real                          the same calibrated on --calibration photos instead (as the app
                                       calibrates a library's model on its photos)
  ort-fp32, ort-int8                   ONNX Runtime, the torch model exported, fp32 or dynamic int8

Timing: the same batches of real photos, rounds interleaving the variants (the order reversed every
other round) so that load changes on a shared machine hit them alike; images/s and CPU ms/image are
medians over rounds. Fidelity: cosine of each variant's vectors to torch-fp32's on the timing photos.
--vectors DIR also writes each variant's vectors of every photo in --images (name order) for a lab.
Retrieval quality through the app is measured by bench/retrieval.py --runtime/--precision once a
variant is a choice of the Embedder.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from vitgallery.core import openvino_runtime
from vitgallery.core.imageio import decode_for_model
from vitgallery.core.models import DEFAULT_MODEL, MODELS, Embedder, HeadRecipe, load_embedder

Embed = Callable[[np.ndarray], np.ndarray]  # (B, H, W, 3) uint8 -> (B, dim) float32 unit vectors


def load_pixels(folder: Path, count: int, size: int) -> np.ndarray:
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:count]
    return np.stack([decode_for_model(p, size).pixels for p in paths])


def torch_variant(embedder: Embedder) -> Embed:
    return embedder.embed_pixels


def openvino_variant(head: HeadRecipe, size: int, work: Path, precision: str, threads: int,
                     calibration: np.ndarray | None = None, name: str = "") -> Embed:
    """What the app runs: the head converted (f32; bf16 is a setting of its compilation) or quantised on
    `calibration` (int8) into `work` (kept there for the next run), compiled."""
    if precision == "int8":
        folder = work / f"int8-{name}"
        kept = [p for p in folder.glob("*.xml") if not p.name.startswith(".")] if folder.exists() else []
        target = kept[0] if kept else openvino_runtime.quantise_on_photos(head, folder, size, calibration)
    else:
        target = work / "head-fp32.xml"
        if not target.exists():
            openvino_runtime.convert_file(head, size, target, target)
    return openvino_runtime.compile_model(target, threads=threads, bf16=precision != "f32")


def onnx_file(head: torch.nn.Module, size: int, work: Path) -> Path:
    path = work / "head.onnx"
    if not path.exists():
        example = torch.zeros((1, size, size, 3), dtype=torch.uint8)
        torch.onnx.export(head, (example,), path, dynamo=False, input_names=["pixels"], output_names=["vectors"],
                          dynamic_axes={"pixels": {0: "batch"}, "vectors": {0: "batch"}}, opset_version=17)
    return path


def onnxruntime_variant(path: Path, threads: int) -> Embed:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def embed(pixels: np.ndarray) -> np.ndarray:
        return session.run(None, {"pixels": pixels})[0].astype(np.float32, copy=False)

    return embed


def onnx_int8_file(path: Path) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared, target = path.with_name("head-prep.onnx"), path.with_name("head-int8.onnx")
    if not target.exists():
        quant_pre_process(str(path), str(prepared), skip_symbolic_shape=True)
        quantize_dynamic(str(prepared), str(target), weight_type=QuantType.QInt8)
    return target


def build_variants(names: list[str], embedder_for: Callable[[str], Embedder], threads: int,
                   calibration: np.ndarray | None, work: Path) -> dict[str, Embed]:
    variants: dict[str, Embed] = {}
    base = embedder_for("fp32")
    head = base.head_recipe
    size = base.input_size
    for name in names:
        started = time.perf_counter()
        runtime, _, precision = name.partition("-")
        if runtime == "torch":
            variants[name] = embedder_for(precision).embed_pixels
        elif runtime == "ov" and precision == "int8real":
            if calibration is None:
                raise SystemExit("ov-int8real needs --calibration photos")
            variants[name] = openvino_variant(head, size, work, "int8", threads, calibration, "photos")
        elif runtime == "ov" and precision == "int8":
            pictures = openvino_runtime.calibration_pictures(openvino_runtime.CALIBRATION_PHOTOS, size)
            variants[name] = openvino_variant(head, size, work, "int8", threads, pictures, "pictures")
        elif runtime == "ov":
            variants[name] = openvino_variant(head, size, work, precision, threads)
        elif runtime == "ort":
            path = onnx_file(head(), size, work)
            variants[name] = onnxruntime_variant(onnx_int8_file(path) if precision == "int8" else path, threads)
        else:
            raise SystemExit(f"unknown variant {name}")
        print(f"# {name}: ready in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return variants


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", help="model weights; without them random weights (same speed, meaningless vectors)")
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--images", type=Path, required=True, help="photos to time on (and to write vectors of)")
    ap.add_argument("--count", type=int, default=64, help="photos per timed pass")
    ap.add_argument("--calibration", type=Path, help="photos that calibrate ov-int8real (not the evaluation corpus)")
    ap.add_argument("--calibration-count", type=int, default=300)
    ap.add_argument("--variants", nargs="+", default=["torch-fp32", "torch-bf16", "torch-int8", "ov-f32", "ov-bf16",
                                                      "ov-int8", "ov-int8real", "ort-fp32", "ort-int8"])
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--work", type=Path, help="keep converted models here (default: a temporary folder)")
    ap.add_argument("--vectors", type=Path, help="write <variant>.npy: vectors of every photo in --images")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    spec = MODELS[a.model]
    cache: dict[str, Embedder] = {}

    def embedder_for(precision: str) -> Embedder:
        if precision not in cache:
            if a.weights:
                cache[precision] = load_embedder(a.model, weights=a.weights, device="cpu", precision=precision,
                                                 runtime="torch")
            else:
                cache[precision] = Embedder(spec, spec.build(), "random-init", torch.device("cpu"), precision=precision)
        return cache[precision]

    pixels = load_pixels(a.images, a.count, spec.input_size)
    calibration = (load_pixels(a.calibration, a.calibration_count, spec.input_size)
                   if a.calibration and "ov-int8real" in a.variants else None)
    with tempfile.TemporaryDirectory() as scratch:
        work = a.work or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        variants = build_variants(a.variants, embedder_for, a.threads, calibration, work)
        batches = [pixels[i:i + a.batch_size] for i in range(0, len(pixels), a.batch_size)]
        reference = np.concatenate([embedder_for("fp32").embed_pixels(b) for b in batches])
        cosines = {}
        for name, embed in variants.items():  # warm-up, and fidelity to torch fp32
            vectors = np.concatenate([embed(b) for b in batches])
            cosines[name] = np.sum(vectors * reference, axis=1)
        rates: dict[str, list[float]] = {name: [] for name in variants}
        cpu_ms: dict[str, list[float]] = {name: [] for name in variants}
        order = list(variants)
        for round_no in range(a.rounds):
            for name in order if round_no % 2 == 0 else order[::-1]:
                wall, cpu = time.perf_counter(), time.process_time()
                for b in batches:
                    variants[name](b)
                rates[name].append(len(pixels) / (time.perf_counter() - wall))
                cpu_ms[name].append(1000 * (time.process_time() - cpu) / len(pixels))
                print(f"# round {round_no + 1} {name}: {rates[name][-1]:.1f} images/s (load {os.getloadavg()[0]:.1f})",
                      file=sys.stderr)
        if a.vectors:
            a.vectors.mkdir(parents=True, exist_ok=True)
            everything = load_pixels(a.images, 10**9, spec.input_size)
            for name, embed in variants.items():
                out = [embed(everything[i:i + a.batch_size]) for i in range(0, len(everything), a.batch_size)]
                np.save(a.vectors / f"{name}.npy", np.concatenate(out))

    default = "torch-bf16" if "torch-bf16" in rates else order[0]
    base_rate = statistics.median(rates[default])
    print(f"\n{a.model}, {spec.input_size} px, batch {a.batch_size}, {a.threads} threads, {len(pixels)} photos per pass, "
          f"{a.rounds} interleaved rounds, weights {'given' if a.weights else 'random'}; load {os.getloadavg()[0]:.1f}")
    print(f"{'variant':<12}{'images/s':>10}{'per round':>24}{'CPU ms/img':>12}{'x ' + default:>16}"
          f"{'cos to fp32 mean / min':>26}")
    for name in order:
        rate = statistics.median(rates[name])
        per_round = " ".join(f"{r:.1f}" for r in rates[name])
        print(f"{name:<12}{rate:>10.1f}{per_round:>24}{statistics.median(cpu_ms[name]):>12.1f}"
              f"{rate / base_rate:>16.2f}{cosines[name].mean():>14.4f} / {cosines[name].min():.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
