"""Workers that keep the core off the GUI thread.

`LibraryWorker` lives in its own QThread: it opens the library and indexes it. `SearchWorker`
lives in a second QThread, so a query gets answered while indexing runs (the core's `Library`
allows one indexer plus searching threads). Both share a `Session`, which holds the open
library and loads the model once. Workers never touch widgets: they report through signals.

The core and torch (whose import takes seconds; the core loads it only with a model) are imported
in the worker threads, so the window and the folder grid come up without waiting.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QThread, Signal, Slot
from PySide6.QtGui import QImage

from vitgallery.core.scan import scan_root
from vitgallery.ui.thumbnails import decode_scaled

if TYPE_CHECKING:
    from vitgallery.core.library import IndexProgress, Library, SearchHit
    from vitgallery.core.models import Embedder

log = logging.getLogger(__name__)

# Threads that did not stop in time; kept referenced so Python never destroys a running QThread.
_abandoned_threads: list[QThread] = []


def abandon_thread(thread: QThread) -> None:
    """Leave a thread that would not stop to finish on its own (run_app then exits without joining it)."""
    thread.setParent(None)
    _abandoned_threads.append(thread)


def abandoned_threads() -> list[QThread]:
    return [thread for thread in _abandoned_threads if thread.isRunning()]

PROGRESS_INTERVAL_S = 0.1
QUERY_PREVIEW_SIZE = 1024
LISTING_CHUNK = 400


@dataclass(frozen=True)
class ModelChoice:
    name: str
    weights: Path | None
    device: str


@dataclass
class IndexJob:
    """One indexing run; the GUI keeps it to pause or cancel that run and no other."""

    model: ModelChoice
    batch_size: int
    decode_workers: int | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    pause: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class SearchRequest:
    request_id: int
    query: Path | bytes
    k: int
    model: ModelChoice


@dataclass(frozen=True)
class SearchResult:
    request_id: int
    hits: list[SearchHit]
    query_image: QImage


@dataclass(frozen=True)
class WorkerError:
    message: str
    report: str = ""  # a traceback when the error was unexpected

    @property
    def unexpected(self) -> bool:
        return bool(self.report)


def expected_errors() -> tuple[type[BaseException], ...]:
    """Errors with a message meant for the user; anything else is a bug and gets a report."""
    from vitgallery.core.imageio import DecodeError
    from vitgallery.core.library import LibraryError
    from vitgallery.core.models import ModelLoadError
    from vitgallery.core.store import StoreError

    return (LibraryError, ModelLoadError, DecodeError, StoreError, NoLibraryError, OSError)


def describe_error(error: BaseException) -> WorkerError:
    from vitgallery.core.models import ModelLoadError

    if isinstance(error, expected_errors()):
        reason = getattr(error, "reason", None) or str(error) or type(error).__name__
        if isinstance(error, ModelLoadError):
            # The core speaks of the command line; say where the window keeps the same choice.
            reason += "\nIn the window: File → Settings… → Model and Weights file."
        return WorkerError(reason)
    log.error("unexpected error in a worker", exc_info=error)
    return WorkerError(f"{type(error).__name__}: {error}", "".join(traceback.format_exception(error)))


class NoLibraryError(Exception):
    pass


class Session:
    """The open library and the loaded model, shared by the two workers.

    `library_lock` is held while a search uses the library and while the library is swapped or
    closed, so the library never closes under a running search. Indexing does not take it.
    """

    def __init__(self) -> None:
        self.library_lock = threading.RLock()
        self.library: Library | None = None
        self._embedder_lock = threading.Lock()
        self._embedder: Embedder | None = None
        self._embedder_choice: ModelChoice | None = None

    def embedder(self, choice: ModelChoice) -> Embedder:
        """The model for `choice`, loaded on first use and kept until another model is chosen."""
        with self._embedder_lock:
            if self._embedder is None or self._embedder_choice != choice:
                from vitgallery.core.models import load_embedder

                log.info("loading model %s on %s", choice.name, choice.device)
                self._embedder = None
                self._embedder = load_embedder(
                    choice.name, weights=choice.weights, device=choice.device, progress=False
                )
                self._embedder_choice = choice
            return self._embedder

    def loaded_embedder(self) -> Embedder | None:
        return self._embedder

    def replace_library(self, library: Library | None) -> None:
        with self.library_lock:
            old, self.library = self.library, library
            if old is not None:
                old.close()


BACKGROUND_NICENESS = 10


def lower_this_thread_priority() -> None:
    """Let indexing yield the CPU to the window (and to the user's other programs).

    On Linux each thread has its own nice value, and what the thread starts later (torch's
    compute threads, the decoding processes) inherits it, so all indexing work runs below the
    GUI thread. Qt's QThread priorities do nothing there under the default scheduler.
    """
    if not sys.platform.startswith("linux"):
        QThread.currentThread().setPriority(QThread.Priority.LowPriority)
        return
    try:
        thread_id = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, thread_id)
        if current < BACKGROUND_NICENESS:
            os.setpriority(os.PRIO_PROCESS, thread_id, BACKGROUND_NICENESS)
    except OSError as error:
        log.debug("cannot lower the indexing priority: %s", error)


class LibraryWorker(QObject):
    """Opens and indexes the library in its own thread."""

    models_available = Signal(object)  # list[tuple[str, str]]: model name, description
    photo_count = Signal(int)  # photos in the library, after opening and after indexing
    model_loading = Signal(object, str)  # IndexJob, model name
    index_progress = Signal(object, object)  # IndexJob, IndexProgress
    index_finished = Signal(object, object)  # IndexJob, IndexSummary or None when it failed
    skipped_listed = Signal(object)  # list[tuple[Path, str]]
    notice = Signal(str)
    failed = Signal(object)  # WorkerError

    def __init__(self, session: Session) -> None:
        super().__init__()
        self._session = session

    @Slot()
    def warm_up(self) -> None:
        """Import the core and torch here rather than on the GUI thread; list the models."""
        try:
            import torch  # noqa: F401 - loaded now, so the first model load or query does not wait for it

            from vitgallery.core import library  # noqa: F401 - the rest of the core, off the GUI thread
            from vitgallery.core.models import MODELS

            self.models_available.emit([(name, spec.description) for name, spec in MODELS.items()])
        except Exception as error:  # noqa: BLE001 - relayed to the window as a message
            self.failed.emit(describe_error(error))

    @Slot(object, object)
    def open_library(self, root: Path, library_dir: Path | None) -> None:
        try:
            from vitgallery.core.library import Library, remember_last_library

            self._session.replace_library(None)
            library = Library.open(root, library_dir)
            self._session.replace_library(library)
            remember_last_library(library.library_dir)  # the CLI's commands default to it too
            self.photo_count.emit(library.photo_count())
            self._emit_skipped(library)
        except Exception as error:  # noqa: BLE001 - relayed to the window as a message
            self.failed.emit(describe_error(error))

    @Slot(object)
    def index(self, job: IndexJob) -> None:
        summary = None
        lower_this_thread_priority()
        try:
            library = self._session.library
            if library is None or job.cancel.is_set():
                return
            if self._session.loaded_embedder() is None:
                self.model_loading.emit(job, job.model.name)
            embedder = self._session.embedder(job.model)
            if job.cancel.is_set():
                return
            summary = library.index(
                embedder,
                progress=self._throttled_progress(job),
                cancel=job.cancel,
                pause=job.pause,
                batch_size=job.batch_size,
                decode_workers=job.decode_workers,
            )
            for message in library.notices:
                self.notice.emit(message)
            library.notices.clear()
            self.photo_count.emit(library.photo_count())
            self._emit_skipped(library)
        except Exception as error:  # noqa: BLE001 - relayed to the window as a message
            self.failed.emit(describe_error(error))
        finally:
            self.index_finished.emit(job, summary)

    def _throttled_progress(self, job: IndexJob) -> Callable[[IndexProgress], None]:
        last = 0.0

        def report(progress: IndexProgress) -> None:
            nonlocal last
            now = time.monotonic()
            # The core reports every photo; the window needs ten updates a second at most.
            if (
                progress.phase == "embedding"
                and now - last < PROGRESS_INTERVAL_S
                and progress.done < progress.total
            ):
                return
            last = now
            self.index_progress.emit(job, progress)

        return report

    def _emit_skipped(self, library: Library) -> None:
        self.skipped_listed.emit([(library.root / item.path, item.reason) for item in library.skipped()])


class SearchWorker(QObject):
    """Answers queries in its own thread; only the newest request is worth answering."""

    model_loading = Signal(str)
    finished = Signal(object)  # SearchResult
    failed = Signal(int, object)  # request id, WorkerError

    def __init__(self, session: Session) -> None:
        super().__init__()
        self._session = session
        self._latest_request = 0
        self._latest_lock = threading.Lock()

    def note_request(self, request_id: int) -> None:
        """Called from the GUI thread as a request is sent, so older queued ones get skipped."""
        with self._latest_lock:
            self._latest_request = max(self._latest_request, request_id)

    def _is_stale(self, request_id: int) -> bool:
        with self._latest_lock:
            return request_id < self._latest_request

    @Slot(object)
    def search(self, request: SearchRequest) -> None:
        if self._is_stale(request.request_id):
            return
        try:
            try:
                query_image = decode_scaled(request.query, QUERY_PREVIEW_SIZE)
            except OSError:
                # A format Qt cannot read (HEIC...) is still searched; the window shows a placeholder.
                query_image = QImage()
            if self._session.loaded_embedder() is None:
                self.model_loading.emit(request.model.name)
            embedder = self._session.embedder(request.model)
            with self._session.library_lock:
                library = self._session.library
                if library is None:
                    raise NoLibraryError("open a folder first")
                hits = library.search(request.query, k=request.k, embedder=embedder)
        except Exception as error:  # noqa: BLE001 - relayed to the window as a message
            self.failed.emit(request.request_id, describe_error(error))
            return
        self.finished.emit(SearchResult(request.request_id, hits, query_image))


class ListingSignals(QObject):
    found = Signal(int, object)  # generation, list[Path]
    finished = Signal(int, int, object)  # generation, count, list[tuple[Path, str]] problems


def start_folder_listing(root: Path, generation: int, signals: ListingSignals) -> threading.Thread:
    """List the photos of a folder off the GUI thread, handing them over in chunks.

    A daemon thread, not a pool task: a slow network folder must never hold up quitting.
    """

    def run() -> None:
        result = scan_root(root)
        paths = [root / item.path for item in result.files]
        for start in range(0, len(paths), LISTING_CHUNK):
            signals.found.emit(generation, paths[start : start + LISTING_CHUNK])
        problems = [(root / rel, reason) for rel, reason in result.problems]
        signals.finished.emit(generation, len(paths), problems)

    thread = threading.Thread(target=run, name="vitgallery-listing", daemon=True)
    thread.start()
    return thread
