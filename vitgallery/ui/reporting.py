"""Where the app says what went wrong: the dialog with a report to copy (the log file it names is
vitgallery.logs').

Imported by the start-up code (app.py) and by the window, so neither imports the other.
"""

from __future__ import annotations

import logging
import platform
import sys
import threading
import traceback
from pathlib import Path
from types import TracebackType

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

import vitgallery

log = logging.getLogger(__name__)

APP_NAME = "vitgallery"


def format_report(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> str:
    lines = [
        f"vitgallery {vitgallery.__version__}, Python {platform.python_version()}, PySide6 {pyside_version}",
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
