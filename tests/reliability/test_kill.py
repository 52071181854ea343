"""Promise 1: killed at any moment, the library opens, its index agrees with its database, and at most
the batch in flight is embedded again. Also what a power cut can lose."""

from __future__ import annotations

import os
import random
import shutil
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.reliability.support import (
    BATCH,
    SimulatedKill,
    add_photos,
    check_index_holds,
    check_saved_index,
    counting_embedder,
    database_vectors,
    index,
    index_space,
)
from vitgallery.core.index import VectorIndex
from vitgallery.core.library import DB_NAME, Library

KILLS = 20
NEW_PHOTOS_PER_ROUND = 8


def check_library_opens(root: Path, library: Path, vectors: dict[int, np.ndarray]) -> None:
    lib = Library.open(root, library)
    try:
        space = lib.search_space()
        if vectors:
            np.testing.assert_array_equal(space.index.labels(), sorted(vectors))
            some_photo = root / lib.photos()[0].path
            assert len(lib.search(some_photo, k=3)) == min(3, len(vectors) - 1)
    finally:
        lib.close()


def test_sigkill_at_random_moments_loses_at_most_the_batch_in_flight(tmp_path, cli):
    """`vitgallery index` is SIGKILLed 20 times in a row, at seeded random moments (a quarter during
    start-up, the rest after its first batch: embedding, committing, saving the index). After each kill
    the database passes its integrity check, no committed vector changed, an index file the library
    would accept holds exactly the database's vectors, the library opens and searches, and the killed
    run lost at most one batch: what it embedded minus what it committed."""
    rng = random.Random(20240607)
    root, library, logs = tmp_path / "photos", tmp_path / "library", tmp_path / "logs"
    root.mkdir()
    logs.mkdir()
    photos_made = 0

    def add_new_photos(count: int) -> None:
        nonlocal photos_made
        add_photos(root, range(photos_made, photos_made + count))
        photos_made += count

    def run(name: str, kill_after: Callable[[Path], None] | None) -> tuple[int, int]:
        """(return code, photos embedded) of one `vitgallery index` run, killed once kill_after returns."""
        embed_log, output = logs / f"embedded-{name}.txt", logs / f"output-{name}.txt"
        pid = cli.start(argv, embed_log=embed_log, output=output)
        if kill_after is not None:
            kill_after(embed_log)
            os.kill(pid, signal.SIGKILL)  # harmless if it has ended: it stays unreaped until wait()
        returncode = cli.wait()
        assert returncode in (0, -signal.SIGKILL), output.read_text()
        embedded = sum(int(n) for n in embed_log.read_text().split()) if embed_log.exists() else 0
        return returncode, embedded

    def during_start_up(embed_log: Path) -> None:  # model, database, index file, scan
        time.sleep(rng.uniform(0, start_up_s))

    def after_first_batch(embed_log: Path) -> None:  # embedding, committing batches, saving the index
        nonlocal start_up_s
        started = time.monotonic()
        wait_for_bytes(embed_log)
        start_up_s = (start_up_s + time.monotonic() - started) / 2
        time.sleep(rng.uniform(0, delay_s))

    argv = ["index", str(root), "--library", str(library), "--model", "tiny-test",
            "--workers", "0", "--batch-size", str(BATCH)]
    add_new_photos(40)
    kills, runs, total_embedded, total_lost = 0, 0, 0, 0
    landed = {"before embedding": 0, "while embedding": 0, "after embedding": 0}
    delay_s = 0.3  # adapts so that most kills after the first batch land while embedding goes on
    start_up_s = 0.2  # follows how long a run takes to embed its first batch
    before: dict[int, np.ndarray] = {}
    while kills < KILLS:
        runs += 1
        assert runs <= 3 * KILLS, f"only {kills} of {runs} runs were killed before they ended"
        add_new_photos(NEW_PHOTOS_PER_ROUND)
        returncode, embedded = run(str(runs), during_start_up if rng.random() < 0.25 else after_first_batch)

        after = database_vectors(library) if (library / DB_NAME).exists() else {}
        lost = embedded - (len(after) - len(before))
        assert 0 <= lost <= BATCH, f"run {runs} embedded {embedded} photos, committed {len(after) - len(before)}"
        assert all(np.array_equal(after[i], v) for i, v in before.items()), "a committed vector changed"
        check_saved_index(library, after)
        if runs % 4 == 0:
            check_library_opens(root, library, after)
        total_embedded += embedded
        total_lost += lost
        before = after

        if returncode == 0:
            delay_s *= 0.8
            continue
        kills += 1
        phase = ("before embedding" if embedded == 0 else
                 "while embedding" if len(after) < photos_made else "after embedding")
        landed[phase] += 1
        delay_s *= {"before embedding": 1.0, "while embedding": 1.15, "after embedding": 0.7}[phase]

    returncode, embedded = run("final", None)
    assert returncode == 0 and embedded == photos_made - len(before), "the last run embeds just what is missing"
    total_embedded += embedded
    final = database_vectors(library)
    assert len(final) == photos_made
    assert check_saved_index(library, final)
    assert total_embedded - photos_made == total_lost <= kills * BATCH
    print(f"{kills} kills in {runs} runs, landed {landed}; {total_lost} photos embedded twice")
    assert landed["while embedding"] >= KILLS // 4, f"too few kills hit the embedding phase: {landed}"

def wait_for_bytes(path: Path, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not (path.exists() and path.stat().st_size):
        time.sleep(0.002)


def test_sqlite_settings_bound_what_a_power_cut_can_lose(tmp_path):
    """WAL with synchronous=NORMAL: a killed app loses nothing committed; a power cut can lose the
    commits since the last checkpoint (at most wal_autocheckpoint = 1000 pages, about 40 batches of 32
    photos) and never corrupts the file. The README states the same, so both change together."""
    (tmp_path / "photos").mkdir()
    lib = Library.open(tmp_path / "photos", tmp_path / "library")
    try:
        db = lib.store._db
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
        assert db.execute("PRAGMA wal_autocheckpoint").fetchone() == (1000,)
    finally:
        lib.close()
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "synchronous=NORMAL" in readme and "power cut" in readme


def test_power_cut_rollback_then_kill_never_revives_a_stale_index(tmp_path, monkeypatch):
    """A power cut (or a restored backup) takes the database back to an earlier commit while the index
    file on disk is newer. New photos then bring the database's generation counter back to the
    number the stale file records; if the process dies before it saves its index, the stale file
    must not pass for a valid one."""
    root, library = tmp_path / "photos", tmp_path / "library"
    add_photos(root, range(20))
    embedder = counting_embedder()
    snapshot = tmp_path / "at-16-photos"

    def snapshot_after_four_batches(p):
        if p.phase == "embedding" and p.done == 16:
            snapshot.mkdir()
            for name in (DB_NAME, DB_NAME + "-wal"):
                if (library / name).exists():
                    shutil.copy2(library / name, snapshot / name)

    lib = Library.open(root, library)
    index(lib, embedder, progress=snapshot_after_four_batches)
    lib.close()
    assert check_saved_index(library, database_vectors(library))

    # The power cut: the last batch's commit never reached the disk.
    for name in (DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm"):
        (library / name).unlink(missing_ok=True)
        if (snapshot / name).exists():
            shutil.copy2(snapshot / name, library / name)
    assert len(database_vectors(library)) == 16

    # New photos that sort first fill the lost batch's ids; the process dies before saving its index.
    add_photos(root, range(100, 104), prefix="0new")
    cancel = threading.Event()
    monkeypatch.setattr(VectorIndex, "save", lambda *a, **k: (_ for _ in ()).throw(SimulatedKill()))
    lib = Library.open(root, library)
    with pytest.raises(SimulatedKill):
        index(lib, embedder, cancel=cancel, progress=lambda p: p.done >= 4 and cancel.set())
    lib.store.close()
    monkeypatch.undo()

    vectors = database_vectors(library)
    assert len(vectors) == 20
    check_saved_index(library, vectors)  # either rejected or exactly right
    lib = Library.open(root, library)
    check_index_holds(lib.search_space().index, index_space(library, vectors))
    embedder.embedded = 0
    summary = index(lib, embedder)
    assert summary.added == 4 and embedder.embedded == 4, "only the batch the power cut lost is embedded again"
    lib.close()
    assert check_saved_index(library, database_vectors(library))
