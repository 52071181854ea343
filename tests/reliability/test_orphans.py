"""No process outlives the CLI, even a SIGKILLed one: the decode workers, the forkserver and the
resource tracker notice that their parent is gone and end."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from tests.reliability.support import add_photos

CHILDREN_END_WITHIN_S = 20.0


def parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def running(pid: int) -> bool:
    """Alive and not a zombie (an ended process nobody reaped yet has freed everything)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def descendants(pid: int) -> set[int]:
    parents = {int(entry.name): parent_of(int(entry.name)) for entry in Path("/proc").iterdir() if entry.name.isdigit()}
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "?"


def test_sigkill_of_cli_index_leaves_no_process_behind(tmp_path, cli):
    root, library = tmp_path / "photos", tmp_path / "library"
    add_photos(root, range(80), size=(640, 480))
    embed_log = tmp_path / "embedded.txt"
    pid = cli.start(["index", str(root), "--library", str(library), "--model", "tiny-test", "--workers", "2",
                     "--batch-size", "4"], embed_log=embed_log, output=tmp_path / "output.txt")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (embed_log.exists() and embed_log.stat().st_size):
        time.sleep(0.01)
    children = descendants(pid)
    # the forkserver, two decode workers and the resource tracker
    assert len(children) >= 4, [command_line(child) for child in children]

    os.kill(pid, signal.SIGKILL)
    assert cli.wait() == -signal.SIGKILL, (tmp_path / "output.txt").read_text()
    deadline = time.monotonic() + CHILDREN_END_WITHIN_S
    while time.monotonic() < deadline and any(running(child) for child in children):
        time.sleep(0.1)
    survivors = [command_line(child) for child in children if running(child)]
    for child in children:  # never leave them to the next test
        if running(child):
            os.kill(child, signal.SIGKILL)
    assert survivors == []
