from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from vitgallery.ui.app import APP_ID, ICON_FILE, INSTALLED_ICON_DIR, app_icon, apply_color_scheme
from vitgallery.ui.reporting import ErrorReportDialog, ExceptionHandler, format_report


def test_palette_follows_the_colour_scheme(qapp) -> None:
    original = qapp.palette()
    try:
        apply_color_scheme(qapp, Qt.ColorScheme.Dark)
        assert qapp.palette().window().color().lightness() < 80
        assert qapp.palette().text().color().lightness() > 180
        apply_color_scheme(qapp, Qt.ColorScheme.Light)
        assert qapp.palette().window().color().lightness() > 180
    finally:
        qapp.setPalette(original)


def test_app_icon_is_the_svg(qapp) -> None:
    icon = app_icon()
    assert not icon.isNull()
    assert not icon.pixmap(64, 64).toImage().isNull()


def test_a_wheel_installs_the_icon_where_the_app_looks_for_it(tmp_path) -> None:
    pytest.importorskip("setuptools")  # built without isolation (offline): the environment's setuptools
    repo = Path(__file__).resolve().parents[2]
    source = tmp_path / "source"  # setuptools builds in the source tree: a copy keeps the checkout clean
    for folder in ("vitgallery", "resources"):
        shutil.copytree(repo / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for file in ("pyproject.toml", "README.md"):
        shutil.copy(repo / file, source / file)
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path)], check=True, timeout=240)
    (wheel,) = tmp_path.glob("vitgallery-*.whl")
    data = [name.split(".data/data/", 1)[1] for name in zipfile.ZipFile(wheel).namelist() if ".data/data/" in name]
    # pip installs a wheel's data files under sys.prefix, where icon_path looks outside a checkout
    assert (INSTALLED_ICON_DIR / ICON_FILE).as_posix() in data
    # and where desktops find them when that prefix is ~/.local or /usr
    assert f"share/applications/{APP_ID}.desktop" in data and f"share/metainfo/{APP_ID}.metainfo.xml" in data
    for size in (16, 22, 24, 32, 48, 64, 128, 256, 512):
        assert f"share/icons/hicolor/{size}x{size}/apps/vitgallery.png" in data


def test_unexpected_exception_is_logged_and_shown_with_a_copyable_report(qtbot, caplog) -> None:
    handler = ExceptionHandler(log_file=None)
    try:
        raise ValueError("no such lens")
    except ValueError:
        exc_type, exc, tb = sys.exc_info()
    handler.handle(exc_type, exc, tb)
    assert "unexpected error" in caplog.text and "no such lens" in caplog.text

    def shown_dialogs() -> list[ErrorReportDialog]:
        return [
            w for w in QApplication.topLevelWidgets() if isinstance(w, ErrorReportDialog) and w.isVisible()
        ]

    qtbot.waitUntil(lambda: len(shown_dialogs()) == 1)
    handler.handle(exc_type, exc, tb)  # a second error while the dialog is open: no second dialog
    qtbot.wait(20)
    dialog = shown_dialogs()[0]
    assert len(shown_dialogs()) == 1
    report = dialog.report_view.toPlainText()
    assert report == format_report(exc_type, exc, tb)
    assert "ValueError: no such lens" in report and "PySide6" in report
    dialog.copy_report()
    assert QGuiApplication.clipboard().text() == report
    dialog.close()
