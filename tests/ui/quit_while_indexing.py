"""Run by tests/ui/test_exit.py in a process of its own: the real app start-up (open_window,
run_until_closed) on a folder indexed with decoding processes and a slow model, quit while a batch
is in the model (which cannot stop midway) and the decoders are busy.

usage: python -m tests.ui.quit_while_indexing FOLDER LIBRARY_DIR SECONDS_PER_BATCH [close|ctrl-c]

ctrl-c quits as a terminal's Ctrl+C does: SIGINT to the whole process group (the app, its forkserver,
its decoders), which the caller started as a group of its own.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from PySide6.QtCore import QTimer

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

QUIT_AFTER_PHOTOS = 8
# Reports come as a batch leaves the model; the next batch is decoded in far less than this, and
# the model then holds it for seconds.
QUIT_DELAY_MS = 1000


def slowed(embedder, seconds_per_batch: float):
    """The embedder itself, each batch taking `seconds_per_batch` more (not a wrapper: the Embedder a
    library indexes with may be the one loaded, returned by its own methods)."""
    embed = embedder.embed_pixels

    def slow(pixels):
        time.sleep(seconds_per_batch)
        return embed(pixels)

    embedder.embed_pixels = slow
    return embedder


def main() -> int:
    folder, library_dir, delay = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
    how = sys.argv[4] if len(sys.argv) > 4 else "close"
    import vitgallery.core.models as models
    from vitgallery.ui import settings as opt
    from vitgallery.ui.app import open_window, run_until_closed
    from vitgallery.ui.settings import Settings

    real_load = models.load_embedder
    models.load_embedder = lambda *args, **kwargs: slowed(real_load(*args, **kwargs), delay)
    settings = Settings()  # the user's settings file, under the XDG folders the test chose
    settings.set(opt.MODEL, "tiny-test")
    settings.set(opt.DEVICE, "cpu")
    settings.set(opt.BATCH_SIZE, 4)
    settings.sync()
    app, window = open_window(folder, library_dir, verbose=True)  # the test reads the log from stderr

    quitting = []

    def quit_when_busy(progress) -> None:
        if getattr(progress, "phase", "") == "embedding" and progress.done >= QUIT_AFTER_PHOTOS and not quitting:
            quitting.append(progress.done)
            print(f"quitting after {progress.done} photos", flush=True)
            quit_now = (lambda: os.killpg(os.getpgrp(), signal.SIGINT)) if how == "ctrl-c" else window.close
            QTimer.singleShot(QUIT_DELAY_MS, quit_now)

    window.index_progress.connect(quit_when_busy)
    return run_until_closed(app, window)


if __name__ == "__main__":  # decoding processes start from the forkserver and import this module
    sys.exit(main())
