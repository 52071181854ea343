"""Parallel decoding for indexing: worker processes decode and shrink photos while the model runs.

Decoding in processes does two jobs: it uses the cores the model leaves idle, and a native crash in
an image decoder kills a worker, not the app. A file whose decode broke the pool is tried again in a
process of its own: if that one crashes too the file is reported as crashing the decoder (tried again
once it changes); if it is killed from outside (SIGKILL: the OOM killer) the file is tried again on the
next run.

No worker outlives the process that started it, even a SIGKILLed one: each watches a pipe only that
process holds open (its end closes when it dies, however it dies) and, on Linux, also asks the kernel
for SIGKILL when its own parent (the forkserver) dies. WorkerProcess starts such a worker for other
long work that would hold the app's interpreter (converting and quantising the model for OpenVINO).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import math
import multiprocessing
import os
import pickle
import signal
import stat
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TypeVar

import numpy as np

from vitgallery.core.errors import LibraryError
from vitgallery.core.imageio import (
    AVIF_SUPPORT_MISSING,
    FILE_VANISHED,
    HEIF_PLUGIN_MISSING,
    NOT_ENOUGH_MEMORY,
    PERMISSION_DENIED,
    READ_ERROR,
    DecodedPhoto,
    DecodeError,
    Teaching,
    decode_for_model,
    decode_teaching_views,
    route_pillow_warnings,
)
from vitgallery.core.scan import fingerprint_bytes, fingerprint_file

log = logging.getLogger(__name__)
T = TypeVar("T")

CRASHED_DECODER = "the image decoder crashed on this file"
WORKER_KILLED = "the decoder process was killed (out of memory?); tried again on the next run"
CANNOT_READ = "cannot read"  # "cannot read file: ..." here and in the scan, "cannot read folder: ..."
# Reasons that say nothing lasting about the file: tried again on every run, changed or not (a chmod
# leaves the mtime alone; memory comes back; a plugin gets installed).
_PASSING_FAILURES = (FILE_VANISHED, PERMISSION_DENIED, READ_ERROR, NOT_ENOUGH_MEMORY, CANNOT_READ, WORKER_KILLED,
                     HEIF_PLUGIN_MISSING, AVIF_SUPPORT_MISSING)
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
CANCEL_POLL_S = 0.1  # how often a WorkerProcess's caller looks at its cancel while waiting
# Files up to this size are read once and hashed and decoded from memory; larger ones are streamed.
READ_WHOLE_MAX_BYTES = 256 << 20


@dataclass(frozen=True)
class DecodeJob:
    key: object  # the caller's handle for this file
    path: Path
    learning: Teaching | None = None  # set: decode only these views the library's whitening learns from
    teaching: Teaching | None = None  # set: decode the photo and, from the same decode, these teaching views


@dataclass(frozen=True)
class DecodeOutcome:
    job: DecodeJob
    photo: DecodedPhoto | np.ndarray | None  # the teaching views (decode_teaching_views) for a learning job
    fingerprint: str | None
    error: str | None  # a reason when the file was not decoded


@dataclass(frozen=True)
class ResourcePlan:
    """How indexing shares the machine: decoder processes, model threads, images per model call."""

    decode_workers: int
    model_threads: int
    batch_size: int


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


# One core's CPU time a photo costs (bench/index_limit.py, docs/performance.md issue 18 point 1). What a
# decode worker does with it (JPEG, model input, keypoints, grey copies) grows little with the file:
# keypoints are found on a 512-px copy whatever the photo (104 ms at 0.08 MB, 112 at 0.41, 148 at 2.4).
DECODE_CPU_MS = 102.0
DECODE_CPU_MS_PER_MB = 19.0
# A forward pass of the default model (ViT-S/14 at 224 px) by runtime and precision, and the model
# process's own work per photo.
FORWARD_CPU_MS = {("openvino", "int8"): 45.0, ("openvino", "bf16"): 70.0, ("torch", "int8"): 77.0,
                  ("torch", "bf16"): 92.0, ("torch", "fp32"): 157.0}
# On a CPU with AMX (Intel's matrix tiles) bf16 and OpenVINO's int8 run on the tiles. Measured on one
# (bench/index_limit.py: OpenVINO bf16 21 ms, its int8 26, torch bf16 26) and put in the units above by its
# decode and torch fp32, both 1.6 x as fast there.
FORWARD_CPU_MS_AMX = {**FORWARD_CPU_MS, ("openvino", "int8"): 41.0, ("openvino", "bf16"): 34.0,
                      ("torch", "bf16"): 41.0}
FORWARD_MODEL = "dinov2-s14"
MODEL_PROCESS_CPU_MS = 20.0  # storing, indexing, passing the decoded photo


def forward_cpu_ms(model_id: str, runtime: str, precision: str, *, amx: bool = False) -> float | None:
    """A forward pass's CPU time on one core where it was measured (FORWARD_CPU_MS, or FORWARD_CPU_MS_AMX
    on a CPU with AMX), else None."""
    if model_id != FORWARD_MODEL:
        return None
    return (FORWARD_CPU_MS_AMX if amx else FORWARD_CPU_MS).get((runtime, precision))


def plan_resources(device_type: str = "cpu", cores: int | None = None, *, forward_ms: float | None = None,
                   passes: float = 1.0, photo_bytes: float = 0.0) -> ResourcePlan:
    """Split the cores between decoding and the model.

    With a GPU the model costs the CPU almost nothing and decoding is the limit: every core decodes.
    On the CPU a third of the cores decode and the rest run the model, unless the model's cost is
    known: `forward_ms` a forward pass (forward_cpu_ms) and `passes` of them a photo (its teaching
    views included), for photos of `photo_bytes` on average. Then the decoders get the share of the
    cores decoding takes, rounded up, so the model never waits for them; the two sides may then ask
    for a core more than there are, which the system shares out. With OpenVINO int8 a 12 MP photo's
    decode costs 3 times its forward pass: on 2 cores, a 2,000-photo library of them embedded 6.8
    photos/s with 1 decoder and 9.1 with 2.
    """
    cores = cores or available_cores()
    if device_type in ("cuda", "mps"):
        return ResourcePlan(decode_workers=min(cores, 32), model_threads=min(cores, 4), batch_size=64)
    workers = max(1, round(cores / 3))
    # the model's threads are set when it loads, before a library says how many passes a photo takes
    model_threads = max(1, cores - workers)
    if forward_ms is not None:
        decode_ms = DECODE_CPU_MS + DECODE_CPU_MS_PER_MB * photo_bytes / 1e6
        decoding = decode_ms / (decode_ms + forward_ms * passes + MODEL_PROCESS_CPU_MS)
        workers = min(cores, math.ceil(cores * decoding))
    return ResourcePlan(decode_workers=workers, model_threads=model_threads, batch_size=16)


def failure_may_pass(reason: str) -> bool:
    """Whether a skip reason is worth trying again although the file did not change."""
    return reason.startswith(_PASSING_FAILURES)


def default_decode_workers(device_type: str = "cpu") -> int:
    return plan_resources(device_type).decode_workers


def decode_one(job: DecodeJob, size: int) -> tuple[DecodedPhoto | np.ndarray | None, str | None, str | None]:
    """(photo or teaching views, fingerprint, error reason); runs inside a worker process."""
    path = job.path
    try:
        data = _read_whole(path)
        if data is None:
            return _decode_job(job, path, size), fingerprint_file(path), None
        return _decode_job(job, data, size), fingerprint_bytes(data), None
    except DecodeError as exc:
        return None, None, exc.reason
    except FileNotFoundError:
        return None, None, FILE_VANISHED
    except OSError as exc:
        return None, None, f"{CANNOT_READ} file: {exc.strerror or exc}"


def _decode_job(job: DecodeJob, source: Path | bytes, size: int) -> DecodedPhoto | np.ndarray:
    if job.learning is None:
        return decode_for_model(source, size, job.teaching)
    return decode_teaching_views(source, size, job.learning)


def _read_whole(path: Path) -> bytes | None:
    """The file's bytes, read once for both the fingerprint and the decoder; None for anything else
    (not a plain file, very large, unreadable): decoding from the path then streams it and words the error."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_size > READ_WHOLE_MAX_BYTES:
            return None
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def decode_all(jobs: Iterable[DecodeJob], size: int, *, workers: int | None = None,
               prefetch: int = 64) -> Iterator[DecodeOutcome]:
    """Decoded photos in the order of `jobs`, with up to `prefetch` decodes running ahead.

    workers=0 decodes in this process (tests, tiny folders).
    """
    workers = default_decode_workers() if workers is None else workers
    if workers == 0:
        for job in jobs:
            yield DecodeOutcome(job, *decode_one(job, size))
        return
    pool = _new_pool(workers)
    pending: deque[tuple[DecodeJob, Future]] = deque()
    try:
        job_iter = iter(jobs)
        for job in job_iter:
            pending.append((job, _submit(pool, job, size)))
            if len(pending) >= prefetch:
                break
        while pending:
            job, future = pending.popleft()
            try:
                outcome = DecodeOutcome(job, *future.result())
            except BrokenProcessPool:
                _end_now(pool)
                outcome = _decode_isolated(job, size)
                # Everything queued behind the crash is resubmitted to a fresh pool.
                requeue = [j for j, _ in pending]
                pending.clear()
                pool = _new_pool(workers)
                for j in requeue:
                    pending.append((j, _submit(pool, j, size)))
            yield outcome
            next_job = next(job_iter, None)
            if next_job is not None:
                pending.append((next_job, _submit(pool, next_job, size)))
    finally:
        # A caller that stops early (a cancel, Ctrl+C) wants nothing more of the workers, and may not have
        # learnt yet that the pool broke. Shutting down waits for each worker to finish its photo and take
        # its "stop": a second Ctrl+C in that wait left one worker without it, and the exit waiting for it.
        if pending or getattr(pool, "_broken", False):
            _end_now(pool)
        else:
            pool.shutdown(wait=True, cancel_futures=True)


def _end_now(pool: ProcessPoolExecutor) -> None:
    """Shut a pool down without waiting for its workers: they are killed first. Also for a broken pool:
    when a worker dies, Python 3.11's pool ends the workers it knows of, but one that a submit was starting
    at that moment is missed: it waits for work forever, and the pool's thread, waiting for it, keeps this
    process from exiting (2 of 30 processes that each broke 10 pools, their workers killed as the OOM killer
    does: docs/benchmarks.md, stop 53). No submit runs while this does, so every worker the pool started is
    in its table now."""
    for worker in list((getattr(pool, "_processes", None) or {}).values()):
        worker.kill()
    pool.shutdown(wait=False, cancel_futures=True)


def _submit(pool: ProcessPoolExecutor, job: DecodeJob, size: int) -> Future:
    """The pool's future for decoding `job`. A worker that died while jobs were still being handed out
    breaks the pool at once: the job's future then fails as the running ones do, and decode_all deals
    with it the same way. Python 3.11 may also fail the hand-out with OSError ("handle is closed") when it
    starts a worker just as the pool breaks and closes its queue: the same case. An OSError of another
    cause (no process can be started at all) is met again by the job's process of its own, which then
    stops the run (_decode_isolated)."""
    try:
        return pool.submit(decode_one, job, size)
    except BrokenProcessPool as exc:
        failure = exc
    except OSError as exc:
        failure = BrokenProcessPool(f"a decode worker could not be started: {exc}")
        failure.__cause__ = exc
    broken: Future = Future()
    broken.set_exception(failure)
    return broken


def _decode_isolated(job: DecodeJob, size: int) -> DecodeOutcome:
    """One file in a process of its own: tells a file that crashes the decoder from its innocent
    neighbours, and from a process killed from outside (by the OOM killer, say). Where no process can be
    started at all, the run stops with a LibraryError: every file after would meet the same."""
    try:
        worker = WorkerProcess()
    # EOFError: the fork server could not fork and ended.
    except (OSError, EOFError) as exc:
        raise LibraryError(f"no process could be started to decode photos ({exc or type(exc).__name__}): "
                           "the photos indexed so far are kept; close other programs and index again") from exc
    try:
        with worker:
            # decode_one is passed as it is bound now, as the pool's submit does (tests swap it).
            return DecodeOutcome(job, *worker.run(decode_one, job, size))
    except WorkerDied as exc:
        if exc.exitcode == -signal.SIGKILL:
            log.warning("the decoder process was killed while decoding %s; it is tried again on the next run", job.path)
            return DecodeOutcome(job, None, None, WORKER_KILLED)
        log.warning("decoder crashed on %s (exit code %s)", job.path, exc.exitcode)
        return DecodeOutcome(job, None, None, CRASHED_DECODER)


class WorkCancelled(Exception):
    """The caller's cancel was set while a WorkerProcess ran its work: the process was ended."""


class WorkerDied(RuntimeError):
    """A WorkerProcess ended while it ran its work: a crash, or killed from outside (`exitcode` -9)."""

    def __init__(self, message: str, exitcode: int | None) -> None:
        super().__init__(message)
        self.exitcode = exitcode


class WorkerProcess:
    """A worker process of its own, as a decoder is (it ends with this process), for work that would hold
    this process's interpreter for long stretches (the window's, in the app). `prepare` (imports, say)
    starts at once and runs beside the caller's own work until the first `run`. Setting `cancel` while
    work runs ends the process: `run` then raises WorkCancelled; set before the worker is left, it ends
    the preparation too."""

    def __init__(self, prepare: Callable[[], object] | None = None, cancel: threading.Event | None = None) -> None:
        context = _context()
        self._cancel = cancel
        self._connection, worker_end = context.Pipe()
        # Daemonic: a process left running when the app exits is ended, not waited for.
        self._process = context.Process(target=_serve, args=(worker_end, _lifeline(), prepare),
                                        name="vitgallery-worker", daemon=True)
        self._process.start()
        worker_end.close()

    def run(self, function: Callable[..., T], *args) -> T:
        """`function(*args)` run there: its result, or its exception raised here (WorkerDied where the
        process died)."""
        name = getattr(function, "__name__", repr(function))
        try:
            if not self._cancelled():
                self._connection.send((function, args))
            answer = self._answer()
        # Its end closed (EOF), or gone before it took the work (a broken pipe, or a reset with the work
        # unread): killed from outside while it prepared, say.
        except (EOFError, BrokenPipeError, ConnectionResetError):
            self._process.join(1)
            raise WorkerDied(f"the worker process ended (exit code {self._process.exitcode}) "
                             f"while running {name}", self._process.exitcode) from None
        if answer is None:
            self._process.kill()
            raise WorkCancelled(name)
        done, value = answer
        if done:
            return value
        raise value

    def _answer(self) -> tuple[bool, object] | None:
        """The worker's (done, result or exception); None once cancelled."""
        while not self._cancelled():
            if self._connection.poll(CANCEL_POLL_S):
                return self._connection.recv()
        return None

    def _cancelled(self) -> bool:
        return self._cancel is not None and self._cancel.is_set()

    def __enter__(self) -> WorkerProcess:
        return self

    def __exit__(self, *exc) -> None:
        # An idle worker ends at once; one still preparing finishes that (a conversion it keeps for the
        # next time), unless its caller failed or was cancelled.
        self._connection.close()
        if exc[0] is not None or self._cancelled():
            self._process.kill()


def _serve(connection: Connection, lifeline: Connection, prepare: Callable[[], object] | None) -> None:
    """A WorkerProcess: what it is sent, run, until the connection closes."""
    _start_worker(lifeline)
    if prepare is not None:
        with contextlib.suppress(Exception):  # the work it prepares meets the same failure and says so
            prepare()
    while True:
        try:
            function, args = connection.recv()
        except EOFError:
            return
        try:
            answer = (True, function(*args))
        except Exception as exc:
            answer = (False, exc)
        try:
            connection.send(answer)
        except (pickle.PicklingError, TypeError, AttributeError):  # an exception that cannot travel
            connection.send((False, RuntimeError(f"{type(answer[1]).__name__}: {answer[1]}")))


def _new_pool(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=workers, mp_context=_context(), initializer=_start_worker,
                               initargs=(_lifeline(),))


def _context() -> multiprocessing.context.BaseContext:
    # forkserver/spawn, never fork: the parent holds torch threads that a fork would copy mid-state.
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # The server imports the decoders once and every worker is forked from it ready: a pool's first photo
    # came back 0.6 s after the pool started instead of 1-2 s (numpy, Pillow and OpenCV imported again in
    # each worker; 2 cores at load 7), which a folder watcher pays for every batch. "__main__" is the
    # default the list replaces: workers then need not run the main module again.
    context.set_forkserver_preload(["__main__", __name__])
    return context


_lifeline_pipe: tuple[Connection, Connection] | None = None
_lifeline_lock = threading.Lock()


def _lifeline() -> Connection:
    """The reading end of a pipe whose writing end only this process holds and never writes to: a
    worker reading it gets end-of-file exactly when this process is gone (even SIGKILLed)."""
    global _lifeline_pipe
    with _lifeline_lock:
        if _lifeline_pipe is None:
            _lifeline_pipe = multiprocessing.Pipe(duplex=False)
        return _lifeline_pipe[0]


def _start_worker(lifeline: Connection) -> None:
    """Set up a decode worker: it ends with the process that started it, leaves Ctrl+C to that process,
    and Pillow's warnings about a file go to the log (the warnings module would print them on the
    terminal, raw)."""
    # Ctrl+C reaches the whole process group: a worker waiting for work would die of it with a traceback
    # on the terminal, while the parent stops the workers itself (and saves what was embedded).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        # SIGKILL when the parent (the forkserver, which itself ends with the app) dies.
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    threading.Thread(target=_exit_when_closed, args=(lifeline,), name="vitgallery-lifeline", daemon=True).start()
    route_pillow_warnings()


def _exit_when_closed(lifeline: Connection) -> None:
    try:
        lifeline.recv_bytes()
    except (EOFError, OSError):
        pass
    os._exit(1)  # the parent is gone: nobody wants what this worker would send
