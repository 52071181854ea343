"""The garbage collector paused while work beside the window makes objects by the hundred thousand.

Python's cyclic collector walks every object it tracks, holding the interpreter. A listing that fills
the grid with 100,000 tiles, or a job that groups a scan of 100,000 photos, makes objects that live on
(the tiles, the groups and their members); each pass meanwhile walked them all again, 100-280 ms in
which the window could not paint (docs/performance.md, issue 18 points 4 and 5). An index run's check
of the folder against the library makes a few per photo too (indexing.IndexRun.run). While any user holds
a pause the collector is off; when the last lets go, what lives is frozen out of later passes (as the
start does with its own objects: ui/app.start_window), else the first pass after would walk it all at
once. Reference counting still frees all of it; only cycles among frozen objects would stay, and
tiles, groups and pairs hold none. A collector someone else switched off is theirs to switch on.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_holders = 0
_was_enabled = False


class CollectorPause:
    """One user's hold on the pause (a feed filling the grid, a job): `pause` and `resume` may be
    called any number of times, from any thread; it holds the pause at most once."""

    def __init__(self) -> None:
        self.paused = False

    def pause(self) -> None:
        global _holders, _was_enabled
        with _lock:
            if self.paused:
                return
            self.paused = True
            if _holders == 0:
                _was_enabled = gc.isenabled()
                gc.disable()
            _holders += 1

    def resume(self) -> None:
        global _holders
        with _lock:
            if not self.paused:
                return
            self.paused = False
            _holders -= 1
            if _holders == 0 and _was_enabled:
                gc.freeze()
                gc.enable()


@contextmanager
def collector_paused() -> Iterator[None]:
    """The collector paused for the duration of a block (a job's)."""
    pause = CollectorPause()
    pause.pause()
    try:
        yield
    finally:
        pause.resume()
