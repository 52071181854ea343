from __future__ import annotations

import sys

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from vitgallery.ui.app import ErrorReportDialog, ExceptionHandler, app_icon, apply_color_scheme, format_report


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
