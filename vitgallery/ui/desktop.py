"""Handing a photo to the rest of the desktop: the system viewer, the file manager, the clipboard."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QMimeData, QObject, QProcess, QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication

log = logging.getLogger(__name__)


def open_in_system_viewer(path: Path) -> bool:
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))


def reveal_in_file_manager(path: Path, on_failed: Callable[[], None], parent: QObject) -> None:
    """Show the file selected in its folder where the platform allows it, else open the folder;
    `on_failed` runs when neither could be done (no file manager: the user is told, not left waiting).
    `parent` (the window) owns the process asked."""
    if sys.platform in ("darwin", "win32"):
        program, arguments = ("open", ["-R", str(path)]) if sys.platform == "darwin" else ("explorer", [f"/select,{path}"])
        if not QProcess.startDetached(program, arguments)[0]:
            on_failed()
        return
    # The freedesktop FileManager1 interface selects the file in Nautilus, Dolphin, Nemo, Thunar... Its
    # answer is waited for, off the window's turns: with no such service dbus-send fails, and then the folder
    # is opened instead.
    process = QProcess(parent)

    def open_folder_instead() -> None:
        process.deleteLater()
        log.info("no FileManager1 service; opening the folder instead")
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(path.parent))):
            on_failed()

    process.finished.connect(lambda code, status: open_folder_instead() if code or status != QProcess.ExitStatus.NormalExit
                             else process.deleteLater())
    process.errorOccurred.connect(lambda error: open_folder_instead() if error == QProcess.ProcessError.FailedToStart
                                  else None)
    process.start("dbus-send", [
        "--session", "--print-reply", "--reply-timeout=3000",
        "--dest=org.freedesktop.FileManager1",
        "--type=method_call",
        "/org/freedesktop/FileManager1",
        "org.freedesktop.FileManager1.ShowItems",
        f"array:string:{QUrl.fromLocalFile(str(path)).toString()}",
        "string:",
    ])


def copy_paths(paths: list[Path]) -> None:
    """Paths as text for an editor or terminal, and as file URLs for a file manager's paste."""
    mime = QMimeData()
    mime.setText("\n".join(str(path) for path in paths))
    mime.setUrls([QUrl.fromLocalFile(str(path)) for path in paths])
    QGuiApplication.clipboard().setMimeData(mime)
