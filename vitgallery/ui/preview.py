"""A large preview of a result beside the query; Left/Right step through the results."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QModelIndex, QSize, Qt
from PySide6.QtGui import QImage, QKeyEvent, QPixmap, QResizeEvent
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from vitgallery.ui.results_model import PathRole, PhotoListModel, RankRole, ScoreRole
from vitgallery.ui.thumbnails import ThumbnailLoader

PREVIEW_DECODE_SIZE = 1600


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


class PreviewDialog(QDialog):
    def __init__(
        self,
        query_image: QImage,
        query_label: str,
        model: PhotoListModel,
        row: int,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preview")
        self.resize(1100, 640)
        self._model = model
        self._row = row
        self._loader = ThumbnailLoader(
            size=PREVIEW_DECODE_SIZE, cache_dir=None, memory_items=8, max_threads=2, parent=self
        )
        self._loader.thumbnail_ready.connect(self._on_image_ready)

        self.query_view = ScaledImageLabel("(no preview for this query)")
        if not query_image.isNull():
            self.query_view.set_image(QPixmap.fromImage(query_image))
        self.result_view = ScaledImageLabel("loading…")
        self.query_caption = QLabel(f"Query: {query_label}")
        self.result_caption = QLabel()
        for caption in (self.query_caption, self.result_caption):
            caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
            caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            caption.setWordWrap(True)

        layout = QHBoxLayout(self)
        for view, caption in ((self.query_view, self.query_caption), (self.result_view, self.result_caption)):
            column = QVBoxLayout()
            column.addWidget(view, 1)
            column.addWidget(caption)
            layout.addLayout(column, 1)
        self._show_row(row)

    @property
    def row(self) -> int:
        return self._row

    def current_path(self) -> Path:
        return Path(self._index().data(PathRole))

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Right and self._row + 1 < self._model.rowCount():
            self._show_row(self._row + 1)
        elif event.key() == Qt.Key.Key_Left and self._row > 0:
            self._show_row(self._row - 1)
        else:
            super().keyPressEvent(event)

    def _index(self) -> QModelIndex:
        return self._model.index(self._row)

    def _show_row(self, row: int) -> None:
        self._row = row
        index = self._index()
        path = Path(index.data(PathRole))
        score = index.data(ScoreRole)
        detail = f"#{index.data(RankRole)}, similarity {score:.3f}" if score is not None else ""
        self.result_caption.setText(f"{path}\n{detail}")
        self.setWindowTitle(f"Preview: {path.name}")
        self._loader.drop_pending()
        pixmap = self._loader.pixmap(path)
        if pixmap is not None:
            self.result_view.set_image(pixmap)
        else:
            self.result_view.set_image(QPixmap())
            self.result_view.setText("loading…")

    def _on_image_ready(self, path: str) -> None:
        if path != str(self.current_path()):
            return
        pixmap = self._loader.pixmap(path)
        if pixmap is not None:
            self.result_view.set_image(pixmap)
        else:
            self.result_view.setText("cannot decode this file")

    def done(self, result: int) -> None:
        self._loader.shutdown()
        super().done(result)
