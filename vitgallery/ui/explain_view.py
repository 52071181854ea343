"""Why a result matched its query, as the preview shows it: both photos with a heat layer over the
patches most alike across the pair (or, as a toggle, each photo's own CLS attention), a legend, an
opacity slider, and lines between the keypoints that one geometric map carries across.

The pair is worked out by `workers.explain_work` on a worker thread, which hands over QImages; this
view makes the pixmaps and only blends and draws.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPen, QPixmap
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSizePolicy, QSlider, QVBoxLayout, QWidget

from vitgallery.core.explain_render import MAX_LINES
from vitgallery.ui.workers import ExplainOutcome, HeatPicture

DEFAULT_OPACITY = 0.55  # the CLI's picture uses the same: the photo still reads under the colours
PAIR_GAP = 24  # pixels between the photos, where the keypoint lines cross
LINE_COLOURS = (QColor(0, 220, 255), QColor(255, 255, 255), QColor(120, 255, 120), QColor(255, 120, 220))


class PairCanvas(QWidget):
    """The two photos side by side, fitted to the widget, each with its heat layer and the lines."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(320, 200)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._photos: tuple[QPixmap, QPixmap] | None = None
        self._layers: tuple[QPixmap | None, QPixmap | None] = (None, None)
        self._points: tuple[list[tuple[float, float]], list[tuple[float, float]]] = ([], [])
        self._opacity = DEFAULT_OPACITY

    def sizeHint(self) -> QSize:
        return QSize(900, 480)

    def set_pair(self, query: QPixmap, result: QPixmap, points: tuple[list, list]) -> None:
        self._photos = (query, result)
        self._points = points
        self.update()

    def set_layers(self, query: QPixmap | None, result: QPixmap | None) -> None:
        self._layers = (query, result)
        self.update()

    def set_opacity(self, opacity: float) -> None:
        self._opacity = opacity
        self.update()

    def clear(self) -> None:
        self._photos = None
        self._layers = (None, None)
        self._points = ([], [])
        self.update()

    def photo_rects(self) -> tuple[QRectF, QRectF] | None:
        """Where each photo is drawn: both as tall as fits, side by side, centred."""
        if self._photos is None:
            return None
        query, result = self._photos
        width, height = self.width() - PAIR_GAP, self.height()
        aspects = [max(p.width(), 1) / max(p.height(), 1) for p in (query, result)]
        drawn_height = min(height, width / sum(aspects))
        widths = [a * drawn_height for a in aspects]
        left = (self.width() - sum(widths) - PAIR_GAP) / 2
        top = (height - drawn_height) / 2
        first = QRectF(left, top, widths[0], drawn_height)
        return first, QRectF(first.right() + PAIR_GAP, top, widths[1], drawn_height)

    def drawn_lines(self) -> list[tuple[QPointF, QPointF]]:
        """The keypoint lines as drawn: an even spread of at most MAX_LINES (more hide the photos)."""
        rects = self.photo_rects()
        query_points, result_points = self._points
        if rects is None or not query_points:
            return []
        count = min(MAX_LINES, len(query_points))
        step = (len(query_points) - 1) / max(count - 1, 1)
        chosen = sorted({round(i * step) for i in range(count)})
        assert self._photos is not None
        ends = []
        for points, rect, photo in zip((query_points, result_points), rects, self._photos):
            sx, sy = rect.width() / max(photo.width(), 1), rect.height() / max(photo.height(), 1)
            ends.append([QPointF(rect.left() + points[i][0] * sx, rect.top() + points[i][1] * sy) for i in chosen])
        return list(zip(*ends))

    def paintEvent(self, event: QPaintEvent) -> None:
        rects = self.photo_rects()
        if rects is None or self._photos is None:
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        for rect, photo, layer in zip(rects, self._photos, self._layers):
            painter.setOpacity(1.0)
            painter.drawPixmap(rect, photo, QRectF(photo.rect()))
            if layer is not None:
                painter.setOpacity(self._opacity)
                painter.drawPixmap(rect, layer, QRectF(layer.rect()))
        painter.setOpacity(1.0)
        for number, (start, end) in enumerate(self.drawn_lines()):
            painter.setPen(QPen(LINE_COLOURS[number % len(LINE_COLOURS)], 1))
            painter.drawLine(start, end)
            painter.drawEllipse(start, 2.5, 2.5)
            painter.drawEllipse(end, 2.5, 2.5)
        painter.end()


class ExplainView(QWidget):
    """The explanation of one pair, with its legend and controls; `show_outcome` fills it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._outcome: ExplainOutcome | None = None
        self._pixmaps: dict[str, tuple[QPixmap | None, QPixmap | None]] = {}

        self.canvas = PairCanvas()
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(round(DEFAULT_OPACITY * 100))
        self.opacity_slider.setMaximumWidth(180)
        self.opacity_slider.setToolTip("How strongly the colours cover the photos")
        self.opacity_slider.valueChanged.connect(lambda value: self.canvas.set_opacity(value / 100))
        self.attention_box = QCheckBox("The model's own attention")
        self.attention_box.setToolTip(
            "Colour each photo by where the model looks in it (the CLS token's attention over the patches, "
            "last block, averaged over heads) instead of by the patches the two photos share"
        )
        self.attention_box.toggled.connect(self._show_layers)
        for control in (self.opacity_slider, self.attention_box):
            control.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # arrows and W stay with the preview

        self.legend_bar = QLabel()
        self.legend_bar.setFixedSize(160, 12)
        self.legend_low = QLabel()
        self.legend_high = QLabel()
        self.legend_text = QLabel()
        self.legend_text.setWordWrap(True)

        legend = QHBoxLayout()
        legend.addWidget(self.legend_low)
        legend.addWidget(self.legend_bar)
        legend.addWidget(self.legend_high)
        legend.addWidget(self.legend_text, 1)
        controls = QHBoxLayout()
        controls.addWidget(self.attention_box)
        controls.addStretch(1)
        controls.addWidget(QLabel("Opacity"))
        controls.addWidget(self.opacity_slider)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas, 1)
        layout.addLayout(legend)
        layout.addWidget(self.status)
        layout.addLayout(controls)

    @property
    def outcome(self) -> ExplainOutcome | None:
        return self._outcome

    def opacity(self) -> float:
        return self.opacity_slider.value() / 100

    def showing_attention(self) -> bool:
        return self.attention_box.isChecked() and self.attention_box.isEnabled()

    def line_count(self) -> int:
        return len(self.canvas.drawn_lines())

    def show_pending(self, text: str) -> None:
        self._outcome = None
        self._pixmaps = {}
        self.canvas.clear()
        self.legend_bar.clear()
        for label in (self.legend_low, self.legend_high, self.legend_text):
            label.clear()
        self.status.setText(text)

    def show_outcome(self, outcome: ExplainOutcome) -> None:
        """Make the pixmaps (here, on the GUI thread) and draw the pair."""
        self._outcome = outcome
        query, result = outcome.query, outcome.result
        self._pixmaps = {
            "similarity": (QPixmap.fromImage(query.similarity), QPixmap.fromImage(result.similarity)),
            "attention": (_pixmap_or_none(query), _pixmap_or_none(result)),
        }
        self.attention_box.setEnabled(query.attention is not None and result.attention is not None)
        self.canvas.set_pair(
            QPixmap.fromImage(query.photo), QPixmap.fromImage(result.photo), (outcome.query_points, outcome.result_points)
        )
        self.legend_bar.setPixmap(
            QPixmap.fromImage(outcome.colour_bar).scaled(
                self.legend_bar.size(), Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.SmoothTransformation
            )
        )
        if outcome.query_points:
            verdict = f"{outcome.inliers} keypoints match through one geometric map (the lines)"
        elif outcome.request.verified_without_keypoints:
            verdict = ("too few keypoints to verify this pair alone: the search's ✓ is the duplicates check's, "
                       "on what they align or on the shapes and shades")
        else:
            # Not "it looks alike": the grid may have faded it as unlike; the heat says which parts are alike.
            verdict = "the keypoints do not verify this pair: not the same scene (the heat shows the parts most alike)"
        # named: after Left or Right in the preview, which result this is was not said; with the search's own
        # words and score, which the vector similarity alone does not give for a verified copy
        ranked = f"in the search, {outcome.request.ranked} · " if outcome.request.ranked else ""
        self.status.setText(f"{outcome.request.result.name}: {ranked}vector similarity {outcome.cosine:.2f} (the "
                            f"search's measure before its keypoint check) · {verdict}")
        self._show_layers()

    def _show_layers(self) -> None:
        outcome = self._outcome
        if outcome is None:
            return
        if self.showing_attention():
            self.canvas.set_layers(*self._pixmaps["attention"])
            self.legend_low.setText("0")
            self.legend_high.setText(f"{outcome.query.attention_peak:.1%} / {outcome.result.attention_peak:.1%}")
            self.legend_text.setText("each photo's share of the CLS token's attention (query / result)")
        else:
            self.canvas.set_layers(*self._pixmaps["similarity"])
            low, high = outcome.similarity_range
            self.legend_low.setText(f"{low:.2f}")
            self.legend_high.setText(f"{high:.2f}")
            self.legend_text.setText(
                "each patch's cosine to the most alike patch of the other photo, beyond what the pair shares"
            )


def _pixmap_or_none(picture: HeatPicture) -> QPixmap | None:
    return QPixmap.fromImage(picture.attention) if picture.attention is not None else None
