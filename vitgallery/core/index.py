"""`VectorIndex`: the one owner of the hnswlib index.

The index is a cache of the vectors stored in SQLite. It is saved atomically as three files next to each
other: the hnswlib payload (`index.hnsw`), the sorted live labels (`index.labels.npy`) and a JSON header
(`index.json`) written last, which names the model, dimension, metric, counts, database generation and
the size and SHA-256 of the other two files. `VectorIndex.load` checks all of it and raises
`IndexMismatch` for anything off; the caller then rebuilds the index from SQLite.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import struct
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import BinaryIO

import hnswlib
import numpy as np

from vitgallery.core import partial_files

log = logging.getLogger(__name__)

FORMAT_VERSION = 2  # 2: files saved before it could claim a generation newer than they held
METRIC = "cosine"
# Chosen with bench/index_scale.py on 1M clustered 384-d vectors (2 cores): M=16 reached only 0.967
# recall@10 at ef 192; M=32 with ef 128 gives 0.984 at 0.67 ms p95 query CPU time, ~2 KB per vector.
DEFAULT_M = 32
DEFAULT_EF_SEARCH = 128

_HASH_BLOCK_BYTES = 8 << 20
_EXACT_SEARCH_CHUNK = 65_536

# hnswlib's saveIndex layout (hnswalg.h, 0.8): offsetLevel0, max_elements, cur_element_count,
# size_data_per_element, label_offset, offsetData (size_t); maxlevel (int); enterpoint (uint32); maxM,
# maxM0, M (size_t); mult (double); ef_construction (size_t). Then every element's level-0 record
# (link count, maxM0 links, the vector, the label), then per element the byte size of its upper-level
# links and those links.
_HNSW_HEADER = struct.Struct("<QQQQQQiIQQQdQ")
_HNSW_MAX_M = 2048
_HNSW_MAX_EF_CONSTRUCTION = 100_000
_HNSW_CHECK_CHUNK = 65_536  # elements whose links are checked at a time (bounds the check's memory)


class IndexMismatch(Exception):
    """A saved index is missing, damaged or belongs to another model/database state: rebuild it."""


class _ReadWriteLock:
    """Many readers or one writer; a waiting writer goes before readers that arrive after it.

    Not reentrant: a thread holding either side must not acquire again.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._readers = 0
        self._writer_active = False
        self._writers_waiting = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._condition:
            while self._writer_active or self._writers_waiting:
                self._condition.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._condition:
                self._readers -= 1
                if self._readers == 0:
                    self._condition.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._condition:
            self._writers_waiting += 1
            try:
                while self._writer_active or self._readers:
                    self._condition.wait()
            finally:
                self._writers_waiting -= 1
            self._writer_active = True
        try:
            yield
        finally:
            with self._condition:
                self._writer_active = False
                self._condition.notify_all()


@dataclass(frozen=True)
class IndexHeader:
    """What `index.json` says about the payload next to it."""

    format: int
    model_signature: str
    dim: int
    metric: str
    count: int
    capacity: int
    m: int
    ef_construction: int
    generation: int
    payload_bytes: int
    payload_sha256: str
    labels_bytes: int
    labels_sha256: str

    @classmethod
    def from_json(cls, text: str) -> IndexHeader:
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise IndexMismatch(f"corrupt header: not JSON ({exc})") from None
        if not isinstance(raw, dict):
            raise IndexMismatch("corrupt header: not a JSON object")
        values = {}
        for field in fields(cls):
            # Field types are strings under `from __future__ import annotations`.
            expected = int if field.type == "int" else str
            value = raw.get(field.name)
            # bool is an int subclass; a header never holds booleans.
            if not isinstance(value, expected) or isinstance(value, bool):
                raise IndexMismatch(
                    f"corrupt header: field {field.name!r} is missing or not {expected.__name__}"
                )
            values[field.name] = value
        return cls(**values)


def header_path(path: Path) -> Path:
    return Path(path).with_suffix(".json")


def labels_path(path: Path) -> Path:
    return Path(path).with_suffix(".labels.npy")


def read_header(path: Path) -> IndexHeader:
    """The header of the index saved at `path` (the payload path), without checking the payload."""
    try:
        text = header_path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise IndexMismatch(f"missing header {header_path(path)}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise IndexMismatch(f"corrupt header: {exc}") from None
    return IndexHeader.from_json(text)


class VectorIndex:
    """Approximate nearest-neighbour search over labelled vectors (cosine similarity), backed by hnswlib.

    Labels are non-negative int64 ids (the database's file ids). Adding an existing label replaces its
    vector; removed labels are only marked deleted in the graph and can be added again.

    Thread safety: every method may be called from any thread. hnswlib is not safe when `add_items`
    overlaps `knn_query`, and `resize_index` is safe with nothing, so a read/write lock guards the graph:
    `add`, `remove` and setting `ef_search` take the write side; `query`, `len`, `labels` and
    `save` take the read side (saving a snapshot only reads the graph). A waiting
    writer goes before newly arriving readers, so searching cannot starve indexing; in turn a search
    waits for at most one `add` call, so add in batches (about a thousand vectors) when searches run
    at the same time. hnswlib releases the GIL, so queries from several threads run in parallel.
    """

    def __init__(
        self,
        dim: int,
        model_signature: str,
        *,
        capacity: int = 1024,
        m: int = DEFAULT_M,
        ef_construction: int = 100,
        ef_search: int = DEFAULT_EF_SEARCH,
        threads: int = 0,
    ) -> None:
        if dim <= 0 or capacity < 0 or m < 2 or ef_construction <= 0:
            raise ValueError(
                f"bad index parameters: dim={dim} capacity={capacity} m={m} ef_construction={ef_construction}"
            )
        graph = hnswlib.Index(space=METRIC, dim=dim)
        graph.init_index(max_elements=capacity, M=m, ef_construction=ef_construction)
        self._adopt(graph, model_signature, live=set(), deleted=set(), ef_search=ef_search, threads=threads)

    def _adopt(
        self,
        graph: hnswlib.Index,
        model_signature: str,
        *,
        live: set[int],
        deleted: set[int],
        ef_search: int,
        threads: int,
    ) -> None:
        if ef_search <= 0 or threads < 0:
            raise ValueError(f"bad search parameters: ef_search={ef_search} threads={threads}")
        self._graph = graph
        self._model_signature = model_signature
        # The database generation the vectors reflect, as far as the owner keeps it up to date: load
        # sets it from the header, a new index starts before every generation.
        self.generation = -1
        # hnswlib cannot tell whether a label is deleted, and get_ids_list() includes deleted ones.
        self._live = live
        self._deleted = deleted
        self._threads = threads or os.cpu_count() or 1
        self._lock = _ReadWriteLock()
        self._save_lock = threading.Lock()
        self._ef_search = ef_search
        # knn_query searches with max(ef, k), so ef is set once rather than per query.
        graph.set_ef(ef_search)

    @property
    def dim(self) -> int:
        return self._graph.dim

    @property
    def model_signature(self) -> str:
        return self._model_signature

    @property
    def capacity(self) -> int:
        with self._lock.read():
            return self._graph.get_max_elements()

    @property
    def ef_search(self) -> int:
        return self._ef_search

    @ef_search.setter
    def ef_search(self, value: int) -> None:
        if value <= 0:
            raise ValueError(f"ef_search must be positive, got {value}")
        with self._lock.write():
            self._graph.set_ef(value)
            self._ef_search = value

    def __len__(self) -> int:
        with self._lock.read():
            return len(self._live)

    def labels(self) -> np.ndarray:
        """The live labels, sorted."""
        with self._lock.read():
            return self._sorted_live()

    def _sorted_live(self) -> np.ndarray:
        live = np.fromiter(self._live, dtype=np.int64, count=len(self._live))
        live.sort()
        return live

    def add(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors (n, dim) under labels (n,); an existing label gets the new vector."""
        labels = _as_labels(labels)
        vectors = self._as_vectors(vectors)
        if len(labels) != len(vectors):
            raise ValueError(f"{len(labels)} labels for {len(vectors)} vectors")
        if len(np.unique(labels)) != len(labels):
            raise ValueError("duplicate labels in one add")
        if len(labels) == 0:
            return
        label_list = labels.tolist()
        with self._lock.write():
            revived = [label for label in label_list if label in self._deleted]
            new_count = sum(
                1 for label in label_list if label not in self._live and label not in self._deleted
            )
            needed = self._graph.element_count + new_count
            capacity = self._graph.get_max_elements()
            if needed > capacity:
                # Resizing copies the whole graph: grow in large steps.
                new_capacity = max(2 * capacity, needed)
                log.debug("growing index capacity %d -> %d", capacity, new_capacity)
                self._graph.resize_index(new_capacity)
            # hnswlib would undelete these inside the parallel add, where its deleted counter is not
            # thread-safe; a wrong count can let deleted items show up in results.
            for label in revived:
                self._graph.unmark_deleted(label)
                self._deleted.discard(label)
            self._graph.add_items(vectors, labels, num_threads=self._threads)
            self._live.update(label_list)

    def remove(self, labels: np.ndarray) -> None:
        """Remove labels from search results; labels not in the index are ignored."""
        labels = _as_labels(labels)
        with self._lock.write():
            for label in labels.tolist():
                if label in self._live:
                    self._graph.mark_deleted(label)
                    self._live.discard(label)
                    self._deleted.add(label)

    def query(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest live labels of each query vector and their cosine similarities, best first.

        Returns (labels int64, similarities float32), both (n, min(k, len(self))); a single (dim,)
        vector counts as n = 1.
        """
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        queries = self._as_vectors(vectors)
        with self._lock.read():
            k = min(k, len(self._live))
            if k == 0 or len(queries) == 0:
                return np.empty((len(queries), k), np.int64), np.empty((len(queries), k), np.float32)
            try:
                labels, distances = self._graph.knn_query(queries, k=k, num_threads=self._threads)
            except RuntimeError as exc:
                # Raised when the graph walk reaches fewer than k live items: updates and deletions can
                # leave items no link points to. Exact search always answers.
                if "contiguous" not in str(exc):
                    raise
                log.debug(
                    "hnswlib found fewer than %d of %d live items; searching exactly", k, len(self._live)
                )
                return self._exact_query(queries, k)
        return labels.astype(np.int64), 1.0 - distances

    def _exact_query(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        norms = np.linalg.norm(queries, axis=1, keepdims=True)
        queries = queries / np.maximum(norms, np.float32(1e-30))
        live = self._sorted_live()
        best_labels = np.empty((len(queries), 0), np.int64)
        best_similarities = np.empty((len(queries), 0), np.float32)
        for start in range(0, len(live), _EXACT_SEARCH_CHUNK):
            chunk = live[start : start + _EXACT_SEARCH_CHUNK]
            # The cosine space stores vectors normalised, so a dot product is the similarity.
            similarities = queries @ self._graph.get_items(chunk, return_type="numpy").T
            best_labels, best_similarities = _top_k(
                np.concatenate([best_labels, np.broadcast_to(chunk, similarities.shape)], axis=1),
                np.concatenate([best_similarities, similarities], axis=1),
                k,
            )
        order = np.argsort(-best_similarities, axis=1, kind="stable")
        return np.take_along_axis(best_labels, order, 1), np.take_along_axis(best_similarities, order, 1)

    def save(self, path: Path, generation: int) -> None:
        """Save atomically to `path` (payload), `path.labels.npy` and `path.json` (header, written last).

        `generation` is the database state the index reflects; `load` can insist on it.
        """
        path = Path(path)
        directory = path.parent
        with self._save_lock:
            partial_files.remove_abandoned(directory, path.name)
            temporaries = [_temp_file(directory, path.name) for _ in range(3)]
            payload_tmp, labels_tmp, header_tmp = temporaries
            try:
                with self._lock.read():
                    self._graph.save_index(str(payload_tmp))
                    live = self._sorted_live()
                    capacity = self._graph.get_max_elements()
                with open(labels_tmp, "wb") as stream:
                    np.save(stream, live, allow_pickle=False)
                header = IndexHeader(
                    format=FORMAT_VERSION,
                    model_signature=self._model_signature,
                    dim=self.dim,
                    metric=METRIC,
                    count=len(live),
                    capacity=capacity,
                    m=self._graph.M,
                    ef_construction=self._graph.ef_construction,
                    generation=generation,
                    payload_bytes=payload_tmp.stat().st_size,
                    payload_sha256=_sync_and_hash(payload_tmp),
                    labels_bytes=labels_tmp.stat().st_size,
                    labels_sha256=_sync_and_hash(labels_tmp),
                )
                header_tmp.write_text(json.dumps(asdict(header), indent=1), encoding="utf-8")
                _sync_and_hash(header_tmp)
                # The header goes last: a crash before it leaves checksums that disagree, which load detects.
                os.replace(payload_tmp, path)
                os.replace(labels_tmp, labels_path(path))
                os.replace(header_tmp, header_path(path))
                _sync_directory(directory)
            except BaseException:
                for temporary in temporaries:
                    temporary.unlink(missing_ok=True)
                raise
        log.debug("saved index of %d vectors to %s (generation %d)", header.count, path, generation)

    @classmethod
    def load(
        cls,
        path: Path,
        *,
        model_signature: str,
        dim: int,
        generation: int | None = None,
        ef_search: int = DEFAULT_EF_SEARCH,
        threads: int = 0,
    ) -> VectorIndex:
        """Load an index saved by `save`. Raises IndexMismatch when it is missing, damaged or was built
        for another model, dimension or (when given) database generation."""
        path = Path(path)
        header = read_header(path)
        if header.format != FORMAT_VERSION or header.metric != METRIC:
            raise IndexMismatch(
                f"format mismatch: file has format {header.format} metric {header.metric}, "
                f"library uses format {FORMAT_VERSION} metric {METRIC}"
            )
        if header.model_signature != model_signature:
            raise IndexMismatch(
                f"model mismatch: file has {header.model_signature}, library uses {model_signature}"
            )
        if header.dim != dim:
            raise IndexMismatch(f"dimension mismatch: file has {header.dim}, library uses {dim}")
        if generation is not None and header.generation != generation:
            raise IndexMismatch(
                f"generation mismatch: file has {header.generation}, database has {generation}"
            )
        _verify(path, header.payload_bytes, header.payload_sha256, "payload")
        _verify(labels_path(path), header.labels_bytes, header.labels_sha256, "labels")
        _check_payload(path, header, dim)
        try:
            live_labels = np.load(labels_path(path), allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise IndexMismatch(f"corrupt labels file: {exc}") from None
        if live_labels.dtype != np.int64 or live_labels.shape != (header.count,):
            raise IndexMismatch(
                f"corrupt labels file: {live_labels.dtype} {live_labels.shape}, header counts {header.count}"
            )
        graph = hnswlib.Index(space=METRIC, dim=dim)
        try:
            graph.load_index(str(path))
        except (RuntimeError, MemoryError) as exc:
            raise IndexMismatch(f"corrupt payload: {exc}") from None
        live = set(live_labels.tolist())
        in_payload = set(graph.get_ids_list())
        if not live <= in_payload or len(in_payload) != graph.element_count:
            raise IndexMismatch("corrupt labels file: live labels are not in the payload")
        deleted = in_payload - live
        index = cls.__new__(cls)
        index._adopt(graph, model_signature, live=live, deleted=deleted, ef_search=ef_search, threads=threads)
        index.generation = header.generation
        log.debug("loaded index of %d vectors from %s", len(live), path)
        return index

    def _as_vectors(self, vectors: np.ndarray) -> np.ndarray:
        vectors = np.asarray(vectors)
        if vectors.ndim == 1:
            vectors = vectors.reshape(1, -1)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"expected vectors of shape (n, {self.dim}), got {vectors.shape}")
        if not np.issubdtype(vectors.dtype, np.floating):
            raise ValueError(f"expected floating-point vectors, got {vectors.dtype}")
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if not np.isfinite(vectors).all():
            raise ValueError("vectors contain NaN or infinity")
        return vectors


def _as_labels(labels: np.ndarray) -> np.ndarray:
    labels = np.atleast_1d(np.asarray(labels))
    if labels.ndim != 1 or not (np.issubdtype(labels.dtype, np.integer) or labels.size == 0):
        raise ValueError(f"expected a 1-D array of integer labels, got {labels.dtype} {labels.shape}")
    labels = labels.astype(np.int64, copy=False)
    if labels.size and labels.min() < 0:
        raise ValueError("labels must be non-negative")
    return labels


def _top_k(labels: np.ndarray, similarities: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k most similar per row, unordered."""
    if similarities.shape[1] <= k:
        return labels, similarities
    keep = np.argpartition(-similarities, k - 1, axis=1)[:, :k]
    return np.take_along_axis(labels, keep, 1), np.take_along_axis(similarities, keep, 1)


def _temp_file(directory: Path, name: str) -> Path:
    # The pid in the name tells a save in progress in another process from one a kill cut short.
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=partial_files.writer_prefix(name), suffix=".tmp")
    os.close(handle)
    return Path(temporary)


def _sync_and_hash(path: Path) -> str:
    """Flush the file to disk and return its SHA-256."""
    # Opened writable because Windows cannot fsync a read-only handle.
    with open(path, "r+b") as stream:
        digest = _sha256(stream)
        os.fsync(stream.fileno())
    return digest


def _sha256(stream: BinaryIO) -> str:
    digest = hashlib.sha256()
    buffer = bytearray(_HASH_BLOCK_BYTES)
    view = memoryview(buffer)
    while read := stream.readinto(buffer):
        digest.update(view[:read])
    return digest.hexdigest()


def _verify(path: Path, expected_bytes: int, expected_sha256: str, what: str) -> None:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise IndexMismatch(f"missing {what} {path}") from None
    if size != expected_bytes:
        raise IndexMismatch(f"checksum mismatch: {what} has {size} bytes, header says {expected_bytes}")
    with open(path, "rb") as stream:
        if _sha256(stream) != expected_sha256:
            raise IndexMismatch(f"checksum mismatch: {what} {path} differs from its header")


def _check_payload(path: Path, header: IndexHeader, dim: int) -> None:
    """Check everything hnswlib would trust in a payload before it sees it: hnswlib takes sizes,
    offsets and link ids as they are, so a crafted file (its checksum recomputed) could make it read or
    write outside its memory. Raises IndexMismatch for anything a save of ours cannot have written."""
    file_size = path.stat().st_size
    if file_size < _HNSW_HEADER.size:
        raise _corrupt("shorter than its header")
    with open(path, "rb") as stream:
        (offset_level0, capacity, count, record_bytes, label_offset, data_offset, max_level, entry_point, max_m,
         max_m0, m, mult, ef_construction) = _HNSW_HEADER.unpack(stream.read(_HNSW_HEADER.size))
    links0_bytes = 4 + 4 * max_m0
    if not (2 <= m <= _HNSW_MAX_M and max_m == m and max_m0 == 2 * m and offset_level0 == 0
            and data_offset == links0_bytes and label_offset == data_offset + 4 * dim
            and record_bytes == label_offset + 8):
        raise _corrupt("its layout does not match the index parameters")
    if not (math.isfinite(mult) and abs(mult - 1.0 / math.log(m)) < 1e-6 and m == header.m
            and 0 < ef_construction == header.ef_construction <= _HNSW_MAX_EF_CONSTRUCTION):
        raise _corrupt("its construction parameters are not the header's")
    # A save of ours holds no more room than about twice its elements: the index grows by doubling.
    if not (count <= capacity == header.capacity and capacity <= 2 * count + 1024):
        raise _corrupt(f"{count} elements in room for {capacity}")
    upper_start = _HNSW_HEADER.size + count * record_bytes
    if upper_start + 4 * count > file_size or (file_size - upper_start) % 4:
        raise _corrupt("shorter than its elements")
    if count == 0:
        if (max_level, entry_point, file_size) != (-1, 0xFFFFFFFF, _HNSW_HEADER.size):
            raise _corrupt("an empty graph with an entry point")
        return

    upper = np.memmap(path, dtype="<u4", mode="r", offset=upper_start)
    levels, starts = _upper_levels(upper, count, 4 + 4 * max_m)
    if not (0 <= max_level == levels.max() and entry_point < count and levels[entry_point] == max_level):
        raise _corrupt("its entry point is not on its top level")
    records = np.memmap(path, dtype=np.uint8, mode="r", offset=_HNSW_HEADER.size, shape=(count, record_bytes))
    for start in range(0, count, _HNSW_CHECK_CHUNK):
        chunk = np.ascontiguousarray(records[start:start + _HNSW_CHECK_CHUNK])
        _check_links(chunk[:, :links0_bytes].view("<u4"), levels, 0)
        if not np.isfinite(chunk[:, data_offset:label_offset].view("<f4")).all():
            raise _corrupt("a vector is not finite")
        if (chunk[:, label_offset:].view("<u8") >= 1 << 63).any():
            raise _corrupt("a label is out of range")
    block_words = 1 + max_m
    for level in range(1, max_level + 1):
        above = np.flatnonzero(levels >= level)
        for first in range(0, len(above), _HNSW_CHECK_CHUNK):
            at = starts[above[first:first + _HNSW_CHECK_CHUNK]] + (level - 1) * block_words
            _check_links(upper[at[:, None] + np.arange(block_words)], levels, level)


def _corrupt(why: str) -> IndexMismatch:
    return IndexMismatch(f"corrupt payload: {why}")


def _upper_levels(upper: np.ndarray, count: int, block_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    """(each element's top level, where its upper links start in `upper`), from the per-element byte
    sizes that precede them. Most elements have none (size 0): runs of them are skipped at once."""
    levels = np.zeros(count, dtype=np.int64)
    starts = np.zeros(count, dtype=np.int64)
    nonzero = np.flatnonzero(upper)
    position = element = 0
    while element < count:
        following = np.searchsorted(nonzero, position)
        next_nonzero = int(nonzero[following]) if following < len(nonzero) else len(upper)
        without = min(next_nonzero - position, count - element)  # elements without upper levels
        element += without
        position += without
        if element == count:
            break
        size = int(upper[position])
        if size % block_bytes or position + 1 + size // 4 > len(upper):
            raise _corrupt("its upper-level links do not add up to its size")
        levels[element] = size // block_bytes
        starts[element] = position + 1
        position += 1 + size // 4
        element += 1
    if position != len(upper):
        raise _corrupt("its upper-level links do not add up to its size")
    return levels, starts


def _check_links(lists: np.ndarray, levels: np.ndarray, level: int) -> None:
    """Link lists as hnswlib keeps them, one per row: a count in the low 16 bits of the first word
    (the level-0 delete mark sits above them), then the links. Every counted link must name an
    element that reaches this level, or a search walking it would read outside the graph."""
    counts = lists[:, 0] & 0xFFFF
    links = lists[:, 1:]
    if (counts > links.shape[1]).any():
        raise _corrupt(f"a level-{level} link list is longer than its room")
    used = links[np.arange(links.shape[1]) < counts[:, None]].astype(np.int64)
    if (used >= len(levels)).any() or (levels[used[used < len(levels)]] < level).any():
        raise _corrupt(f"a level-{level} link leads outside the graph")


def _sync_directory(directory: Path) -> None:
    """Make the renames durable. Windows cannot open a directory; its os.replace needs no help."""
    if os.name == "nt":
        return
    handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
