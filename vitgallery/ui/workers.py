"""The one route from the window to the core: the session that holds the open library, and the jobs
that run core work off the GUI thread.

A job is a plain callable (the core's shape: it takes a progress callback and a cancel Event) that
`JobRunner.submit` runs on a worker thread. Its progress (throttled), result and error come back as
signals of a `Job` object that lives on the GUI thread, so whatever a view connects to them runs there
and may touch widgets. Jobs run in lanes: one thread each, in the order submitted. Different lanes run
side by side ("library": open and index; "search"; "jobs": duplicates and other page work), which the
core's `Library` allows (one indexer plus any number of readers).

`Session` holds the window's one `Library` and the loaded model. Jobs borrow the library with
`Session.use_library()`; opening another folder waits until they have returned it, so a library is
never closed under a running job. Nothing else in the GUI opens a `Library` or a `Store`.

The model libraries and the core are imported before the window opens (`load_model_runtime`, behind
the start-up splash), not on a worker thread: their C extensions hold the interpreter lock while they
load, which would freeze a shown window for hundreds of milliseconds.
"""

from __future__ import annotations

import heapq
import importlib
import importlib.util
import logging
import os
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QThread, Signal
from PySide6.QtGui import QImage

from vitgallery.core.collector import collector_paused
from vitgallery.core.scan import ScanResult, photo_root_path, scan_root
from vitgallery.ui.thumbnails import decode_scaled

if TYPE_CHECKING:
    from PIL import Image

    from vitgallery.core.explain import Explanation, PhotoPatches
    from vitgallery.core.library import IndexSummary, Library, SearchHit
    from vitgallery.core.models import Embedder
    from vitgallery.core.region import Region

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.1  # ten updates a second are all a progress bar can show
QUERY_PREVIEW_SIZE = 1024
# A folder's photos reach the grid in chunks: the first at once, each later one twice as large, since the
# grid sorts all it holds at each chunk (at 400 a chunk, 100,000 photos were 250 sorts of up to 100,000).
LISTING_FIRST_CHUNK = 400
LISTING_CHUNK_GROWTH = 2
SORTED_AT_ONCE = 2000  # photos a listing sorts in one go (sorted_in_runs)
BACKGROUND_NICENESS = 10

ProgressCallback = Callable[[Any], None]
PlainWork = Callable[[ProgressCallback, threading.Event], Any]
LibraryWork = Callable[["Library", ProgressCallback, threading.Event], Any]


# -- errors ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerError:
    message: str
    report: str = ""  # a traceback when the error was unexpected
    model_failed: bool = False  # the model could not be loaded: the window offers a weights file
    device_failed: bool = False  # of those, the device chosen is not there: the window offers its Settings
    library_empty: bool = False  # nothing embedded yet: a search waits for the first index

    @property
    def unexpected(self) -> bool:
        return bool(self.report)


class NoLibraryError(Exception):
    """A job needs the window's library and no folder is open."""


def expected_errors() -> tuple[type[BaseException], ...]:
    """Errors with a message meant for the user; anything else is a bug and gets a report."""
    from vitgallery.core.duplicates import ActionError, ScanError
    from vitgallery.core.fetch import DownloadError
    from vitgallery.core.imageio import DecodeError
    from vitgallery.core.library import LibraryError
    from vitgallery.core.models import ModelLoadError
    from vitgallery.core.organise.vectors import OrganiseCancelled, OrganiseError
    from vitgallery.core.region import RegionError
    from vitgallery.core.store import StoreError

    return (
        LibraryError,
        ModelLoadError,
        DecodeError,
        StoreError,
        ActionError,
        ScanError,
        DownloadError,
        NoLibraryError,
        RegionError,
        OrganiseError,
        OrganiseCancelled,  # a page that cancels its job ignores what it says
        OSError,
    )


def describe_error(error: BaseException) -> WorkerError:
    from vitgallery.core.errors import EmptyLibrary
    from vitgallery.core.models import DeviceError, ModelLoadError

    if isinstance(error, expected_errors()):
        reason = getattr(error, "reason", None) or str(error) or type(error).__name__
        if isinstance(error, DeviceError):  # the window keeps the device in Settings
            reason += "\nChoose another in File → Settings… → Device (auto takes a GPU where there is one)."
            return WorkerError(reason, model_failed=True, device_failed=True)
        if isinstance(error, ModelLoadError):
            if error.reason is None:  # the core spoke of the command line: say where the window keeps it
                reason += ("\nIn the window: Choose weights file… on the message bar, or File → Settings… → "
                           "Model and Weights file.")
            return WorkerError(reason, model_failed=True)
        return WorkerError(reason, library_empty=isinstance(error, EmptyLibrary))
    log.error("unexpected error in a worker", exc_info=error)
    return WorkerError(f"{type(error).__name__}: {error}", "".join(traceback.format_exception(error)))


# -- progress --------------------------------------------------------------------------------------


class ProgressThrottle:
    """Passes on at most one report per interval; a new phase and the last step always pass."""

    def __init__(self, emit: ProgressCallback, interval_s: float = PROGRESS_INTERVAL_S) -> None:
        self._emit = emit
        self._interval_s = interval_s
        self._last = 0.0
        self._phase: object = None

    def __call__(self, progress: Any) -> None:
        now = time.monotonic()
        phase = getattr(progress, "phase", None)
        done, total = getattr(progress, "done", None), getattr(progress, "total", None)
        finished = done is not None and total is not None and done >= total
        if phase == self._phase and not finished and now - self._last < self._interval_s:
            return
        self._last, self._phase = now, phase
        self._emit(progress)


# -- jobs ------------------------------------------------------------------------------------------


class Job(QObject):
    """One piece of work on a worker thread; its signals arrive on the GUI thread.

    Exactly one of `finished` and `failed` follows a started job, then `ended`. A job cancelled
    before it started only sends `ended`.
    """

    progress = Signal(object)
    finished = Signal(object)  # the work's result
    failed = Signal(object)  # WorkerError
    ended = Signal()

    def __init__(
        self,
        name: str,
        work: PlainWork,
        *,
        throttle: bool = True,
        cleanup: Callable[[], None] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.name = name
        self.cancel_event = threading.Event()
        self._work = work
        self._cleanup = cleanup
        self._report: ProgressCallback = ProgressThrottle(self.progress.emit) if throttle else self.progress.emit

    def cancel(self) -> None:
        self.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def run(self) -> None:
        """Called on the lane's thread."""
        try:
            if self.cancel_event.is_set():
                return
            try:
                result = self._work(self._report, self.cancel_event)
            except Exception as error:  # noqa: BLE001 - relayed to the window as a message
                self.failed.emit(describe_error(error))
                return
            self.finished.emit(result)
        finally:
            self.drop()

    def drop(self) -> None:
        """The job is over, run or not: its cleanup runs, then `ended` is sent."""
        if self._cleanup is not None:
            cleanup, self._cleanup = self._cleanup, None
            cleanup()
        self.ended.emit()


class _Lane:
    """A worker thread running its jobs one after the other."""

    _STOP = None

    def __init__(self, name: str) -> None:
        self.queue: queue.Queue[Job | None] = queue.Queue()
        self.current: Job | None = None
        # A daemon thread: one stuck in a long call (a model still loading) must not keep the app open.
        self.thread = threading.Thread(target=self._run, name=f"vitgallery-{name}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (job := self.queue.get()) is not self._STOP:
            self.current = job
            job.run()
            self.current = None

    def stop(self) -> None:
        while True:  # what never started is dropped; each dropped job still says it ended
            try:
                job = self.queue.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job.cancel()
                job.drop()
        self.queue.put(self._STOP)


class JobRunner(QObject):
    """Runs jobs on worker threads: `submit` for any work, `submit_library` for work on the session's library.

    Connect to a job through the `on_*` arguments (they are connected before the job can start, so
    no signal is missed). Callbacks run on the GUI thread.
    """

    def __init__(self, session: Session, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self._lanes: dict[str, _Lane] = {}
        self._jobs: set[Job] = set()
        self._closed = False

    def submit(
        self,
        work: PlainWork,
        *,
        lane: str = "jobs",
        name: str = "",
        on_progress: Callable[[Any], None] | None = None,
        on_finished: Callable[[Any], None] | None = None,
        on_failed: Callable[[WorkerError], None] | None = None,
        on_ended: Callable[[], None] | None = None,
        throttle: bool = True,
        cleanup: Callable[[], None] | None = None,
    ) -> Job:
        """Queue `work(progress, cancel)` on `lane`. With `throttle` False every progress report
        arrives (a listing's chunks); otherwise ten a second at most, each phase's first and last.
        `cleanup` runs on the worker thread however the job ends, even if it never started."""
        job = Job(name or getattr(work, "__name__", "job"), work, throttle=throttle, cleanup=cleanup)
        for signal, slot in (
            (job.progress, on_progress),
            (job.finished, on_finished),
            (job.failed, on_failed),
            (job.ended, on_ended),
        ):
            if slot is not None:
                signal.connect(slot)
        job.ended.connect(self._forget)
        self._jobs.add(job)
        if self._closed:
            job.cancel()
            job.drop()
            return job
        if lane not in self._lanes:
            self._lanes[lane] = _Lane(lane)
        self._lanes[lane].queue.put(job)
        return job

    def submit_library(self, work: LibraryWork, **kwargs) -> Job:
        """Run `work(library, progress, cancel)` on the window's library (NoLibraryError without one)."""

        def on_library(progress: ProgressCallback, cancel: threading.Event) -> Any:
            with self.session.use_library() as library:
                return work(library, progress, cancel)

        kwargs.setdefault("name", getattr(work, "__name__", "library job"))
        return self.submit(on_library, **kwargs)

    def open_library(self, root: Path | None, library_dir: Path | None, **kwargs) -> Job:
        """Open the library of `root` (or reopen the one in `library_dir`) as the session's. Jobs that
        borrow the library from now on wait for it, so they never see the old one, or none."""
        session = self.session
        session.opening_started()
        return self.submit(
            lambda progress, cancel: session.open_library(root, library_dir),
            lane="library",
            name="open library",
            cleanup=session.opening_ended,
            **kwargs,
        )

    def cancel_all(self) -> None:
        for job in list(self._jobs):
            job.cancel()

    def shutdown(self, wait_s: float) -> bool:
        """Cancel every job and stop the lanes; False when a lane did not stop within `wait_s`."""
        self._closed = True
        self.cancel_all()
        for lane in self._lanes.values():
            lane.stop()
        return self.wait(wait_s)

    def wait(self, wait_s: float) -> bool:
        """Wait for the lanes to stop after `shutdown`; False when one is still running."""
        deadline = time.monotonic() + wait_s
        for lane in self._lanes.values():
            lane.thread.join(max(0.0, deadline - time.monotonic()))
        running = [name for name, lane in self._lanes.items() if lane.thread.is_alive()]
        if running:
            log.info("still stopping after %.1f s: %s", wait_s, ", ".join(running))
        return not running

    def _forget(self) -> None:
        job = self.sender()
        self._jobs.discard(job)  # type: ignore[arg-type]


def stuck_worker_threads() -> list[str]:
    """Worker threads still running (run_app then exits without waiting for them)."""
    return [t.name for t in threading.enumerate() if t.name.startswith("vitgallery-") and t.is_alive()]


def lower_this_thread_priority() -> None:
    """Let indexing yield the CPU to the window (and to the user's other programs).

    On Linux each thread has its own nice value, and what the thread starts later (torch's
    compute threads, the decoding processes) inherits it, so all indexing work runs below the
    GUI thread. Qt's QThread priorities do nothing there under the default scheduler.
    """
    if not sys.platform.startswith("linux"):
        current = QThread.currentThread()
        if current is not None:
            current.setPriority(QThread.Priority.LowPriority)
        return
    try:
        thread_id = threading.get_native_id()
        current_nice = os.getpriority(os.PRIO_PROCESS, thread_id)
        if current_nice < BACKGROUND_NICENESS:
            os.setpriority(os.PRIO_PROCESS, thread_id, BACKGROUND_NICENESS)
    except OSError as error:
        log.debug("cannot lower the indexing priority: %s", error)


# -- the session -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelChoice:
    """The model the user chose in Settings; `weights` None: the official download (or the
    library's own file, see Session.index_embedder)."""

    name: str
    weights: Path | None
    device: str
    precision: str = "auto"


@dataclass(frozen=True)
class IndexedModel:
    """What a library's vectors were made with: Settings tells a model choice apart from it."""

    signature: str
    weights_file: Path | None  # None: the official download


def indexed_model(library: Library) -> IndexedModel | None:
    """None for a library not indexed yet."""
    signature = library.model_signature
    return None if signature is None else IndexedModel(signature, library.weights_file)


@dataclass(frozen=True)
class OpenedLibrary:
    root: Path
    library_dir: Path
    photo_count: int
    skipped: list[tuple[Path, str]]
    followed_from: Path | None = None  # the gone photo folder whose library followed its photos here
    indexed_with: IndexedModel | None = None


class Session:
    """The window's open library and the loaded model, shared by its jobs."""

    def __init__(self) -> None:
        self._library: Library | None = None
        self._library_state = threading.Condition()
        self._users = 0
        self._replacing = False
        self._opening = 0  # library openings submitted and not finished: borrowers wait for them
        self._open_failure: str | None = None  # why the last opening failed: what later jobs say too
        self._embedder_lock = threading.Lock()
        self._embedder: Embedder | None = None
        self._preloaded: Library | None = None  # opened before the window showed, for its first open_library

    # The library -----------------------------------------------------------------------------

    @property
    def library_dir(self) -> Path | None:
        library = self._library
        return library.library_dir if library is not None else None

    @contextmanager
    def use_library(self) -> Iterator[Library]:
        """Borrow the open library (the one being opened, once it is); it is not closed or replaced
        until every borrower returns it."""
        with self._library_state:
            self._library_state.wait_for(lambda: not self._replacing and not self._opening)
            library = self._library
            if library is None:
                raise NoLibraryError(self._open_failure or "open a photo folder first")
            self._users += 1
        try:
            yield library
        finally:
            with self._library_state:
                self._users -= 1
                self._library_state.notify_all()

    def replace_library(self, library: Library | None) -> None:
        """Swap the open library; waits until jobs have returned the old one (cancel them first). Closing
        it (None) closes a preloaded library nobody took too."""
        if library is None:
            self._take_preloaded(None, None)
        with self._library_state:
            self._replacing = True
            try:
                self._library_state.wait_for(lambda: self._users == 0)
                old, self._library = self._library, library
            finally:
                self._replacing = False
                self._library_state.notify_all()
        if old is not None:
            old.close()

    def opening_started(self) -> None:
        with self._library_state:
            self._opening += 1

    def opening_ended(self) -> None:
        with self._library_state:
            self._opening -= 1
            self._library_state.notify_all()

    def preload_library(self, root: Path, library_dir: Path | None) -> bool:
        """Open the existing library of `root` and load its index file if it is up to date, for the first
        open_library of the same library to take: the start does this behind its splash, before the
        window shows, because loading a large index holds the interpreter (~150 ms at 100,000 photos)
        and the window would stop while it does. A new or unusable library is left to open_library,
        which says what is wrong. True when the index was loaded."""
        from vitgallery.core.library import DB_NAME, Library, LibraryError, default_library_dir

        if not ((library_dir or default_library_dir(root)) / DB_NAME).exists():
            return False
        try:
            library = Library.open(root, library_dir)
        except (LibraryError, OSError) as exc:
            log.info("not preloading the library of %s: %s", root, exc)
            return False
        try:
            loaded = library.load_index_if_current()
        except BaseException:
            library.close()
            raise
        self._take_preloaded(None, None)  # a second preload replaces the first
        self._preloaded = library
        return loaded

    def _take_preloaded(self, root: Path | None, library_dir: Path | None) -> Library | None:
        """The preloaded library if it is the one asked for (closed otherwise); the slot is emptied."""
        library, self._preloaded = self._preloaded, None
        if library is None:
            return None
        if root is not None and photo_root_path(root) == library.root and library_dir in (None, library.library_dir):
            return library
        library.close()
        return None

    def open_library(self, root: Path | None, library_dir: Path | None) -> OpenedLibrary:
        """Open the library of `root` (or reopen the one in `library_dir`) for the window's jobs."""
        from vitgallery.core.library import Library, moved_library, remember_last_library

        preloaded = self._take_preloaded(root, library_dir)
        self.replace_library(None)
        moved = None
        try:
            if preloaded is None and root is not None:
                # a folder opened for the first time may be one indexed before, renamed or moved here
                moved = moved_library(root, library_dir)
            library = preloaded or Library.open(root, library_dir if moved is None else moved.library_dir,
                                                repoint=moved is not None)
        except Exception as exc:
            self._open_failure = f"the library of {root or library_dir} could not be opened: {exc}"
            raise
        self._open_failure = None
        self.replace_library(library)
        remember_last_library(library.library_dir)  # the CLI's commands default to it too
        return OpenedLibrary(library.root, library.library_dir, library.photo_count(), skipped_files(library),
                             library.followed_from, indexed_model(library))

    # The model -------------------------------------------------------------------------------

    def index_embedder(self, library: Library, choice: ModelChoice) -> Embedder:
        """The model to index with: the chosen one; with no weights file chosen, the file the library
        was indexed from, if it used the same model (as the CLI does)."""
        weights = _index_weights(library, choice)
        with self._embedder_lock:
            if not _fits(self._embedder, choice, weights):
                self._embedder = None  # the old model's memory is freed before the new one loads
                log.info("loading the model %s (weights %s) on %s", choice.name, weights or "official", choice.device)
                self._embedder = _load_embedder(
                    choice.name, weights=weights, device=choice.device, precision=choice.precision,
                    trusted_signature=library.model_signature,
                )
            return self._embedder

    def has_embedder_for_index(self, library: Library, choice: ModelChoice) -> bool:
        return _fits(self._embedder, choice, _index_weights(library, choice))

    def needs_download(self, library: Library, choice: ModelChoice) -> bool:
        """Whether indexing with `choice` must first download the official weights."""
        from vitgallery.core.models import MODELS, weights_cache_path

        spec = MODELS.get(choice.name)
        if spec is None or spec.weights_url is None or _index_weights(library, choice) is not None:
            return False
        return not weights_cache_path(spec).exists()

    def search_embedder(self, library: Library, choice: ModelChoice) -> Embedder:
        """The model the library was indexed with (its own weights file, or the one chosen in Settings)."""
        with self._embedder_lock:
            loaded = self._library_model(library)
            if loaded is None:
                self._embedder = None
                log.info("loading the model the library was indexed with (%s)", library.model_signature)
                self._embedder = library.load_embedder(device=choice.device, weights=choice.weights, progress=False)
            return self._embedder

    def loaded_embedder(self) -> Embedder | None:
        return self._embedder

    def _library_model_if_free(self, library: Library) -> Embedder | None:
        """_library_model, or None at once while another job loads a model (a photo of the library
        is searched without one meanwhile)."""
        if not self._embedder_lock.acquire(blocking=False):
            return None
        try:
            return self._library_model(library)
        finally:
            self._embedder_lock.release()

    def _library_model(self, library: Library) -> Embedder | None:
        """The loaded model as the library's own, or None when it is another. The model indexing loads
        is OpenVINO int8 before its calibration: the library's calibrated model is made from it (its
        file compiled, the torch model shared) instead of loading the weights again (seconds), and it
        stays loaded, still the one indexing wants."""
        from vitgallery.core.calibration import library_embedder

        loaded = self._embedder
        if loaded is None or loaded.signature == library.model_signature:
            return loaded
        own = library_embedder(loaded, library.library_dir, library.model_signature)
        if own.signature != library.model_signature:
            return None
        self._embedder = own
        return own

    # Searching -------------------------------------------------------------------------------

    def search(
        self,
        library: Library,
        query: Path | bytes,
        k: int,
        choice: ModelChoice,
        model_loading: Callable[[], None],
        *,
        region: Region | None = None,
        like: tuple[Path, ...] = (),
        unlike: tuple[Path, ...] = (),
    ) -> list[SearchHit]:
        """Search without a model when the query is a photo of the library (and no region of it);
        load one only when needed."""
        from vitgallery.core.library import QueryNeedsModel

        ready = self._library_model_if_free(library)
        marks = {"region": region, "like": like, "unlike": unlike}
        try:
            return library.search(query, k=k, embedder=ready, **marks)
        except QueryNeedsModel:
            model_loading()
            return library.search(query, k=k, embedder=self.search_embedder(library, choice), **marks)

    def model_for_search(self, library: Library, choice: ModelChoice, model_loading: Callable[[], None]) -> Embedder:
        """The library's model, saying first when it has to be loaded."""
        if self._library_model_if_free(library) is None:
            model_loading()
        return self.search_embedder(library, choice)


def _fits(embedder: Embedder | None, choice: ModelChoice, weights: Path | None) -> bool:
    """Whether a loaded model is the one `choice` (with this weights file) would load. The window
    indexes with the "auto" runtime (a library keeps its own, core/calibration.py): a model loaded for
    a library's search names its runtime outright, and is loaded again to index."""
    from vitgallery.core.models import DEFAULT_RUNTIME, ModelLoadError, resolve_precision

    if embedder is None or embedder.model_id != choice.name or embedder.runtime_chosen != DEFAULT_RUNTIME:
        return False
    if embedder.spec.weights_url is not None:
        wanted = weights.expanduser().absolute() if weights is not None else None
        if embedder.weights_file != wanted:
            return False
    if choice.precision == "auto" and embedder.precision_chosen == "auto":
        # OpenVINO's automatic precision is the library's own (Embedder.keeping, in library_embedder)
        return choice.device in ("auto", embedder.device.type)
    try:
        precision = resolve_precision(choice.precision, embedder.device, embedder.runtime)
    except ModelLoadError:
        return False  # the load says why
    return choice.device in ("auto", embedder.device.type) and precision == embedder.precision


def _index_weights(library: Library, choice: ModelChoice) -> Path | None:
    if choice.weights is None and library.weights_file is not None and _model_name(library) == choice.name:
        return library.weights_file
    return choice.weights


def _model_name(library: Library) -> str | None:
    from vitgallery.core.models import signature_model_and_precision

    signature = library.model_signature
    return signature_model_and_precision(signature)[0] if signature else None


def _load_embedder(name: str, **kwargs) -> Embedder:
    from vitgallery.core import models

    return models.load_embedder(name, progress=False, **kwargs)


def skipped_files(library: Library) -> list[tuple[Path, str]]:
    return [(library.root / item.path, item.reason) for item in library.skipped()]


# -- the window's core jobs ------------------------------------------------------------------------


def load_model_runtime(step: Callable[[str], None]) -> str | None:
    """Import the model libraries and the whole core on this thread, telling `step` what loads next.

    Called on the GUI thread before the window is shown and the event loop runs (ui/app.py's splash).
    On a worker thread, as before, the import held the interpreter lock for 300-450 ms at a time
    and the shown window froze as long (docs/performance.md, issue 18 point 5); once they are imported,
    loading and running a model on a worker leaves the GUI thread free.
    Returns what went wrong, in words for the user, or None. The window opens either way.
    """
    from vitgallery.core.models import MODEL_LIBRARIES, OPTIONAL_MODEL_LIBRARIES

    installed = [module for module in OPTIONAL_MODEL_LIBRARIES if importlib.util.find_spec(module) is not None]
    steps = [(f"Loading the model runtime ({module})…", module) for module in (*MODEL_LIBRARIES, *installed)]
    steps.append(("Loading the photo library…", "vitgallery.core.library"))
    for words, module in steps:
        step(words)
        try:
            importlib.import_module(module)
        except Exception as error:  # noqa: BLE001 - a broken install raises anything (OSError, RuntimeError...)
            log.error("cannot import %s", module, exc_info=error)
            return (f"{module} cannot be loaded ({type(error).__name__}: {error}): photos can be browsed, "
                    "but not indexed or searched.\n"
                    "Install vitgallery again with its dependencies (README, Install).")
    return None


@dataclass(frozen=True)
class ModelLoading:
    """Progress report: the model is loading (seconds, or minutes for a first download)."""

    name: str
    downloading: bool = False
    phase: str = "loading model"


@dataclass(frozen=True)
class IndexOutcome:
    summary: IndexSummary
    photo_count: int
    skipped: list[tuple[Path, str]]
    notices: list[str]
    indexed_with: IndexedModel | None = None  # the run may have embedded every photo with another model


class ListingHandoff:
    """The window's listing of its folder, handed to the indexing run that starts beside it, so a folder
    is listed once, not once for the grid and again for the run (at 100,000 photos 0.6 s of Python
    beside the grid's filling; on a network share the time to list it again). The listing job gives
    its scan, or None when it ends without one (cancelled before it ran, failed): the run then lists
    the folder itself."""

    def __init__(self) -> None:
        self._given = threading.Event()
        self._lock = threading.Lock()
        self._scan: ScanResult | None = None

    def give(self, scan: ScanResult | None) -> None:
        """The first answer counts (the job's scan; then its cleanup's None changes nothing)."""
        with self._lock:
            if not self._given.is_set():
                self._scan = scan
                self._given.set()

    def take(self, cancel: threading.Event) -> ScanResult | None:
        """The listing once given (waiting for it); None when there is none or `cancel` is set first."""
        while not self._given.wait(0.05):
            if cancel.is_set():
                return None
        return self._scan


@dataclass
class IndexRun:
    """One indexing run; the window keeps it to pause or cancel that run and no other."""

    model: ModelChoice
    batch_size: int | None  # None: the core's plan for the device
    decode_workers: int | None = None
    forget_missing: bool = False  # the user said to forget photos gone all at once (core: MASS_LOSS_SHARE)
    listing: ListingHandoff | None = None  # the window's listing of the folder, made beside the run
    pause: threading.Event = field(default_factory=threading.Event)
    outcome: IndexOutcome | None = None  # set when the run has finished


def index_work(session: Session, run: IndexRun) -> LibraryWork:
    def index(library: Library, progress: ProgressCallback, cancel: threading.Event) -> IndexOutcome:
        lower_this_thread_priority()
        if not session.has_embedder_for_index(library, run.model):
            progress(ModelLoading(run.model.name, session.needs_download(library, run.model)))
        embedder = session.index_embedder(library, run.model)
        summary = library.index(
            embedder,
            progress=progress,
            cancel=cancel,
            pause=run.pause,
            batch_size=run.batch_size,
            decode_workers=run.decode_workers,
            forget_missing=run.forget_missing,
            listing=None if run.listing is None else lambda: run.listing.take(cancel),
        )
        notices = list(library.notices)
        library.notices.clear()
        return IndexOutcome(summary, library.photo_count(), skipped_files(library), notices, indexed_model(library))

    return index


@dataclass(frozen=True)
class QueryBox:
    """A box drawn on the query photo, as shares (0..1) of its width and height: the window shows a
    scaled copy, and the core wants pixels of the full-size photo (`region`, on a worker thread)."""

    left: float
    top: float
    width: float
    height: float

    def region(self, query: Path | bytes) -> Region:
        from vitgallery.core.imageio import read_meta
        from vitgallery.core.region import Region

        meta = read_meta(query)
        left, top = round(self.left * meta.width), round(self.top * meta.height)
        right = round((self.left + self.width) * meta.width)
        bottom = round((self.top + self.height) * meta.height)
        return Region(left, top, max(1, right - left), max(1, bottom - top))


@dataclass(frozen=True)
class SearchRequest:
    query: Path | bytes
    k: int
    model: ModelChoice
    box: QueryBox | None = None  # search with that part of the query alone
    like: tuple[Path, ...] = ()  # photos of the library marked "more like this"
    unlike: tuple[Path, ...] = ()  # and "not this"


@dataclass(frozen=True)
class SearchOutcome:
    hits: list[SearchHit]
    dates: list[float | None]  # each hit's modification time, for sorting by date
    query_image: QImage  # a QImage, never a QPixmap: made off the GUI thread
    photo_count: int  # photos the search could find (fewer than the folder's while indexing runs)


def search_work(session: Session, request: SearchRequest) -> LibraryWork:
    def search(library: Library, progress: ProgressCallback, cancel: threading.Event) -> SearchOutcome:
        try:
            query_image = decode_scaled(request.query, QUERY_PREVIEW_SIZE)
        except OSError:
            query_image = QImage()  # a file no decoder here can show is still searched
        hits = session.search(
            library,
            request.query,
            request.k,
            request.model,
            lambda: progress(ModelLoading(request.model.name)),
            region=request.box.region(request.query) if request.box is not None else None,
            like=request.like,
            unlike=request.unlike,
        )
        return SearchOutcome(hits, [modified_time(hit.path) for hit in hits], query_image, library.photo_count())

    return search


@dataclass(frozen=True)
class ExplainRequest:
    """Why `result` matched the query (the part in `box` when the search used one)."""

    query: Path | bytes
    result: Path
    model: ModelChoice
    box: QueryBox | None = None
    ranked: str | None = None  # what the search said of the result (its tile's words and score), shown beside
    # the search verified it as the duplicates check groups it: too few keypoints to verify it alone
    verified_without_keypoints: bool = False


@dataclass(frozen=True)
class HeatPicture:
    """One photo of an explained pair as the window draws it: QImages of the same size, the heat
    layers fully opaque (the window blends them at the opacity the user picks)."""

    photo: QImage
    similarity: QImage
    attention: QImage | None  # the photo's own CLS attention; None for a model without it
    attention_peak: float  # the attention's brightest colour: this share of the CLS token's attention


@dataclass(frozen=True)
class ExplainOutcome:
    request: ExplainRequest
    query: HeatPicture
    result: HeatPicture
    similarity_range: tuple[float, float]  # patch cosines from the darkest to the brightest colour
    colour_bar: QImage  # the heat colours from low to high, for the legend
    query_points: list[tuple[float, float]]  # keypoints one geometric map carries across, in the
    result_points: list[tuple[float, float]]  # pixels of each HeatPicture; empty when not verified
    cosine: float
    inliers: int


def explain_work(session: Session, request: ExplainRequest) -> LibraryWork:
    def explain(library: Library, progress: ProgressCallback, cancel: threading.Event) -> ExplainOutcome | None:
        from vitgallery.core.region import region_image

        embedder = session.model_for_search(library, request.model, lambda: progress(ModelLoading(request.model.name)))
        if cancel.is_set():
            return None
        query: Path | bytes | Image.Image = request.query
        if request.box is not None:
            query = region_image(request.query, request.box.region(request.query), embedder.input_size)
        explanation = library.explain(embedder, query, request.result, attention=embedder.spec.has_attention)
        return explain_outcome(request, explanation)

    return explain


def explain_outcome(request: ExplainRequest, explanation: Explanation) -> ExplainOutcome:
    """The explanation as QImages (made here, off the GUI thread) and plain numbers."""
    import numpy as np
    from PIL import Image

    from vitgallery.core.explain_render import attention_scale, colour_map, heat_layer, similarity_scale

    scale = similarity_scale(explanation)

    def picture(photo: PhotoPatches, heat: np.ndarray) -> HeatPicture:
        attention = photo.features.attention
        own = attention_scale(attention) if attention is not None else None
        size = photo.image.size
        return HeatPicture(
            pil_to_qimage(photo.image),
            pil_to_qimage(heat_layer(photo, heat, scale, size, 1.0)),
            pil_to_qimage(heat_layer(photo, attention, own, size, 1.0)) if own is not None else None,
            own.high if own is not None else 0.0,
        )

    bar = np.repeat(colour_map(np.linspace(0.0, 1.0, 256))[None], 12, axis=0)
    lines = explanation.matches
    return ExplainOutcome(
        request,
        picture(explanation.query, explanation.query_heat),
        picture(explanation.result, explanation.result_heat),
        (scale.low, scale.high),
        pil_to_qimage(Image.fromarray(bar)),
        [(float(x), float(y)) for x, y in lines.query_xy],
        [(float(x), float(y)) for x, y in lines.result_xy],
        explanation.cosine,
        explanation.inliers,
    )


def pil_to_qimage(image: Image.Image) -> QImage:
    """A copy that owns its pixels (the PIL buffer is gone when the job ends)."""
    rgba = image.convert("RGBA")
    return QImage(rgba.tobytes(), rgba.width, rgba.height, 4 * rgba.width, QImage.Format.Format_RGBA8888).copy()


def modified_time(path: Path) -> float | None:
    try:
        return path.stat().st_mtime_ns / 1e9  # as a listing gives it (st_mtime may differ in the last digit)
    except OSError:
        return None


@dataclass(frozen=True)
class FolderListing:
    photos: list[tuple[Path, float]]  # path, modification time
    problems: list[tuple[Path, str]]
    folders: list[Path]  # the folders holding photos, the root first (the window watches them)


def list_folder(root: Path, handoff: ListingHandoff | None = None,
                order: Callable[[Path, float | None], Any] | None = None) -> PlainWork:
    """List a folder's photos; they are also reported as progress, in chunks, so a grid can fill
    while a large folder is still being listed (submit it unthrottled). The listing is given to
    `handoff` at once, before the grid's chunks (an indexing run waits on it; give it None in the
    job's cleanup too). `order`: the grid's sort key of a photo (path, date), for the chunks to come in
    the grid's order: each then goes after the rows shown, where a chunk in folder order was merged
    among up to 100,000 rows on the window's thread."""

    def listing(progress: ProgressCallback, cancel: threading.Event) -> FolderListing:
        with collector_paused():  # a few objects a photo, that live on in the grid: no pass walks them meanwhile
            result = scan_root(root)
            if handoff is not None:
                handoff.give(result)
            photos = [(root / item.path, item.mtime_ns / 1e9) for item in result.files]
            if order is not None:
                photos = sorted_in_runs(photos, lambda photo: order(*photo))
            for chunk in listing_chunks(photos):
                if cancel.is_set():
                    break
                progress(chunk)
            # from the relative paths: a Path's parent for each of 100,000 photos held the interpreter 0.24 s
            folders = sorted(root / rel for rel in {item.path.rpartition("/")[0] for item in result.files} - {""})
            problems = [(root / rel, reason) for rel, reason in result.problems]
            return FolderListing(photos, problems, [root, *folders])

    return listing


def sorted_in_runs(items: list, key: Callable[[Any], Any], run: int = SORTED_AT_ONCE) -> list:
    """`items` sorted by `key`, stably, as `sorted` would: a few thousand at a time, then merged item by
    item, because one sort of 100,000 compares in C for ~0.1 s without letting the window's thread run."""
    runs = [sorted(items[start:start + run], key=key) for start in range(0, len(items), run)]
    return list(heapq.merge(*runs, key=key))


def listing_chunks(items: list, first: int = LISTING_FIRST_CHUNK, growth: int = LISTING_CHUNK_GROWTH) -> Iterator[list]:
    """`items` in consecutive chunks: `first` of them, then each chunk `growth` times the one before."""
    start, size = 0, first
    while start < len(items):
        yield items[start:start + size]
        start, size = start + size, size * growth
