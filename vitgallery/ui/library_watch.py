"""Staying current while the window is open: the library's folder watched by the core's FolderWatcher
(core/organise/watch.py), each batch of new, changed, deleted and moved photos applied to the library
without a rescan, and reported to the window so that every page updates.

The watcher lives inside one long job on its own lane: the job borrows the session's library for as
long as it watches, so opening another folder (which cancels every job) or closing the window stops
it before the library is closed. It starts after an index run has brought the library up to date
with the chosen model, so the photos it embeds are embedded like the others.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from vitgallery.core.organise.watch import FolderWatcher, WatchBatch
from vitgallery.ui.workers import Job, JobRunner, ModelChoice, ProgressCallback, WorkerError

if TYPE_CHECKING:
    from vitgallery.core.library import Library

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WatchUpdate:
    """A batch of changes applied (or failed), and the library's photo count after it."""

    batch: WatchBatch
    photo_count: int

    @property
    def changed(self) -> bool:
        summary = self.batch.summary
        return summary is not None and bool(summary.added or summary.updated or summary.moved or summary.removed)


class _Started:
    """Progress report: the watcher is running; changes from now on are seen."""


class LibraryWatch(QObject):
    """Watches the window's library while started; `updated` follows each batch (on the GUI thread).

    `watching` turns true once the watcher runs, not when it is asked to start: until then the window
    brings changes in with an index run of its own."""

    started = Signal()
    updated = Signal(object)  # WatchUpdate
    failed = Signal(object)  # WorkerError: the folder could not be watched

    def __init__(self, jobs: JobRunner, model_choice: Callable[[], ModelChoice], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._jobs = jobs
        self._model_choice = model_choice
        self._job: Job | None = None
        self._watching = False

    @property
    def watching(self) -> bool:
        return self._watching

    def start(self) -> None:
        if self._job is not None:
            return
        session, choice = self._jobs.session, self._model_choice()

        def watch(library: Library, progress: ProgressCallback, cancel: threading.Event) -> None:
            embedder = session.index_embedder(library, choice)  # loaded already by the index run before

            def on_batch(batch: WatchBatch) -> None:
                progress(WatchUpdate(batch, library.photo_count()))

            with FolderWatcher(library, embedder, on_batch=on_batch):
                progress(_Started())
                cancel.wait()

        job: Job | None = None  # a closed runner (the window closing) ends the job before submit returns
        job = self._jobs.submit_library(
            watch,
            lane="watch",
            name="watch the folder",
            throttle=False,  # every batch counts
            on_progress=lambda report: self._on_report(job, report),
            on_failed=lambda error: self._on_failed(job, error),
            on_ended=lambda: self._on_ended(job),
        )
        self._job = job

    def apply(self, paths: list[Path]) -> None:
        """Bring the library up to date for these paths now: changes a listing of the folder found
        that may have come while the watcher was starting (a path already applied costs a look)."""
        session, choice = self._jobs.session, self._model_choice()

        def index_changed(library: Library, progress: ProgressCallback, cancel: threading.Event) -> WatchUpdate:
            summary = library.index_paths(session.index_embedder(library, choice), paths, cancel=cancel)
            return WatchUpdate(WatchBatch(len(paths), summary), library.photo_count())

        self._jobs.submit_library(
            index_changed,
            lane="library",
            name="index changed photos",
            on_finished=self.updated.emit,
            on_failed=self.failed.emit,
        )

    def stop(self) -> None:
        if self._job is not None:
            self._job.cancel()
            self._job = None
        self._watching = False

    def _on_report(self, job: Job, report: WatchUpdate | _Started) -> None:
        if job is not self._job:
            return
        if isinstance(report, _Started):
            self._watching = True
            self.started.emit()
        else:
            self.updated.emit(report)

    def _on_failed(self, job: Job, error: WorkerError) -> None:
        if not job.cancelled:
            log.warning("cannot watch the folder: %s", error.message)
            self.failed.emit(error)

    def _on_ended(self, job: Job | None) -> None:
        if job is self._job:
            self._job = None
            self._watching = False
