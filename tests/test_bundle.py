"""The PyInstaller bundle, checked as a user meets it (packaging/smoke_test_bundle.py). Skipped unless
one has been built: packaging/build_bundle.sh builds it into dist/ (minutes, so not in CI's default run)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BUNDLE = Path(os.environ.get("VITGALLERY_BUNDLE", REPO / "dist" / "vitgallery" / "vitgallery"))

pytestmark = [
    pytest.mark.bundle,
    pytest.mark.skipif(not BUNDLE.is_file(), reason=f"no bundle at {BUNDLE}: packaging/build_bundle.sh builds it"),
]


@pytest.mark.timeout(900)  # a cold start of the bundle imports torch from disk
def test_the_bundle_indexes_searches_and_opens_the_window(tmp_path: Path) -> None:
    weights = os.environ.get("VITGALLERY_SMOKE_WEIGHTS")
    command = [sys.executable, str(REPO / "packaging" / "smoke_test_bundle.py"), str(BUNDLE), "--work", str(tmp_path)]
    done = subprocess.run(command + (["--weights", weights] if weights else []),
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
