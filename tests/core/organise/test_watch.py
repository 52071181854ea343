"""The folder watcher on a real temporary folder: every wait is bounded."""

from __future__ import annotations

import queue
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from tests.photos import make_photo, save_copies
from vitgallery.core.organise.watch import FolderWatcher, WatchBatch

WAIT_S = 60  # the longest any change may take to show (a loaded test machine; it takes about a second)


def until(predicate, batches: queue.Queue, timeout: float = WAIT_S) -> list[WatchBatch]:
    """The batches applied until predicate() holds; fails after `timeout` seconds."""
    seen = []
    deadline = time.monotonic() + timeout
    while not predicate():
        try:
            seen.append(batches.get(timeout=max(0.0, deadline - time.monotonic())))
        except queue.Empty:
            pytest.fail(f"not done within {timeout} s; batches so far: {seen}")
    return seen


def stored(library) -> set[str]:
    return {row.path for row in library.photos()}


@pytest.fixture
def watching(scenes, tiny):
    library, root = scenes
    batches: queue.Queue = queue.Queue()
    watcher = FolderWatcher(library, tiny, on_batch=batches.put, quiet_s=0.3, max_wait_s=2.0, decode_workers=0)
    watcher.start()
    yield library, root, batches
    watcher.stop()


def test_new_moved_and_deleted_photos_are_followed(watching):
    library, root, batches = watching
    make_photo(300).save(root / "new.jpg")
    until(lambda: "new.jpg" in stored(library), batches)
    assert library.search(root / "new.jpg", k=1)
    (root / "new.jpg").rename(root / "moved.jpg")
    until(lambda: "moved.jpg" in stored(library) and "new.jpg" not in stored(library), batches)
    (root / "moved.jpg").unlink()
    until(lambda: "moved.jpg" not in stored(library), batches)


def test_a_burst_is_batched_and_a_folder_moved_in_is_indexed(watching, tmp_path):
    library, root, batches = watching
    for i in range(40):
        make_photo(400 + i, size=(96, 64)).save(root / f"burst_{i:02d}.jpg")
    trip = save_copies(60, tmp_path / "card" / "trip")
    shutil.move(str(trip[0].parent), root / "trip")
    seen = until(lambda: sum(p.startswith(("burst_", "trip/")) for p in stored(library)) == 43, batches)
    assert len(seen) < 10, f"{len(seen)} batches for 41 changes"
    assert all(b.error is None for b in seen)


def test_stop_is_prompt_and_later_changes_are_not_applied(scenes, tiny):
    library, root = scenes
    watcher = FolderWatcher(library, tiny, quiet_s=0.3, decode_workers=0)
    watcher.start()
    started = time.monotonic()
    watcher.stop()
    assert time.monotonic() - started < 10
    make_photo(301).save(root / "late.jpg")
    time.sleep(1)
    assert "late.jpg" not in stored(library)


def test_cli_watch_until_interrupted(scenes):
    library, root = scenes
    library.close()
    command = [sys.executable, "-m", "vitgallery", "watch", str(root), "--library", str(library.library_dir),
               "--workers", "0"]
    # A shell starts background jobs with Ctrl+C ignored, and a child inherits that: restore it, so the
    # test does not depend on how the suite was started.
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()

    def wait_for(text: str) -> None:
        seen = []
        deadline = time.monotonic() + WAIT_S
        while text not in (seen[-1] if seen else ""):
            try:
                seen.append(lines.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                pytest.fail(f"no {text!r} within {WAIT_S} s: {''.join(seen)}")

    try:
        wait_for("unchanged 18")  # caught up with the folder, and watching since before
        make_photo(302).save(root / "seen.jpg")
        wait_for(" changed: seen.jpg")  # named, with the time it was seen
        wait_for("added 1,")
        (root / "broken.jpg").write_bytes(b"not a photo")
        wait_for("(broken.jpg)")  # a file it cannot read is named, not only counted
        process.send_signal(signal.SIGINT)
        try:
            assert process.wait(timeout=WAIT_S) == 130, "interrupted, as every command says it"
            wait_for("interrupted: stopped watching")
        except subprocess.TimeoutExpired:
            left = []
            while not lines.empty():
                left.append(lines.get())
            pytest.fail(f"still running {WAIT_S} s after Ctrl+C; it printed since: {''.join(left)!r}")
    finally:
        process.kill()
        process.wait()
