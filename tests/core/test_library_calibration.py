"""A library's own OpenVINO int8 model (tiny test model): calibrated on its photos once, reused after; bf16
instead, uncalibrated, where the CPU has AMX; a library keeps the precision it was indexed at."""

from __future__ import annotations

import dataclasses
import threading
import time
from types import SimpleNamespace

import pytest
import torch

from tests.photos import make_photo
from vitgallery.core import calibration, models, openvino_runtime
from vitgallery.core.calibration import MODEL_FOLDER
from vitgallery.core.library import Library
from vitgallery.core.models import (
    MODELS,
    Embedder,
    ModelLoadError,
    choice_change,
    load_embedder,
    signature_calibration,
)
from vitgallery.core.store import StoreError

pytest.importorskip("openvino")
pytest.importorskip("nncf")


@pytest.fixture
def quantisations(monkeypatch) -> list[int]:
    """Counts the int8 quantisations (one entry, the number of calibration inputs, per call)."""
    calls: list[int] = []
    quantise = openvino_runtime.quantise_on_photos

    def counting(head, folder, input_size, calibration, **options):
        calls.append(len(calibration))
        return quantise(head, folder, input_size, calibration, **options)

    monkeypatch.setattr(openvino_runtime, "quantise_on_photos", counting)
    return calls


def photo_folder(tmp_path, name: str, seeds: range):
    root = tmp_path / name
    root.mkdir()
    for seed in seeds:
        make_photo(seed).save(root / f"img_{seed:02d}.jpg", quality=92)
    return root


def int8():
    return load_embedder("tiny-test", runtime="openvino", precision="int8")


def index(library, embedder, **kw):
    phases = []
    summary = library.index(embedder, decode_workers=0, batch_size=4, progress=lambda p: phases.append(p.phase), **kw)
    return summary, phases


def test_each_library_is_calibrated_on_its_own_photos_once(tmp_path, quantisations):
    first = Library.open(photo_folder(tmp_path, "a", range(0, 10)), tmp_path / "lib-a")
    second = Library.open(photo_folder(tmp_path, "b", range(20, 23)), tmp_path / "lib-b")
    given = int8()
    summary, phases = index(first, given)
    assert summary.added == 10 and phases[:2] == ["calibrating", "calibrating"] and "quantising" in phases
    outside = tmp_path / "query.jpg"
    outside.write_bytes((first.root / "img_03.jpg").read_bytes())
    hits = first.search(outside, k=1, embedder=given, verify=False)  # what it indexed with searches too
    assert hits[0].path.name == "img_03.jpg" and hits[0].cosine > 0.999
    index(second, int8())
    assert quantisations == [openvino_runtime.CALIBRATION_PHOTOS] * 2  # 3 photos filled up with pictures
    fingerprints = [signature_calibration(lib.model_signature) for lib in (first, second)]
    assert None not in fingerprints and fingerprints[0] != fingerprints[1]
    assert (tmp_path / "lib-a" / MODEL_FOLDER / f"{fingerprints[0]}.xml").exists()

    make_photo(11).save(first.root / "img_11.jpg")
    summary, phases = index(first, int8())  # a later run uses the library's model
    assert summary.added == 1 and summary.unchanged == 10 and "quantising" not in phases
    first.close()
    reopened = Library.open(library_dir=tmp_path / "lib-a")
    query = reopened.load_embedder()
    assert query.signature == reopened.model_signature
    hits = reopened.search(outside, k=1, embedder=query, verify=False)
    assert hits[0].path.name == "img_03.jpg" and hits[0].cosine > 0.999, "the query meets the library's own model"
    assert len(quantisations) == 2
    second.root.joinpath("img_11.jpg").write_bytes((first.root / "img_11.jpg").read_bytes())
    summary, phases = index(second, query)  # the first library's model: the second uses its own
    assert summary.added == 1 and "quantising" not in phases
    assert signature_calibration(second.model_signature) == fingerprints[1]
    reopened.close()
    second.close()


def test_the_time_an_index_took_counts_its_calibration(tmp_path, monkeypatch):
    """"Indexed in N s" (and "Indexing cancelled in N s"): fitting the model is part of the run."""
    quantise = openvino_runtime.quantise_on_photos

    def slow(*args, **options):
        time.sleep(1.0)
        return quantise(*args, **options)

    monkeypatch.setattr(openvino_runtime, "quantise_on_photos", slow)
    library = Library.open(photo_folder(tmp_path, "a", range(0, 3)), tmp_path / "lib")
    started = time.monotonic()
    summary, phases = index(library, int8())
    assert summary.added == 3 and "quantising" in phases
    assert 1.0 <= summary.seconds <= time.monotonic() - started
    library.close()


def test_a_cancelled_calibration_embeds_nothing_and_a_lost_model_is_made_again(tmp_path, quantisations):
    library = Library.open(photo_folder(tmp_path, "a", range(4)), tmp_path / "lib")
    cancel = threading.Event()
    cancel.set()
    summary, _ = index(library, int8(), cancel=cancel)
    assert summary.cancelled and library.photo_count() == 0 and quantisations == []
    index(library, int8())
    model = tmp_path / "lib" / MODEL_FOLDER / f"{signature_calibration(library.model_signature)}.xml"
    model.unlink()
    with pytest.raises(ModelLoadError, match="is missing: index the folder again"):
        library.load_embedder()
    lost = signature_calibration(library.model_signature)
    summary, _ = index(library, int8())
    assert len(quantisations) == 2
    # Quantising the kept fp32 conversion on the same photos again gives the same model here, so the
    # photos' vectors stand; a model that came out otherwise would have them embedded again.
    same_model = signature_calibration(library.model_signature) == lost
    assert (summary.unchanged, summary.added) == ((4, 0) if same_model else (0, 4))
    assert library.load_embedder().calibrated_model.exists()
    assert [p.suffix for p in sorted((tmp_path / "lib" / MODEL_FOLDER).iterdir())] == [".bin", ".xml"]
    library.close()


def test_a_cancel_while_quantising_ends_it_and_keeps_nothing(tmp_path, quantisations):
    library = Library.open(photo_folder(tmp_path, "a", range(4)), tmp_path / "lib")
    cancel = threading.Event()

    def cancel_when_quantising(progress):
        if progress.phase == "quantising":
            cancel.set()

    summary = library.index(int8(), decode_workers=0, batch_size=4, progress=cancel_when_quantising, cancel=cancel)
    assert summary.cancelled and library.photo_count() == 0 and len(quantisations) == 1
    assert not list((tmp_path / "lib" / MODEL_FOLDER).iterdir()), "nothing kept from a cancelled quantising"
    summary, phases = index(library, int8())
    assert summary.added == 4 and "quantising" in phases
    library.close()


def auto_embedder() -> Embedder:
    """The tiny model as if it were a real one, which "auto" runs with OpenVINO on a CPU."""
    spec = dataclasses.replace(MODELS["tiny-test"], weights_url="https://example.invalid/tiny.pth")
    return Embedder(spec, spec.build(), "random-seed-0", torch.device("cpu"), precision="auto", runtime="auto")


def test_auto_keeps_a_library_indexed_with_torch_on_torch(tmp_path, quantisations):
    library = Library.open(photo_folder(tmp_path, "a", range(4)), tmp_path / "lib")
    index(library, auto_embedder().on_torch())
    make_photo(9).save(library.root / "img_09.jpg")
    summary, _ = index(library, auto_embedder())
    assert (summary.added, summary.unchanged) == (1, 4) and quantisations == []
    assert "|rt:" not in library.model_signature
    library.close()


def test_auto_runs_bf16_uncalibrated_where_the_cpu_has_amx(tmp_path, monkeypatch, quantisations):
    monkeypatch.setattr(models, "cpu_has_amx", lambda: True)
    library = Library.open(photo_folder(tmp_path, "a", range(4)), tmp_path / "lib")
    summary, phases = index(library, auto_embedder())
    assert summary.added == 4 and quantisations == [] and "quantising" not in phases
    assert "|prec:bf16|rt:openvino" in library.model_signature and signature_calibration(library.model_signature) is None
    library.close()


@pytest.mark.parametrize("amx_before", [False, True], ids=["int8-library-on-amx", "bf16-library-without-amx"])
def test_auto_keeps_the_openvino_precision_a_library_was_indexed_at(tmp_path, monkeypatch, quantisations, amx_before):
    """A library moved to a computer where "auto" picks the other precision is not embedded again."""
    monkeypatch.setattr(models, "cpu_has_amx", lambda: amx_before)
    library = Library.open(photo_folder(tmp_path, "a", range(4)), tmp_path / "lib")
    index(library, auto_embedder())
    signature, calibrated = library.model_signature, list(quantisations)
    monkeypatch.setattr(models, "cpu_has_amx", lambda: not amx_before)
    monkeypatch.setitem(MODELS, "tiny-test", auto_embedder().spec)  # the settings' question, as of a real model
    assert choice_change(signature, None, "tiny-test", None) is None
    assert choice_change(signature, None, "tiny-test", None, precision="fp32") is not None
    make_photo(9).save(library.root / "img_09.jpg")
    summary, _ = index(library, auto_embedder())
    assert (summary.added, summary.unchanged) == (1, 4) and quantisations == calibrated
    assert library.model_signature == signature
    fresh = Library.open(photo_folder(tmp_path, "b", range(10, 13)), tmp_path / "lib-b")
    index(fresh, auto_embedder())  # a new library gets this CPU's precision
    assert ("|prec:int8|" in fresh.model_signature) == amx_before
    fresh.close()
    library.close()


def test_auto_indexes_with_torch_where_openvino_cannot_convert_the_model(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("unsupported operation")

    monkeypatch.setattr(models, "cpu_has_amx", lambda: True)
    monkeypatch.setattr(openvino_runtime, "load_openvino_model", broken)
    library = Library.open(photo_folder(tmp_path, "a", range(4)), tmp_path / "lib")
    summary, _ = index(library, auto_embedder())
    assert summary.added == 4 and "|rt:" not in library.model_signature
    with pytest.raises(ModelLoadError, match="converting tiny-test for OpenVINO failed.*--runtime torch"):
        load_embedder("tiny-test", runtime="openvino", precision="bf16")
    spec = auto_embedder().spec  # a library indexed in bf16 says so, rather than being embedded again with torch
    with pytest.raises(ModelLoadError, match="converting tiny-test for OpenVINO failed"):
        Embedder(spec, spec.build(), "random-seed-0", torch.device("cpu"), precision="auto", runtime="auto",
                 kept_precision="bf16")
    library.close()


def test_auto_indexes_with_torch_when_quantising_fails(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("unsupported operation")

    monkeypatch.setattr(openvino_runtime, "quantise_on_photos", broken)
    library = Library.open(photo_folder(tmp_path, "a", range(4)), tmp_path / "lib")
    summary, _ = index(library, auto_embedder())
    assert summary.added == 4 and "|rt:" not in library.model_signature
    with pytest.raises(ModelLoadError, match="quantising tiny-test for OpenVINO failed.*--runtime torch"):
        index(library, load_embedder("tiny-test", runtime="openvino"))
    library.close()


def test_a_quantising_worker_ended_by_a_cancel_is_no_reason_to_index_with_torch(tmp_path, monkeypatch):
    """Closing the window while the model was fitted ended its worker (a broken pipe): the library was
    indexed on with torch for good, and the window has no runtime to choose to get the fast model back."""
    cancel = threading.Event()
    quantise = openvino_runtime.quantise_on_photos

    def ended_by_the_cancel(*args, **kwargs):
        cancel.set()
        raise BrokenPipeError(32, "Broken pipe")

    library = Library.open(photo_folder(tmp_path, "a", range(4)), tmp_path / "lib")
    with monkeypatch.context() as patched:
        patched.setattr(openvino_runtime, "quantise_on_photos", ended_by_the_cancel)
        summary = library.index(auto_embedder(), decode_workers=0, batch_size=4, cancel=cancel)
    assert summary.cancelled and library.photo_count() == 0
    monkeypatch.setattr(openvino_runtime, "quantise_on_photos", quantise)
    summary, phases = index(library, auto_embedder())
    assert summary.added == 4 and "quantising" in phases and "|rt:" in library.model_signature
    library.close()


def test_quantising_on_a_full_disk_says_the_disk_is_full(tmp_path, monkeypatch):
    """OpenVINO says "basic_ios::clear: iostream error"; the library then stayed on torch for good."""
    def full(*args, **kwargs):
        raise RuntimeError("basic_ios::clear: iostream error")

    monkeypatch.setattr(openvino_runtime, "quantise_on_photos", full)
    monkeypatch.setattr(calibration.shutil, "disk_usage", lambda path: SimpleNamespace(free=5 << 20))
    library = Library.open(photo_folder(tmp_path, "a", range(4)), tmp_path / "lib")
    with pytest.raises(StoreError, match="the disk holding .*lib is full"):
        index(library, auto_embedder())
    assert library.model_signature is None, "nothing indexed, not on torch for good"
    library.close()


def test_a_folder_of_only_broken_photos_is_not_calibrated_for(tmp_path, quantisations):
    """It said so only after the quantising (36 s in the window); the next photo that decodes calibrates."""
    root = tmp_path / "broken"
    root.mkdir()
    for n in range(3):
        (root / f"cut_{n}.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a whole jpeg")
    library = Library.open(root, tmp_path / "lib")
    summary, phases = index(library, int8())
    assert summary.skipped == 3 and summary.added == 0
    assert quantisations == [] and "quantising" not in phases
    make_photo(1).save(root / "good.jpg")
    summary, phases = index(library, int8())
    assert summary.added == 1 and len(quantisations) == 1
    library.close()


def test_a_library_whose_model_is_made_again_keeps_its_photos_when_that_fails(tmp_path, monkeypatch):
    """Its model file lost, the library is calibrated again; a quantising that fails then loses nothing."""
    library = Library.open(photo_folder(tmp_path, "a", range(4)), tmp_path / "lib")
    index(library, int8())
    signature = library.model_signature
    (tmp_path / "lib" / MODEL_FOLDER / f"{signature_calibration(signature)}.xml").unlink()

    def broken(*args, **kwargs):
        raise RuntimeError("unsupported operation")

    monkeypatch.setattr(openvino_runtime, "quantise_on_photos", broken)
    with pytest.raises(ModelLoadError, match="quantising tiny-test for OpenVINO failed"):
        index(library, int8())
    assert library.photo_count() == 4 and library.model_signature == signature
    library.close()
