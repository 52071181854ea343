"""The model run by OpenVINO on a CPU: converted from the torch model (fp32, bf16) or quantised (int8).

Measured on ViT-S/14 (docs/performance.md): int8 (NNCF post-training quantisation, transformer
preset) costs about half the CPU time of torch's bf16 per photo. The graph takes uint8 pixels and
returns unit vectors, so the whole Embedder forward pass (normalising, model, CLS token, L2) runs in
OpenVINO.

fp32 and bf16 conversions are the same on every machine for the same weights: they are kept once in
the cache folder. int8 is calibrated on the photos of the library it indexes (calibrated on synthetic
pictures it lost up to 1.2 sem mAP, on photos at most 0.34): each library has its own int8 model, kept
in the library folder and named by its checksum (quantise_on_photos), which the library's model
signature names.

Converting from torch and quantising hold the interpreter for long stretches: they run in a worker
process (pipeline.WorkerProcess), which makes the torch model anew (models.HeadRecipe). openvino is
imported through _openvino, which first declines the usage reports it and NNCF send to Intel.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import logging
import os
import random
import shutil
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from vitgallery.core import partial_files

if TYPE_CHECKING:
    import torch

    from vitgallery.core.pipeline import WorkerProcess

log = logging.getLogger(__name__)

OPENVINO_MISSING = "the OpenVINO runtime needs the openvino and nncf packages (pip install 'vitgallery[openvino]')"
# 64 photos of the library calibrate int8 to within 0.34 mAP of torch bf16 on dup and sem
# (bench/runtime_quality.py, docs/performance.md); more cost quantisation time for nothing measured.
CALIBRATION_PHOTOS = 64
CALIBRATION_BATCH = 16
CALIBRATION_FINGERPRINT_CHARS = 16
# Compiled models kept (each library's int8 model is one, about 23 MB for ViT-S/14); one dropped compiles
# again in about half a second at its next use.
COMPILED_MODELS_KEPT = 8


def cache_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("vitgallery")) / "openvino"


def kept_conversion(key: str) -> Path:
    """Where a model's conversion named `key` (Embedder._openvino_key) is kept."""
    return cache_dir() / f"{key}.xml"


def runtime_tag(precision: str) -> str:
    """Names the converter versions in the Embedder's signature: another OpenVINO or NNCF can
    quantise differently, and a library must not mix the vectors of two conversions."""
    tag = f"openvino{_major_minor(_openvino().__version__)}"
    if precision == "int8":
        # Read, not imported: importing nncf takes seconds, and only quantising needs it.
        try:
            tag += f"+nncf{_major_minor(importlib.metadata.version('nncf'))}"
        except importlib.metadata.PackageNotFoundError as exc:
            raise ImportError("nncf is not installed") from exc
    return tag


def _major_minor(version: str) -> str:
    return ".".join(version.split("-")[0].split(".")[:2])


def calibration_sample(photos: Sequence[Path], count: int = CALIBRATION_PHOTOS) -> list[Path]:
    """Up to `count` photos spread evenly over the sorted list: a library's first folder is often one
    day or one place, its whole span is what the model will see."""
    ordered = sorted(photos)
    if len(ordered) <= count:
        return ordered
    return [ordered[i * len(ordered) // count] for i in range(count)]


def calibration_inputs(photos: Sequence[Path], size: int, *, step: Callable[[int, int], bool] | None = None,
                       count: int = CALIBRATION_PHOTOS) -> np.ndarray | None:
    """The model inputs that calibrate int8 for a library: `count` of its photos spread over it
    (calibration_sample), decoded as indexing decodes them. A library with fewer photos (or fewer that
    decode) is filled up with synthetic pictures: a handful of scenes alone would set the activation
    ranges of every photo the library gets later, and the pictures widen them (all synthetic, the
    loss was at most 1.2 sem mAP, measured); where none decodes, none (an empty array): there is no
    library to fit. `step(done, total)` reports each photo and returns True to stop: then None."""
    from vitgallery.core.imageio import DecodeError, model_input

    chosen = calibration_sample(photos, count)
    inputs = []
    for done, path in enumerate(chosen, 1):
        try:
            inputs.append(model_input(path, size))
        except (DecodeError, OSError) as exc:  # it is skipped here; indexing reports it
            log.info("not calibrating on %s (%s)", path, exc)
        if step is not None and step(done, len(chosen)):
            return None
    if not inputs:
        return np.empty((0, size, size, 3), np.uint8)
    if len(inputs) < count:
        inputs.extend(calibration_pictures(count - len(inputs), size))
    return np.stack(inputs)


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


def load_openvino_model(head: Callable[[], torch.nn.Module], *, key: str, input_size: int,
                        threads: int, bf16: bool) -> OpenVinoModel:
    """The head converted once into cache_dir()/KEY.xml (in a worker process, convert_file), compiled
    for this CPU (fp32, or bf16 where asked and native). `head` makes the torch module anew there
    (models.HeadRecipe). Raises ImportError without openvino and RuntimeError when converting fails."""
    from vitgallery.core.pipeline import WorkerProcess

    target = kept_conversion(key)
    if target.exists():
        return compile_model(target, threads=threads, bf16=bf16)
    log_conversion(target)
    with tempfile.TemporaryDirectory(prefix="vitgallery-openvino-") as scratch, WorkerProcess() as worker:
        made = worker.run(convert_file, head, input_size, target, Path(scratch) / target.name)
        if made != target:
            log.warning("the converted model cannot be kept in %s: converted for this run only", target.parent)
        return compile_model(made, threads=threads, bf16=bf16)


def quantise_on_photos(head: Callable[[], torch.nn.Module], folder: Path, input_size: int,
                       calibration: np.ndarray, *, fp32_key: str | None = None,
                       worker: WorkerProcess | None = None) -> Path:
    """The head quantised to int8, calibrated on `calibration` (calibration_inputs), saved in `folder`
    as CHECKSUM.xml/.bin: the checksum of the model's files is the calibration's fingerprint, so two
    calibrations that give different models never share a name (nor a library signature).

    Runs in a worker process (quantise_file; `worker`, started with prepare_quantising while the photos
    were decoded, or one started now): converting the head from torch and NNCF's quantising held the
    window's interpreter 120-280 ms at a time, many times a calibration (docs/performance.md).
    `fp32_key`: the fp32 conversion kept under that name in cache_dir() is quantised, and kept there when
    made now: converting takes seconds, which each library's calibration would spend again. Raises
    ImportError without openvino/nncf, RuntimeError when converting fails or the worker died, and
    pipeline.WorkCancelled when `worker`'s cancel was set; nothing is left in `folder` then."""
    from vitgallery.core.pipeline import WorkerProcess

    folder.mkdir(parents=True, exist_ok=True)
    made = folder / f".quantised-{os.getpid()}-{threading.get_ident()}.xml"
    kept = kept_conversion(fp32_key) if fp32_key else None
    if worker is None and (kept is None or not kept.exists()):  # a prepared worker said so as it started
        log_conversion(kept)
    try:
        with contextlib.nullcontext(worker) if worker is not None else WorkerProcess() as running:
            running.run(quantise_file, head, input_size, kept, made, calibration)
    except BaseException:  # failed or cancelled (the worker ended, maybe while saving): nothing left behind
        for leftover in (made, made.with_suffix(".bin"), *folder.glob(f".{made.stem}.*")):
            leftover.unlink(missing_ok=True)
        raise
    if kept is not None and not kept.exists():
        log.warning("the converted model cannot be kept in %s: converted for this library only", kept.parent)
    digest = hashlib.sha256()
    for part in (made, made.with_suffix(".bin")):
        digest.update(part.read_bytes())
    target = folder / f"{digest.hexdigest()[:CALIBRATION_FINGERPRINT_CHARS]}.xml"
    os.replace(made.with_suffix(".bin"), target.with_suffix(".bin"))
    os.replace(made, target)
    return target


def log_conversion(kept: Path | None) -> None:
    """Say that the model is converted now (it runs in a worker process, whose log is not the app's)."""
    log.info("converting the model for OpenVINO (once; kept in %s)", kept.parent if kept else "no cache")


def convert_file(head: Callable[[], torch.nn.Module], input_size: int, target: Path, scratch: Path) -> Path:
    """The head converted from torch (fp32: bf16 is a setting of its compilation) into `target`, or into
    `scratch` where `target` cannot be written: the file written. Tracing the model holds the interpreter
    up to 0.3 s at a time: the app runs this in a worker process."""
    model = _from_torch(head(), input_size)
    if _written(model, target):
        return target
    _save(model, scratch)
    return scratch


def prepare_quantising(head: Callable[[], torch.nn.Module], input_size: int, fp32: Path) -> None:
    """A worker's start on quantise_file, while the calibration photos are decoded: NNCF imported (it
    imports torch: 2-3 s in a new process) and, for a model never converted here, its fp32 conversion
    made and kept as `fp32` (what it raises, quantise_file meets again)."""
    _decline_telemetry()
    with _quiet_quantising():
        import nncf  # noqa: F401

        if not fp32.exists():
            _converted(head, input_size, keep=fp32)


def quantise_file(head: Callable[[], torch.nn.Module], input_size: int, fp32: Path | None, target: Path,
                  calibration: np.ndarray) -> None:
    """The head's fp32 conversion `fp32` quantised to int8 on `calibration` into `target`; where that
    conversion is missing or cannot be read it is made from the head now, and kept as `fp32` where it
    can be written. NNCF holds the interpreter for long stretches: the app runs this in a worker process."""
    batches = [calibration[i:i + CALIBRATION_BATCH] for i in range(0, len(calibration), CALIBRATION_BATCH)]
    with _quiet_quantising():
        model = _read_kept(fp32) if fp32 is not None else None
        if model is None:
            model = _converted(head, input_size, keep=fp32)
        import nncf

        model = nncf.quantize(model, nncf.Dataset(batches), model_type=nncf.ModelType.TRANSFORMER,
                              subset_size=len(batches))
    _save(model, target)


def _openvino():
    """The openvino module, its telemetry declined first: importing it reports to Intel, and so do its
    converter and NNCF (keeping a client id in ~/intel), unless the user opted out in a file there. A
    photo app that works offline sends nothing; the user's file is left as it is."""
    _decline_telemetry()
    import openvino

    return openvino


def _decline_telemetry() -> None:
    try:
        from openvino_telemetry.utils.opt_in_checker import ConsentCheckResult, OptInChecker
    except ImportError:  # without it openvino and NNCF use a stub that sends nothing
        return
    OptInChecker.check = lambda self, *args, **kwargs: ConsentCheckResult.DECLINED


def _converted(head: Callable[[], torch.nn.Module], input_size: int, *, keep: Path | None):
    """The head converted from torch, and kept as `keep` where one is given and can be written."""
    model = _from_torch(head(), input_size)
    if keep is not None:
        _written(model, keep)
    return model


def _written(model, target: Path) -> bool:
    try:
        _save(model, target)
    except (OSError, RuntimeError):  # OpenVINO says a folder it cannot write to with a RuntimeError
        return False
    return True


def compile_model(path: Path, *, threads: int, bf16: bool) -> OpenVinoModel:
    ov = _openvino()

    config = {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "bf16" if bf16 else "f32",
              "PERFORMANCE_HINT": "LATENCY"}
    # Compiled once per model, CPU and settings, then read back: 0.15 s instead of 0.7 s at each start
    # for ViT-S/14 int8. OpenVINO compiles anew where the cache is damaged and leaves it unwritten on a
    # full disk; a cache folder it cannot make fails the compilation, which then runs without one.
    compiled = _compiled_cache(path)
    try:
        return OpenVinoModel(ov.Core().compile_model(path, "CPU", {**config, "CACHE_DIR": str(compiled)}))
    except RuntimeError as exc:
        log.warning("compiling without keeping the compiled model (%s)", exc)
        return OpenVinoModel(ov.Core().compile_model(path, "CPU", config))


def _compiled_cache(model_file: Path) -> Path:
    """Where OpenVINO keeps `model_file` compiled: a folder per model, marked used now, so that the
    cache keeps the COMPILED_MODELS_KEPT models used last instead of growing with every library."""
    root = cache_dir() / "compiled"
    folder = root / model_file.stem
    with contextlib.suppress(OSError):  # a cache that cannot be written: compile_model runs without it
        folder.mkdir(parents=True, exist_ok=True)
        os.utime(folder)
        kept = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
        for stale in kept[COMPILED_MODELS_KEPT:]:
            shutil.rmtree(stale, ignore_errors=True)
        for loose in root.glob("*.blob"):  # kept loose by earlier versions: no telling whose they are
            loose.unlink(missing_ok=True)
    return folder


_nowhere: TextIO | None = None


@contextlib.contextmanager
def _quiet_quantising() -> Iterator[None]:
    """NNCF draws four progress bars on stdout, where `vitgallery ... --json` prints its answer, and between
    the lines of the app's own progress on a terminal: they go nowhere (the app says the step itself, and
    what fails is raised). torch's note that no CUDA runtime is found, logged as NNCF or the conversion
    loads torch's C++ extension tools, is said nothing to a user on a CPU."""
    global _nowhere
    cuda_note = logging.getLogger("torch.utils.cpp_extension")
    level = cuda_note.level
    cuda_note.setLevel(logging.ERROR)
    if _nowhere is None:  # never closed: NNCF's log handler keeps the stream it was imported under
        _nowhere = open(os.devnull, "w")
    try:
        with contextlib.redirect_stdout(_nowhere):
            yield
    finally:
        cuda_note.setLevel(level)


def _read_kept(path: Path):
    """A conversion kept in the cache, or None when there is none or it cannot be read (made again)."""
    ov = _openvino()

    if not path.exists():
        return None
    try:
        return ov.Core().read_model(path)
    except RuntimeError as exc:
        log.warning("converting again: the kept conversion %s cannot be read (%s)", path, exc)
        return None


def _from_torch(head: torch.nn.Module, input_size: int):
    ov = _openvino()
    import torch

    example = torch.zeros((1, input_size, input_size, 3), dtype=torch.uint8)
    with warnings.catch_warnings():  # the tracer's notes on constants in timm's code say nothing to a user
        warnings.simplefilter("ignore")
        return ov.convert_model(head, example_input=example, input=[(-1, input_size, input_size, 3)])


def _save(model, target: Path) -> None:
    ov = _openvino()

    target.parent.mkdir(parents=True, exist_ok=True)
    # Written under a temporary name and renamed, the .xml last: a half-written pair is never used. A
    # pair left by a worker ended while it saved (a cancel) is ~90 MB.
    partial_files.remove_abandoned(target.parent, target.stem)
    partial = target.with_name(f"{partial_files.writer_prefix(target.stem)}{threading.get_ident()}.xml")
    try:
        ov.save_model(model, partial, compress_to_fp16=False)
        os.replace(partial.with_suffix(".bin"), target.with_suffix(".bin"))
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
        partial.with_suffix(".bin").unlink(missing_ok=True)
