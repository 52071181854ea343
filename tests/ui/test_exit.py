"""Quitting leaves nothing behind: no decoding process, forkserver or resource tracker outlives the app."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.photos import make_photo

REPO = Path(__file__).resolve().parents[2]
SETTLE_S = 5.0  # orphans, if any, are still there after this; clean children are gone at once


def processes_marked(mark: str) -> dict[int, str]:
    """pid -> command line of every process whose environment carries `mark` (the app's children
    inherit it, and orphans keep it)."""
    found = {}
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if mark.encode() in environ.read_bytes():
                command = (environ.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                found[int(environ.parent.name)] = command[:160]
        except OSError:
            continue
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize(("how", "status"), [("close", 0), ("ctrl-c", 130)])
def test_quitting_while_indexing_leaves_no_process_behind(tmp_path: Path, how: str, status: int) -> None:
    """Closed, or Ctrl+C in the terminal it started from (it crashed or hung on KeyboardInterrupt)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for number in range(80):
        make_photo(number, (800, 600)).save(folder / f"p{number:03d}.jpg", quality=90)
    mark = f"vitgallery-exit-test-{uuid.uuid4().hex}"
    env = dict(os.environ, VITGALLERY_EXIT_TEST=mark, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(REPO))
    env.pop("DISPLAY", None)
    output = tmp_path / "output.txt"
    try:
        # Output to a file, not a pipe: a process left behind would hold a pipe open and hang the test.
        with output.open("w") as sink:
            done = subprocess.run(
                [sys.executable, "-m", "tests.ui.quit_while_indexing", str(folder), str(tmp_path / "library"), "3.0",
                 how],
                cwd=REPO,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                timeout=240,
                start_new_session=True,  # a process group of its own, as a terminal gives a command
            )
        log = output.read_text()
        assert done.returncode == status, log[-3000:]
        assert "Traceback" not in log and "KeyboardInterrupt" not in log, log[-3000:]
        assert "quitting after" in log and "still stopping after" in log, log[-3000:]  # the model held a batch
        deadline = time.monotonic() + SETTLE_S
        while processes_marked(mark) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert processes_marked(mark) == {}
    finally:
        for pid in processes_marked(mark):  # a failed run must not leave them for the next tests
            os.kill(pid, signal.SIGKILL)
