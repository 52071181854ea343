"""Handing a photo to the rest of the desktop: the system viewer, the file manager, the clipboard."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from PySide6.QtCore import QMimeData, QProcess, QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication

log = logging.getLogger(__name__)


def open_in_system_viewer(path: Path) -> bool:
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))


def reveal_in_file_manager(path: Path) -> bool:
    """Show the file selected in its folder where the platform allows it, else open the folder."""
    if sys.platform == "darwin":
        return QProcess.startDetached("open", ["-R", str(path)])[0]
    if sys.platform == "win32":
        return QProcess.startDetached("explorer", [f"/select,{path}"])[0]
    # The freedesktop FileManager1 interface selects the file in Nautilus, Dolphin, Nemo, Thunar...
    started = QProcess.startDetached(
        "dbus-send",
        [
            "--session",
            "--dest=org.freedesktop.FileManager1",
            "--type=method_call",
            "/org/freedesktop/FileManager1",
            "org.freedesktop.FileManager1.ShowItems",
            f"array:string:{QUrl.fromLocalFile(str(path)).toString()}",
            "string:",
        ],
    )[0]
    if started:
        return True
    log.info("no FileManager1 service; opening the folder instead")
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(path.parent)))


def copy_paths(paths: list[Path]) -> None:
    """Paths as text for an editor or terminal, and as file URLs for a file manager's paste."""
    mime = QMimeData()
    mime.setText("\n".join(str(path) for path in paths))
    mime.setUrls([QUrl.fromLocalFile(str(path)) for path in paths])
    QGuiApplication.clipboard().setMimeData(mime)
