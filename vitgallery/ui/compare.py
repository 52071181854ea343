"""Two photos of a duplicate group side by side: zoomed and scrolled together, 1:1, and what differs.

The table lists each file's resolution, size, date, camera, format (with a JPEG's quality) and
folder; rows that differ are marked, and the larger resolution and file are in bold. +/- (or
Ctrl+wheel) zoom both sides, 1 shows each file's own pixels, 0 fits both; dragging one side scrolls
the other to the same place. "Keep this one" under a side tells the Duplicates page to keep that
photo instead of the other.
"""

from __future__ import annotations

import html
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetrics, QImage, QImageReader, QKeyEvent, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QScrollBar,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from vitgallery.core.duplicates import DuplicateMember
from vitgallery.ui.preview import FULL_DECODE_LIMIT, PREVIEW_DECODE_SIZE, PhotoDetails, ZoomView, read_details
from vitgallery.ui.thumbnails import decode_scaled
from vitgallery.ui.widgets import resize_within_screen
from vitgallery.ui.workers import Job, JobRunner, WorkerError

ZOOM_STEP = 1.25
TITLE_WIDTH = 360  # pixels of a photo's name over its side
DIFFERENT_ROW = QColor(255, 236, 179)  # a soft amber: noticed, not alarming
PROPERTIES = ("Resolution", "File size", "Date", "Camera", "Format", "Folder", "Name")


UNKNOWN_DETAILS = PhotoDetails(None, None, None, None, False, None)


@dataclass(frozen=True)
class ComparedPhoto:
    path: Path
    image: QImage | None  # decoded off the GUI thread (the pixmap is made on it); None: it could not be
    details: PhotoDetails  # what could be read of the file, even when its picture could not
    format: str
    problem: str | None = None  # why the picture cannot be shown

    @property
    def shown(self) -> bool:
        return self.problem is None


def file_format(path: Path) -> str:
    """The format the file's content says it is (not its extension), e.g. JPEG, PNG, HEIF."""
    found = bytes(QImageReader.imageFormat(str(path)).data()).decode("ascii", "replace").upper()
    return found or path.suffix.lstrip(".").upper() or "?"


def load_photo(path: Path, size: int) -> ComparedPhoto:
    """The photo with its details; a file whose picture cannot be read still has what its file system and
    header say (its size, its date)."""
    details = read_details(path)
    try:
        image = decode_scaled(path, size)
    except OSError as error:
        return ComparedPhoto(path, None, details, file_format(path), str(error) or type(error).__name__)
    return ComparedPhoto(path, image, details, file_format(path))


def property_values(photo: ComparedPhoto) -> list[str]:
    """The table's cells for one photo, in the order of PROPERTIES."""
    d = photo.details
    unknown = "?" if photo.shown else "unknown"
    date = unknown
    if d.date is not None:
        date = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(d.date))
        date += " (taken)" if d.date_is_taken else " (modified)"
    resolution = f"{d.width:,} × {d.height:,}" if d.width and d.height else unknown
    header_read = d.width is not None  # without it, no camera is not "none recorded"
    return [
        resolution if photo.shown else f"cannot show this file: {photo.problem}",
        f"{d.size:,} bytes ({d.size / 1e6:.2f} MB)" if d.size is not None else unknown,
        date,
        d.camera or ("none recorded" if photo.shown or header_read else unknown),
        (photo.format or unknown) + (f", saved at quality {d.jpeg_quality}" if d.jpeg_quality is not None else ""),
        str(photo.path.parent),
        photo.path.name,
    ]


def larger_side(left: PhotoDetails, right: PhotoDetails, prop: str) -> int | None:
    """0 or 1 for the side with more pixels or the bigger file, None when equal or not about size."""
    if prop == "Resolution":
        a, b = (left.width or 0) * (left.height or 0), (right.width or 0) * (right.height or 0)
    elif prop == "File size":
        a, b = left.size or 0, right.size or 0
    else:
        return None
    return None if a == b else (0 if a > b else 1)


class CompareDialog(QDialog):
    """`left` and `right` side by side with the differences between the files."""

    keep_chosen = Signal(object, object)  # (the path to keep, the path not to keep)

    def __init__(
        self,
        left: DuplicateMember,
        right: DuplicateMember,
        runner: JobRunner,
        parent: QWidget | None = None,
        *,
        kept: set[Path] | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Compare: {left.path.name} and {right.path.name}")
        resize_within_screen(self, 1200, 800)
        self.members = (left, right)
        self._runner = runner
        self._photos: list[ComparedPhoto | None] = [None, None]
        self._loading: list[Job | None] = [None, None]
        self._syncing = False
        self._closed = False  # a decode that ends after the dialog closed must not touch its widgets

        self.views = (ZoomView(), ZoomView())
        self.keep_buttons: list[QPushButton] = []
        grid = QGridLayout()
        for side, (member, view) in enumerate(zip(self.members, self.views, strict=True)):
            view.full_resolution_needed.connect(lambda side=side: self._load(side, FULL_DECODE_LIMIT))
            view.zoom_changed.connect(self._on_zoom_changed)
            title = QLabel()
            bold = QFont(title.font())
            bold.setBold(True)
            # a long name is shortened in its middle: at full length it made the dialog wider than the screen
            name = QFontMetrics(bold).elidedText(member.path.name, Qt.TextElideMode.ElideMiddle, TITLE_WIDTH)
            title.setText(f"<b>{html.escape(name)}</b>" + (" — kept" if kept and member.path in kept else ""))
            title.setToolTip(str(member.path))
            title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
            title.setAlignment(Qt.AlignmentFlag.AlignCenter)
            keep = QPushButton("Keep this one")
            keep.setAutoDefault(False)  # Enter does not choose a side
            other = self.members[1 - side].path
            already = bool(kept) and member.path in kept and other not in kept
            keep.setEnabled(not already)  # it would change nothing
            keep.setToolTip("Kept already, the other one not" if already else "Keep this photo instead of the other one")
            keep.clicked.connect(lambda _=False, side=side: self._keep(side))
            self.keep_buttons.append(keep)
            grid.addWidget(title, 0, side)
            grid.addWidget(view, 1, side)
            grid.addWidget(keep, 2, side, Qt.AlignmentFlag.AlignCenter)
        grid.setRowStretch(1, 1)
        self._link_scrolling(self.views[0].horizontalScrollBar(), self.views[1].horizontalScrollBar())
        self._link_scrolling(self.views[0].verticalScrollBar(), self.views[1].verticalScrollBar())

        self.table = QTableWidget(len(PROPERTIES), 2)
        self.table.setVerticalHeaderLabels(list(PROPERTIES))
        self.table.setHorizontalHeaderLabels([left.path.name, right.path.name])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setFixedHeight(self.table.verticalHeader().length() + self.table.horizontalHeader().height()
                                  + 2 * self.table.frameWidth() + 2)

        self.zoom_label = QLabel()
        controls = QHBoxLayout()
        legend = QLabel("Rows that differ are marked; the larger file and resolution are in bold.")
        legend.setWordWrap(True)  # a small screen gets the dialog narrower, not its buttons cut off
        controls.addWidget(legend, 1)
        controls.addWidget(self.zoom_label)
        for text, tip, slot in (
            ("Fit", "Fit both photos to the window (0)", self.fit),
            ("1:1", "Each file's own pixels (1)", self.actual_size),
            ("−", "Zoom out (-)", lambda: self.zoom_by(1 / ZOOM_STEP)),
            ("+", "Zoom in (+)", lambda: self.zoom_by(ZOOM_STEP)),
        ):
            button = QPushButton(text)
            button.setToolTip(tip)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys stay with the dialog
            button.clicked.connect(slot)
            controls.addWidget(button)

        layout = QVBoxLayout(self)
        layout.addLayout(grid, 1)
        layout.addWidget(self.table)
        layout.addLayout(controls)
        for side, member in enumerate(self.members):
            self._load(side, PREVIEW_DECODE_SIZE, member.path)

    # -- zoom --------------------------------------------------------------------------------------

    def fit(self) -> None:
        self._on_both(lambda view: view.fit())

    def actual_size(self) -> None:
        """Each file's own pixels, both sides on the middle of the picture."""
        self._on_both(lambda view: (view.actual_size(), view.centerOn(view.sceneRect().center())))

    def zoom_by(self, factor: float) -> None:
        self._on_both(lambda view: view.zoom_by(factor))

    def _on_both(self, change) -> None:
        """The same change on each side, each from its own zoom; then the right side shows the part
        of its picture the left side shows."""
        self._syncing = True
        try:
            for view in self.views:
                change(view)
            for first, second in ((self.views[0].horizontalScrollBar(), self.views[1].horizontalScrollBar()),
                                  (self.views[0].verticalScrollBar(), self.views[1].verticalScrollBar())):
                if first.maximum() > 0:
                    second.setValue(round(first.value() / first.maximum() * second.maximum()))
        finally:
            self._syncing = False
        self._show_zoom()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom_by(ZOOM_STEP)
        elif key == Qt.Key.Key_Minus:
            self.zoom_by(1 / ZOOM_STEP)
        elif key == Qt.Key.Key_1:
            self.actual_size()
        elif key == Qt.Key.Key_0:
            self.fit()
        else:
            super().keyPressEvent(event)

    def _on_zoom_changed(self, zoom: float) -> None:
        # A wheel zoom on one side zooms the other to show the same part of the picture.
        sender = self.sender()
        other = self.views[1] if sender is self.views[0] else self.views[0]
        if not self._syncing and not sender.fitted and other.has_photo() and sender.has_photo():
            self._syncing = True
            ratio = other.sceneRect().width() / max(sender.sceneRect().width(), 1.0)
            other.set_zoom(zoom / ratio)
            self._syncing = False
        self._show_zoom()

    def _show_zoom(self) -> None:
        self.zoom_label.setText(" · ".join(f"{view.zoom * 100:.0f} %" if view.has_photo() else "—" for view in self.views)
                                + (" (fitted)" if all(view.fitted for view in self.views) else ""))

    def _link_scrolling(self, first: QScrollBar, second: QScrollBar) -> None:
        """Scrolling one side scrolls the other to the same place, relative to each photo's size."""

        def follow(source: QScrollBar, target: QScrollBar) -> None:
            if self._syncing or source.maximum() <= 0:
                return
            self._syncing = True
            target.setValue(round(source.value() / source.maximum() * target.maximum()))
            self._syncing = False

        first.valueChanged.connect(lambda _: follow(first, second))
        second.valueChanged.connect(lambda _: follow(second, first))

    # -- loading -----------------------------------------------------------------------------------

    def _load(self, side: int, size: int, path: Path | None = None) -> None:
        if self._loading[side] is not None:
            return
        path = path or self.members[side].path

        def decode(progress, cancel: threading.Event) -> ComparedPhoto:
            return load_photo(path, size)

        self._loading[side] = self._runner.submit(
            decode,
            lane="preview",
            name="compare",
            on_finished=lambda photo, side=side: self._on_loaded(side, photo),
            on_failed=lambda error, side=side: self._on_failed(side, error),
        )

    def _on_loaded(self, side: int, photo: ComparedPhoto) -> None:
        if self._closed:
            return
        self._loading[side] = None
        self._photos[side] = photo
        if photo.image is not None:
            self.views[side].set_photo(QPixmap.fromImage(photo.image), photo.details.width or photo.image.width())
        else:
            self._say_unreadable(side, photo.problem or "")
        self._fill_table()

    def _on_failed(self, side: int, error: WorkerError) -> None:
        """An error reading the file at all: its side's rows say so (a table filled before with this side
        still loading said "loading…" for good)."""
        if self._closed:
            return
        self._on_loaded(side, ComparedPhoto(self.members[side].path, None, UNKNOWN_DETAILS, "", error.message))

    def _say_unreadable(self, side: int, problem: str) -> None:
        """Said in the photo's place; a file that cannot be read is not one to keep."""
        view = self.views[side]
        note = view.scene().addText(f"Cannot show this file:\n{problem}")
        note.setTextWidth(max(view.viewport().width() - 20, 160))
        view.setSceneRect(note.sceneBoundingRect())
        self.keep_buttons[side].setEnabled(False)
        self.keep_buttons[side].setToolTip("This file cannot be read: keep the other one, or close")

    def is_loaded(self) -> bool:
        """Both sides read, their pictures shown or why not said."""
        return all(photo is not None for photo in self._photos)

    def _fill_table(self) -> None:
        values = [property_values(photo) if photo is not None else None for photo in self._photos]
        for row, prop in enumerate(PROPERTIES):
            cells = [v[row] if v is not None else "loading…" for v in values]
            left, right = self._photos
            both_shown = bool(left and right and left.shown and right.shown)
            differs = both_shown and cells[0] != cells[1]
            larger = larger_side(left.details, right.details, prop) if both_shown else None
            for side, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                if differs:
                    item.setBackground(QBrush(DIFFERENT_ROW))
                if larger == side:
                    font = QFont(item.font())
                    font.setBold(True)
                    item.setFont(font)
                self.table.setItem(row, side, item)

    def differing_properties(self) -> list[str]:
        """The properties whose values differ between the two files (once both are read and shown)."""
        if not all(photo is not None and photo.shown for photo in self._photos):
            return []
        left, right = (property_values(photo) for photo in self._photos)
        return [prop for prop, a, b in zip(PROPERTIES, left, right, strict=True) if a != b]

    # -- choosing ----------------------------------------------------------------------------------

    def _keep(self, side: int) -> None:
        self.keep_chosen.emit(self.members[side].path, self.members[1 - side].path)
        self.accept()

    def done(self, result: int) -> None:
        self._closed = True
        for job in self._loading:
            if job is not None:
                job.cancel()
        super().done(result)
