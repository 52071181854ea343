"""Application start-up: palette, icon, the splash that covers loading the model runtime, and `run_app`
(called by the CLI)."""

from __future__ import annotations

import gc
import logging
import os
import platform
import signal
import site
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import QRect, QSocketNotifier, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QGuiApplication, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import (
    QApplication,
    QProxyStyle,
    QSplashScreen,
    QStyle,
    QStyleFactory,
    QStyleOption,
    QWidget,
)

from vitgallery import __version__
from vitgallery.core.imageio import route_pillow_warnings
from vitgallery.logs import configure_logging
from vitgallery.ui import settings as opt
from vitgallery.ui.main_window import MainWindow
from vitgallery.ui.reporting import APP_NAME, ExceptionHandler
from vitgallery.ui.settings import Settings
from vitgallery.ui.workers import WorkerError, load_model_runtime, stuck_worker_threads

log = logging.getLogger(__name__)

# The desktop file's name (resources/APP_ID.desktop): Wayland matches windows to it, and so to the icon.
APP_ID = "io.github.vitgallery.vitgallery"
ICON_FILE = "vitgallery.svg"
# After the window has closed, the time a job gets to finish what it cannot stop midway (a model call
# on a batch of photos, seconds on a slow CPU) before the process exits under it: indexing then shuts
# its photo-decoding processes down itself instead of leaving them behind.
EXIT_GRACE_S = 15.0
INSTALLED_ICON_DIR = Path("share", "icons", "hicolor", "scalable", "apps")  # under sys.prefix, from a wheel


def icon_path() -> Path | None:
    """The SVG icon, from a source checkout or where a wheel installed it (see pyproject's data-files):
    the environment's prefix, or the user's base for `pip install --user`."""
    checkout = Path(__file__).resolve().parents[2] / "resources" / ICON_FILE
    installed = [Path(base) / INSTALLED_ICON_DIR / ICON_FILE for base in (sys.prefix, site.getuserbase())]
    for candidate in (checkout, *installed):
        if candidate.is_file():
            return candidate
    return None


def app_icon() -> QIcon:
    path = icon_path()
    return QIcon(str(path)) if path is not None else QIcon()


# -- palette -------------------------------------------------------------------------------------


def dark_palette() -> QPalette:
    palette = QPalette()
    window, base, text = QColor(37, 38, 41), QColor(27, 28, 30), QColor(228, 228, 230)
    disabled = QColor(120, 120, 125)
    palette.setColor(QPalette.ColorRole.Window, window)
    palette.setColor(QPalette.ColorRole.WindowText, text)
    palette.setColor(QPalette.ColorRole.Base, base)
    palette.setColor(QPalette.ColorRole.AlternateBase, QColor(50, 52, 56))
    palette.setColor(QPalette.ColorRole.ToolTipBase, QColor(50, 52, 56))
    palette.setColor(QPalette.ColorRole.ToolTipText, text)
    palette.setColor(QPalette.ColorRole.PlaceholderText, QColor(150, 150, 155))
    palette.setColor(QPalette.ColorRole.Text, text)
    palette.setColor(QPalette.ColorRole.Button, QColor(48, 50, 54))
    palette.setColor(QPalette.ColorRole.ButtonText, text)
    palette.setColor(QPalette.ColorRole.BrightText, QColor(255, 90, 90))
    palette.setColor(QPalette.ColorRole.Light, QColor(70, 72, 77))
    palette.setColor(QPalette.ColorRole.Midlight, QColor(58, 60, 65))
    palette.setColor(QPalette.ColorRole.Mid, QColor(40, 41, 44))
    palette.setColor(QPalette.ColorRole.Dark, QColor(20, 20, 22))
    palette.setColor(QPalette.ColorRole.Shadow, QColor(0, 0, 0))
    palette.setColor(QPalette.ColorRole.Highlight, QColor(61, 132, 232))
    palette.setColor(QPalette.ColorRole.HighlightedText, QColor(255, 255, 255))
    palette.setColor(QPalette.ColorRole.Link, QColor(110, 170, 250))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, disabled)
    return palette


# Fusion frames a check box in the window colour darkened by 40 %: an empty box stands out from a
# list's background by 2.5:1 on the dark palette and 2.2:1 on the light one (WCAG asks 3:1 of a
# control). A frame in the text colour at this opacity: 5.5:1 and 8.5:1 (tests/ui/test_app.py).
INDICATOR_FRAME_ALPHA = 150
FRAMED_INDICATORS = (
    QStyle.PrimitiveElement.PE_IndicatorCheckBox,
    QStyle.PrimitiveElement.PE_IndicatorItemViewItemCheck,
)


class ContrastStyle(QProxyStyle):
    """Fusion, with check boxes framed so they can be seen in the light and the dark palette."""

    def drawPrimitive(
        self, element: QStyle.PrimitiveElement, option: QStyleOption, painter: QPainter, widget: QWidget | None = None
    ) -> None:
        super().drawPrimitive(element, option, painter, widget)
        if element in FRAMED_INDICATORS:
            frame = QColor(option.palette.color(QPalette.ColorRole.Text))
            frame.setAlpha(INDICATOR_FRAME_ALPHA)
            painter.save()
            painter.setPen(frame)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(option.rect.adjusted(0, 0, -1, -1))
            painter.restore()


def apply_color_scheme(app: QApplication, scheme: Qt.ColorScheme | None = None) -> Qt.ColorScheme:
    """Light or dark palette on Fusion, following the system unless `scheme` is given."""
    if scheme is None:
        scheme = app.styleHints().colorScheme()
    if scheme == Qt.ColorScheme.Dark:
        app.setPalette(dark_palette())
    else:
        app.setPalette(app.style().standardPalette())
    return scheme


# -- the splash ----------------------------------------------------------------------------------

SPLASH_SIZE = (440, 180)
SPLASH_ICON_SIZE = 96
SPLASH_MARGIN = 24
SPLASH_TEXT_LEFT = 2 * SPLASH_MARGIN + SPLASH_ICON_SIZE  # right of the icon


class StartupSplash(QSplashScreen):
    """The app's icon, name and version, and what is loading, shown while the model runtime imports."""

    def __init__(self) -> None:
        super().__init__(splash_picture())

    def say(self, text: str) -> None:
        """Show `text` and paint it now: the next step imports on this thread and paints nothing."""
        self.showMessage(text)
        QApplication.processEvents()

    def drawContents(self, painter: QPainter) -> None:
        # Under the name, in the picture's margins (Qt's own message hugs the edge, 5 px from it).
        painter.setPen(QApplication.palette().color(QPalette.ColorRole.PlaceholderText))
        painter.drawText(self.rect().adjusted(SPLASH_TEXT_LEFT, 0, -SPLASH_MARGIN, -SPLASH_MARGIN // 2),
                         Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom, self.message())


def splash_picture() -> QPixmap:
    palette = QApplication.palette()
    screen = QGuiApplication.primaryScreen()
    ratio = screen.devicePixelRatio() if screen is not None else 1.0
    width, height = SPLASH_SIZE
    picture = QPixmap(round(width * ratio), round(height * ratio))
    picture.setDevicePixelRatio(ratio)
    picture.fill(palette.color(QPalette.ColorRole.Window))
    painter = QPainter(picture)
    icon_top = (height - SPLASH_ICON_SIZE) // 2
    app_icon().paint(painter, QRect(SPLASH_MARGIN, icon_top, SPLASH_ICON_SIZE, SPLASH_ICON_SIZE))
    title_font = QFont(QApplication.font())
    title_font.setPointSizeF(title_font.pointSizeF() * 2)
    title_font.setBold(True)
    painter.setFont(title_font)
    painter.setPen(palette.color(QPalette.ColorRole.WindowText))
    painter.drawText(QRect(SPLASH_TEXT_LEFT, icon_top, width - SPLASH_TEXT_LEFT, SPLASH_ICON_SIZE // 2),
                     Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom, APP_NAME)
    painter.setFont(QApplication.font())
    painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
    painter.drawText(QRect(SPLASH_TEXT_LEFT, icon_top + SPLASH_ICON_SIZE // 2, width - SPLASH_TEXT_LEFT,
                           SPLASH_ICON_SIZE // 2),
                     Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop, f"version {__version__}")
    painter.setPen(palette.color(QPalette.ColorRole.Mid))
    painter.drawRect(0, 0, width - 1, height - 1)
    painter.end()
    return picture


WINDOW_SWITCH_INTERVAL_S = 0.001


def start_window(build_window: Callable[[], MainWindow],
                 start_folder: Callable[[MainWindow], Path | None] = lambda window: None) -> MainWindow:
    """The start sequence: the splash while the model runtime imports here, on the GUI thread, before
    the event loop runs; then the window from `build_window`, and the library of the folder it will
    open (`start_folder`) opened with its index loaded; then the window shown. Nothing heavy is left to
    import or load on a worker thread once the window is up, so loading the model no longer freezes it."""
    # Every paint and model row calls back into Python and must take the interpreter from the jobs'
    # threads, waiting up to the switch interval each time (5 ms by default): opening a library of
    # 10,000 photos, whose kept duplicates scan a job groups meanwhile, froze the window 0.7-1.7 s at
    # 5 ms and 0.4-0.6 s at 1 ms (docs/performance.md, issue 18 point 4).
    sys.setswitchinterval(WINDOW_SWITCH_INTERVAL_S)
    splash = StartupSplash()
    splash.show()
    # What the imports and the window make (about 680,000 objects) lives as long as the app: the garbage
    # collector's full passes over it while it grew took 0.7 s of the start; one pass at the end frees
    # what they left (10,000 objects, 8 MB). Then it is frozen out of those passes, which would walk it
    # all, holding the interpreter, each time a job makes many objects (reading a kept scan of 129,000
    # pairs froze the window a third of a second).
    gc.disable()
    try:
        problem = load_model_runtime(splash.say)
        window = build_window()
        folder = start_folder(window)
        if folder is not None:
            window.preload_library(folder, splash.say)
    finally:
        gc.collect()
        gc.freeze()
        gc.enable()
    window.show()
    splash.finish(window)
    if problem is not None:
        window.show_worker_error(WorkerError(problem))
    return window


# -- entry point ---------------------------------------------------------------------------------


def create_application(argv: list[str] | None = None) -> QApplication:
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        return existing
    QApplication.setApplicationName(APP_NAME)
    QApplication.setOrganizationName(APP_NAME)
    QApplication.setApplicationDisplayName(APP_NAME)  # Qt adds it to every window title
    QGuiApplication.setDesktopFileName(APP_ID)
    app = QApplication(argv if argv is not None else [sys.argv[0]])
    app.setStyle(ContrastStyle(QStyleFactory.create("Fusion")))
    app.setWindowIcon(app_icon())
    apply_color_scheme(app)
    app.styleHints().colorSchemeChanged.connect(lambda scheme: apply_color_scheme(app, scheme))
    return app


def run_app(
    folder: Path | None,
    library_dir: Path | None,
    weights: Path | None = None,
    query: Path | None = None,
    *,
    choose_query: bool = False,
    verbose: bool = False,
) -> int:
    """Open the main window on `folder` (or the last one), search for `query` if given, and run until
    it closes. `weights`, a model weights file, is kept in the settings like one chosen in Settings.
    With `choose_query` (the desktop's "Find Similar Photos…" without a photo) ask for the photo."""
    app, window = open_window(folder, library_dir, weights, query, choose_query=choose_query, verbose=verbose)
    return run_until_closed(app, window)


def open_window(
    folder: Path | None,
    library_dir: Path | None,
    weights: Path | None = None,
    query: Path | None = None,
    *,
    choose_query: bool = False,
    verbose: bool = False,
) -> tuple[QApplication, MainWindow]:
    log_file = configure_logging(verbose)
    route_pillow_warnings()  # the window decodes thumbnails and previews: Pillow's warnings go to the log
    log.info("vitgallery %s starting (Python %s, PySide6 %s)", __version__, platform.python_version(), pyside_version)
    app = create_application()
    handler = ExceptionHandler(log_file, app)
    handler.install()
    settings = Settings()
    if weights is not None:
        settings.set(opt.WEIGHTS, str(weights.expanduser().absolute()))
    def folder_to_open(window: MainWindow) -> Path | None:
        return folder or window.last_folder()

    window = start_window(lambda: MainWindow(settings, library_dir=library_dir), folder_to_open)
    start_folder = folder_to_open(window)
    if start_folder is not None:
        # After the window is up, so it paints before the first listing starts.
        QTimer.singleShot(0, lambda: window.open_folder(start_folder))
    else:
        window.note_missing_last_folder()
    if query is not None:
        QTimer.singleShot(0, lambda: window.find_similar(query.expanduser().absolute()))
    elif choose_query:
        QTimer.singleShot(0, window.choose_query_file)
    return app, window


# Ctrl+C in the terminal that started the window, and the SIGTERM of a logout: the exit status each
# gives a command line (128 + the signal), once the window has closed as its close button closes it.
CLOSING_SIGNALS = {signal.SIGINT: 130, signal.SIGTERM: 143}


class SignalsClose:
    """Closes the window on CLOSING_SIGNALS, so that the jobs stop and the library is closed as on a
    click (Ctrl+C raised KeyboardInterrupt in whatever slot ran next: the app crashed or hung, and SIGTERM
    ended it mid-write). Python runs a signal's handler only when it runs code: the signal's byte on a
    wakeup socket wakes the event loop for it. A second signal does what it does by default: a user
    pressing Ctrl+C again means it."""

    def __init__(self, window: MainWindow) -> None:
        self.exit_code: int | None = None
        self._window = window
        self._wakeup, writer = socket.socketpair()
        self._wakeup.setblocking(False)
        writer.setblocking(False)
        self._writer = writer  # kept open while the handlers are in place
        signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        self._notifier = QSocketNotifier(self._wakeup.fileno(), QSocketNotifier.Type.Read, window)
        self._notifier.activated.connect(self._drain)
        for number in CLOSING_SIGNALS:
            signal.signal(number, self._close)

    def _drain(self) -> None:
        try:
            self._wakeup.recv(64)
        except OSError:
            pass

    def _close(self, number: int, frame: object) -> None:
        log.info("closing on signal %s", signal.Signals(number).name)
        for each in CLOSING_SIGNALS:
            signal.signal(each, signal.SIG_DFL)
        if self.exit_code is None:
            self.exit_code = CLOSING_SIGNALS[signal.Signals(number)]
        self._window.close()


def run_until_closed(app: QApplication, window: MainWindow) -> int:
    """Run the event loop; once the window has closed, give its jobs EXIT_GRACE_S to end cleanly."""
    closer = SignalsClose(window)
    code = app.exec()
    if closer.exit_code is not None:
        code = closer.exit_code
    log.info("vitgallery closed with code %d", code)
    if not window.jobs.wait(EXIT_GRACE_S):
        # A worker stuck in a long call (a model still loading or downloading) must not keep the
        # process alive, nor run on while the interpreter shuts down. Every indexing batch is
        # already committed.
        log.warning("leaving %s to process exit", ", ".join(stuck_worker_threads()))
        logging.shutdown()
        os._exit(code)
    window.session.replace_library(None)  # the jobs have returned it
    return code
