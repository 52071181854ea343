"""Photo tiles: the list model (folder grid and ranked results), the delegate that paints a tile, the grid view."""

from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import (
    QAbstractListModel,
    QByteArray,
    QMimeData,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QPoint,
    QRect,
    QSize,
    Qt,
    QUrl,
)
from PySide6.QtGui import QColor, QFont, QPainter, QPalette, QResizeEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QListView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from vitgallery.core.keypoints import VERIFIED_INLIERS
from vitgallery.ui.thumbnails import ThumbnailLoader

log = logging.getLogger(__name__)

PathRole = Qt.ItemDataRole.UserRole + 1
ScoreRole = Qt.ItemDataRole.UserRole + 2
ThumbnailRole = Qt.ItemDataRole.UserRole + 3
RankRole = Qt.ItemDataRole.UserRole + 4
ThumbnailFailedRole = Qt.ItemDataRole.UserRole + 5
InliersRole = Qt.ItemDataRole.UserRole + 6

TILE_LABEL_HEIGHT = 20
TILE_MARGIN = 6


@dataclass(frozen=True)
class PhotoTile:
    path: Path
    score: float | None = None  # what the ranking used
    cosine: float | None = None  # the vectors' similarity alone
    inliers: int | None = None  # keypoints that one geometric map carries onto the query; None: not checked

    @property
    def verified(self) -> bool:
        return self.inliers is not None and self.inliers >= VERIFIED_INLIERS

    def explanation(self) -> str:
        """Why it ranked where it did, in words."""
        if self.score is None:
            return ""
        parts = [f"similarity {self.score:.3f}"]
        if self.cosine is not None and self.verified:
            parts.append(f"looks {self.cosine:.2f} alike, {self.inliers} matching points: the same scene")
        elif self.cosine is not None and self.inliers is not None:
            parts.append(f"{self.inliers} matching points: not the same scene")
        return ", ".join(parts)


AnyIndex = QModelIndex | QPersistentModelIndex


class PhotoListModel(QAbstractListModel):
    """Photos as tiles. With scores (ranked results), tiles below `min_score` are hidden.

    Scores arrive sorted best first, so the threshold only ever cuts the tail: the model inserts
    and removes rows at the end instead of resetting, and the view keeps its selection.
    """

    def __init__(self, thumbnails: ThumbnailLoader | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._all: list[PhotoTile] = []
        self._visible = 0
        self._min_score = 0.0
        self._row_of: dict[str, int] = {}
        self._thumbnails = thumbnails
        if thumbnails is not None:
            thumbnails.thumbnail_ready.connect(self._on_thumbnail_ready)

    # Qt interface -----------------------------------------------------------------------------

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else self._visible

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or index.row() >= self._visible:
            return None
        tile = self._all[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return tile.path.name
        if role == PathRole:
            return str(tile.path)
        if role == ScoreRole:
            return tile.score
        if role == InliersRole:
            return tile.inliers
        if role == RankRole:
            return index.row() + 1
        if role in (ThumbnailRole, Qt.ItemDataRole.DecorationRole):
            return self._thumbnails.pixmap(tile.path) if self._thumbnails is not None else None
        if role == ThumbnailFailedRole:
            return self._thumbnails.has_failed(tile.path) if self._thumbnails is not None else False
        if role == Qt.ItemDataRole.ToolTipRole:
            if tile.score is None:
                return str(tile.path)
            return f"{tile.path}\nrank {index.row() + 1}, {tile.explanation()}"
        return None

    def roleNames(self) -> dict[int, QByteArray]:
        names = super().roleNames()
        names[PathRole] = QByteArray(b"path")
        names[ScoreRole] = QByteArray(b"score")
        names[ThumbnailRole] = QByteArray(b"thumbnail")
        names[RankRole] = QByteArray(b"rank")
        names[ThumbnailFailedRole] = QByteArray(b"thumbnailFailed")
        names[InliersRole] = QByteArray(b"inliers")
        return names

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsDragEnabled

    def mimeTypes(self) -> list[str]:
        return ["text/uri-list"]

    def mimeData(self, indexes: list[QModelIndex]) -> QMimeData:
        """Tiles leave the app as files, so a file manager, an editor or our own drop zone can take them."""
        mime = QMimeData()
        paths = [self._all[index.row()].path for index in indexes if index.isValid()]
        mime.setUrls([QUrl.fromLocalFile(str(path)) for path in paths])
        mime.setText("\n".join(str(path) for path in paths))
        return mime

    def supportedDragActions(self) -> Qt.DropAction:
        return Qt.DropAction.CopyAction

    # Our interface ----------------------------------------------------------------------------

    @property
    def min_score(self) -> float:
        return self._min_score

    def tiles(self) -> list[PhotoTile]:
        """The tiles shown now (above the threshold)."""
        return self._all[: self._visible]

    def total_count(self) -> int:
        return len(self._all)

    def path_at(self, row: int) -> Path:
        return self._all[row].path

    def row_of(self, path: Path) -> int | None:
        row = self._row_of.get(str(path))
        return row if row is not None and row < self._visible else None

    def set_tiles(self, tiles: list[PhotoTile]) -> None:
        self.beginResetModel()
        self._all = list(tiles)
        self._row_of = {str(tile.path): row for row, tile in enumerate(self._all)}
        self._visible = self._count_above(self._min_score)
        self.endResetModel()

    def append_paths(self, paths: list[Path]) -> None:
        """Add photos found by a folder listing; ones already present are skipped."""
        new = [path for path in paths if str(path) not in self._row_of]
        if not new:
            return
        first = len(self._all)
        self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
        for offset, path in enumerate(new):
            self._all.append(PhotoTile(path))
            self._row_of[str(path)] = first + offset
        self._visible = len(self._all)
        self.endInsertRows()

    def clear(self) -> None:
        self.set_tiles([])

    def set_min_score(self, min_score: float) -> None:
        self._min_score = min_score
        visible = self._count_above(min_score)
        if visible < self._visible:
            self.beginRemoveRows(QModelIndex(), visible, self._visible - 1)
            self._visible = visible
            self.endRemoveRows()
        elif visible > self._visible:
            self.beginInsertRows(QModelIndex(), self._visible, visible - 1)
            self._visible = visible
            self.endInsertRows()

    def _count_above(self, min_score: float) -> int:
        if not self._all or self._all[0].score is None:
            return len(self._all)
        # Scores are descending, so their negatives ascend and bisect applies.
        return bisect.bisect_right(self._all, -min_score, key=lambda tile: -(tile.score or 0.0))

    def _on_thumbnail_ready(self, path: str) -> None:
        row = self._row_of.get(path)
        if row is not None and row < self._visible:
            index = self.index(row)
            self.dataChanged.emit(
                index, index, [ThumbnailRole, Qt.ItemDataRole.DecorationRole, ThumbnailFailedRole]
            )


class PhotoTileDelegate(QStyledItemDelegate):
    """Paints a tile: the thumbnail centred in a square, the file name, and for results a score badge."""

    def __init__(self, thumbnail_size: int, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thumbnail_size = thumbnail_size

    def set_thumbnail_size(self, size: int) -> None:
        self._thumbnail_size = size

    def tile_size(self) -> QSize:
        return QSize(
            self._thumbnail_size + 2 * TILE_MARGIN, self._thumbnail_size + TILE_LABEL_HEIGHT + 2 * TILE_MARGIN
        )

    def sizeHint(self, option: QStyleOptionViewItem, index: AnyIndex) -> QSize:
        return self.tile_size()

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex) -> None:
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = option.palette
        rect = option.rect
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        if selected:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(palette.color(QPalette.ColorRole.Highlight))
            painter.drawRoundedRect(rect.adjusted(1, 1, -1, -1), 6, 6)
        elif option.state & QStyle.StateFlag.State_MouseOver:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(palette.color(QPalette.ColorRole.Midlight))
            painter.drawRoundedRect(rect.adjusted(1, 1, -1, -1), 6, 6)

        square = QRect(
            rect.x() + TILE_MARGIN, rect.y() + TILE_MARGIN, self._thumbnail_size, self._thumbnail_size
        )
        pixmap = index.data(ThumbnailRole)
        if pixmap is not None and not pixmap.isNull():
            scaled = pixmap.size().scaled(square.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRect(0, 0, scaled.width(), scaled.height())
            target.moveCenter(square.center())
            painter.drawPixmap(target, pixmap)
        else:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(palette.color(QPalette.ColorRole.AlternateBase))
            painter.drawRoundedRect(square.adjusted(8, 8, -8, -8), 4, 4)
            if index.data(ThumbnailFailedRole):
                painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
                painter.drawText(square, Qt.AlignmentFlag.AlignCenter, "cannot\ndecode")

        text_role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        painter.setPen(palette.color(text_role))
        label_rect = QRect(
            rect.x() + TILE_MARGIN, square.bottom() + 2, self._thumbnail_size, TILE_LABEL_HEIGHT
        )
        name = option.fontMetrics.elidedText(
            str(index.data(Qt.ItemDataRole.DisplayRole)), Qt.TextElideMode.ElideMiddle, label_rect.width()
        )
        painter.drawText(label_rect, Qt.AlignmentFlag.AlignCenter, name)

        score = index.data(ScoreRole)
        if score is not None:
            inliers = index.data(InliersRole)
            mark = " ✓" if inliers is not None and inliers >= VERIFIED_INLIERS else ""  # the same scene
            self._paint_badge(painter, square, f"{index.data(RankRole)} · {score:.2f}{mark}", option)
        painter.restore()

    @staticmethod
    def _paint_badge(painter: QPainter, square: QRect, text: str, option: QStyleOptionViewItem) -> None:
        font = QFont(option.font)
        font.setBold(True)
        painter.setFont(font)
        metrics = painter.fontMetrics()
        badge = QRect(0, 0, metrics.horizontalAdvance(text) + 12, metrics.height() + 4)
        badge.moveTopRight(square.topRight() + QPoint(-3, 3))
        painter.setPen(Qt.PenStyle.NoPen)
        # A dark translucent badge reads on light and dark photos alike.
        painter.setBrush(QColor(0, 0, 0, 170))
        painter.drawRoundedRect(badge, badge.height() / 2, badge.height() / 2)
        painter.setPen(QColor("white"))
        painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, text)


class PhotoGridView(QListView):
    """A grid of tiles whose columns share out the whole width, so no ragged gap is left on the right."""

    def __init__(
        self, model: PhotoListModel, delegate: PhotoTileDelegate, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._delegate = delegate
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setUniformItemSizes(True)
        # Batched layout keeps a folder of many thousand photos from stalling the first paint.
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(500)
        self.setWordWrap(False)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setDefaultDropAction(Qt.DropAction.CopyAction)
        self.setMouseTracking(True)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.verticalScrollBar().setSingleStep(24)
        self.setItemDelegate(delegate)
        self.setModel(model)
        self.fit_columns()

    def fit_columns(self) -> None:
        tile = self._delegate.tile_size()
        width = max(tile.width(), self.viewport().width() - 1)
        columns = max(1, width // tile.width())
        self.setGridSize(QSize(width // columns, tile.height()))

    def resizeEvent(self, event: QResizeEvent) -> None:
        self.fit_columns()
        super().resizeEvent(event)
