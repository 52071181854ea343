"""Everything read from a library folder is untrusted: an index payload crafted to pass its checksum
never reaches hnswlib unchecked, and a stored path never leads outside the photo folder."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reliability.support import add_photos, counting_embedder, index
from vitgallery.core.index import header_path
from vitgallery.core.library import DB_NAME, INDEX_NAME, Library

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("seed", [1, 2])
def test_mutated_payloads_with_recomputed_checksums_never_crash(tmp_path, seed):
    """300 mutations of a saved payload (bytes, words, blocks, the hnswlib header, truncation), each
    with its checksum recomputed, loaded and used in a child process: each is refused or works."""
    run = subprocess.run([sys.executable, "-m", "tests.reliability.index_fuzz", str(tmp_path), "300", str(seed)],
                         capture_output=True, text=True, cwd=REPO_ROOT, timeout=280)
    last = run.stdout.strip().splitlines()[-1:]
    assert run.returncode == 0, f"the process died ({run.returncode}) at {last}: {run.stderr[-2000:]}"
    assert last and last[0].startswith("done:"), run.stdout[-500:]


def rewrite_payload(library: Path, change) -> None:
    """Change the payload and recompute its checksum, as someone who read the header format would."""
    payload = library / INDEX_NAME
    data = bytearray(payload.read_bytes())
    change(data)
    payload.write_bytes(bytes(data))
    header = json.loads(header_path(payload).read_text())
    header |= {"payload_bytes": len(data), "payload_sha256": hashlib.sha256(bytes(data)).hexdigest()}
    header_path(payload).write_text(json.dumps(header))


def link_far_away(data: bytearray) -> None:
    """The first element's first level-0 link names element 10 million."""
    data[96:100] = (max(1, int.from_bytes(data[96:98], "little"))).to_bytes(4, "little")
    data[100:104] = (10_000_000).to_bytes(4, "little")


def entry_point_far_away(data: bytearray) -> None:
    data[52:56] = struct.pack("<I", 10_000_000)


def huge_capacity(data: bytearray) -> None:
    data[8:16] = struct.pack("<Q", 1 << 40)


@pytest.mark.parametrize("change", [link_far_away, entry_point_far_away, huge_capacity])
def test_a_crafted_payload_is_refused_and_rebuilt(tmp_path, change):
    root, library = tmp_path / "photos", tmp_path / "library"
    add_photos(root, range(20))
    lib = Library.open(root, library)
    index(lib, counting_embedder())
    expected = [hit.path for hit in lib.search(root / "p0004.jpg", k=5)]
    lib.close()
    rewrite_payload(library, change)

    lib = Library.open(root, library)
    assert [hit.path for hit in lib.search(root / "p0004.jpg", k=5)] == expected
    assert len(lib.notices) == 1 and "corrupt payload" in lib.notices[0], lib.notices
    lib.close()


def test_stored_paths_never_lead_outside_the_photo_folder(tmp_path):
    root, library = tmp_path / "photos", tmp_path / "library"
    add_photos(root, range(12))
    embedder = counting_embedder()
    lib = Library.open(root, library)
    index(lib, embedder)
    lib.close()
    db = sqlite3.connect(library / DB_NAME)
    with db:
        db.execute("UPDATE files SET path = '../../../../etc/hostname' WHERE path = 'p0003.jpg'")
        db.execute("UPDATE files SET path = '/etc/passwd' WHERE path = 'p0004.jpg'")
        db.execute("UPDATE files SET path = 'a/../../x.jpg' WHERE path = 'p0005.jpg'")
    db.close()

    lib = Library.open(root, library)
    outside = {"hostname", "passwd", "x.jpg"}
    hits = lib.search(root / "p0001.jpg", k=20)
    assert hits and all(hit.path.is_relative_to(root) and hit.path.name not in outside for hit in hits)
    assert not outside & {Path(row.path).name for row in lib.photos()}
    summary = index(lib, embedder)  # the three photos are embedded again under their real names
    assert summary.added == 3 and summary.removed == 0
    hits = lib.search(root / "p0001.jpg", k=20)
    assert {hit.path.name for hit in hits} == {f"p{i:04d}.jpg" for i in range(12) if i != 1}
    lib.close()
