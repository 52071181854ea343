"""Failures that pass are retried on the next run, even when the file did not change: a file that could
not be read (permissions fixed with chmod, which leaves the mtime alone), a decode worker killed from
outside (the OOM killer's SIGKILL). A decoder that crashes on a file again and again stays skipped."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import threading
import time
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest

from tests.reliability import crashing_decoder
from tests.reliability.support import add_photos, counting_embedder
from vitgallery.core import pipeline
from vitgallery.core.errors import LibraryError
from vitgallery.core.library import Library
from vitgallery.core.pipeline import CRASHED_DECODER, WORKER_KILLED


def test_a_file_unreadable_until_chmod_is_indexed_on_the_next_run(tmp_path, cli):
    """As an unprivileged user (root reads every file)."""
    shared = Path(tempfile.mkdtemp(prefix="vg-chmod-"))
    try:
        shared.chmod(0o777)
        root, library = shared / "photos", shared / "library"
        add_photos(root, range(6))
        locked = root / "p0004.jpg"
        locked.chmod(0)
        user = 65534 if os.geteuid() == 0 else None
        if user is not None:
            for path in [shared, *shared.rglob("*")]:
                os.chown(path, user, user)
        options = {"user": user, "env": {"XDG_DATA_HOME": str(shared / "xdg")}}
        argv = ["index", str(root), "--library", str(library), "--model", "tiny-test", "--workers", "0"]
        returncode, out = cli.run(argv, output=tmp_path / "1.txt", **options)
        assert returncode == 0 and "added 5" in out and "skipped 1: permission denied" in out, out

        mtime = locked.stat().st_mtime_ns
        locked.chmod(0o644)
        assert locked.stat().st_mtime_ns == mtime
        returncode, out = cli.run(argv, output=tmp_path / "2.txt", **options)
        assert returncode == 0 and "added 1" in out and "skipped 0" in out, out
    finally:
        for path in [shared, *shared.rglob("*")]:
            path.chmod(0o777)
        shutil.rmtree(shared)


def photos_under_memory_pressure(tmp_path: Path, monkeypatch, doomed: int) -> tuple[Path, Path]:
    """10 photos and `doomed` more whose decode gets its worker killed, as the OOM killer does, while the
    switch (returned with the folder) exists."""
    root = tmp_path / "photos"
    add_photos(root, range(10))
    add_photos(root, range(50, 50 + doomed), prefix=crashing_decoder.KILL_MARK)
    monkeypatch.setattr(pipeline, "decode_one", crashing_decoder.decode_or_get_killed)
    pressure = crashing_decoder.kill_switch(root / "x.jpg")
    pressure.touch()
    return root, pressure


def test_photos_whose_worker_was_killed_are_retried_not_blamed(tmp_path, monkeypatch):
    root, pressure = photos_under_memory_pressure(tmp_path, monkeypatch, doomed=3)

    lib = Library.open(root, tmp_path / "library")
    summary = lib.index(counting_embedder(), decode_workers=2, batch_size=4)
    assert summary.added == 10 and summary.skipped_reasons == {WORKER_KILLED: 3}
    assert CRASHED_DECODER not in {s.reason for s in lib.skipped()}
    lib.close()

    pressure.unlink()  # the memory is back
    lib = Library.open(root, tmp_path / "library")
    summary = lib.index(counting_embedder(), decode_workers=2, batch_size=4)
    assert summary.added == 3 and summary.skipped == 0 and lib.skipped() == []
    lib.close()


@pytest.mark.parametrize("failure", [BrokenProcessPool("a worker died"), OSError("handle is closed")],
                         ids=["broken", "queue-closed"])
def test_a_pool_broken_while_the_first_jobs_are_handed_out_loses_no_photo(tmp_path, monkeypatch, failure):
    """A worker killed before the first jobs were all handed out breaks the pool at the next hand-out
    (it was an unhandled BrokenProcessPool; Python 3.11 raises OSError instead when that hand-out starts a
    worker as the pool closes its queue): those jobs are decoded as the ones running then are."""
    from vitgallery.core.pipeline import DecodeJob, decode_all

    paths = add_photos(tmp_path / "photos", range(6))
    make_pool, made = pipeline._new_pool, []

    class BrokenAfterTheFirstJob:
        def __init__(self, pool) -> None:
            self.pool, self.handed_out = pool, 0

        def submit(self, *args):
            self.handed_out += 1
            if self.handed_out > 1:
                raise failure
            return self.pool.submit(*args)

        def shutdown(self, **kwargs) -> None:
            self.pool.shutdown(**kwargs)

    def first_one_breaks(workers):
        made.append(make_pool(workers))
        return BrokenAfterTheFirstJob(made[-1]) if len(made) == 1 else made[-1]

    monkeypatch.setattr(pipeline, "_new_pool", first_one_breaks)
    outcomes = list(decode_all([DecodeJob(p, p) for p in paths], 32, workers=1))
    assert [o.job.path for o in outcomes] == paths and all(o.error is None for o in outcomes)
    assert len(made) == 2, "the rest went to a fresh pool"


def test_a_broken_pool_is_ended_with_every_worker_it_started():
    """When a worker dies, Python 3.11's pool ends the workers it knows of, but misses one that a submit was
    starting at that moment: that worker waited for work forever, and the pool's thread, waiting for it,
    kept the process from exiting. decode_all ends a broken pool with every worker it started killed, so
    its thread ends even where a worker would not have (here: busy for a minute)."""
    pool = pipeline._new_pool(2)
    busy = [pool.submit(time.sleep, 60) for _ in range(2)]
    workers, thread = list(pool._processes.values()), pool._executor_manager_thread
    pipeline._end_now(pool)
    thread.join(20)
    assert not thread.is_alive(), "the pool's thread still waits for its workers"
    assert not any(worker.is_alive() for worker in workers)
    assert all(isinstance(future.exception(), BrokenProcessPool) for future in busy)


def test_a_run_cancelled_as_its_pool_breaks_ends_without_waiting_for_a_worker(tmp_path, monkeypatch):
    """The same missed worker can meet a cancel: the caller stops reading decode_all before it learns that
    the pool broke. The pool is then ended as a broken one, its workers killed, not shut down waiting for
    each. A worker the pool's SIGTERM cannot end stands for the missed one here."""
    from vitgallery.core.pipeline import DecodeJob, decode_all

    make_pool, made = pipeline._new_pool, []
    monkeypatch.setattr(pipeline, "_new_pool", lambda workers: made.append(make_pool(workers)) or made[-1])
    monkeypatch.setattr(pipeline, "decode_one", crashing_decoder.stuck_or_dead)
    outcomes = decode_all([DecodeJob(name, tmp_path / name) for name in ("quick", "stuck", "die")], 32, workers=2)
    assert next(outcomes).job.key == "quick"
    for _ in range(200):  # until "die" has died and the pool knows it; "stuck" runs on
        if made[0]._broken:
            break
        time.sleep(0.1)
    closing = threading.Thread(target=outcomes.close, daemon=True)
    closing.start()
    closing.join(15)
    assert not closing.is_alive(), "closing decode_all waits for the worker the broken pool could not end"


def test_a_run_stopped_early_ends_its_workers_without_waiting_for_their_photos(tmp_path, monkeypatch):
    """A cancel or Ctrl+C wants nothing more of the workers. Shutting the pool down waited for each to finish
    its photo, and a second Ctrl+C in that wait left a worker waiting for work, and the exit waiting for it."""
    from vitgallery.core.pipeline import DecodeJob, decode_all

    make_pool, made = pipeline._new_pool, []
    monkeypatch.setattr(pipeline, "_new_pool", lambda workers: made.append(make_pool(workers)) or made[-1])
    monkeypatch.setattr(pipeline, "decode_one", crashing_decoder.stuck_or_dead)
    outcomes = decode_all([DecodeJob(name, tmp_path / name) for name in ("quick", "stuck", "quick")], 32, workers=2)
    assert next(outcomes).job.key == "quick"
    workers = list(made[0]._processes.values())
    closing = threading.Thread(target=outcomes.close, daemon=True)
    closing.start()
    closing.join(15)
    assert not closing.is_alive(), "closing decode_all waits for a photo nobody wants"
    for worker in workers:
        worker.join(5)
    assert not any(worker.is_alive() for worker in workers)


def test_no_process_to_decode_in_stops_the_run_with_a_message_and_loses_nothing(tmp_path, monkeypatch):
    """Memory short enough for the OOM killer to end a decoder may also leave none to start another: the
    file it was decoding is then tried in a process of its own, which cannot start either. The run stops
    saying so, the photos indexed before are kept, and the next run does the rest."""
    root, pressure = photos_under_memory_pressure(tmp_path, monkeypatch, doomed=1)

    def no_memory(*args, **kwargs):
        raise OSError(errno.ENOMEM, "Cannot allocate memory")

    with monkeypatch.context() as memory_short:
        memory_short.setattr(pipeline, "WorkerProcess", no_memory)
        lib = Library.open(root, tmp_path / "library")
        with pytest.raises(LibraryError, match="no process could be started to decode photos.*Cannot allocate memory"):
            lib.index(counting_embedder(), decode_workers=2, batch_size=4)
        lib.close()

    pressure.unlink()
    lib = Library.open(root, tmp_path / "library")
    summary = lib.index(counting_embedder(), decode_workers=2, batch_size=4)
    assert summary.skipped == 0 and lib.store.count_files() == 11
    lib.close()
