"""Application start-up: logging, the crash dialog, palette, icon, and `run_app` (called by the CLI)."""

from __future__ import annotations

import logging
import os
import platform
import sys
import threading
import traceback
from pathlib import Path
from types import TracebackType

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QStyleFactory,
    QVBoxLayout,
    QWidget,
)

from vitgallery import __version__
from vitgallery.logs import configure_logging

log = logging.getLogger(__name__)

APP_NAME = "vitgallery"
# The desktop file's name (resources/APP_ID.desktop): Wayland matches windows to it, and so to the icon.
APP_ID = "io.github.vitgallery.vitgallery"
ICON_FILE = "vitgallery.svg"
INSTALLED_ICON_DIR = Path("share", "icons", "hicolor", "scalable", "apps")  # under sys.prefix, from a wheel


def icon_path() -> Path | None:
    """The SVG icon, from a source checkout or where a wheel installed it (see pyproject's data-files)."""
    checkout = Path(__file__).resolve().parents[2] / "resources" / ICON_FILE
    installed = Path(sys.prefix) / INSTALLED_ICON_DIR / ICON_FILE
    for candidate in (checkout, installed):
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


def apply_color_scheme(app: QApplication, scheme: Qt.ColorScheme | None = None) -> Qt.ColorScheme:
    """Light or dark palette on Fusion, following the system unless `scheme` is given."""
    if scheme is None:
        scheme = app.styleHints().colorScheme()
    if scheme == Qt.ColorScheme.Dark:
        app.setPalette(dark_palette())
    else:
        app.setPalette(app.style().standardPalette())
    return scheme


# -- unexpected exceptions -----------------------------------------------------------------------


def format_report(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> str:
    lines = [
        f"vitgallery {__version__}, Python {platform.python_version()}, PySide6 {pyside_version}",
        f"{platform.platform()}",
        "",
        *traceback.format_exception(exc_type, exc, tb),
    ]
    return "\n".join(line.rstrip("\n") for line in lines)


class ErrorReportDialog(QDialog):
    """Shows what went wrong with a report the user can copy into a bug report."""

    def __init__(
        self, summary: str, report: str, log_file: Path | None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("vitgallery: unexpected error")
        self.resize(720, 420)
        layout = QVBoxLayout(self)
        where = f"<br>The details are also in the log: {log_file}" if log_file else ""
        heading = QLabel(
            f"<b>Something went wrong:</b> {summary}<br>You can keep working; please report this.{where}"
        )
        heading.setWordWrap(True)
        heading.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(heading)
        self.report_view = QPlainTextEdit(report)
        self.report_view.setReadOnly(True)
        self.report_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        layout.addWidget(self.report_view)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        copy = QPushButton("Copy report")
        copy.clicked.connect(self.copy_report)
        buttons.addButton(copy, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def copy_report(self) -> None:
        QGuiApplication.clipboard().setText(self.report_view.toPlainText())


class ExceptionHandler(QObject):
    """Logs every unexpected exception and shows it in a dialog on the GUI thread.

    Exceptions from other threads are relayed through a queued signal, so no thread but the
    GUI thread ever touches a widget.
    """

    exception_caught = Signal(str, str)  # summary, report

    def __init__(self, log_file: Path | None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._log_file = log_file
        self._dialog: ErrorReportDialog | None = None
        self.exception_caught.connect(self._show, Qt.ConnectionType.QueuedConnection)

    def install(self) -> None:
        sys.excepthook = self.handle
        threading.excepthook = lambda args: self.handle(args.exc_type, args.exc_value, args.exc_traceback)

    def handle(
        self, exc_type: type[BaseException], exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None or issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        log.critical("unexpected error", exc_info=(exc_type, exc, tb))
        summary = f"{exc_type.__name__}: {exc}"
        self.exception_caught.emit(summary, format_report(exc_type, exc, tb))

    def _show(self, summary: str, report: str) -> None:
        if self._dialog is not None and self._dialog.isVisible():
            return  # one dialog at a time; the rest are in the log
        # Not exec(): a nested event loop inside an error handler invites re-entrancy trouble.
        self._dialog = ErrorReportDialog(summary, report, self._log_file, QApplication.activeWindow())
        self._dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._dialog.destroyed.connect(self._forget_dialog)
        self._dialog.show()

    def _forget_dialog(self) -> None:
        self._dialog = None


# -- entry point ---------------------------------------------------------------------------------


def create_application(argv: list[str] | None = None) -> QApplication:
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        return existing
    QApplication.setApplicationName(APP_NAME)
    QApplication.setOrganizationName(APP_NAME)
    QApplication.setApplicationDisplayName("vitgallery")
    QGuiApplication.setDesktopFileName(APP_ID)
    app = QApplication(argv if argv is not None else [sys.argv[0]])
    app.setStyle(QStyleFactory.create("Fusion"))
    app.setWindowIcon(app_icon())
    apply_color_scheme(app)
    app.styleHints().colorSchemeChanged.connect(lambda scheme: apply_color_scheme(app, scheme))
    return app


def run_app(
    folder: Path | None,
    library_dir: Path | None,
    *,
    photo: Path | None = None,
    choose_photo: bool = False,
    verbose: bool = False,
) -> int:
    """Open the main window on `folder` (or the last one) and run until it closes. With `photo`
    (a file handed over by the desktop's "Open with"), find photos like it in its folder; with
    `choose_photo`, ask for the photo first."""
    # Imported here: main_window imports this module.
    from vitgallery.ui.main_window import MainWindow
    from vitgallery.ui.settings import Settings
    from vitgallery.ui.workers import abandoned_threads

    log_file = configure_logging(verbose)
    log.info("vitgallery %s starting (Python %s, PySide6 %s)", __version__, platform.python_version(), pyside_version)
    app = create_application()
    handler = ExceptionHandler(log_file, app)
    handler.install()
    window = MainWindow(Settings(), library_dir=library_dir)
    window.show()
    # After the window is up, so it paints before the first listing starts.
    if photo is not None:
        QTimer.singleShot(0, lambda: window.open_photo(photo))
    else:
        start_folder = folder or window.last_folder()
        if start_folder is not None:
            QTimer.singleShot(0, lambda: window.open_folder(start_folder))
        if choose_photo:
            QTimer.singleShot(0, window.choose_query_file)
    code = app.exec()
    log.info("vitgallery closed with code %d", code)
    if abandoned_threads():
        # A worker stuck in a long call (a model still loading) must not keep the app open, and
        # Python must not destroy its running QThread. Every indexing batch is already committed.
        logging.shutdown()
        os._exit(code)
    return code
