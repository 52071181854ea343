"""Keeping a library current while its folder changes, without rescanning the folder.

A watchdog observer (inotify on Linux, FSEvents on macOS, ReadDirectoryChangesW on Windows) reports
each created, changed, deleted or moved file or folder under the library's root. The paths are
collected; once the folder has been quiet for QUIET_S (or at the latest MAX_WAIT_S after the first
change of a batch, so that a long copy still shows progress) they are applied as one batch by
Library.index_paths: new and changed photos embedded, deleted ones dropped, moved ones followed by
their content. A camera import of 1,000 files thus becomes a few batches, not 1,000 index runs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vitgallery.core.imageio import SUPPORTED_EXTENSIONS
from vitgallery.core.library import IndexProgress, IndexSummary, Library, LibraryError
from vitgallery.core.models import Embedder
from vitgallery.core.store import StoreError

log = logging.getLogger(__name__)

QUIET_S = 1.0  # a batch starts once no change came for this long...
MAX_WAIT_S = 5.0  # ...or this long after its first change, whichever comes first
_EVENTS = frozenset({"created", "modified", "deleted", "moved", "closed"})


@dataclass(frozen=True)
class WatchBatch:
    """One batch of changes applied to the library (given to the on_batch callback)."""

    paths: int  # changed files and folders in the batch
    summary: IndexSummary | None  # None when the batch failed
    error: str | None = None
    changed: tuple[str, ...] = ()  # those paths, in the folder, sorted


class FolderWatcher:
    """Watches a library's root and keeps the library current; start() and stop(), or use `with`.

    `on_batch` is called on the watcher's own thread after each batch, `on_progress` while one is applied
    (IndexProgress, as Library.index reports it; photos are searchable as they are embedded); a GUI
    relays both as signals. A batch waits while the library runs another index (one run at a time);
    a stopped watcher does not start again (make a new one).
    """

    def __init__(self, library: Library, embedder: Embedder, *, on_batch: Callable[[WatchBatch], None] | None = None,
                 on_progress: Callable[[IndexProgress], None] | None = None, quiet_s: float = QUIET_S,
                 max_wait_s: float = MAX_WAIT_S, decode_workers: int | None = None):
        self.library, self.embedder = library, embedder
        self.on_batch, self.on_progress = on_batch, on_progress
        self.quiet_s, self.max_wait_s = quiet_s, max_wait_s
        self.decode_workers = decode_workers
        self._changed = threading.Condition()
        self._pending: set[str] = set()
        self._first_change = self._last_change = 0.0
        self._stopping = False
        self._cancel = threading.Event()  # stops a batch being applied when the watcher stops
        self._observer = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event) -> None:
                watcher._note(event)

        if not self.library.root.is_dir():
            raise LibraryError(f"{self.library.root} is missing or not mounted: nothing to watch")
        self._observer = Observer()
        try:
            self._observer.schedule(Handler(), str(self.library.root), recursive=True)
            self._observer.start()
        except OSError as exc:  # on Linux, typically the limit of watched folders (fs.inotify.max_user_watches)
            raise LibraryError(f"cannot watch {self.library.root}: {exc.strerror or exc}") from exc
        self._thread = threading.Thread(target=self._run, name="vitgallery-watch", daemon=True)
        self._thread.start()
        log.info("watching %s", self.library.root)

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop watching; a batch being applied stops at its next photo (what it committed stays)."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        self._cancel.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout)
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> FolderWatcher:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def pending(self) -> int:
        """Changed paths waiting for the next batch."""
        with self._changed:
            return len(self._pending)

    # -- collecting changes ------------------------------------------------------------------------

    def _note(self, event) -> None:
        if event.event_type not in _EVENTS or (event.is_directory and event.event_type in ("modified", "closed")):
            return  # a folder's "modified" only says its listing changed: its files report themselves
        paths = [event.src_path] + ([event.dest_path] if event.event_type == "moved" else [])
        wanted = [p for p in map(str, paths) if self._concerns(Path(p), event.is_directory)]
        if not wanted:
            return
        with self._changed:
            now = time.monotonic()
            if not self._pending:
                self._first_change = now
            self._last_change = now
            self._pending.update(wanted)
            self._changed.notify_all()

    def _concerns(self, path: Path, is_directory: bool) -> bool:
        """A photo or a folder of the library: not hidden, not the library's own files."""
        rel = self.library.relative_path(path)
        if rel is None or path.is_relative_to(self.library.library_dir):
            return False
        if any(part.startswith(".") for part in rel.split("/") if part):
            return False
        return is_directory or path.suffix.lower() in SUPPORTED_EXTENSIONS

    # -- applying them -----------------------------------------------------------------------------

    def _next_batch(self) -> set[str] | None:
        """Wait for changes, then for the folder to be quiet; None once stopping."""
        with self._changed:
            while not self._pending and not self._stopping:
                self._changed.wait()
            while not self._stopping:
                now = time.monotonic()
                wait = min(self._last_change + self.quiet_s, self._first_change + self.max_wait_s) - now
                if wait <= 0:
                    break
                self._changed.wait(wait)
            if self._stopping:
                return None
            batch, self._pending = self._pending, set()
            return batch

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            changed = tuple(sorted(filter(None, map(self.library.relative_path, batch))))
            try:
                summary = self.library.index_paths(self.embedder, sorted(batch), progress=self.on_progress,
                                                   cancel=self._cancel, decode_workers=self.decode_workers)
                result = WatchBatch(len(batch), summary, changed=changed)
            except (LibraryError, StoreError, OSError) as exc:
                log.warning("could not bring the library up to date with %d changes: %s", len(batch), exc)
                result = WatchBatch(len(batch), None, str(exc), changed)
            if self.on_batch is not None:
                try:
                    self.on_batch(result)
                except Exception:  # the client's bug must not stop the watching
                    log.exception("the watcher's batch callback failed")
