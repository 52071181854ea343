"""Shared fixtures: generated photos, and user folders redirected into tmp so tests never touch $HOME."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.photos import make_photo

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


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
