"""A duplicates action SIGKILLed mid-way leaves a log that undo follows: every photo comes back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.reliability.support import add_photos
from vitgallery.core.duplicates.actions import ActionPlace, action_history, undo
from vitgallery.core.store import Store

REPO = Path(__file__).resolve().parents[2]

# Moves 8 photos into a folder, each move followed by a pause: the kill lands after a file moved
# and before its completion was written, the moment a log written at the end used to miss.
CHILD = """
import sys, time
from pathlib import Path
from vitgallery.core.duplicates import DuplicateMember, actions, moving
from vitgallery.core.duplicates.actions import ActionPlace, GroupSelection, move_to_folder
from vitgallery.core.store import Store

root, library, target = map(Path, sys.argv[1:4])

def member(path):
    st = path.stat()
    return DuplicateMember(0, path, st.st_size, st.st_mtime_ns, path.name, 128, 96, None, 1.0)

def move_then_pause(source, destination):
    moving.move_file(source, destination)
    time.sleep(0.3)

actions.move_file = move_then_pause
photos = sorted(root.glob("*.jpg"))
selection = GroupSelection(tuple(member(p) for p in photos), frozenset({photos[0]}))
move_to_folder(ActionPlace(Store(library / "library.sqlite3"), root), [selection], target)
"""


def test_sigkill_during_a_move_leaves_every_photo_recoverable(tmp_path):
    root, library, target = tmp_path / "photos", tmp_path / "library", tmp_path / "sorted-out"
    add_photos(root, range(8))
    before = {p.name: p.read_bytes() for p in root.iterdir()}
    Store(library / "library.sqlite3").close()
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(root), str(library), str(target)], cwd=REPO)
    deadline = time.monotonic() + 120
    while not (target.is_dir() and len(list(target.iterdir())) >= 3):
        assert child.poll() is None, "the action ended before it could be killed"
        assert time.monotonic() < deadline, "the action did not start"
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()

    store = Store(library / "library.sqlite3")
    try:
        place = ActionPlace(store, root)
        [entry] = action_history(place)
        moved = len(list(target.iterdir()))
        assert 3 <= moved < 7 and entry.undoable
        assert f"({moved} files)" in entry.text and f"{7 - moved} not moved" in entry.text
        back = undo(place, entry.action_id)
        assert len(back.done) == moved and not back.problems
    finally:
        store.close()
    assert {p.name: p.read_bytes() for p in root.iterdir()} == before
    assert not target.exists(), "the folder the move made, empty again, goes with its undo"
