"""A large preview of a photo (beside the query, for a result) with zoom, 1:1 and what the file is.

Left/Right step through the grid's photos; +/- or Ctrl+wheel zoom, 1 shows the file's own pixels,
0 fits the photo to the window. For a result, W shows why it matched (explain_view.ExplainView). The photo first shows decoded to fit a large screen; the full
resolution is decoded (off the GUI thread) only when the zoom needs it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QImage, QKeyEvent, QPainter, QPixmap, QResizeEvent, QWheelEvent
from PySide6.QtWidgets import (
    QDialog,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsView,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from vitgallery.ui.explain_view import ExplainView
from vitgallery.ui.results_model import PhotoListModel, RankRole
from vitgallery.ui.thumbnails import decode_scaled
from vitgallery.ui.widgets import resize_within_screen
from vitgallery.ui.workers import (
    ExplainOutcome,
    ExplainRequest,
    Job,
    JobRunner,
    ModelLoading,
    WorkerError,
    explain_work,
)

PREVIEW_DECODE_SIZE = 1600  # the first decode: sharp on a large screen, quick to step through
FULL_DECODE_LIMIT = 16384  # the 1:1 decode: every pixel of any photo the core accepts, in practice
ZOOM_STEP = 1.25
MAX_ZOOM = 16.0
SHRUNK_COPY_FROM = 1.5  # a photo shown this many times smaller than its decode is drawn from a shrunk copy


class ScaledImageLabel(QLabel):
    """Shows a pixmap scaled to fit, rescaled as the label resizes."""

    def __init__(self, placeholder: str, parent: QWidget | None = None) -> None:
        super().__init__(placeholder, parent)
        self._pixmap = QPixmap()
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(200, 200)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_image(self, pixmap: QPixmap) -> None:
        self._pixmap = pixmap
        if pixmap.isNull():
            self.clear()
        else:
            self._rescale()

    def has_image(self) -> bool:
        return not self._pixmap.isNull()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._rescale()

    def sizeHint(self) -> QSize:
        return QSize(480, 480)

    def _rescale(self) -> None:
        if self._pixmap.isNull():
            return
        self.setPixmap(
            self._pixmap.scaled(
                self.size(), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
            )
        )


class ZoomView(QGraphicsView):
    """A photo fitted to the view or zoomed; `zoom` is screen pixels per pixel of the file."""

    zoom_changed = Signal(float)
    full_resolution_needed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._scene = QGraphicsScene(self)
        self._item = QGraphicsPixmapItem()
        self._item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self._scene.addItem(self._item)
        self.setScene(self._scene)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setFrameShape(QGraphicsView.Shape.NoFrame)
        self.setMinimumSize(200, 200)
        self._file_width = 0  # pixels of the file; the pixmap may be a smaller decode of it
        self._decoded = QPixmap()  # the decode shown; the item draws a smoothly shrunk copy of it where smaller
        self._fitted = True

    def set_photo(self, pixmap: QPixmap, file_width: int) -> None:
        """Show `pixmap`, a decode of a file `file_width` pixels wide, keeping the zoom unless fitted."""
        zoom = self.zoom
        self._decoded = pixmap
        self._file_width = max(file_width, pixmap.width(), 1)
        self._draw(pixmap)
        self._scene.setSceneRect(self._item.sceneBoundingRect())
        if self._fitted or pixmap.isNull():
            self.fit()
        else:
            self.set_zoom(zoom)

    def _draw(self, pixmap: QPixmap) -> None:
        self._item.setPixmap(pixmap)
        # The item is drawn at the file's size whatever the pixmap, so zoom means file pixels.
        self._item.setScale(self._file_width / max(pixmap.width(), 1))

    def _draw_for_zoom(self) -> None:
        """Where the photo is shown much smaller than its decode, the item draws a copy shrunk by averaging:
        drawn shrunk by the view, fine stripes and grain showed as moiré the file does not have (a
        compare made the untouched original look the worse copy)."""
        if self._decoded.isNull():
            return
        width = round(self._file_width * self.zoom * self.devicePixelRatioF())
        if width * SHRUNK_COPY_FROM < self._decoded.width():
            if self._item.pixmap().width() != width:
                self._draw(self._decoded.scaledToWidth(width, Qt.TransformationMode.SmoothTransformation))
        elif self._item.pixmap().cacheKey() != self._decoded.cacheKey():
            self._draw(self._decoded)

    def has_photo(self) -> bool:
        return not self._decoded.isNull()

    def is_full_resolution(self) -> bool:
        return self._decoded.width() >= self._file_width

    @property
    def zoom(self) -> float:
        return self.transform().m11()

    @property
    def fitted(self) -> bool:
        return self._fitted

    def fit(self) -> None:
        self._fitted = True
        if self.has_photo():
            self.fitInView(self._item, Qt.AspectRatioMode.KeepAspectRatio)
            if self.zoom > 1.0:  # a small photo is not blown up to fill the window
                self.set_zoom(1.0, fitted=True)
                return
            self._draw_for_zoom()
        self.zoom_changed.emit(self.zoom)

    def set_zoom(self, zoom: float, fitted: bool = False) -> None:
        zoom = max(min(zoom, MAX_ZOOM), 0.01)
        self.resetTransform()
        self.scale(zoom, zoom)
        self._fitted = fitted
        self._draw_for_zoom()
        if zoom * self._file_width > self._decoded.width() * 1.01 and self.has_photo() and not self.is_full_resolution():
            self.full_resolution_needed.emit()
        self.zoom_changed.emit(zoom)

    def actual_size(self) -> None:
        self.set_zoom(1.0)

    def zoom_by(self, factor: float) -> None:
        self.set_zoom(self.zoom * factor)

    def wheelEvent(self, event: QWheelEvent) -> None:
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.zoom_by(ZOOM_STEP if event.angleDelta().y() > 0 else 1 / ZOOM_STEP)
            return
        super().wheelEvent(event)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._fitted:
            self.fit()


@dataclass(frozen=True)
class PhotoDetails:
    """What the preview says about a file."""

    width: int | None
    height: int | None
    size: int | None
    date: float | None  # when it was taken, else when the file was last changed
    date_is_taken: bool
    camera: str | None
    jpeg_quality: int | None = None  # the quality it was last saved at (a JPEG's tables tell)

    def text(self) -> str:
        parts = []
        if self.width and self.height:
            parts.append(f"{self.width:,} × {self.height:,}")
        if self.size is not None:
            parts.append(f"{self.size / 1e6:.1f} MB" if self.size >= 100_000 else f"{self.size / 1e3:.0f} kB")
        if self.date is not None:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.date))
            parts.append(f"taken {when}" if self.date_is_taken else f"modified {when}")
        if self.camera:
            parts.append(self.camera)
        return " · ".join(parts)


def read_details(path: Path) -> PhotoDetails:
    """The file's size and dates and the photo's header (runs on a worker thread)."""
    from vitgallery.core.imageio import DecodeError, read_meta

    try:
        stat = path.stat()
    except OSError:
        return PhotoDetails(None, None, None, None, False, None)
    try:
        meta = read_meta(path)
    except DecodeError:
        return PhotoDetails(None, None, stat.st_size, stat.st_mtime, False, None)
    taken = meta.taken_at is not None
    return PhotoDetails(meta.width, meta.height, stat.st_size, meta.taken_at if taken else stat.st_mtime, taken,
                        meta.camera, meta.jpeg_quality)


@dataclass(frozen=True)
class DecodedPreview:
    path: Path
    image: QImage  # decoded off the GUI thread; the pixmap is made on it
    details: PhotoDetails


class PreviewDialog(QDialog):
    """The photo at `row` of a grid's model, with the query beside it when there is one, and why it
    matched when `explain_request` says how to ask (the request for a result's path)."""

    def __init__(
        self,
        model: PhotoListModel,
        row: int,
        runner: JobRunner,
        parent: QWidget | None = None,
        *,
        query_image: QImage | None = None,
        query_label: str = "",
        explain_request: Callable[[Path], ExplainRequest] | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preview")
        resize_within_screen(self, 1100, 680)
        self._model = model
        self._row = row
        self._path = model.path_at(row)  # the photo shown: its row moves when rows come and go
        # The photo's row is looked up once a change is done: the model is midway through it while it signals.
        self._follow_timer = QTimer(self, singleShot=True, interval=0)
        self._follow_timer.timeout.connect(self._follow_rows)
        for signal in (model.rowsInserted, model.rowsRemoved, model.modelReset, model.layoutChanged):
            signal.connect(self._rows_changed)
        self._runner = runner
        self._loading: Job | None = None
        self._shown: DecodedPreview | None = None
        self._explain_request = explain_request
        self._explaining: Job | None = None
        self._status_text = "loading…"
        self._left_list: str | None = None  # why the photo shown left its list: said whatever else the status says

        self.photo_view = ZoomView()
        self.photo_view.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # it would take the arrows that step photos
        self.photo_view.zoom_changed.connect(self._on_zoom_changed)
        self.photo_view.full_resolution_needed.connect(self._load_full_resolution)
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status = QLabel("loading…")
        self.zoom_label = QLabel()
        fit_button = QPushButton("Fit")
        fit_button.setToolTip("Fit the photo to the window (0)")
        fit_button.clicked.connect(self.photo_view.fit)
        actual_button = QPushButton("1:1")
        actual_button.setToolTip("The file's own pixels (1)")
        actual_button.clicked.connect(self.photo_view.actual_size)
        for button in (fit_button, actual_button):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # arrows and keys stay with the dialog

        controls = QHBoxLayout()
        controls.addWidget(self.status, 1)
        controls.addWidget(self.zoom_label)
        controls.addWidget(fit_button)
        controls.addWidget(actual_button)
        photo_column = QVBoxLayout()
        photo_column.addWidget(self.photo_view, 1)
        photo_column.addWidget(self.caption)
        photo_column.addLayout(controls)

        compare = QWidget()
        layout = QHBoxLayout(compare)
        layout.setContentsMargins(0, 0, 0, 0)
        self.query_view: ScaledImageLabel | None = None
        if query_image is not None:
            self.query_view = ScaledImageLabel("(no preview for this query)")
            if not query_image.isNull():
                self.query_view.set_image(QPixmap.fromImage(query_image))
            query_caption = QLabel(f"Query: {query_label}")
            query_caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
            query_caption.setWordWrap(True)
            query_column = QVBoxLayout()
            query_column.addWidget(self.query_view, 1)
            query_column.addWidget(query_caption)
            layout.addLayout(query_column, 2)
        layout.addLayout(photo_column, 3)

        self.explain_view = ExplainView()
        self.pages = QStackedWidget()
        self.pages.addWidget(compare)
        self.pages.addWidget(self.explain_view)
        self.explain_button = QPushButton("Why it matched")
        self.explain_button.setCheckable(True)
        self.explain_button.setToolTip(
            "Show which parts of the two photos are most alike, and the keypoints that match (W)"
        )
        self.explain_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.explain_button.toggled.connect(self._on_explain_toggled)
        self.explain_button.setVisible(explain_request is not None)
        outer = QVBoxLayout(self)
        outer.addWidget(self.pages, 1)
        if explain_request is not None:
            bar = QHBoxLayout()
            bar.addWidget(self.explain_button)
            bar.addStretch(1)
            outer.addLayout(bar)
        self._show_row(row)

    @property
    def row(self) -> int:
        return self._row

    def current_path(self) -> Path:
        return self._path

    def _rows_changed(self, *changed: object) -> None:
        self._follow_timer.start()

    def _follow_rows(self) -> None:
        """The list changed under the preview (a photo deleted, the results refreshed): it stays on its
        photo, and says so when that photo left the list."""
        row = self._model.row_of(self._path)
        # deleted or moved, or the list was left (Esc, another search): which, the disk says
        self._left_list = None if row is not None else (
            "no longer in the list it was opened from" if self._path.exists() else "no longer in the list: deleted or moved")
        if row is not None:
            self._row = row
        else:
            self._row = max(0, min(self._row, self._model.rowCount() - 1))  # the arrows go on from about here
        self._set_status(self._status_text)

    def _set_status(self, text: str) -> None:
        self._status_text = text
        self.status.setText(f"{self._left_list} · {text}" if self._left_list else text)

    def has_image(self) -> bool:
        return self.photo_view.has_photo()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key == Qt.Key.Key_Right and self._row + 1 < self._model.rowCount():
            self._show_row(self._row + 1)
        elif key == Qt.Key.Key_Left and self._row > 0:
            self._show_row(self._row - 1)
        elif key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.photo_view.zoom_by(1.25)
        elif key == Qt.Key.Key_Minus:
            self.photo_view.zoom_by(0.8)
        elif key == Qt.Key.Key_1:
            self.photo_view.actual_size()
        elif key == Qt.Key.Key_0:
            self.photo_view.fit()
        elif key == Qt.Key.Key_W and self._explain_request is not None:
            self.explain_button.toggle()
        elif key == Qt.Key.Key_Space:
            self.close()
        else:
            super().keyPressEvent(event)

    def _show_row(self, row: int) -> None:
        self._row = row
        tile = self._model.tile_at(row)
        self._path = tile.path
        self.setWindowTitle(f"Preview: {tile.path.name}")
        rank = self._model.index(row).data(RankRole)
        why = f"\n#{rank}: {tile.explanation()}" if tile.score is not None else ""
        self.caption.setText(f"{tile.path}{why}")
        self._left_list = None
        self._set_status("loading…")
        self._cancel_loading()
        self._shown = None
        self.photo_view.set_photo(QPixmap(), 0)
        self.photo_view.fit()
        self._load(tile.path, PREVIEW_DECODE_SIZE)
        if self.explaining():
            self._explain()

    # -- why it matched ----------------------------------------------------------------------------

    def explaining(self) -> bool:
        return self.explain_button.isChecked()

    def _on_explain_toggled(self, on: bool) -> None:
        self.pages.setCurrentWidget(self.explain_view if on else self.pages.widget(0))
        self.explain_button.setText("Back to the photo" if on else "Why it matched")
        if on:
            self._explain()
        else:
            self._cancel_explaining()

    def _explain(self) -> None:
        assert self._explain_request is not None
        self._cancel_explaining()
        request = self._explain_request(self.current_path())
        self.explain_view.show_pending(f"Working out why {request.result.name} matched…")
        self._explaining = self._runner.submit_library(
            explain_work(self._runner.session, request),
            lane="explain",
            name="explain",
            on_progress=self._on_explain_progress,
            on_finished=self._on_explained,
            on_failed=lambda error: self._on_explain_failed(request.result, error),
        )

    def _on_explain_progress(self, report: object) -> None:
        if isinstance(report, ModelLoading):
            self.explain_view.show_pending(f"Loading the model {report.name}…")

    def _on_explained(self, outcome: ExplainOutcome | None) -> None:
        if outcome is None or outcome.request.result != self.current_path() or not self.explaining():
            return  # cancelled, or a photo stepped past
        self._explaining = None
        self.explain_view.show_outcome(outcome)

    def _on_explain_failed(self, path: Path, error: WorkerError) -> None:
        if path != self.current_path():
            return
        self._explaining = None
        self.explain_view.show_pending(f"Cannot explain this match: {error.message}")

    def _cancel_explaining(self) -> None:
        if self._explaining is not None:
            self._explaining.cancel()
            self._explaining = None

    def _load(self, path: Path, size: int) -> None:
        def decode(progress, cancel: threading.Event) -> DecodedPreview:
            return DecodedPreview(path, decode_scaled(path, size), read_details(path))

        self._loading = self._runner.submit(
            decode,
            lane="preview",
            name="preview",
            on_finished=self._on_decoded,
            on_failed=lambda error: self._on_failed(path, error),
        )

    def _load_full_resolution(self) -> None:
        if self._shown is not None and self._loading is None:
            self._set_status("loading every pixel…")
            self._load(self._shown.path, FULL_DECODE_LIMIT)

    def _on_decoded(self, decoded: DecodedPreview) -> None:
        if decoded.path != self.current_path():
            return  # a photo stepped past
        self._loading = None
        self._shown = decoded
        self.photo_view.set_photo(QPixmap.fromImage(decoded.image), decoded.details.width or decoded.image.width())
        skipped = self._model.not_indexed_reason(decoded.path)
        self._set_status(decoded.details.text() + (f" · not indexed ({skipped}): what shows may not be the whole "
                                                   "photo, and searches do not find it" if skipped else ""))

    def _on_failed(self, path: Path, error: WorkerError) -> None:
        if path != self.current_path():
            return
        self._loading = None
        self._set_status(f"cannot show this file: {error.message}")

    def _on_zoom_changed(self, zoom: float) -> None:
        # fitted, the size it is shown at is said too ("fit" alone read as the button beside it)
        self.zoom_label.setText(f"{zoom * 100:.0f} %" + (" (fitted)" if self.photo_view.fitted else ""))

    def _cancel_loading(self) -> None:
        if self._loading is not None:
            self._loading.cancel()
            self._loading = None

    def done(self, result: int) -> None:
        self._cancel_loading()
        self._cancel_explaining()
        super().done(result)
