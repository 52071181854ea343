"""The model run by OpenVINO on a CPU: converted once from the torch model, kept in the cache folder.

Measured on ViT-S/14 (docs/performance.md): int8 (NNCF post-training quantisation, transformer
preset) costs about half the CPU time of torch's bf16 per photo. The graph takes uint8 pixels and
returns unit vectors, so the whole Embedder forward pass (normalising, model, CLS token, L2) runs in
OpenVINO. Quantisation is calibrated on synthetic pictures made here (no photo leaves or enters the
machine for it, and every machine makes the same model from the same weights).
"""

from __future__ import annotations

import logging
import os
import random
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

OPENVINO_MISSING = "the OpenVINO runtime needs the openvino and nncf packages (pip install 'vitgallery[openvino]')"
# 64 synthetic pictures calibrate as well as 300 real photos did (bench/cpu_runtimes.py, cosine to fp32).
CALIBRATION_PICTURES = 64
CALIBRATION_BATCH = 16
CALIBRATION_VERSION = 1  # bump when the calibration pictures change: the cached models are then remade


def cache_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("vitgallery")) / "openvino"


def runtime_tag(precision: str) -> str:
    """Names the converter versions in the Embedder's signature: another OpenVINO or NNCF can
    quantise differently, and a library must not mix the vectors of two conversions."""
    import openvino

    tag = f"openvino{_major_minor(openvino.__version__)}"
    if precision == "int8":
        import nncf

        tag += f"+nncf{_major_minor(nncf.__version__)}+cal{CALIBRATION_VERSION}"
    return tag


def _major_minor(version: str) -> str:
    return ".".join(version.split("-")[0].split(".")[:2])


def calibration_pictures(count: int, size: int, seed: int = 0) -> np.ndarray:
    """(count, size, size, 3) uint8: skies, shapes, textures and blur, varied like photos' statistics."""
    rng = random.Random(seed)
    noise = np.random.default_rng(seed)
    pictures = []
    for _ in range(count):
        top, bottom = (np.array([rng.randint(0, 255) for _ in range(3)], np.float32) for _ in range(2))
        ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)[:, None, None]
        image = Image.fromarray((top + (bottom - top) * ramp).repeat(size, axis=1).astype(np.uint8))
        draw = ImageDraw.Draw(image)
        for _ in range(rng.randint(3, 20)):
            x0, y0 = rng.randint(-size // 4, size), rng.randint(-size // 4, size)
            x1, y1 = x0 + rng.randint(8, size), y0 + rng.randint(8, size)
            colour = tuple(rng.randint(0, 255) for _ in range(3))
            shape = rng.choice((draw.ellipse, draw.rectangle, draw.line))
            shape([x0, y0, x1, y1], fill=colour, **({"width": rng.randint(1, 12)} if shape == draw.line else {}))
        pixels = np.asarray(image.filter(ImageFilter.GaussianBlur(rng.uniform(0.0, 3.0))), np.float32)
        grain = noise.standard_normal((size, size, 1)).astype(np.float32) * rng.uniform(0.0, 25.0)
        pictures.append(np.clip(pixels + grain, 0, 255).astype(np.uint8))
    return np.stack(pictures)


class OpenVinoModel:
    """A compiled vector head: (B, H, W, 3) uint8 -> (B, dim) float32 unit vectors. Each thread that
    calls it gets its own inference request, so indexing and searching can run at once."""

    def __init__(self, compiled):
        self._compiled = compiled
        self._local = threading.local()

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self._compiled.create_infer_request()
        output = request.infer({0: np.ascontiguousarray(pixels)})[0]
        return np.array(output, dtype=np.float32)


def load_openvino_model(head: torch.nn.Module, *, key: str, input_size: int, precision: str, threads: int,
                        bf16: bool) -> OpenVinoModel:
    """The head converted (and for int8 quantised) once into cache_dir()/KEY.xml, compiled for this CPU.
    Raises ImportError without openvino/nncf and RuntimeError when converting fails."""
    target = cache_dir() / f"{key}.xml"
    if not target.exists():
        convert_model(head, target, input_size, precision)
    return compile_model(target, threads=threads, bf16=bf16)


def compile_model(path: Path, *, threads: int, bf16: bool) -> OpenVinoModel:
    import openvino as ov

    config = {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "bf16" if bf16 else "f32",
              "PERFORMANCE_HINT": "LATENCY"}
    return OpenVinoModel(ov.Core().compile_model(path, "CPU", config))


def convert_model(head: torch.nn.Module, target: Path, input_size: int, precision: str,
                  calibration: np.ndarray | None = None) -> None:
    """Convert (int8: and quantise, calibrated on `calibration` or else on calibration_pictures()) into
    target (.xml, with its .bin)."""
    import openvino as ov
    import torch

    log.info("converting the model for OpenVINO (%s, once; kept in %s)", precision, target.parent)
    example = torch.zeros((1, input_size, input_size, 3), dtype=torch.uint8)
    with warnings.catch_warnings():  # the tracer's notes on constants in timm's code say nothing to a user
        warnings.simplefilter("ignore")
        model = ov.convert_model(head, example_input=example, input=[(-1, input_size, input_size, 3)])
    if precision == "int8":
        import nncf

        pictures = calibration_pictures(CALIBRATION_PICTURES, input_size) if calibration is None else calibration
        batches = [pictures[i:i + CALIBRATION_BATCH] for i in range(0, len(pictures), CALIBRATION_BATCH)]
        model = nncf.quantize(model, nncf.Dataset(batches), model_type=nncf.ModelType.TRANSFORMER,
                              subset_size=len(batches))
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written under a temporary name and renamed, the .xml last: a half-written pair is never used.
    partial = target.with_name(f".{target.stem}.{os.getpid()}.xml")
    try:
        ov.save_model(model, partial, compress_to_fp16=False)
        os.replace(partial.with_suffix(".bin"), target.with_suffix(".bin"))
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
        partial.with_suffix(".bin").unlink(missing_ok=True)
