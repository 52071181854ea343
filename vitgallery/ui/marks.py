"""Marking results "more like this" / "not this" to refine a search.

`MarkingTileDelegate` paints a result tile as usual, plus two buttons on the tile under the mouse
(+ more like this, − not this) and the mark a tile has. A click on a button sends `mark_clicked`;
the search page keeps the marks (per query) and searches again with them (Library.search's `like`
and `unlike`: the query moves towards the liked photos and away from the others, which leave the
results).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QAbstractItemModel, QEvent, QObject, QRect, Qt, Signal
from PySide6.QtGui import QColor, QFont, QMouseEvent, QPainter, QPen
from PySide6.QtWidgets import QStyle, QStyleOptionViewItem

from vitgallery.ui.results_model import TILE_MARGIN, AnyIndex, PathRole, PhotoTileDelegate, ScoreRole

BUTTON_SIZE = 26
BUTTON_GAP = 4


class Mark(enum.Enum):
    LIKE = "like"  # more like this
    UNLIKE = "unlike"  # not this

    @property
    def symbol(self) -> str:
        return "+" if self is Mark.LIKE else "−"

    @property
    def label(self) -> str:
        return "More like this" if self is Mark.LIKE else "Not this"

    @property
    def colour(self) -> QColor:
        # Dark enough for white text (above 4.5:1) on any photo.
        return QColor(16, 110, 48, 230) if self is Mark.LIKE else QColor(170, 30, 30, 230)


class MarkingTileDelegate(PhotoTileDelegate):
    """A result tile with "more like this" / "not this" buttons on hover and its mark; `mark_of`
    says what a photo is marked (None: nothing)."""

    mark_clicked = Signal(object, object)  # Path, Mark

    def __init__(
        self, thumbnail_size: int, mark_of: Callable[[Path], Mark | None], parent: QObject | None = None
    ) -> None:
        super().__init__(thumbnail_size, parent)
        self._mark_of = mark_of

    def button_rects(self, tile: QRect) -> dict[Mark, QRect]:
        """The two buttons of a tile drawn in `tile`: the bottom left corner of its thumbnail."""
        bottom = tile.y() + TILE_MARGIN + self.thumbnail_size - BUTTON_GAP
        left = tile.x() + TILE_MARGIN + BUTTON_GAP
        like = QRect(left, bottom - BUTTON_SIZE, BUTTON_SIZE, BUTTON_SIZE)
        return {Mark.LIKE: like, Mark.UNLIKE: like.translated(BUTTON_SIZE + BUTTON_GAP, 0)}

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex) -> None:
        super().paint(painter, option, index)
        if index.data(ScoreRole) is None:
            return  # a photo of the folder, not a result
        mark = self._mark_of(index.data(PathRole))
        hovered = bool(option.state & QStyle.StateFlag.State_MouseOver)
        if mark is None and not hovered:
            return
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        font = QFont(option.font)
        font.setBold(True)
        font.setPixelSize(BUTTON_SIZE - 8)
        painter.setFont(font)
        for kind, rect in self.button_rects(option.rect).items():
            if not hovered and kind is not mark:
                continue
            on = kind is mark
            painter.setPen(QPen(QColor("white"), 2) if on else Qt.PenStyle.NoPen)
            painter.setBrush(kind.colour if on else QColor(0, 0, 0, 150))
            painter.drawEllipse(rect.adjusted(1, 1, -1, -1))
            painter.setPen(QColor("white"))
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, kind.symbol)
        painter.restore()

    def editorEvent(
        self, event: QEvent, model: QAbstractItemModel, option: QStyleOptionViewItem, index: AnyIndex
    ) -> bool:
        if (
            event.type() in (QEvent.Type.MouseButtonPress, QEvent.Type.MouseButtonRelease)
            and isinstance(event, QMouseEvent)
            and event.button() == Qt.MouseButton.LeftButton
            and index.data(ScoreRole) is not None
        ):
            point = event.position().toPoint()
            for kind, rect in self.button_rects(option.rect).items():
                if rect.contains(point):
                    # The press is taken too, so a click on a button neither selects nor starts a drag.
                    if event.type() == QEvent.Type.MouseButtonRelease:
                        self.mark_clicked.emit(index.data(PathRole), kind)
                    return True
        return super().editorEvent(event, model, option, index)

