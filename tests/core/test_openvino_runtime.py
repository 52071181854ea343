"""The OpenVINO runtime behind the Embedder (tiny test model): same vectors, cached conversion, clear failure."""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.photos import make_photo
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


def test_a_compiled_model_is_kept_and_a_damaged_copy_compiles_again():
    first = embedder("openvino").embed_pixels(pixels())
    kept = list((openvino_runtime.cache_dir() / "compiled").glob("*/*.blob"))
    assert kept, "the compiled model is kept for the next start"
    assert np.array_equal(embedder("openvino").embed_pixels(pixels()), first)
    for blob in kept:
        blob.write_bytes(b"damaged")
    assert np.array_equal(embedder("openvino").embed_pixels(pixels()), first)


def test_the_compiled_cache_keeps_the_models_used_last(monkeypatch):
    monkeypatch.setattr(openvino_runtime, "COMPILED_MODELS_KEPT", 2)
    root = openvino_runtime.cache_dir() / "compiled"
    for age, name in enumerate(["newer", "older", "oldest"]):
        (root / name).mkdir(parents=True)
        (root / name / "1234.blob").write_bytes(b"compiled")
        os.utime(root / name, (1e9 - 100 * age, 1e9 - 100 * age))
    (root / "5678.blob").write_bytes(b"an earlier version's")
    assert openvino_runtime._compiled_cache(Path("/library/models/oldest.xml")) == root / "oldest"
    assert sorted(p.name for p in root.iterdir()) == ["newer", "oldest"], "the one used longest ago goes"
    assert (root / "oldest" / "1234.blob").exists()


def test_a_cache_folder_that_cannot_be_made_keeps_nothing_and_stops_nothing(tmp_path, monkeypatch):
    blocked = tmp_path / "a file"
    blocked.write_bytes(b"")
    monkeypatch.setattr(openvino_runtime, "cache_dir", lambda: blocked / "openvino")
    calibration = np.concatenate([pixels(3), openvino_runtime.calibration_pictures(5, TINY.input_size)])
    calibrated = embedder("openvino", "int8").calibrate(calibration, tmp_path / "models")
    assert calibrated.embed_pixels(pixels()).shape == (6, TINY.dim)
    assert set(tmp_path.iterdir()) == {blocked, tmp_path / "models"}
    assert embedder("openvino", "bf16").embed_pixels(pixels()).shape == (6, TINY.dim), "converted for this run"


def test_each_calibration_quantises_the_one_kept_fp32_conversion(tmp_path, monkeypatch):
    """Converting from torch takes seconds and holds the interpreter: once per model, not per library."""
    conversions = []
    from_torch = openvino_runtime._from_torch
    monkeypatch.setattr(openvino_runtime, "_from_torch", lambda *a: conversions.append(1) or from_torch(*a))
    calibration = np.concatenate([pixels(3), openvino_runtime.calibration_pictures(5, TINY.input_size)])
    first = embedder("openvino", "int8").calibrate(calibration, tmp_path / "a")
    second = embedder("openvino", "int8").calibrate(calibration, tmp_path / "b")
    assert conversions == [1]
    assert np.allclose(first.embed_pixels(pixels()), second.embed_pixels(pixels()), atol=1e-5)
    for kept in openvino_runtime.cache_dir().glob("*-fp32-*.bin"):
        kept.write_bytes(b"damaged")
    embedder("openvino", "int8").calibrate(calibration, tmp_path / "c")
    assert conversions == [1, 1], "a damaged conversion is made again, not a failed calibration"


def test_int8_embeds_nothing_until_calibrated_on_photos(tmp_path, capsys):
    uncalibrated = embedder("openvino", "int8")
    assert uncalibrated.needs_calibration
    with pytest.raises(ModelLoadError, match="calibrated on a library's photos"):
        uncalibrated.embed_pixels(pixels())
    calibration = np.concatenate([pixels(3), openvino_runtime.calibration_pictures(5, TINY.input_size)])
    calibrated = uncalibrated.calibrate(calibration, tmp_path / "models")
    assert capsys.readouterr().out == "", "NNCF's progress bars stay off stdout, where --json answers go"
    fingerprint = models.signature_calibration(calibrated.signature)
    assert calibrated.calibrated_model == tmp_path / "models" / f"{fingerprint}.xml"
    assert calibrated.signature == f"{uncalibrated.signature}|cal:{fingerprint}"
    assert calibrated.calibrated_model.with_suffix(".bin").exists()
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [f"{fingerprint}.bin", f"{fingerprint}.xml"]
    cosines = np.sum(calibrated.embed_pixels(pixels()) * embedder("torch").embed_pixels(pixels()), axis=1)
    assert np.min(cosines) > 0.9


def test_calibration_photos_spread_over_the_library_and_are_filled_up_when_few(tmp_path):
    photos = [tmp_path / f"{i:03d}.jpg" for i in range(200)]
    chosen = openvino_runtime.calibration_sample(photos, 4)
    assert chosen == [photos[0], photos[50], photos[100], photos[150]]
    for i in range(2):
        make_photo(i).save(photos[i])
    photos[2].write_bytes(b"not a photo")  # skipped: indexing reports it
    inputs = openvino_runtime.calibration_inputs(photos[:3], TINY.input_size, count=6)
    assert inputs.shape == (6, TINY.input_size, TINY.input_size, 3) and inputs.dtype == np.uint8


def test_a_failed_conversion_says_so_and_names_torch(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("unsupported operation")

    monkeypatch.setattr(openvino_runtime, "convert_model", broken)
    with pytest.raises(ModelLoadError, match="converting tiny-test for OpenVINO failed.*--runtime torch"):
        embedder("openvino")


def test_a_missing_extra_says_what_to_install_and_names_torch(monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino raises ImportError
    with pytest.raises(ModelLoadError, match=r"pip install 'vitgallery\[openvino\]'.*--runtime torch"):
        embedder("openvino", "int8")


def test_auto_runs_openvino_on_a_cpu_where_installed_and_keeps_gpus_and_the_test_model_on_torch(monkeypatch):
    downloadable = dataclasses.replace(TINY, weights_url="https://example.invalid/tiny.pth")
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert models.resolve_runtime("auto", cpu, downloadable) == "openvino"
    assert models.resolve_runtime("auto", cuda, downloadable) == "torch"
    assert models.resolve_runtime("auto", cpu, TINY) == "torch"
    assert models.load_embedder("tiny-test", device="cpu").runtime == "torch"
    with pytest.raises(ModelLoadError):
        models.resolve_runtime("openvino", cuda, TINY)
    with pytest.raises(ModelLoadError):
        models.resolve_runtime("onnx", cpu, TINY)
    monkeypatch.setattr(models, "openvino_available", lambda: False)
    assert models.resolve_runtime("auto", cpu, downloadable) == "torch"
