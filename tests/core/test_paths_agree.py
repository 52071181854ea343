"""Every way of turning a photo into a vector gives the same vector (within a stated tolerance).

Indexing decodes in worker processes or inline, embeds in batches of any size and at any precision;
a query decodes and embeds one image. A photo found through one path must look the same through another.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from tests.photos import make_photo
from vitgallery.core.imageio import decode_for_model, model_draft_size, open_image
from vitgallery.core.library import Library
from vitgallery.core.models import load_embedder
from vitgallery.core.pipeline import DecodeJob, decode_all, forward_cpu_ms, plan_resources
from vitgallery.core.scan import fingerprint_file


@pytest.fixture(scope="module")
def embedder():
    return load_embedder("tiny-test", device="cpu", precision="fp32")


@pytest.fixture
def photos(tmp_path):
    """JPEGs large enough for draft decoding, a PNG (no draft) and an EXIF-rotated JPEG."""
    folder = tmp_path / "photos"
    folder.mkdir()
    paths = []
    for i in range(6):
        path = folder / f"p{i}.jpg"
        make_photo(i, (900 + 37 * i, 640)).save(path, quality=90)
        paths.append(path)
    png = folder / "flat.png"
    make_photo(10, (1000, 700)).save(png)
    rotated = folder / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    make_photo(11, (800, 600)).save(rotated, quality=90, exif=exif.tobytes())
    return paths + [png, rotated]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1)


def test_worker_processes_decode_exactly_like_inline(photos):
    inline = list(decode_all([DecodeJob(p, p) for p in photos], 32, workers=0))
    pooled = list(decode_all([DecodeJob(p, p) for p in photos], 32, workers=2, prefetch=3))
    assert [o.job.path for o in pooled] == photos
    for a, b in zip(inline, pooled, strict=True):
        assert a.error is None and b.error is None
        np.testing.assert_array_equal(a.photo.pixels, b.photo.pixels)
        assert (a.photo.width, a.photo.height, a.photo.sharpness) == (b.photo.width, b.photo.height, b.photo.sharpness)
        assert a.fingerprint == b.fingerprint == fingerprint_file(a.job.path)


def test_decoding_from_memory_matches_decoding_the_file(photos):
    for path in photos:
        from_file, from_bytes = decode_for_model(path, 32), decode_for_model(path.read_bytes(), 32)
        np.testing.assert_array_equal(from_file.pixels, from_bytes.pixels)
        assert (from_file.width, from_file.height) == (from_bytes.width, from_bytes.height)


def test_batch_size_does_not_change_vectors(embedder, photos):
    pixels = np.stack([decode_for_model(p, embedder.input_size).pixels for p in photos])
    batched = embedder.embed_pixels(pixels)
    one_by_one = np.concatenate([embedder.embed_pixels(pixels[i:i + 1]) for i in range(len(pixels))])
    assert batched.shape == (len(photos), embedder.dim)
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
@pytest.mark.parametrize("size", [(4000, 3000), (1000, 700), (300, 200)])
def test_query_preparation_gives_the_indexed_pixels(embedder, tmp_path, fmt, size):
    """Query: open_image + Embedder.prepare; indexing: decode_for_model. Same pixels, to the last bit."""
    path = tmp_path / f"photo.{fmt.lower()}"
    make_photo(3, size).save(path, fmt)
    resized_embedder = load_embedder("tiny-test", device="cpu")
    for model_size in (32, 224):
        indexed = decode_for_model(path, model_size).pixels
        resized_embedder.spec = dataclasses.replace(embedder.spec, input_size=model_size)
        query = resized_embedder.prepare(open_image(path, draft_size=model_draft_size(model_size)))
        np.testing.assert_array_equal(query, indexed)


def test_query_path_gives_the_indexed_vector(embedder, photos, tmp_path):
    """A photo given as a query (decoded and prepared in this process) lands on its own stored vector."""
    library = Library.open(photos[0].parent, tmp_path / "library")
    library.index(embedder, decode_workers=0)
    stored = {row.path: row.id for row in library.photos()}
    vectors = library.store.vectors(list(stored.values()))
    for path in photos:
        query = embedder.embed_images([open_image(path, draft_size=model_draft_size(embedder.input_size))])[0]
        indexed = vectors[stored[path.name]]
        assert float(query @ indexed) > 0.9999, path.name
    library.close()


@pytest.mark.parametrize("precision, min_cosine", [("bf16", 0.99), ("int8", 0.99)])
def test_fast_cpu_paths_stay_close_to_fp32(embedder, photos, precision, min_cosine):
    fast = load_embedder("tiny-test", device="cpu", precision=precision)
    pixels = np.stack([decode_for_model(p, embedder.input_size).pixels for p in photos])
    reference, vectors = embedder.embed_pixels(pixels), fast.embed_pixels(pixels)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert cosines(reference, vectors).min() > min_cosine
    # Near-duplicates stay nearest: each photo's nearest fp32 neighbour is its own fast-path vector.
    assert (np.argmax(vectors @ reference.T, axis=1) == np.arange(len(photos))).all()
    assert fast.signature != embedder.signature  # never mixed in one library


def test_padding_for_compiled_shapes_does_not_change_vectors(embedder, photos):
    """A compiled embedder pads odd batches to a power of two; the padding must not leak into results."""
    pixels = np.stack([decode_for_model(p, embedder.input_size).pixels for p in photos[:3]])
    padded_embedder = load_embedder("tiny-test", device="cpu", precision="fp32")
    padded_embedder.compiled = True  # the padding logic alone; compiling is too slow for a unit test
    np.testing.assert_allclose(padded_embedder.embed_pixels(pixels), embedder.embed_pixels(pixels), atol=1e-5)


@pytest.mark.parametrize("device, cores, workers, threads", [
    ("cpu", 1, 1, 1), ("cpu", 2, 1, 1), ("cpu", 4, 1, 3), ("cpu", 12, 4, 8), ("cuda", 16, 16, 4), ("cuda", 64, 32, 4),
])
def test_resource_plan_never_oversubscribes_a_cpu(device, cores, workers, threads):
    plan = plan_resources(device, cores)
    assert (plan.decode_workers, plan.model_threads) == (workers, threads)
    if device == "cpu" and cores > 1:
        assert plan.decode_workers + plan.model_threads == cores


@pytest.mark.parametrize("cores, runtime, precision, amx, passes, megabytes, workers", [
    (2, "openvino", "int8", False, 1.5, 2.4, 2),  # measured: 9.1 photos/s with 2 decoders, 6.8 with 1 (docs/performance.md)
    (2, "openvino", "int8", False, 3.0, 2.4, 1),  # every photo taught with 2 views: 1 decoder was the faster
    (2, "openvino", "int8", False, 2.0, 0.1, 1),  # small photos, each taught: measured slower with 2 in the window
    (2, "openvino", "bf16", False, 2.0, 2.4, 1),
    (2, "openvino", "bf16", True, 2.0, 2.4, 2),  # measured, 1,000 photos: 79-83 s with 2 decoders, 102-105 s with 1
    (2, "openvino", "bf16", True, 3.0, 2.4, 2),
    (2, "torch", "fp32", True, 1.0, 2.4, 1),  # fp32 does not run on the tiles
    (2, "torch", "fp32", False, 1.0, 2.4, 1),
    (8, "openvino", "int8", False, 1.0, 2.4, 6),
    (1, "openvino", "int8", False, 1.0, 2.4, 1),
])
def test_decoders_follow_what_the_model_costs_a_photo(cores, runtime, precision, amx, passes, megabytes, workers):
    """With the forward pass's cost known, decoding gets the cores it takes, rounded up: with OpenVINO int8 a
    12 MP photo's decode costs about 3 of its forward passes, and a model left waiting for photos idles its core.
    On AMX tiles OpenVINO's passes cost half as much, and the decoders need more of the cores."""
    forward = forward_cpu_ms("dinov2-s14", runtime, precision, amx=amx)
    plan = plan_resources("cpu", cores, forward_ms=forward, passes=passes, photo_bytes=megabytes * 1e6)
    assert plan.decode_workers == workers
    assert plan.model_threads == plan_resources("cpu", cores).model_threads  # set when the model loads
    assert forward_cpu_ms("tiny-test", runtime, precision) is None  # not measured: a third of the cores decode
