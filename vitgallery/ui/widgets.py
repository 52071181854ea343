"""The smaller pieces of the main window: message bar, query panel, indexing progress, problems list."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QImage, QPalette, QPixmap
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from vitgallery.ui.preview import ScaledImageLabel

DROP_HINT = "Drop a photo here\n\nfrom a file manager, a browser\nor the grid, paste it (Ctrl+V)\nor open one (Ctrl+O)"


class MessageBar(QFrame):
    """A dismissable line at the top of the window for errors and notices; never modal."""

    details_requested = Signal(str, str)  # message, report

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("messageBar")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self._report = ""
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details_button = QPushButton("Details…")
        self.details_button.clicked.connect(
            lambda: self.details_requested.emit(self.label.text(), self._report)
        )
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.hide)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 4, 4, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.details_button)
        layout.addWidget(close)
        self.hide()

    def show_message(self, text: str, *, error: bool = False, report: str = "") -> None:
        self._report = report
        self.label.setText(text)
        self.details_button.setVisible(bool(report))
        # Tinted by kind, with the palette's text colour so it reads in light and dark themes.
        tint = "rgba(220, 60, 60, 60)" if error else "rgba(60, 130, 230, 50)"
        self.setStyleSheet(f"#messageBar {{ background: {tint}; border-radius: 4px; }}")
        self.show()

    def text(self) -> str:
        return self.label.text() if self.isVisible() else ""


class QueryPanel(QFrame):
    """The drop zone: shows the query photo and the controls that shape the results."""

    result_count_changed = Signal(int)
    min_score_changed = Signal(float)
    clear_requested = Signal()

    def __init__(self, result_count: int, min_score: float, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("queryPanel")
        self.setMinimumWidth(240)
        self.setMaximumWidth(420)
        self._highlighted = False
        self._set_drag_highlight(False)

        self.image = ScaledImageLabel(DROP_HINT)
        self.image.setMinimumSize(200, 200)
        self.image.setMaximumHeight(400)
        self.image.setWordWrap(True)
        self.image.setToolTip("Drop a photo, a file, a link or image data here")
        self.caption = QLabel("No query yet")
        self.caption.setWordWrap(True)
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.count_spin = QSpinBox()
        self.count_spin.setRange(1, 500)
        self.count_spin.setValue(result_count)
        self.count_spin.setToolTip("How many similar photos to look for")
        self.count_spin.valueChanged.connect(self.result_count_changed)

        self.threshold_slider = QSlider(Qt.Orientation.Horizontal)
        self.threshold_slider.setRange(0, 100)
        self.threshold_slider.setValue(round(min_score * 100))
        self.threshold_slider.setToolTip("Hide results less similar than this")
        self.threshold_label = QLabel()
        self.threshold_slider.valueChanged.connect(self._on_threshold_moved)
        self._on_threshold_moved(self.threshold_slider.value(), emit=False)

        self.clear_button = QPushButton("Clear query")
        self.clear_button.setToolTip("Back to the folder (Esc)")
        self.clear_button.clicked.connect(self.clear_requested)
        self.clear_button.setEnabled(False)

        count_row = QHBoxLayout()
        count_row.addWidget(QLabel("Results"))
        count_row.addStretch(1)
        count_row.addWidget(self.count_spin)
        threshold_row = QHBoxLayout()
        threshold_row.addWidget(QLabel("Min. similarity"))
        threshold_row.addStretch(1)
        threshold_row.addWidget(self.threshold_label)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 10, 10, 10)
        layout.addWidget(self.image, 1)
        layout.addWidget(self.caption)
        layout.addSpacing(8)
        layout.addLayout(count_row)
        layout.addLayout(threshold_row)
        layout.addWidget(self.threshold_slider)
        layout.addSpacing(4)
        layout.addWidget(self.clear_button)
        layout.addStretch(1)

    def result_count(self) -> int:
        return self.count_spin.value()

    def min_score(self) -> float:
        return self.threshold_slider.value() / 100

    def show_query(self, image: QImage, caption: str) -> None:
        self.image.set_image(QPixmap.fromImage(image) if not image.isNull() else QPixmap())
        if image.isNull():
            self.image.setText("(no preview for this image)")
        self.caption.setText(caption)
        self.clear_button.setEnabled(True)

    def show_pending(self, caption: str) -> None:
        self.caption.setText(caption)
        self.clear_button.setEnabled(True)

    def clear_query(self) -> None:
        self.image.set_image(QPixmap())
        self.image.setText(DROP_HINT)
        self.caption.setText("No query yet")
        self.clear_button.setEnabled(False)

    def set_drag_highlight(self, on: bool) -> None:
        self._set_drag_highlight(on)

    def _set_drag_highlight(self, on: bool) -> None:
        self._highlighted = on
        if on:
            colour = "palette(highlight)"
        else:
            # Faded text colour: visible on the light and the dark palette alike.
            text = self.palette().color(QPalette.ColorRole.WindowText)
            colour = f"rgba({text.red()}, {text.green()}, {text.blue()}, 90)"
        style = f"#queryPanel {{ border: 2px dashed {colour}; border-radius: 10px; }}"
        if style != self.styleSheet():  # restyling changes the palette: stop when nothing changes
            self.setStyleSheet(style)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self._set_drag_highlight(self._highlighted)

    def _on_threshold_moved(self, value: int, emit: bool = True) -> None:
        self.threshold_label.setText(f"{value / 100:.2f}")
        if emit:
            self.min_score_changed.emit(value / 100)


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class IndexProgressPanel(QWidget):
    """Count, rate, ETA and current file of the running index, with pause and cancel."""

    pause_toggled = Signal(bool)
    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bar = QProgressBar()
        self.bar.setFixedWidth(220)
        self.bar.setTextVisible(True)
        self.label = QLabel()
        self.label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.pause_button = QPushButton("Pause")
        self.pause_button.setCheckable(True)
        self.pause_button.toggled.connect(self._on_pause)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self._on_cancel)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.bar)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.pause_button)
        layout.addWidget(self.cancel_button)
        self.hide()

    def start(self, text: str) -> None:
        self.bar.setRange(0, 0)
        self.label.setText(text)
        self.pause_button.setChecked(False)
        self.pause_button.setEnabled(True)
        self.cancel_button.setEnabled(True)
        self.show()

    def update_progress(
        self, phase: str, done: int, total: int, rate: float, eta_s: float | None, current: str | None
    ) -> None:
        if phase in ("embedding", "learning") and total > 0:
            self.bar.setRange(0, total)
            self.bar.setValue(done)
            name = Path(current).name if current else ""
            verb = {"embedding": "Indexing", "learning": "Learning from photos"}[phase]
            state = "Paused" if self.pause_button.isChecked() else verb
            self.label.setText(
                f"{state} {done:,} / {total:,} · {rate:.1f} photos/s · {format_duration(eta_s)} left · {name}"
            )
            self.label.setToolTip(current or "")
        else:
            self.bar.setRange(0, 0)
            self.label.setText(
                {"scanning": "Looking for new and changed photos…", "saving": "Saving the index…",
                 "fitting": "Learning what tells this library's photos apart…"}.get(
                    phase, phase
                )
            )

    def finish(self) -> None:
        self.hide()

    def _on_pause(self, paused: bool) -> None:
        self.pause_button.setText("Resume" if paused else "Pause")
        self.pause_toggled.emit(paused)

    def _on_cancel(self) -> None:
        self.cancel_button.setEnabled(False)
        self.pause_button.setEnabled(False)
        self.label.setText("Cancelling…")
        self.cancel_requested.emit()


class ProblemsPanel(QTreeWidget):
    """Files that were skipped, and why."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setColumnCount(2)
        self.setHeaderLabels(["File", "Reason"])
        self.setRootIsDecorated(False)
        self.setAlternatingRowColors(True)
        self.setUniformRowHeights(True)
        self.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        self.header().setStretchLastSection(True)
        self.setColumnWidth(0, 480)
        self._sources: dict[str, list[tuple[Path, str]]] = {}

    def set_problems(self, source: str, problems: list[tuple[Path, str]]) -> None:
        """Problems come from the folder listing and from indexing; each source replaces its own."""
        self._sources[source] = problems
        self.clear()
        seen: set[tuple[str, str]] = set()
        for items in self._sources.values():
            for path, reason in items:
                key = (str(path), reason)
                if key in seen:
                    continue
                seen.add(key)
                item = QTreeWidgetItem([str(path), reason])
                item.setToolTip(0, str(path))
                item.setToolTip(1, reason)
                self.addTopLevelItem(item)

    def clear_problems(self) -> None:
        self._sources.clear()
        self.clear()

    def problem_count(self) -> int:
        return self.topLevelItemCount()
