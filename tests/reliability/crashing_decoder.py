"""Decode functions for the worker processes that die: natively on files named crash-me*, or killed (as
the OOM killer does) on files named oom-*.

Library.index submits `vitgallery.core.pipeline.decode_one` to its worker processes by name; a test
monkeypatches that name with `decode_or_crash` or `decode_or_get_killed`, which the workers import from
here."""

from __future__ import annotations

import ctypes
import os
import signal
import time
from pathlib import Path

from vitgallery.core.pipeline import DecodeJob, decode_one

CRASH_MARK = "crash-me"


def attempts_log(photo: Path) -> Path:
    """Where each attempt on a crashing file is counted: next to the photo folder, outside it."""
    return photo.parent.parent / "crash-attempts.log"


def decode_or_crash(job: DecodeJob, size: int):
    path = job.path
    if CRASH_MARK in path.name:
        with open(attempts_log(path), "a") as log:
            log.write(f"{path.name}\n")
        ctypes.string_at(0)  # a segmentation fault, as a broken native decoder would cause
    return decode_one(job, size)


KILL_MARK = "oom-"


def kill_switch(photo: Path) -> Path:
    """While this file exists (next to the photo folder), decoding an oom-* file gets its worker killed."""
    return photo.parent.parent / "memory-pressure"


def decode_or_get_killed(job: DecodeJob, size: int):
    """What the kernel's OOM killer does to a worker decoding a large photo: SIGKILL, no error."""
    if job.path.name.startswith(KILL_MARK) and kill_switch(job.path).exists():
        os.kill(os.getpid(), signal.SIGKILL)
    return decode_one(job, size)


def stuck_or_dead(job: DecodeJob, size: int):
    """For jobs named after what they do: "stuck" runs on where its pool's SIGTERM cannot end it (as a
    worker the pool missed runs on), "die" dies after a moment; the rest return at once."""
    if job.path.name == "stuck":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(30)
    if job.path.name == "die":
        time.sleep(0.5)
        os._exit(1)
    return None, None, job.path.name
