"""Parallel decoding for indexing: worker processes decode and shrink photos while the model runs.

Decoding in processes does two jobs: it uses the cores the model leaves idle, and a native crash in
an image decoder kills a worker, not the app. A file whose decode broke the pool is tried again on
its own; if it breaks a fresh worker too it is reported as a crashed decode and skipped.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import stat
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vitgallery.core.imageio import (
    DecodedPhoto,
    DecodeError,
    Teaching,
    decode_for_model,
    decode_teaching_views,
)
from vitgallery.core.scan import fingerprint_bytes, fingerprint_file

log = logging.getLogger(__name__)

CRASHED_DECODER = "the image decoder crashed on this file"
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


def plan_resources(device_type: str = "cpu", cores: int | None = None) -> ResourcePlan:
    """Split the cores between decoding and the model (bench/throughput.py measured the costs).

    With a GPU the model costs the CPU almost nothing and decoding is the limit: every core decodes.
    On the CPU the model (ViT-S/14, int8 or bf16) costs about twice the CPU time of decoding a
    12-megapixel JPEG, so a third of the cores decode and the rest run the model.
    """
    cores = cores or available_cores()
    if device_type in ("cuda", "mps"):
        return ResourcePlan(decode_workers=min(cores, 32), model_threads=min(cores, 4), batch_size=64)
    workers = max(1, round(cores / 3))
    return ResourcePlan(decode_workers=workers, model_threads=max(1, cores - workers), batch_size=16)


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
        return None, None, "file vanished"
    except OSError as exc:
        return None, None, f"cannot read file: {exc.strerror or exc}"


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
            pending.append((job, pool.submit(decode_one, job, size)))
            if len(pending) >= prefetch:
                break
        while pending:
            job, future = pending.popleft()
            try:
                outcome = DecodeOutcome(job, *future.result())
            except BrokenProcessPool:
                pool.shutdown(wait=False, cancel_futures=True)
                outcome = _decode_isolated(job, size)
                # Everything queued behind the crash is resubmitted to a fresh pool.
                requeue = [j for j, _ in pending]
                pending.clear()
                pool = _new_pool(workers)
                for j in requeue:
                    pending.append((j, pool.submit(decode_one, j, size)))
            yield outcome
            next_job = next(job_iter, None)
            if next_job is not None:
                pending.append((next_job, pool.submit(decode_one, next_job, size)))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _decode_isolated(job: DecodeJob, size: int) -> DecodeOutcome:
    """One file in a worker of its own: tells a crashing file from its innocent neighbours."""
    with _new_pool(1) as pool:
        try:
            return DecodeOutcome(job, *pool.submit(decode_one, job, size).result())
        except BrokenProcessPool:
            log.warning("decoder crashed on %s", job.path)
            return DecodeOutcome(job, None, None, CRASHED_DECODER)


def _new_pool(workers: int) -> ProcessPoolExecutor:
    # forkserver/spawn, never fork: the parent holds torch threads that a fork would copy mid-state.
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method))
