"""The OpenVINO runtime behind the Embedder (tiny test model): same vectors, cached conversion, clear failure."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.photos import make_photo
from vitgallery.core import models, openvino_runtime, pipeline
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


def test_each_calibration_quantises_the_one_kept_fp32_conversion(tmp_path):
    """Converting from torch takes seconds: once per model, not per library."""
    calibration = np.concatenate([pixels(3), openvino_runtime.calibration_pictures(5, TINY.input_size)])
    first = embedder("openvino", "int8").calibrate(calibration, tmp_path / "a")
    (kept,) = openvino_runtime.cache_dir().glob("*-fp32-*.bin")
    made = kept.stat().st_mtime_ns
    second = embedder("openvino", "int8").calibrate(calibration, tmp_path / "b")
    assert kept.stat().st_mtime_ns == made, "the second library quantised the kept conversion"
    assert np.allclose(first.embed_pixels(pixels()), second.embed_pixels(pixels()), atol=1e-5)
    kept.write_bytes(b"damaged")
    third = embedder("openvino", "int8").calibrate(calibration, tmp_path / "c")
    assert kept.read_bytes() != b"damaged", "a damaged conversion is made again, not a failed calibration"
    assert np.allclose(first.embed_pixels(pixels()), third.embed_pixels(pixels()), atol=1e-5)


def test_a_conversion_a_killed_worker_left_half_saved_is_removed_by_the_next(tmp_path):
    """A cancel ends the worker even while it saves its conversion (~90 MB for ViT-S/14)."""
    key = embedder("torch")._openvino_key("fp32")  # an openvino one converts as it is made
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    folder = openvino_runtime.cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    killed = [folder / f".{key}.{dead.stdout.strip()}.140211.{suffix}" for suffix in ("xml", "bin")]
    saving = folder / f".{key}.{os.getpid()}.140212.bin"  # another thread of this process, saving now
    for path in [*killed, saving]:
        path.write_bytes(b"half a model")
    assert embedder("openvino").embed_pixels(pixels()).shape == (6, TINY.dim)
    assert openvino_runtime.kept_conversion(key).exists()
    assert not any(path.exists() for path in killed) and saving.exists()


def test_int8_embeds_nothing_until_calibrated_on_photos(tmp_path):
    uncalibrated = embedder("openvino", "int8")
    assert uncalibrated.needs_calibration
    with pytest.raises(ModelLoadError, match="calibrated on a library's photos"):
        uncalibrated.embed_pixels(pixels())
    calibration = np.concatenate([pixels(3), openvino_runtime.calibration_pictures(5, TINY.input_size)])
    calibrated = uncalibrated.calibrate(calibration, tmp_path / "models")
    fingerprint = models.signature_calibration(calibrated.signature)
    assert calibrated.calibrated_model == tmp_path / "models" / f"{fingerprint}.xml"
    assert calibrated.signature == f"{uncalibrated.signature}|cal:{fingerprint}"
    assert calibrated.calibrated_model.with_suffix(".bin").exists()
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [f"{fingerprint}.bin", f"{fingerprint}.xml"]
    cosines = np.sum(calibrated.embed_pixels(pixels()) * embedder("torch").embed_pixels(pixels()), axis=1)
    assert np.min(cosines) > 0.9


def test_converting_and_quantising_run_in_a_worker_process(tmp_path, monkeypatch):
    """Tracing the model and NNCF hold the interpreter up to 0.3 s at a time: in the app's own process
    they stalled the window."""
    with pipeline.WorkerProcess() as worker:
        assert worker.run(os.getpid) != os.getpid()
    run, ran = pipeline.WorkerProcess.run, []
    monkeypatch.setattr(pipeline.WorkerProcess, "run", lambda self, function, *args: ran.append(function) or run(self, function, *args))
    assert embedder("openvino", "bf16").embed_pixels(pixels()).shape == (6, TINY.dim)
    calibration = np.concatenate([pixels(3), openvino_runtime.calibration_pictures(5, TINY.input_size)])
    calibrated = embedder("openvino", "int8").calibrate(calibration, tmp_path / "models")
    assert ran == [openvino_runtime.convert_file, openvino_runtime.quantise_file]
    assert calibrated.embed_pixels(pixels()).shape == (6, TINY.dim)


def test_openvino_is_imported_with_its_telemetry_declined(monkeypatch):
    """Importing openvino, its converter and NNCF report usage to Intel unless told not to (each asks
    this check, the opt-in dialog off): the app tells them."""
    checker = pytest.importorskip("openvino_telemetry.utils.opt_in_checker")
    monkeypatch.setattr(checker.OptInChecker, "check", checker.OptInChecker.check)  # put back afterwards
    assert openvino_runtime._openvino().__name__ == "openvino"
    asked = checker.OptInChecker().check(enable_opt_in_dialog=False, disable_in_ci=True)
    assert asked == checker.ConsentCheckResult.DECLINED


def test_quantising_keeps_stdout_for_answers_and_the_terminal_for_the_apps_progress(tmp_path, capsys):
    """NNCF's progress bars go nowhere: `vitgallery ... --json` prints its answer on stdout, and the
    app's own progress says the step on stderr."""
    fp32, int8 = tmp_path / "fp32.xml", tmp_path / "int8.xml"
    calibration = openvino_runtime.calibration_pictures(8, TINY.input_size)
    openvino_runtime.quantise_file(embedder("torch").head_recipe, TINY.input_size, fp32, int8, calibration)
    said = capsys.readouterr()
    assert said.out == "" and "Statistics collection" not in said.err and "Bias correction" not in said.err
    assert fp32.with_suffix(".bin").exists() and int8.with_suffix(".bin").exists(), "the conversion is kept"


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
    def broken(*args, **kwargs):  # what the worker raises back
        raise RuntimeError("unsupported operation")

    monkeypatch.setattr(pipeline.WorkerProcess, "run", broken)
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
