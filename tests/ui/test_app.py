from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QCheckBox, QStyleFactory

from vitgallery.ui.app import (
    APP_ID,
    ICON_FILE,
    INSTALLED_ICON_DIR,
    ContrastStyle,
    app_icon,
    apply_color_scheme,
    dark_palette,
)
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
    (source / "packaging").mkdir()
    for file in ("pyproject.toml", "README.md", "packaging/install-desktop-entry.sh"):
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
    assert "share/vitgallery/install-desktop-entry.sh" in data, "what `vitgallery desktop-entry` runs"


def test_the_icon_is_found_where_pip_install_user_puts_it(tmp_path, monkeypatch) -> None:
    """`pip install --user` puts a wheel's data files under the user's base (~/.local), not sys.prefix:
    the splash was blank there and the window had no icon."""
    from vitgallery.ui import app

    user_base = tmp_path / "local"
    (user_base / INSTALLED_ICON_DIR).mkdir(parents=True)
    (user_base / INSTALLED_ICON_DIR / ICON_FILE).write_text("<svg/>")
    monkeypatch.setattr(app, "__file__", str(tmp_path / "site-packages" / "vitgallery" / "ui" / "app.py"))  # no checkout
    monkeypatch.setattr(app.sys, "prefix", str(tmp_path / "venv"))
    monkeypatch.setattr(app.site, "getuserbase", lambda: str(user_base))
    assert app.icon_path() == user_base / INSTALLED_ICON_DIR / ICON_FILE


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


def relative_luminance(colour: QColor) -> float:
    def channel(value: int) -> float:
        value /= 255
        return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(colour.red()) + 0.7152 * channel(colour.green()) + 0.0722 * channel(colour.blue())


def contrast(first: QColor, second: QColor) -> float:
    """WCAG contrast ratio: 1 (none) to 21 (black on white)."""
    high, low = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


PALETTES = {"dark": dark_palette, "light": lambda: QStyleFactory.create("Fusion").standardPalette()}


@pytest.mark.parametrize("scheme", PALETTES)
def test_text_reads_in_both_palettes(scheme: str) -> None:
    palette = PALETTES[scheme]()
    role = QPalette.ColorRole
    for text, background, least in (
        (role.Text, role.Base, 7.0),
        (role.WindowText, role.Window, 7.0),
        (role.ButtonText, role.Button, 7.0),
        (role.HighlightedText, role.Highlight, 3.0),
        (role.PlaceholderText, role.Base, 3.0),
    ):
        ratio = contrast(palette.color(text), palette.color(background))
        assert ratio >= least, f"{scheme}: {text.name} on {background.name} is {ratio:.1f}:1"


@pytest.mark.parametrize("scheme", PALETTES)
def test_an_empty_check_box_stands_out_in_both_palettes(qtbot, scheme: str) -> None:
    palette = PALETTES[scheme]()
    box = QCheckBox("keep")
    box.setStyle(ContrastStyle(QStyleFactory.create("Fusion")))
    box.setPalette(palette)
    box.setBackgroundRole(QPalette.ColorRole.Base)  # as in the duplicates list
    box.setAutoFillBackground(True)
    qtbot.addWidget(box)
    box.resize(80, 30)
    box.show()
    image = box.grab().toImage()
    background = image.pixelColor(image.width() - 2, image.height() // 2)
    frame = max(
        contrast(image.pixelColor(x, y), background) for x in range(20) for y in range(image.height())
    )
    assert frame >= 3.0, f"{scheme}: the check box frame stands out only {frame:.1f}:1"


@pytest.mark.xfail(
    __import__("PySide6").__version__ == "6.12.0",
    reason="PySide6 6.12.0 drops a reference to True on every emit; pyproject excludes that release",
    strict=True,
)
def test_emitting_signals_keeps_the_interpreter_sound() -> None:
    """Every signal the app sends from Python (a thumbnail, a progress report, a model row) went
    through SignalInstance.emit; with PySide6 6.12.0 each one took a reference to True away, and
    after a few thousand the process aborted ("deallocating True or False") or crashed."""
    from PySide6.QtCore import QObject, Signal

    class Sender(QObject):
        sent = Signal(int)

    sender = Sender()
    received: list[int] = []
    sender.sent.connect(received.append)
    before = sys.getrefcount(True)
    for number in range(200):
        sender.sent.emit(number)
    assert len(received) == 200
    assert sys.getrefcount(True) >= before - 10
