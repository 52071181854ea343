"""GUI responsiveness: the longest event-loop stall from start-up through indexing, and drop-to-first-results time.

Builds a 1,000-photo folder from the benchmark corpus (copies, plus re-encoded variants to reach
1,000), opens the real MainWindow on it through the app's start sequence (ui/app.start_window: the
splash while the model runtime imports, then the window; offscreen unless a display is given), runs
a 10 ms heartbeat QTimer from the moment the window is shown while the folder is listed and
indexed, then drops a photo that is not in the folder on the window and times how long until the
results view paints its first tile.

Gaps are reported by phase: "startup", from the window shown until the first photo is embedded, in three
parts ("opening folder": the listing, the library, the first thumbnails; "loading model": the index
job's model loading; "checking photos": from its comparing the folder with the library to the first
photo embedded, the decoders started), then "indexing", to the end. The times from the process's start to the splash and to the window shown are reported too.
`--start worker` shows the window at once and imports the model runtime on its job runner, as the
app did before (issue 18 point 5), to compare.

    python bench/gui_responsiveness.py                       # tiny random ViT (fast; a floor)
    python bench/gui_responsiveness.py --model dinov2-s14 --weights /work/weights/dinov2_vits14_pretrain.pth
    python bench/gui_responsiveness.py --startup-only --photos 100 --drops 0   # start-up alone, seconds

With --screenshot PATH (run under a display, e.g. xvfb-run -s "-screen 0 1280x800x24") the screen
is saved once the results and their thumbnails are painted; that is how docs/screenshot.png is made.
"""

from __future__ import annotations

import argparse
import cProfile
import faulthandler
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PIL import Image  # noqa: E402
from PySide6.QtCore import QEvent, QEventLoop, QMimeData, QObject, QPoint, Qt, QTimer, QUrl  # noqa: E402
from PySide6.QtGui import QDragEnterEvent, QDropEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from vitgallery.ui import settings as opt  # noqa: E402
from vitgallery.ui.app import StartupSplash, apply_color_scheme, create_application, start_window  # noqa: E402
from vitgallery.ui.duplicates_view import READING_LAST_SCAN  # noqa: E402
from vitgallery.ui.main_window import MainWindow  # noqa: E402
from vitgallery.ui.settings import Settings  # noqa: E402
from vitgallery.ui.workers import ModelLoading, load_model_runtime  # noqa: E402

CORPUS = Path("/tmp/vg-corpus")
HEARTBEAT_MS = 10
# Heartbeat phases before the first photo is embedded: from the window shown until the index job
# starts loading the model (listing the folder, opening its library, the first thumbnails), then
# until it starts comparing the folder with the library (the model loading), then until the first
# photo is embedded (that comparison, the decoders starting).
OPENING, LOADING_MODEL, CHECKING = "opening folder", "loading model", "checking photos"
STARTUP_PHASES = (OPENING, LOADING_MODEL, CHECKING)
DUPLICATES_PAGE, BROWSING, SLIDING = "duplicates page", "browsing", "moving the threshold"
CONDITION_POLL_MS = 10


def build_folder(corpus: Path, target: Path, count: int) -> Path:
    """`count` photos from the corpus (objects first, then the duplicate groups), then half-size
    re-encodes until the count is reached."""
    marker = target / ".complete"
    if marker.exists() and marker.read_text() == str(count):
        return target
    if not marker.exists() and target.is_dir() and any(target.iterdir()):
        # only a folder this script made is emptied: given a corpus's own folder, it deleted the corpus
        sys.exit(f"{target} holds photos this script did not put there: give a new or empty --folder")
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    sources = [
        p for task in ("sem", "dup") for p in sorted((corpus / task / "images").glob("*")) if p.is_file()
    ]
    if not sources:
        sys.exit(f"no corpus images under {corpus}; see /work/shared/bench/README.md")
    made = 0
    for index, source in enumerate(sources):
        if made >= count:
            break
        shutil.copy2(source, target / f"{index:04d}_{source.name}")
        made += 1
    variant = 0
    while made < count:
        source = sources[variant % len(sources)]
        with Image.open(source) as image:
            image = image.convert("RGB")
            image = image.resize((max(1, image.width // 2), max(1, image.height // 2)))
            image.save(target / f"variant_{variant:04d}_{source.stem}.jpg", quality=80)
        variant += 1
        made += 1
    marker.write_text(str(count))
    return target


def make_query(source: Path, out: Path) -> Path:
    """A crop of a photo, saved outside the folder, so the model has to embed it."""
    with Image.open(source) as image:
        image = image.convert("RGB")
        w, h = image.size
        image.crop((w // 10, h // 10, w - w // 10, h - h // 10)).save(out, quality=90)
    return out


class Heartbeat(QObject):
    """A 10 ms timer; any gap well above 10 ms is time the event loop could not run."""

    def __init__(self) -> None:
        super().__init__()
        self.timer = QTimer(self)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(HEARTBEAT_MS)
        self.timer.timeout.connect(self._beat)
        self.last = 0.0
        self.gaps: list[tuple[float, float, str]] = []  # gap ms, at s, phase
        self.phase = OPENING
        self.started = 0.0

    def start(self) -> None:
        self.started = self.last = time.perf_counter()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()
        faulthandler.cancel_dump_traceback_later()  # armed by watch_stalls

    def _beat(self) -> None:
        now = time.perf_counter()
        self.gaps.append(((now - self.last) * 1000, now - self.started, self.phase))
        self.last = now

    @property
    def starting(self) -> bool:
        return self.phase in STARTUP_PHASES

    def longest(self, phases: tuple[str, ...]) -> float:
        return max((gap for gap, _, phase in self.gaps if phase in phases), default=0.0)

    def over(self, ms: float, phases: tuple[str, ...]) -> int:
        return sum(gap > ms for gap, _, phase in self.gaps if phase in phases)


class FirstPaint(QObject):
    """Records when the results view first paints while it has rows."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__()
        self.window = window
        self.painted_at: float | None = None
        self.thumbnail_painted_at: float | None = None
        window.results_view.viewport().installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint and self.window.results_model.rowCount() > 0:
            now = time.perf_counter()
            if self.painted_at is None:
                self.painted_at = now
            first = self.window.results_model.path_at(0)
            if self.thumbnail_painted_at is None and self.window.thumbnails.pixmap(first) is not None:
                self.thumbnail_painted_at = now
        return False


def watch_stalls(heartbeat: Heartbeat, over_ms: float) -> None:
    """Print where every thread is whenever the heartbeat is `over_ms` late: faulthandler's watchdog is a
    C thread that needs no interpreter lock, so a thread holding it in C code shows up with its
    Python stack too, and a lock the GUI thread waits on shows in the GUI thread's."""
    def rearm() -> None:
        faulthandler.dump_traceback_later(over_ms / 1000, file=sys.stderr)

    heartbeat.timer.timeout.connect(rearm)
    rearm()


def browse_folder(app: QApplication, window: MainWindow, heartbeat: Heartbeat, pages: int) -> dict:
    """Scroll the folder grid down a page every 100 ms, `pages` times, as a user paging through it, then
    wait a second for the thumbnails: the longest event-loop gap meanwhile."""
    window.tabs.setCurrentIndex(0)
    bar = window.folder_view.verticalScrollBar()
    heartbeat.phase = BROWSING
    heartbeat.start()
    for _ in range(pages):
        bar.setValue(bar.value() + bar.pageStep())
        wait_until(app, lambda: False, 0.1)
    wait_until(app, lambda: False, 1.0)
    heartbeat.stop()
    return {"browsed_pages": pages, "longest_gap_browsing_ms": round(heartbeat.longest((BROWSING,)), 1),
            "gaps_over_50ms_browsing": heartbeat.over(50, (BROWSING,))}


def open_duplicates_page(app: QApplication, window: MainWindow, heartbeat: Heartbeat, timeout: float) -> dict:
    """Switch to the Duplicates page, as a user would, and wait until it shows the kept scan (or says
    there is none): the longest event-loop gap meanwhile, and how long it took."""
    view = window.duplicates_view
    heartbeat.phase = DUPLICATES_PAGE
    heartbeat.start()
    started = time.perf_counter()
    window.tabs.setCurrentWidget(view)
    wait_until(app, lambda: view.status_label.text() != READING_LAST_SCAN, timeout)
    shown_s = time.perf_counter() - started
    wait_until(app, lambda: False, 0.5)  # the groups' first thumbnails
    heartbeat.stop()
    return {"duplicates_page_groups": view.group_list.count(),
            "duplicates_page_shown_s": round(shown_s, 2),
            "longest_gap_opening_duplicates_page_ms": round(heartbeat.longest((DUPLICATES_PAGE,)), 1)}


def switch_groups(app: QApplication, window: MainWindow, switches: int) -> dict:
    """Step to the next duplicate group `switches` times, 100 ms apart, as a reviewer pressing N does:
    the GUI thread's time for each step (the group shown and the buttons updated) and the paint after it."""
    view = window.duplicates_view
    step_ms, paint_ms = [], []
    for _ in range(switches):
        started = time.perf_counter()
        view.next_group()
        stepped = time.perf_counter()
        app.processEvents()  # the paint of the new group (its thumbnails come later, from their threads)
        step_ms.append((stepped - started) * 1000)
        paint_ms.append((time.perf_counter() - stepped) * 1000)
        wait_until(app, lambda: False, 0.1)
    return {"group_switches": len(step_ms),
            "group_switch_ms_median": round(statistics.median(step_ms), 1) if step_ms else None,
            "group_switch_ms_max": round(max(step_ms), 1) if step_ms else None,
            "group_switch_paint_ms_median": round(statistics.median(paint_ms), 1) if paint_ms else None}


def slide_threshold(app: QApplication, window: MainWindow, heartbeat: Heartbeat, steps: int) -> dict:
    """Step the Duplicates page's threshold slider up `steps` times, 50 ms apart, as its arrow keys or the
    mouse wheel do (a mouse drag asks only where it is let go), then wait for the groups of the last
    step: the GUI thread's time for each step, the longest event-loop gap, and how long after the last
    step its groups were shown."""
    view = window.duplicates_view
    heartbeat.phase = SLIDING
    heartbeat.start()
    step_ms, started = [], 0.0
    for _ in range(steps):
        started = time.perf_counter()
        view.threshold_slider.setValue(view.threshold_slider.value() + 1)
        step_ms.append((time.perf_counter() - started) * 1000)
        wait_until(app, lambda: False, 0.05)
    wait_until(app, lambda: not getattr(view, "_regrouping", False), 60)  # grouped at once where no job does it
    shown_s = time.perf_counter() - started
    heartbeat.stop()
    return {"threshold_steps": len(step_ms),
            "threshold_step_ms_median": round(statistics.median(step_ms), 1) if step_ms else None,
            "threshold_step_ms_max": round(max(step_ms), 1) if step_ms else None,
            "threshold_groups_shown_after_last_step_s": round(shown_s, 2),
            "longest_gap_moving_threshold_ms": round(heartbeat.longest((SLIDING,)), 1)}


def process_age_s() -> float:
    """Seconds since this process started (Linux: /proc, in clock ticks), interpreter start-up included."""
    started_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
    return time.clock_gettime(time.CLOCK_BOOTTIME) - started_ticks / os.sysconf("SC_CLK_TCK")


class SplashShown(QObject):
    """Records the process's age when the first splash is shown."""

    def __init__(self) -> None:
        super().__init__()
        self.age_s: float | None = None

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if self.age_s is None and event.type() == QEvent.Type.Show and isinstance(watched, StartupSplash):
            self.age_s = process_age_s()
        return False


def drop_file(window: MainWindow, path: Path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    point = QPoint(150, 300)
    args = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, QDragEnterEvent(point, *args))
    QApplication.sendEvent(window, QDropEvent(point, *args))


def wait_until(app: QApplication, condition, timeout_s: float) -> bool:
    """Run the event loop, as the app does, until `condition()` holds (checked every CONDITION_POLL_MS)
    or `timeout_s` has passed. Idle, the GUI thread waits in Qt without the interpreter lock; a loop of
    processEvents and sleep would take the lock back after every sleep and time that wait too."""
    deadline = time.monotonic() + timeout_s
    loop = QEventLoop()
    poll = QTimer(interval=CONDITION_POLL_MS)
    poll.timeout.connect(lambda: loop.quit() if condition() or time.monotonic() > deadline else None)
    poll.start()
    if not condition():
        loop.exec()
    poll.stop()
    return bool(condition())


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="folder with sem/images and dup/images")
    parser.add_argument(
        "--folder", type=Path, default=Path(tempfile.gettempdir()) / "vg-gui-bench" / "photos"
    )
    parser.add_argument("--model", default="tiny-test")
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for indexing")
    parser.add_argument(
        "--query", type=Path, help="photo to crop into the dropped query (default: one of the folder)"
    )
    parser.add_argument("--screenshot", type=Path, help="save the screen here once the results are painted")
    parser.add_argument("--dark", action="store_true", help="use the dark palette whatever the system says")
    parser.add_argument(
        "--drops", type=int, default=5, help="queries dropped one after the other; the median is reported"
    )
    parser.add_argument("--library", type=Path, help="reuse this library folder (default: a fresh one)")
    parser.add_argument("--start", choices=("splash", "worker"), default="splash",
                        help="splash: the app's start sequence; worker: the window shown at once and the model "
                             "runtime imported on its job runner (the start before issue 18 point 5, to compare)")
    parser.add_argument("--startup-only", action="store_true",
                        help="stop once the first photo is embedded (the model loaded): no full index, no drops")
    parser.add_argument("--browse", type=int, default=0, metavar="PAGES",
                        help="after the drops, page down the folder grid this many times (100 ms apart)")
    parser.add_argument("--switch-groups", type=int, default=0, metavar="N",
                        help="on the Duplicates page, step to the next group N times (100 ms apart) and time each step")
    parser.add_argument("--slide-threshold", type=int, default=0, metavar="N",
                        help="on the Duplicates page, step the threshold slider up N times (50 ms apart), as "
                             "its arrow keys do")
    parser.add_argument("--profile-duplicates", type=Path, metavar="FILE",
                        help="profile the GUI thread (cProfile) from the switch to the Duplicates page through "
                             "--switch-groups, and save the statistics here")
    parser.add_argument("--watch-stalls", type=float, metavar="MS",
                        help="print every thread's stack whenever the heartbeat is this many ms late "
                             "(faulthandler reads the threads without the interpreter lock: at 10,000 photos "
                             "the process crashed in 4 of 7 runs)")
    args = parser.parse_args()

    folder = build_folder(args.corpus, args.folder, args.photos)
    work = Path(tempfile.mkdtemp(prefix="vg-gui-bench-"))
    # every photo, in subfolders too (a folder of folders, as a library by month)
    photos = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    sources = [photos[(index * 2 + 1) * len(photos) // (2 * args.drops)] for index in range(args.drops)]
    if args.query:
        sources[0] = args.query
    queries = [make_query(source, work / f"query{number}.jpg") for number, source in enumerate(sources)]
    app = create_application()
    if args.dark:
        apply_color_scheme(app, Qt.ColorScheme.Dark)
    settings = Settings.from_file(work / "settings.ini")
    settings.set(opt.MODEL, args.model)
    settings.set(opt.WEIGHTS, str(args.weights) if args.weights else "")
    settings.set(opt.DEVICE, args.device)
    settings.set(opt.BATCH_SIZE, args.batch_size)
    library_dir = args.library or work / "library"
    splash_shown = SplashShown()
    app.installEventFilter(splash_shown)

    def build_window() -> MainWindow:
        window = MainWindow(settings, library_dir=library_dir, thumbnail_cache_dir=work / "thumbs")
        window.setGeometry(0, 0, 1280, 800)
        return window

    if args.start == "splash":
        window = start_window(build_window, lambda window: folder)  # the app's start: the library opened too
    else:
        window = build_window()
        window.show()
        importing = threading.Event()

        def import_runtime(progress, cancel) -> None:
            importing.set()
            load_model_runtime(lambda step: None)

        window.jobs.submit(import_runtime, lane="library")
        wait_until(app, importing.is_set, 10)  # running, so that open_folder's cancel_all cannot drop it
    window_shown_age_s = process_age_s()
    # Imported by the start sequence: imported at the top, it would delay the splash.
    from vitgallery.core.library import IndexProgress

    app.removeEventFilter(splash_shown)
    heartbeat = Heartbeat()
    heartbeat.start()
    summaries: list[object] = []
    window.indexing_finished.connect(summaries.append)

    def on_progress(progress: object) -> None:
        if isinstance(progress, ModelLoading):
            heartbeat.phase = LOADING_MODEL
        elif isinstance(progress, IndexProgress) and progress.phase == "scanning":
            heartbeat.phase = CHECKING
        elif isinstance(progress, IndexProgress) and (progress.done > 0 or progress.phase == "done"):
            heartbeat.phase = progress.phase  # the first photo embedded ends the start-up

    window.index_progress.connect(on_progress)
    if args.watch_stalls:
        watch_stalls(heartbeat, args.watch_stalls)
    started = time.perf_counter()
    window.open_folder(folder)
    if args.startup_only:
        done = wait_until(app, lambda: not heartbeat.starting or bool(summaries), args.timeout)
    else:
        done = wait_until(app, lambda: bool(summaries), args.timeout)
    if not done:
        print("indexing did not finish in time", file=sys.stderr)
        window.close()
        return 1
    indexing_s = time.perf_counter() - started
    heartbeat.stop()
    summary = summaries[0] if summaries else None
    indexing_phases = tuple({phase for _, _, phase in heartbeat.gaps} - set(STARTUP_PHASES))
    startup = {
        "model": args.model,
        "start": args.start,
        "process_start_to_splash_s": round(splash_shown.age_s, 2) if splash_shown.age_s is not None else None,
        "process_start_to_window_shown_s": round(window_shown_age_s, 2),
        "window_shown_to_model_loading_s": round(
            next((at for _, at, phase in heartbeat.gaps if phase != OPENING), heartbeat.gaps[-1][1]), 2),
        "window_shown_to_first_photo_embedded_s": round(
            next((at for _, at, phase in heartbeat.gaps if phase not in STARTUP_PHASES), heartbeat.gaps[-1][1]), 2),
        "longest_gap_during_startup_ms": round(heartbeat.longest(STARTUP_PHASES), 1),
        "gaps_over_50ms_during_startup": heartbeat.over(50, STARTUP_PHASES),
        "longest_gap_opening_folder_ms": round(heartbeat.longest((OPENING,)), 1),
        "longest_gap_loading_model_ms": round(heartbeat.longest((LOADING_MODEL,)), 1),
        "window_shown_to_checking_photos_s": round(
            next((at for _, at, phase in heartbeat.gaps if phase not in (OPENING, LOADING_MODEL)), heartbeat.gaps[-1][1]), 2),
        "longest_gap_checking_photos_ms": round(heartbeat.longest((CHECKING,)), 1),
        "worst_gaps_during_startup": [
            {"ms": round(gap, 1), "at_s": round(at, 2), "phase": phase}
            for gap, at, phase in sorted(g for g in heartbeat.gaps if g[2] in STARTUP_PHASES)[::-1][:3]
        ],
    }
    if args.startup_only:
        window.close()
        window.jobs.wait(args.timeout)  # the cancelled index stops after its batch; exiting under it aborts
        shutil.rmtree(work, ignore_errors=True)
        print(json.dumps(startup, indent=2))
        return 0

    first_paint = FirstPaint(window)
    shown: list[int] = []
    window.results_shown.connect(shown.append)
    to_results, to_thumbnail = [], []
    heartbeat.start()
    for number, query in enumerate(queries):
        window.clear_query()
        app.processEvents()
        heartbeat.phase = f"drop {number + 1}"
        first_paint.painted_at = first_paint.thumbnail_painted_at = None
        dropped = time.perf_counter()
        drop_file(window, query)
        if not wait_until(app, lambda: first_paint.thumbnail_painted_at is not None, 120):
            print(f"no results painted for {query}", file=sys.stderr)
            continue
        to_results.append((first_paint.painted_at - dropped) * 1000)
        to_thumbnail.append((first_paint.thumbnail_painted_at - dropped) * 1000)
        if number == 0 and args.screenshot:
            wait_until(app, lambda: window.thumbnails.pending_count() == 0, 60)
            wait_until(app, lambda: False, 1.0)  # let the last thumbnails paint
            args.screenshot.parent.mkdir(parents=True, exist_ok=True)
            window.screen().grabWindow(0).save(str(args.screenshot))
    heartbeat.stop()
    dropping = [f"drop {number + 1}" for number in range(len(queries))]
    browsing = browse_folder(app, window, heartbeat, args.browse) if args.browse else {}
    profiler = cProfile.Profile() if args.profile_duplicates else None
    if profiler:
        profiler.enable()
    duplicates_page = open_duplicates_page(app, window, heartbeat, args.timeout)
    if args.switch_groups:
        duplicates_page.update(switch_groups(app, window, args.switch_groups))
    if args.slide_threshold:
        duplicates_page.update(slide_threshold(app, window, heartbeat, args.slide_threshold))
    if profiler:
        profiler.disable()
        profiler.dump_stats(args.profile_duplicates)
    result = {
        **startup,
        **browsing,
        **duplicates_page,
        "photos": args.photos,
        "indexed": getattr(summary, "added", None),
        "indexing_s": round(indexing_s, 1),
        "heartbeats": len(heartbeat.gaps),
        "longest_gap_while_indexing_ms": round(heartbeat.longest(indexing_phases), 1),
        "gaps_over_50ms_while_indexing": heartbeat.over(50, indexing_phases),
        "worst_gaps_while_indexing": [
            {"ms": round(gap, 1), "at_s": round(at, 2), "phase": phase}
            for gap, at, phase in sorted(g for g in heartbeat.gaps if g[2] in indexing_phases)[::-1][:5]
        ],
        "results_per_query": shown[0] if shown else 0,
        "drop_to_first_results_painted_ms": [round(ms, 1) for ms in to_results],
        "drop_to_first_thumbnail_painted_ms": [round(ms, 1) for ms in to_thumbnail],
        "median_drop_to_first_results_painted_ms": round(statistics.median(to_results), 1)
        if to_results
        else None,
        # the first search loads the index file (a run with nothing to add leaves it unread)
        "longest_gap_per_drop_ms": [round(heartbeat.longest((phase,)), 1) for phase in dropping],
    }
    window.close()
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2))
    print(
        f"longest event-loop gap while indexing: {result['longest_gap_while_indexing_ms']} ms "
        f"(startup, window shown to first photo: {result['longest_gap_during_startup_ms']} ms); "
        f"drop to first results painted: median {result['median_drop_to_first_results_painted_ms']} ms "
        f"over {len(to_results)} drops"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
