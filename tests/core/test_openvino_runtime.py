"""The OpenVINO runtime behind the Embedder (tiny test model): same vectors, cached conversion, fallback."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from vitgallery.core import models, openvino_runtime
from vitgallery.core.models import MODELS, Embedder, ModelLoadError

pytest.importorskip("openvino")
pytest.importorskip("nncf")

TINY = MODELS["tiny-test"]


def embedder(runtime: str, precision: str = "fp32", spec: models.ModelSpec = TINY) -> Embedder:
    return Embedder(spec, TINY.build(), "random-seed-0", torch.device("cpu"), precision=precision, runtime=runtime)


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


def test_a_failed_conversion_falls_back_to_torch_only_when_auto(monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("unsupported operation")

    monkeypatch.setattr(openvino_runtime, "convert_model", broken)
    with pytest.raises(ModelLoadError, match="converting tiny-test for OpenVINO failed.*--runtime torch"):
        embedder("openvino")
    downloadable = dataclasses.replace(TINY, weights_url="https://example.invalid/tiny.pth")
    fallback = embedder("auto", "auto", downloadable)
    assert fallback.runtime == "torch" and "|rt:" not in fallback.signature
    assert "running the model with torch instead" in caplog.text
    assert fallback.embed_pixels(pixels()).shape == (6, TINY.dim)


def test_auto_keeps_the_test_model_and_gpus_on_torch():
    assert models.resolve_runtime("auto", torch.device("cpu"), TINY) == "torch"
    with pytest.raises(ModelLoadError):
        models.resolve_runtime("openvino", torch.device("cuda"), TINY)
    with pytest.raises(ModelLoadError):
        models.resolve_runtime("onnx", torch.device("cpu"), TINY)
