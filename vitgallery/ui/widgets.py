"""The smaller pieces of the main window: message bar, indexing progress, problems list."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPaintEvent, QResizeEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QWidget,
)

from vitgallery.core.indexing import WHITENING_MIN_PHOTOS, WHITENING_SAMPLE
from vitgallery.core.preprocess import teaching_views_per_photo
from vitgallery.ui.results_model import paint_placeholder

if TYPE_CHECKING:
    from vitgallery.core.duplicates import ActionReport
    from vitgallery.core.library import Library


@dataclass(frozen=True)
class MessageAction:
    """A button in the message bar that fixes what the message is about."""

    text: str
    run: Callable[[], None]


class MessageBar(QFrame):
    """A dismissable line at the top of the window for errors and notices; never modal."""

    details_requested = Signal(str, str)  # message, report

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("messageBar")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self._report = ""
        self._action: MessageAction | None = None
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.action_button = QPushButton()
        self.action_button.clicked.connect(self._run_action)
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
        layout.addWidget(self.action_button)
        layout.addWidget(self.details_button)
        layout.addWidget(close)
        self.hide()

    def show_message(
        self, text: str, *, error: bool = False, report: str = "", action: MessageAction | None = None
    ) -> None:
        self._report = report
        self._action = action
        self.label.setText(text)
        self.details_button.setVisible(bool(report))
        self.action_button.setVisible(action is not None)
        self.action_button.setText(action.text if action is not None else "")
        # Tinted by kind, with the palette's text colour so it reads in light and dark themes.
        tint = ERROR_TINT if error else "rgba(60, 130, 230, 50)"
        self.setStyleSheet(f"#messageBar {{ background: {tint}; border-radius: 4px; }}")
        self.show()

    def text(self) -> str:
        return self.label.text() if self.isVisible() else ""

    def withdraw(self, text: str | None) -> None:
        """Hide the bar if it still says `text`: its cause is gone, and a later message stays."""
        if text is not None and self.text() == text:
            self.hide()

    def has_action(self) -> bool:
        return self._action is not None

    def _run_action(self) -> None:
        if self._action is not None:
            self._action.run()


class WrappedCaption(QLabel):
    """A word-wrapped label whose words too wide for it (a long file name has no space to wrap at) are
    shortened in the middle, so the name keeps its start and its extension; the whole text is its tooltip."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self._full = ""
        self.setText(text)

    def full_text(self) -> str:
        return self._full

    def setText(self, text: str) -> None:  # noqa: N802 - Qt's name
        self._full = text
        self._fit()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        metrics, width = self.fontMetrics(), max(1, self.contentsRect().width())
        shown = "".join(metrics.elidedText(part, Qt.TextElideMode.ElideMiddle, width)
                        if not part.isspace() and metrics.horizontalAdvance(part) > width else part
                        for part in re.split(r"(\s+)", self._full))
        if shown != super().text():
            super().setText(shown)
        self.setToolTip(self._full if shown != self._full else "")


SCREEN_SHARE = 0.95  # the most of a small screen a window opens on
ERROR_TINT = "rgba(220, 60, 60, 60)"  # behind an error's text (the message bar's, a dialog's)


def resize_within_screen(window: QWidget, width: int, height: int) -> None:
    """Open `window` at `width` x `height`, or smaller where its screen (a dialog's: its parent's) has less
    room: a compare dialog of 1,200 x 800 on a 1,024 x 640 screen had its zoom buttons off the screen."""
    screen = window.screen()
    if screen is not None:
        room = screen.availableGeometry()
        width, height = min(width, int(room.width() * SCREEN_SHARE)), min(height, int(room.height() * SCREEN_SHARE))
    window.resize(width, height)


def confirmation_box(parent: QWidget, title: str, question: str, act: str) -> QMessageBox:
    """The question asked before many files move at once: the button that acts says what it does, and
    Cancel is the default answer (Enter, Escape), never the action."""
    box = QMessageBox(QMessageBox.Icon.Question, title, question,
                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, parent)
    box.button(QMessageBox.StandardButton.Yes).setText(act)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    box.setEscapeButton(QMessageBox.StandardButton.Cancel)
    return box


class JobPage:
    """What the Duplicates, Groups and Sort pages share (mixed into their QWidget): a status line over
    an indeterminate busy bar, library work run as jobs whose failure ends in that line, and an
    action's report passed on. A page has `status_label`, `progress_bar`, `_jobs` (the window's
    JobRunner), `_busy`, `_update_enabled()` and an `action_finished` signal; `focus_while_busy`, the
    widget that keeps the keyboard when the button pressed is disabled for the work."""

    focus_while_busy = None

    def _set_busy(self, busy: bool, text: str) -> None:
        self._busy = busy
        self.status_label.setText(text)
        self.progress_bar.setVisible(busy)
        if busy:
            self.progress_bar.setRange(0, 0)
            self.progress_bar.setFormat("")
        focused = self.focusWidget()
        focused = focused if focused is not None and focused.hasFocus() else None
        self._update_enabled()
        # Qt hands the focus of a disabled button to the next widget, often out of the page (the toolbar):
        # a keyboard user pressing Undo with Space was left there.
        if focused is not None and not focused.isEnabled() and self.focus_while_busy is not None:
            self.focus_while_busy.setFocus(Qt.FocusReason.OtherFocusReason)

    def _run(self, work: Callable[[Library], Any], on_finished: Callable[[Any], None]) -> None:
        """Run `work(library)` as a job on the window's library."""
        self._jobs.submit_library(
            lambda library, progress, cancel: work(library),
            name=f"{type(self).__name__} request",
            on_finished=on_finished,
            on_failed=lambda error: self._set_busy(False, f"Failed: {error.message}"),
        )

    def _acted(self, report: ActionReport) -> None:
        self._set_busy(False, report.status_line())
        self.action_finished.emit(report)


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class IndexEstimate:
    """One bar and one ETA over a whole indexing run, in units of one decode and one forward pass (a
    new photo's work). New photos that teach the whitening (up to WHITENING_SAMPLE in the library) add
    a pass per teaching view, made from their own decode; photos taught in a later "learning" phase
    (a top-up for a library indexed before) cost a decode and those passes.

    The teaching share is estimated from the library's size; the learning phase reports its own total.
    The rate counts only time spent working, so the ETA stands still while paused and does not
    jump when the phase changes.
    """

    def __init__(self, photos_before: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._photos_before = photos_before
        self._clock = clock
        self._embed_total = 0
        self._embed_done = 0
        self._learn_total: int | None = None
        self._learn_done = 0
        self._active_s = 0.0
        self._since: float | None = None  # working since; None while paused or not started

    def update(self, phase: str, done: int, total: int) -> None:
        self._tick()
        if phase == "embedding":
            self._embed_total, self._embed_done = total, done
        elif phase == "learning":
            self._learn_total, self._learn_done = total, done
            self._embed_done = self._embed_total
        if self._since is None:
            self._since = self._clock()

    def pause(self) -> None:
        self._tick()
        self._since = None

    def resume(self) -> None:
        if self._since is None:
            self._since = self._clock()

    def work_total(self) -> float:
        return self._embed_total * self._work_per_new_photo() + (1 + self._views()) * (self._learn_total or 0)

    def work_done(self) -> float:
        return self._embed_done * self._work_per_new_photo() + (1 + self._views()) * self._learn_done

    def fraction(self) -> float:
        total = self.work_total()
        return min(1.0, self.work_done() / total) if total else 0.0

    def eta_s(self) -> float | None:
        self._tick()
        done = self.work_done()
        if done <= 0 or self._active_s <= 0:
            return None
        return (self.work_total() - done) * self._active_s / done

    def _views(self) -> int:
        return teaching_views_per_photo(min(WHITENING_SAMPLE, self._photos_before + self._embed_total))

    def _work_per_new_photo(self) -> float:
        photos_after = self._photos_before + self._embed_total
        if photos_after < WHITENING_MIN_PHOTOS or not self._embed_total:
            return 1.0
        taught = max(0, min(WHITENING_SAMPLE, photos_after) - min(WHITENING_SAMPLE, self._photos_before))
        return 1.0 + self._views() * min(1.0, taught / self._embed_total)

    def _tick(self) -> None:
        if self._since is not None:
            now = self._clock()
            self._active_s += now - self._since
            self._since = now


BAR_STEPS = 1000


class IndexProgressPanel(QWidget):
    """One bar, the ETA and the current file of the running index, with pause and cancel."""

    pause_toggled = Signal(bool)
    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.estimate: IndexEstimate | None = None
        self.bar = QProgressBar()
        self.bar.setMaximumWidth(200)
        self.bar.setMinimumWidth(80)
        self.bar.setTextVisible(True)
        self.bar.setAlignment(Qt.AlignmentFlag.AlignCenter)  # left-aligned, the fill covered the first digits
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

    def start(self, text: str, photos_before: int) -> None:
        self.estimate = IndexEstimate(photos_before)
        self.bar.setRange(0, 0)
        self.label.setText(text)
        self.pause_button.setChecked(False)
        self.cancel_button.setEnabled(True)
        self._set_pausable(True)
        self.show()

    def show_step(self, text: str, *, pausable: bool = True) -> None:
        """A step without a count (loading the model, scanning, fitting). One that cannot pause shows
        Pause disabled."""
        if self.estimate is None or not self.estimate.work_total():
            self.bar.setRange(0, 0)
        self._set_pausable(pausable)
        self.label.setText(text)

    def update_progress(self, phase: str, done: int, total: int, current: str | None) -> None:
        if self.estimate is None or phase not in ("embedding", "learning") or total <= 0:
            return
        self.estimate.update(phase, done, total)
        self._set_pausable(True)
        if self.pause_button.isChecked():
            self.estimate.pause()
        self.bar.setRange(0, BAR_STEPS)
        self.bar.setValue(round(self.estimate.fraction() * BAR_STEPS))
        name = Path(current).name if current else ""
        if self.pause_button.isChecked():
            state = "Paused"
        elif phase == "embedding":
            state = f"Indexing {done:,} of {total:,}"
        else:
            state = f"Learning from {done:,} of {total:,} photos"
        eta = "" if self.pause_button.isChecked() else f" · {format_duration(self.estimate.eta_s())} left"
        self.label.setText(f"{state}{eta} · {name}")
        self.label.setToolTip(current or "")

    def finish(self) -> None:
        self.estimate = None
        self.hide()

    def _on_pause(self, paused: bool) -> None:
        self.pause_button.setText("Resume" if paused else "Pause")
        if self.estimate is not None:
            if paused:
                self.estimate.pause()
                self.label.setText("Paused")
            else:
                self.estimate.resume()
        self.pause_toggled.emit(paused)

    def _set_pausable(self, pausable: bool) -> None:
        if self.cancel_button.isEnabled():  # not while cancelling
            self.pause_button.setEnabled(pausable)
        self.pause_button.setToolTip("" if pausable else "This step cannot pause")

    def _on_cancel(self) -> None:
        self.cancel_button.setEnabled(False)
        self.pause_button.setEnabled(False)
        self.label.setText("Cancelling…")
        self.cancel_requested.emit()


NO_PROBLEMS = "No problems: every file of the folder could be read."


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

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if self.topLevelItemCount() == 0:  # said, rather than an empty table that looks unfinished
            paint_placeholder(self, NO_PROBLEMS)
