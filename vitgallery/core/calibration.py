"""A library's own int8 model: OpenVINO int8 calibrated on the library's photos at its first index.

Calibrated on synthetic pictures, OpenVINO int8 lost up to 1.2 sem mAP against torch bf16; on 64 of
the library's own photos it stays within the 0.5 a CPU default may lose (docs/performance.md). The
quantised model is kept in the library folder, not the cache folder: it is made from the library's
photos, which may have changed or gone by the time a cleaned cache would need it again, and the
library's vectors are only comparable with queries embedded by that very model. Its file is named by
its checksum, which the library's model signature names, so a library never mixes the vectors of
two calibrations and a later run or search loads the same model without quantising again.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from vitgallery.core import openvino_runtime
from vitgallery.core.indexing import IndexProgress
from vitgallery.core.models import CALIBRATION_MARK, Embedder, ModelLoadError, signature_calibration
from vitgallery.core.pipeline import WorkCancelled
from vitgallery.core.scan import Listing, listed_or_scanned, root_is_available
from vitgallery.core.store import StoreError

log = logging.getLogger(__name__)

MODEL_FOLDER = "models"  # in the library folder


def library_model_file(library_dir: Path, signature: str | None) -> Path | None:
    """The calibrated model a library's signature names (the file may be gone), or None."""
    fingerprint = signature_calibration(signature) if signature else None
    return library_dir / MODEL_FOLDER / f"{fingerprint}.xml" if fingerprint else None


def library_embedder(embedder: Embedder, library_dir: Path, signature: str | None) -> Embedder:
    """`embedder` with the library's own calibrated model, where the library was indexed with this
    model, weights and converter and its model file is there; otherwise `embedder` as it is, or without
    another library's model (the window keeps one model loaded while it opens another library).

    A runtime chosen by "auto" keeps the one the library was indexed with: a library indexed with
    torch before OpenVINO was installed (or was the default) is not embedded again for it; nor one
    indexed with OpenVINO at the precision "auto" picks on another CPU (int8 or bf16: Embedder.keeping)."""
    if embedder.runtime_chosen == "auto" and embedder.runtime != "torch" and embedder.torch_signature == signature:
        return embedder.on_torch()
    embedder = embedder.keeping(signature)
    own = (library_dir / MODEL_FOLDER).absolute()
    if embedder.calibrated_model is not None and embedder.calibrated_model.parent.absolute() != own:
        embedder = embedder.calibrated(None)
    kept = library_model_file(library_dir, signature)
    if (not embedder.needs_calibration or kept is None or not kept.exists()
            or signature != f"{embedder.signature}{CALIBRATION_MARK}{kept.stem}"):
        return embedder
    return embedder.calibrated(kept)


def calibrate_for_library(embedder: Embedder, root: Path, library_dir: Path, signature: str | None, *,
                          report: Callable[[IndexProgress], None],
                          cancel: threading.Event, listing: Listing | None = None) -> Embedder | None:
    """The embedder to index the library with: `embedder` itself unless it needs calibration; then the
    library's own model (library_embedder), or one calibrated now on the library's photos (15-25 s
    for ViT-S/14 on 2 cores, once: phases "calibrating", the photos decoded, and "quantising"). None when
    cancelled meanwhile (the quantising worker is then ended).

    A folder that is offline, holds no photo yet or none that decodes is not calibrated: the run embeds
    nothing, and the next one with photos calibrates. `listing`: the folder listed beside the run (core.scan.Listing)."""
    ready = library_embedder(embedder, library_dir, signature)
    if not ready.needs_calibration or not root_is_available(root):
        return ready
    photos = [root / found.path for found in listed_or_scanned(root, listing).files]
    if not photos:
        return ready
    started = time.monotonic()

    def step(done: int, total: int) -> bool:
        elapsed = time.monotonic() - started
        rate = done / elapsed if elapsed > 0 else 0.0
        report(IndexProgress("calibrating", done, total, rate, (total - done) / rate if rate else None, None))
        return cancel.is_set()

    folder = library_dir / MODEL_FOLDER
    # The worker that quantises gets ready (imports, a first conversion) while the photos are decoded here.
    with ready.quantising_worker(cancel) as worker:
        inputs = openvino_runtime.calibration_inputs(photos, ready.input_size, step=step)
        if inputs is None:
            return None
        if not len(inputs):  # no photo decodes: the run lists them as skipped now, not after quantising
            return ready
        report(IndexProgress("quantising", 0, 0, 0.0, None, None))
        try:
            calibrated = ready.calibrate(inputs, folder, worker)
        except WorkCancelled:
            return None
        except ModelLoadError as exc:
            if cancel.is_set():  # the cancel ended the worker (a window closed): a failure of nothing
                return None
            if _short_of_space(library_dir):  # OpenVINO says "iostream error": the cause is the disk
                raise StoreError(f"the disk holding {library_dir} is full: free some space and run again (the "
                                 "model fitted to this library needs about 100 MB there; everything saved before "
                                 "is kept)") from exc
            if ready.runtime_chosen != "auto":
                raise
            log.warning("%s: indexing with torch instead", exc)  # the window has no runtime to choose
            return ready.on_torch()
    log.info("int8 model calibrated on %d photos of %s in %.0f s: %s", min(len(photos), len(inputs)), root,
             time.monotonic() - started, calibrated.calibrated_model)
    _forget_other_models(folder, calibrated.calibrated_model)
    return calibrated


MODEL_ROOM_BYTES = 100 << 20  # a calibrated ViT-S/14 is ~25 MB, written beside its fp32 conversion (~90 MB)


def _short_of_space(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < MODEL_ROOM_BYTES
    except OSError:
        return False


def _forget_other_models(folder: Path, kept: Path | None) -> None:
    """An earlier calibration's model (its file lost or its weights changed) embeds nothing any more:
    the new signature re-embeds every photo."""
    for path in folder.iterdir():
        # Dot files are models being written (openvino_runtime.quantise_on_photos).
        if kept is not None and path.stem != kept.stem and path.suffix in (".xml", ".bin") \
                and not path.name.startswith("."):
            path.unlink(missing_ok=True)
