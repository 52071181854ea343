"""Helpers shared by the reliability tests."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

from tests.photos import make_photo
from vitgallery.core.index import IndexMismatch, VectorIndex
from vitgallery.core.library import DB_NAME, INDEX_NAME, Library, index_signature
from vitgallery.core.models import Embedder, load_embedder
from vitgallery.core.whitening import LibraryWhitening

BATCH = 4


class SimulatedKill(BaseException):
    """Stands for the process dying: nothing in the library catches a BaseException."""


def counting_embedder() -> Embedder:
    """The tiny test model; `embedder.embedded` counts the photos it has embedded."""
    embedder = load_embedder("tiny-test")
    embed_pixels = embedder.embed_pixels
    embedder.embedded = 0

    def embed_and_count(pixels):
        embedder.embedded += len(pixels)
        return embed_pixels(pixels)

    embedder.embed_pixels = embed_and_count
    return embedder


def add_photos(folder: Path, seeds: range, *, prefix: str = "p", size: tuple[int, int] = (128, 96)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in seeds:
        path = folder / f"{prefix}{seed:04d}.jpg"
        make_photo(seed, size=size).save(path, quality=85)
        paths.append(path)
    return paths


def index(lib: Library, embedder: Embedder, **kwargs):
    return lib.index(embedder, decode_workers=0, batch_size=BATCH, **kwargs)


def database_vectors(library: Path) -> dict[int, np.ndarray]:
    """The embedded rows, read with a connection of our own after checking the file's integrity."""
    db = sqlite3.connect(library / DB_NAME)
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        rows = db.execute("SELECT id, vector FROM files WHERE vector IS NOT NULL").fetchall()
        return {file_id: np.frombuffer(blob, dtype=np.float32) for file_id, blob in rows}
    finally:
        db.close()


def check_saved_index(library: Path, vectors: dict[int, np.ndarray]) -> bool:
    """An index file the library would accept must hold exactly the database's vectors (whitened).

    Returns whether the file is accepted (if not, the library rebuilds it from the database)."""
    db = sqlite3.connect(library / DB_NAME)
    try:
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        whitening = db.execute("SELECT key FROM whitening").fetchone()
    finally:
        db.close()
    if "model_signature" not in meta:
        return False
    signature = index_signature(meta["model_signature"], whitening[0] if whitening else None)
    try:
        index = VectorIndex.load(library / INDEX_NAME, model_signature=signature,
                                 dim=int(meta["dim"]), generation=int(meta["generation"]))
    except IndexMismatch:
        return False
    check_index_holds(index, index_space(library, vectors))
    return True


def index_space(library: Path, vectors: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """The database's vectors as the index holds them: through the whitening the library learned."""
    db = sqlite3.connect(library / DB_NAME)
    try:
        whitening = db.execute("SELECT mean, projection FROM whitening").fetchone()
    finally:
        db.close()
    if whitening is None:
        return vectors
    mean = np.frombuffer(whitening[0], dtype=np.float32)
    transform = LibraryWhitening(mean, np.frombuffer(whitening[1], dtype=np.float32).reshape(len(mean), -1))
    return {i: transform.apply(v[None, :])[0] for i, v in vectors.items()}


def check_index_holds(index: VectorIndex, vectors: dict[int, np.ndarray]) -> None:
    """The index's labels are the database ids and each label holds that row's vector."""
    ids = np.array(sorted(vectors), dtype=np.int64)
    np.testing.assert_array_equal(index.labels(), ids)
    if len(ids):
        # each row's own vector finds its label first, as itself (cosine 1)
        labels, similarities = index.query(np.stack([vectors[i] for i in ids]), k=1)
        np.testing.assert_array_equal(labels[:, 0], ids)
        np.testing.assert_allclose(similarities[:, 0], 1.0, atol=1e-4)
