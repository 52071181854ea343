"""The OpenVINO runtime behind the Embedder (tiny test model): same vectors, cached conversion, clear failure."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vitgallery.core import models, openvino_runtime
from vitgallery.core.models import MODELS, Embedder, ModelLoadError

pytest.importorskip("openvino")
pytest.importorskip("nncf")

TINY = MODELS["tiny-test"]


def embedder(runtime: str, precision: str = "fp32") -> Embedder:
    return Embedder(TINY, TINY.build(), "random-seed-0", torch.device("cpu"), precision=precision, runtime=runtime)


def pixels(count: int = 6) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (count, TINY.input_size, TINY.input_size, 3), dtype=np.uint8)


def test_openvino_gives_torchs_vectors_and_says_so_in_the_signature():
    on_torch, on_openvino = embedder("torch"), embedder("openvino")
    a, b = on_torch.embed_pixels(pixels()), on_openvino.embed_pixels(pixels())
    assert b.shape == a.shape and b.dtype == np.float32
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    assert np.min(np.sum(a * b, axis=1)) > 0.999
    assert "|rt:openvino" in on_openvino.signature and "|rt:" not in on_torch.signature
    assert on_openvino.signature != embedder("openvino", "int8").signature, "int8 vectors never mix with fp32"


def test_int8_conversion_is_made_once_and_reused(monkeypatch):
    first = embedder("openvino", "int8")
    cached = sorted(openvino_runtime.cache_dir().glob("*.xml"))
    assert len(cached) == 1 and cached[0].with_suffix(".bin").exists()
    monkeypatch.setattr(openvino_runtime, "convert_model", lambda *a, **k: pytest.fail("converted again"))
    again = embedder("openvino", "int8")
    assert np.array_equal(first.embed_pixels(pixels()), again.embed_pixels(pixels()))
    cosines = np.sum(first.embed_pixels(pixels()) * embedder("torch").embed_pixels(pixels()), axis=1)
    assert np.min(cosines) > 0.9


def test_a_failed_conversion_says_so_and_names_torch(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("unsupported operation")

    monkeypatch.setattr(openvino_runtime, "convert_model", broken)
    with pytest.raises(ModelLoadError, match="converting tiny-test for OpenVINO failed.*--runtime torch"):
        embedder("openvino")


def test_torch_is_the_default_and_openvino_stays_on_the_cpu():
    assert models.load_embedder("tiny-test", device="cpu").runtime == "torch"
    with pytest.raises(ModelLoadError):
        models.resolve_runtime("openvino", torch.device("cuda"))
    with pytest.raises(ModelLoadError):
        models.resolve_runtime("onnx", torch.device("cpu"))
