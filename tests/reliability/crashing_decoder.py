"""A decode function for the worker processes that dies natively on files named crash-me*.

Library.index submits `vitgallery.core.pipeline.decode_one` to its worker processes by name; a test
monkeypatches that name with `decode_or_crash`, which the workers import from here."""

from __future__ import annotations

import ctypes
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
