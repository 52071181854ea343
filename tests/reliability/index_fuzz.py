"""Run in a child process by test_untrusted_library: load mutated index payloads whose checksums were
recomputed, and use what loads. A crash (hnswlib reading outside its memory) kills this process, and
the test sees the signal; the last line printed names the mutation.

Usage: python -m tests.reliability.index_fuzz FOLDER MUTATIONS SEED
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from pathlib import Path

import numpy as np

from vitgallery.core.index import IndexMismatch, VectorIndex, header_path

DIM = 16
SIGNATURE = "fuzz"
HNSW_HEADER_BYTES = 96


def original(folder: Path) -> tuple[bytes, dict]:
    """A small graph with upper levels (M=4), some deleted labels, saved once."""
    rng = np.random.default_rng(0)
    index = VectorIndex(DIM, SIGNATURE, capacity=300, m=4, ef_construction=40)
    index.add(np.arange(300), rng.normal(size=(300, DIM)).astype(np.float32))
    index.remove(np.arange(0, 300, 7))
    path = folder / "index.hnsw"
    index.save(path, generation=5)
    return path.read_bytes(), json.loads(header_path(path).read_text())


def mutate(payload: bytes, rng: random.Random) -> bytes:
    data = bytearray(payload)
    for _ in range(rng.choice((1, 1, 2, 4))):
        where = rng.randrange(HNSW_HEADER_BYTES) if rng.random() < 0.3 else rng.randrange(len(data))
        kind = rng.random()
        if kind < 0.4:
            data[where] = rng.randrange(256)
        elif kind < 0.7:  # a 4-byte word: a link id, a count, a size
            word = rng.choice((0, 1, 2, 255, 299, 300, 301, 0xFFFF, 0x10000, 0x7FFFFFFF, 0xFFFFFFFF,
                               rng.randrange(1 << 32)))
            data[where:where + 4] = word.to_bytes(4, "little")
        else:
            data[where:where + 16] = rng.randbytes(16)
    return bytes(data[:len(payload)]) if rng.random() < 0.9 else bytes(data[:rng.randrange(len(data))])


def main() -> None:
    folder, mutations, seed = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    payload, header = original(folder)
    path = folder / "index.hnsw"
    rng = random.Random(seed)
    loaded = refused = 0
    for number in range(mutations):
        mutated = mutate(payload, rng)
        path.write_bytes(mutated)
        header_path(path).write_text(json.dumps(
            header | {"payload_bytes": len(mutated), "payload_sha256": hashlib.sha256(mutated).hexdigest()}))
        print(f"mutation {number}", flush=True)
        try:
            index = VectorIndex.load(path, model_signature=SIGNATURE, dim=DIM)
        except IndexMismatch:
            refused += 1
            continue
        loaded += 1
        queries = np.random.default_rng(number).normal(size=(8, DIM)).astype(np.float32)
        index.query(queries, 10)
        labels = index.labels()
        index.remove(labels[:5])
        index.add(np.arange(1000, 1040), np.random.default_rng(number).normal(size=(40, DIM)).astype(np.float32))
        index.query(queries, 50)
        index.save(folder / "resaved.hnsw", generation=6)
    print(f"done: {loaded} loaded, {refused} refused", flush=True)


if __name__ == "__main__":
    main()
