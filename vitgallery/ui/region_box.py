"""Drawing a box on the query photo, so that a search uses only that part of it.

`RegionSelector` is the query panel's picture: drag on the photo to draw a box (the part outside it
is dimmed), drag again to redraw it. The box is kept as shares of the photo's width and height
(`workers.QueryBox`): the panel shows a scaled copy, and the search turns the shares into pixels of
the full-size photo on its worker thread.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QWidget

from vitgallery.ui.preview import ScaledImageLabel
from vitgallery.ui.workers import QueryBox

MIN_BOX_SHARE = 0.03  # a drag shorter than this share of the photo's side is a click, not a box
OUTSIDE_SHADE = QColor(0, 0, 0, 140)


class RegionSelector(ScaledImageLabel):
    """The query photo, on which a box can be drawn; `box_drawn` says when the user has drawn one."""

    box_drawn = Signal(object)  # QueryBox

    def __init__(self, placeholder: str, parent: QWidget | None = None) -> None:
        super().__init__(placeholder, parent)
        self._box: QueryBox | None = None
        self._drawing_enabled = False
        self._drag_start: QPointF | None = None
        self._drag_now: QPointF | None = None

    def set_drawing_enabled(self, on: bool) -> None:
        """Drawing is offered only while a query photo is shown."""
        self._drawing_enabled = on
        self._drag_start = self._drag_now = None
        self.setCursor(Qt.CursorShape.CrossCursor if on else Qt.CursorShape.ArrowCursor)
        self.update()

    def box(self) -> QueryBox | None:
        return self._box

    def set_box(self, box: QueryBox | None) -> None:
        self._box = box
        self.update()

    def photo_rect(self) -> QRectF | None:
        """Where the photo is drawn in the label (centred, scaled to fit)."""
        pixmap = self.pixmap()
        if pixmap is None or pixmap.isNull():
            return None
        size = pixmap.deviceIndependentSize()
        area = QRectF(self.contentsRect())
        return QRectF(
            area.left() + (area.width() - size.width()) / 2,
            area.top() + (area.height() - size.height()) / 2,
            size.width(),
            size.height(),
        )

    def box_rect(self, box: QueryBox) -> QRectF | None:
        """Where `box` is drawn in the label."""
        photo = self.photo_rect()
        if photo is None:
            return None
        return QRectF(
            photo.left() + box.left * photo.width(),
            photo.top() + box.top * photo.height(),
            box.width * photo.width(),
            box.height * photo.height(),
        )

    # -- drawing ------------------------------------------------------------------------------------

    def mousePressEvent(self, event: QMouseEvent) -> None:
        photo = self.photo_rect()
        if (
            self._drawing_enabled
            and photo is not None
            and event.button() == Qt.MouseButton.LeftButton
            and photo.contains(event.position())
        ):
            self._drag_start = self._drag_now = event.position()
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._drag_start is not None:
            self._drag_now = event.position()
            self.update()
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._drag_start is None or event.button() != Qt.MouseButton.LeftButton:
            super().mouseReleaseEvent(event)
            return
        start, self._drag_start, self._drag_now = self._drag_start, None, None
        box = self._box_between(start, event.position())
        self.update()
        if box is not None:
            self._box = box
            self.box_drawn.emit(box)
        event.accept()

    def _box_between(self, a: QPointF, b: QPointF) -> QueryBox | None:
        """The box between two points of the label, clipped to the photo, as shares of it (None: too small)."""
        photo = self.photo_rect()
        if photo is None:
            return None

        def share_x(x: float) -> float:
            return min(max((x - photo.left()) / photo.width(), 0.0), 1.0)

        def share_y(y: float) -> float:
            return min(max((y - photo.top()) / photo.height(), 0.0), 1.0)

        left, right = sorted((share_x(a.x()), share_x(b.x())))
        top, bottom = sorted((share_y(a.y()), share_y(b.y())))
        if right - left < MIN_BOX_SHARE or bottom - top < MIN_BOX_SHARE:
            return None
        return QueryBox(left, top, right - left, bottom - top)

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        photo = self.photo_rect()
        if photo is None:
            return
        if self._drag_start is not None and self._drag_now is not None:
            shown = QRectF(self._drag_start, self._drag_now).normalized().intersected(photo)
        elif self._box is not None:
            shown = self.box_rect(self._box)
        else:
            return
        if shown is None or shown.isEmpty():
            return
        painter = QPainter(self)
        # The photo outside the box is dimmed: what the search leaves out.
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(OUTSIDE_SHADE)
        for part in (
            QRectF(photo.left(), photo.top(), photo.width(), shown.top() - photo.top()),
            QRectF(photo.left(), shown.bottom(), photo.width(), photo.bottom() - shown.bottom()),
            QRectF(photo.left(), shown.top(), shown.left() - photo.left(), shown.height()),
            QRectF(shown.right(), shown.top(), photo.right() - shown.right(), shown.height()),
        ):
            if part.width() > 0 and part.height() > 0:
                painter.drawRect(part)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(QPen(QColor(255, 255, 255), 2, Qt.PenStyle.DashLine))
        painter.drawRect(shown)
        painter.end()
