"""Where a library keeps its searchable vectors: the hnswlib file (default) or a Qdrant collection.

Both are caches of the vectors in SQLite behind one interface (`VectorIndex`'s: add, remove, query,
labels, len, get_vectors, save, load), chosen by the library's recorded setting ("hnswlib", "qdrant"
for Qdrant's local mode in the library folder, "qdrant:URL" for a Qdrant server). A library outgrows
one hnswlib file long before it outgrows a Qdrant server (sharded, replicated, on another machine).

The Qdrant index keeps hnswlib's cache contract: `save` writes the same header file (`index.json`)
after the collection holds everything, naming the collection, model signature and database
generation; `load` raises IndexMismatch when the header is missing or names another store, model or
collection, and the library rebuilds the collection from SQLite. A loaded collection carries the
header's generation, and the library catches it up from there (index_cache.py) like an hnswlib file;
the catch-up reads the collection's own labels, so a collection changed after its header was saved
(a run killed before it saved) is mended rather than rebuilt. A collection's name carries the library
and the signature of its vectors, so a refit builds the new collection beside the one searches still
use; `save` drops the old one.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vitgallery.core.index import IndexMismatch, VectorIndex, header_path, read_header

if TYPE_CHECKING:  # optional dependency: imported when a library uses Qdrant
    from qdrant_client import QdrantClient

log = logging.getLogger(__name__)

HNSWLIB = "hnswlib"
QDRANT = "qdrant"
VECTOR_STORES = (HNSWLIB, QDRANT)  # the choices of `--vector-store` (qdrant also as qdrant:URL)
QDRANT_MISSING = "the Qdrant vector store needs the qdrant-client package (pip install 'vitgallery[qdrant]')"
QDRANT_FOLDER = "qdrant"  # local mode's storage, inside the library folder
_UPSERT_CHUNK = 1024
_HEADER_FORMAT = 1


class VectorStoreError(Exception):
    """The vector store setting is malformed or its backend cannot be reached; the message says why."""


@dataclass(frozen=True)
class VectorStoreSetting:
    """A library's choice of vector store, as recorded in its database."""

    kind: str = HNSWLIB
    url: str | None = None  # Qdrant server; None: local mode in the library folder

    @classmethod
    def parse(cls, text: str) -> VectorStoreSetting:
        kind, _, url = text.strip().partition(":")
        if kind not in VECTOR_STORES or (kind == HNSWLIB and url):
            raise VectorStoreError(f"unknown vector store {text!r}: use {HNSWLIB}, {QDRANT} or {QDRANT}:URL")
        if url and not url.startswith(("http://", "https://")):
            raise VectorStoreError(f"a Qdrant server is an http:// or https:// URL, not {url!r}")
        return cls(kind, url or None)

    def __str__(self) -> str:
        return f"{self.kind}:{self.url}" if self.url else self.kind


def new_index(setting: VectorStoreSetting, library_dir: Path, dim: int, model_signature: str, *,
              capacity: int = 1024) -> SearchIndex:
    """An empty index of the chosen kind (a Qdrant collection is created, replacing any of that name)."""
    if setting.kind == QDRANT:
        return QdrantIndex(dim, model_signature, client=_client(setting, library_dir),
                           collection=_collection_name(library_dir, model_signature), url=setting.url)
    return VectorIndex(dim, model_signature, capacity=capacity)


def load_index(setting: VectorStoreSetting, path: Path, *, model_signature: str, dim: int) -> SearchIndex:
    """The saved index at `path` (the library's index file), carrying the database generation it was
    saved at (the caller catches it up); IndexMismatch when it is unusable."""
    if setting.kind == QDRANT:
        return QdrantIndex.load(path, model_signature=model_signature, dim=dim,
                                client=_client(setting, path.parent), url=setting.url)
    return VectorIndex.load(path, model_signature=model_signature, dim=dim)


def saved_generation(path: Path) -> int:
    """The database generation of the index saved at `path`, whichever store saved it (the header is
    read, not the payload); IndexMismatch when there is no readable header."""
    try:
        return read_header(path).generation
    except IndexMismatch as not_hnswlib:
        try:
            return _read_qdrant_header(path).generation
        except IndexMismatch:
            raise not_hnswlib from None


# -- Qdrant ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class QdrantHeader:
    """What `index.json` says about a library's Qdrant collection."""

    format: int
    store: str
    url: str | None
    collection: str
    model_signature: str
    dim: int
    count: int
    generation: int


_clients: dict[str, QdrantClient] = {}
_clients_lock = threading.Lock()


def _client(setting: VectorStoreSetting, library_dir: Path) -> QdrantClient:
    """One client per server or local folder for the whole process: local mode locks its folder
    against a second client, and the refit builds a collection beside the one in use."""
    try:
        from qdrant_client import QdrantClient
    except ImportError:
        raise VectorStoreError(QDRANT_MISSING) from None
    key = setting.url or str((library_dir / QDRANT_FOLDER).absolute())
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            try:
                if setting.url:
                    # Unreachable or incompatible servers fail on the first call, worded by QdrantIndex._using.
                    client = QdrantClient(url=setting.url, check_compatibility=False)
                else:
                    (library_dir / QDRANT_FOLDER).mkdir(parents=True, exist_ok=True)
                    client = QdrantClient(path=key)
            except RuntimeError as exc:  # local mode: the folder is held by another process
                raise VectorStoreError(f"cannot open the Qdrant store in {key}: {exc}. Qdrant's local mode lets one "
                                       "program at a time use it: close the window or `vitgallery watch` using this "
                                       "library, or keep its vectors on a Qdrant server (--vector-store "
                                       "qdrant:URL)") from None
            if not _clients:
                atexit.register(_close_clients)  # before interpreter shutdown, where the client's own close fails
            _clients[key] = client
        return client


def _close_clients() -> None:
    with _clients_lock:
        for client in _clients.values():
            client.close()
        _clients.clear()


def _collection_name(library_dir: Path, model_signature: str) -> str:
    return f"{_library_prefix(library_dir)}{hashlib.sha1(model_signature.encode()).hexdigest()[:12]}"


def _library_prefix(library_dir: Path) -> str:
    return f"vitgallery-{hashlib.sha1(str(library_dir.absolute()).encode()).hexdigest()[:12]}-"


class QdrantIndex:
    """`VectorIndex`'s interface over one Qdrant collection (cosine distance, exact ids = file ids).

    Local mode runs inside this process and is not safe for concurrent calls, so calls are serialised
    here; a server serialises nothing on our side (it takes concurrent requests)."""

    def __init__(self, dim: int, model_signature: str, *, client: QdrantClient, collection: str,
                 url: str | None, create: bool = True):
        from qdrant_client import models

        self._models = models
        self._client = client
        self._collection = collection
        self._url = url
        self._dim = dim
        self._model_signature = model_signature
        # The database generation the collection reflects, kept up to date by its owner (IndexCache):
        # load sets it from the header, a new collection starts before every generation.
        self.generation = -1
        self._lock = threading.RLock() if url is None else None
        if create:
            with self._using("create the collection"):
                if client.collection_exists(collection):
                    client.delete_collection(collection)
                client.create_collection(collection, vectors_config=models.VectorParams(
                    size=dim, distance=models.Distance.COSINE))

    @contextmanager
    def _using(self, what: str) -> Iterator[None]:
        """Serialised where the store is in this process; a server's failure worded for the user."""
        with self._lock if self._lock is not None else nullcontext():
            try:
                yield
            except Exception as exc:  # the client raises transport and API errors of many types
                where = self._url or "the library folder"
                # a library whose server is gone is not stuck: the vectors are in its database
                way_out = (f"; without that server, index with --vector-store {HNSWLIB}: the library's own index file "
                           "is built from its database, nothing is embedded again") if self._url else ""
                raise VectorStoreError(f"Qdrant ({where}) failed to {what} in {self._collection}: {exc}{way_out}") from exc

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def model_signature(self) -> str:
        return self._model_signature

    @property
    def collection(self) -> str:
        return self._collection

    def __len__(self) -> int:
        with self._using("count the vectors"):
            return self._client.count(self._collection, exact=True).count

    def labels(self) -> np.ndarray:
        """The stored labels, sorted."""
        found: list[int] = []
        offset = None
        with self._using("list the vectors"):
            while True:
                points, offset = self._client.scroll(self._collection, limit=10_000, offset=offset,
                                                     with_payload=False, with_vectors=False)
                found.extend(int(p.id) for p in points)
                if offset is None:
                    break
        return np.array(sorted(found), dtype=np.int64)

    def add(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors (n, dim) under labels (n,); an existing label gets the new vector."""
        labels = np.atleast_1d(np.asarray(labels)).astype(np.int64, copy=False)
        vectors = self._as_vectors(vectors)
        if len(labels) != len(vectors):
            raise ValueError(f"{len(labels)} labels for {len(vectors)} vectors")
        if len(labels) and labels.min() < 0:
            raise ValueError("labels must be non-negative")
        with self._using("store vectors"):
            for start in range(0, len(labels), _UPSERT_CHUNK):
                chunk = slice(start, start + _UPSERT_CHUNK)
                self._client.upsert(self._collection, points=self._models.Batch(
                    ids=labels[chunk].tolist(), vectors=vectors[chunk].tolist()), wait=True)

    def remove(self, labels: np.ndarray) -> None:
        """Remove labels from search results; labels not in the index are ignored."""
        ids = np.atleast_1d(np.asarray(labels)).astype(np.int64, copy=False).tolist()
        if ids:
            with self._using("remove vectors"):
                self._client.delete(self._collection, points_selector=self._models.PointIdsList(points=ids),
                                    wait=True)

    def query(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest labels of each query vector and their cosine similarities, best first:
        (labels int64, similarities float32), both (n, min(k, len(self)))."""
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        queries = self._as_vectors(vectors)
        if k == 0 or len(queries) == 0:
            return np.empty((len(queries), 0), np.int64), np.empty((len(queries), 0), np.float32)
        requests = [self._models.QueryRequest(query=q.tolist(), limit=k) for q in queries]
        with self._using("search"):
            responses = self._client.query_batch_points(self._collection, requests=requests)
        width = min(len(r.points) for r in responses)  # a server's HNSW may return fewer for one query
        labels = np.array([[int(p.id) for p in r.points[:width]] for r in responses], dtype=np.int64)
        sims = np.array([[p.score for p in r.points[:width]] for r in responses], dtype=np.float32)
        return labels.reshape(len(queries), width), sims.reshape(len(queries), width)

    def get_vectors(self, labels: np.ndarray) -> np.ndarray:
        """The stored vectors (n, dim) float32, L2-normalised. Raises KeyError for labels not stored."""
        ids = np.atleast_1d(np.asarray(labels)).astype(np.int64, copy=False).tolist()
        with self._using("read vectors"):
            points = self._client.retrieve(self._collection, ids=ids, with_vectors=True, with_payload=False)
        by_id = {int(p.id): p.vector for p in points}
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise KeyError(f"labels not in the index: {missing[:10]}")
        if not ids:
            return np.empty((0, self._dim), np.float32)
        vectors = np.array([by_id[i] for i in ids], dtype=np.float32)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), np.float32(1e-30))

    def save(self, path: Path, generation: int) -> None:
        """Record that the collection holds the database at `generation` (header written atomically),
        then drop the library's other collections (left by a refit or a model change)."""
        header = QdrantHeader(_HEADER_FORMAT, QDRANT, self._url, self._collection, self._model_signature,
                              self._dim, len(self), generation)
        target = header_path(path)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                json.dump(asdict(header), stream, indent=1)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        prefix = _library_prefix(path.parent)
        with self._using("drop old collections"):
            for collection in self._client.get_collections().collections:
                if collection.name.startswith(prefix) and collection.name != self._collection:
                    self._client.delete_collection(collection.name)

    @classmethod
    def load(cls, path: Path, *, model_signature: str, dim: int, client: QdrantClient,
             url: str | None) -> QdrantIndex:
        """The collection the header at `path` names, at the header's generation. Raises IndexMismatch
        when the header is missing or damaged, names another store or model, a collection not this
        library's (a copied library folder would otherwise change the original's on a shared server), or
        its collection is gone. Its count is not checked: the collection changes before its header is saved, and the owner's
        catch-up mends what a killed run left."""
        header = _read_qdrant_header(path)
        if header.format != _HEADER_FORMAT or header.store != QDRANT or header.url != url:
            raise IndexMismatch(f"the header names another store ({header.store} {header.url or 'local'})")
        if header.model_signature != model_signature or header.dim != dim:
            raise IndexMismatch(f"model mismatch: collection has {header.model_signature}, library uses {model_signature}")
        if header.collection != _collection_name(path.parent, model_signature):
            raise IndexMismatch(f"the header names the collection {header.collection} of another library folder")
        index = cls(dim, model_signature, client=client, collection=header.collection, url=url, create=False)
        with index._using("find the collection"):
            exists = client.collection_exists(header.collection)
        if not exists:
            raise IndexMismatch(f"the Qdrant collection {header.collection} is gone")
        index.generation = header.generation
        return index

    def _as_vectors(self, vectors: np.ndarray) -> np.ndarray:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim == 1:
            vectors = vectors.reshape(1, -1)
        if vectors.ndim != 2 or vectors.shape[1] != self._dim:
            raise ValueError(f"expected vectors of shape (n, {self._dim}), got {vectors.shape}")
        if not np.isfinite(vectors).all():
            raise ValueError("vectors contain NaN or infinity")
        return vectors


def _read_qdrant_header(path: Path) -> QdrantHeader:
    try:
        raw: Any = json.loads(header_path(path).read_text(encoding="utf-8"))
        return QdrantHeader(**raw)
    except FileNotFoundError:
        raise IndexMismatch(f"missing header {header_path(path)}") from None
    except (OSError, ValueError, TypeError) as exc:
        raise IndexMismatch(f"not a Qdrant index header: {exc}") from None


SearchIndex = VectorIndex | QdrantIndex  # what a library searches, whichever the store
