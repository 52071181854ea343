"""Shared fixtures: generated photos, and user folders redirected into tmp so tests never touch $HOME."""

from __future__ import annotations

import faulthandler
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.photos import make_photo
from vitgallery.core import models

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

EXIT_GRACE_S = 60


def pytest_sessionfinish(session, exitstatus):
    """A test process still there a minute after its tests (a thread or a pool waited on at exit) prints
    every thread's stack and ends with the tests' status: CI would otherwise wait until its time ran out."""

    def end_it() -> None:
        time.sleep(EXIT_GRACE_S)
        sys.stderr.write(f"\nThe test process had not ended {EXIT_GRACE_S} s after its tests; its threads:\n")
        faulthandler.dump_traceback(all_threads=True)
        sys.stderr.flush()
        os._exit(int(exitstatus))

    threading.Thread(target=end_it, name="exit-watchdog", daemon=True).start()


@pytest.fixture(autouse=True)
def cpu_without_amx(monkeypatch):
    """OpenVINO's "auto" precision depends on the CPU (models.openvino_default_precision): a test sees one
    without AMX, where it is int8, unless it says otherwise."""
    monkeypatch.setattr(models, "cpu_has_amx", lambda: False)


@pytest.fixture(autouse=True)
def private_user_dirs(tmp_path_factory, monkeypatch):
    base = tmp_path_factory.mktemp("xdg")
    for var in ("XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(var, str(base / var.lower()))
    monkeypatch.setenv("TORCH_HOME", str(base / "torch"))


@pytest.fixture
def photo_folder(tmp_path) -> Path:
    """A folder of 12 distinct JPEG photos, two of them in a subfolder."""
    root = tmp_path / "photos"
    (root / "trip").mkdir(parents=True)
    for i in range(12):
        target = root / ("trip" if i >= 10 else "") / f"img_{i:02d}.jpg"
        make_photo(i).save(target, quality=92)
    return root
