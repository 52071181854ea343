"""Photo tiles: the list model (folder grid and ranked results), the delegate that paints a tile, the grid view.

A tile's context menu is built from `TileAction`s that a page registers on its grid, so a new action
on photos (like, unlike, move...) is one entry.
"""

from __future__ import annotations

import bisect
import enum
import itertools
import logging
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

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
    QTimer,
    QUrl,
    Signal,
)
from PySide6.QtGui import (
    QColor,
    QContextMenuEvent,
    QFont,
    QFontMetrics,
    QKeyEvent,
    QPainter,
    QPaintEvent,
    QPalette,
    QPixmap,
    QResizeEvent,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QListView,
    QMenu,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from vitgallery.core.collector import CollectorPause
from vitgallery.core.keypoints import VERIFIED_INLIERS
from vitgallery.ui.thumbnails import ThumbnailLoader

log = logging.getLogger(__name__)

PathRole = Qt.ItemDataRole.UserRole + 1
ScoreRole = Qt.ItemDataRole.UserRole + 2
ThumbnailRole = Qt.ItemDataRole.UserRole + 3
RankRole = Qt.ItemDataRole.UserRole + 4
ThumbnailFailedRole = Qt.ItemDataRole.UserRole + 5
InliersRole = Qt.ItemDataRole.UserRole + 6
MatchRole = Qt.ItemDataRole.UserRole + 7
NotIndexedRole = Qt.ItemDataRole.UserRole + 8  # the library skipped the file (set_not_indexed)

TILE_LABEL_HEIGHT = 20
TILE_MARGIN = 6
WEAK_TILE_OPACITY = 0.45  # a result that does not look like the query is shown faded, not hidden
# Badges are dark and translucent so they read on light and dark photos; white text on them is
# above 6:1. The same photo's badge is green, so copies stand apart from look-alikes at a glance.
BADGE_COLOUR = QColor(0, 0, 0, 170)
SAME_PHOTO_BADGE_COLOUR = QColor(16, 110, 48, 215)
NOT_INDEXED_BADGE_COLOUR = QColor(170, 40, 30, 215)
BADGE_SMALLEST_POINTS = 6.5  # a badge's words in a type any smaller are not read


class Match(enum.Enum):
    """What a ranked result is to its query."""

    SAME = "same"  # verified (keypoints, or a smooth picture's grey levels): the same photo (a copy, an edit, a crop)
    SIMILAR = "similar"  # looks alike
    WEAK = "weak"  # among the closest, but not alike


class SortOrder(enum.Enum):
    RANK = "rank"  # best match first (results) or as listed (folder)
    NAME = "name"
    DATE = "date"  # newest first
    LIKENESS = "likeness"  # similar photos side by side (core/organise/arrange.py; the folder grid)

    @property
    def label(self) -> str:
        return {"rank": "Best match", "name": "Name", "date": "Date (newest first)", "likeness": "Likeness"}[
            self.value
        ]


@dataclass(frozen=True)
class PhotoTile:
    path: Path
    score: float | None = None  # what the ranking used
    cosine: float | None = None  # the vectors' similarity alone
    inliers: int | None = None  # keypoints that one geometric map carries onto the query; None: not checked
    match: Match | None = None  # None: a photo of the folder, not a result
    date: float | None = None  # the file's modification time
    # verified with too few keypoints, as the duplicates check groups it (SearchHit): on the share of the
    # aligned overlap that agrees, or, too smooth for keypoints, on grey levels that align
    agreement: float | None = None
    likeness: float | None = None

    @property
    def verified(self) -> bool:
        return self.match is Match.SAME

    def explanation(self) -> str:
        """Why it ranked where it did, in words."""
        if self.score is None:
            return ""
        if self.verified and self.likeness is not None:
            return (f"the same photo: too few details to match point by point, but its shapes and shades align "
                    f"with {self.likeness:.0%} correlation (score {self.score:.3f})")
        if self.verified and self.agreement is not None:
            return (f"the same photo: {self.inliers} matching points, and {self.agreement:.0%} of the overlap they "
                    f"align alike, as the Duplicates page groups it (score {self.score:.3f})")
        if self.verified:
            return f"the same photo: {self.inliers} matching points (score {self.score:.3f})"
        if not self.inliers:
            points = "not verified by keypoints"
        elif self.inliers >= VERIFIED_INLIERS:  # and still not the same photo (core.search.SearchHit)
            points = f"{self.inliers} matching points, but the pictures differ where they overlap: the same scene"
        else:
            points = f"{self.inliers} matching points, too few to verify"
        if self.match is Match.WEAK:
            return f"does not look alike (score {self.score:.3f}; {points})"
        return f"looks similar (score {self.score:.3f}; {points})"


AnyIndex = QModelIndex | QPersistentModelIndex


class TileLook(NamedTuple):
    """What a tile shows (PhotoListModel.look_of)."""

    name: str
    match: Match | None
    thumbnail: QPixmap | None
    thumbnail_failed: bool
    score: float | None
    rank: int
    not_indexed: bool  # the library skipped the file (its reason is in the tooltip)


class PhotoListModel(QAbstractListModel):
    """Photos as tiles, in rank (or listing) order, by name or by date. Ranked tiles below
    `min_score` are hidden.

    In rank order the threshold only ever cuts the tail (scores are descending), so the model
    inserts and removes rows at the end instead of resetting, and the view keeps its selection.
    """

    def __init__(self, thumbnails: ThumbnailLoader | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._all: list[PhotoTile] = []  # in rank or listing order
        self._not_indexed: dict[str, str] = {}  # path -> why the library skipped it
        self._rank_of: dict[str, int] = {}  # path -> position in _all, shown or not
        self._rows: list[int] = []  # positions in _all, as shown
        # position in _all -> shown row, -1 when hidden; None: to be worked out again (see _row_index)
        self._row_at: list[int] | None = []
        # Each tile's sort key in the chosen order, by position in _all (None: not worked out yet, or
        # rank order). Made once a tile: made again at every sort, they were a third of the 0.4 s a
        # listing slice of 100,000 photos in interleaving folders held the window (docs/performance.md).
        self._keys: list[Any] | None = None
        self._min_score = 0.0
        self._sort = SortOrder.RANK
        self._likeness: dict[str, int] = {}  # path -> place in the arranged order
        self._thumbnails = thumbnails
        if thumbnails is not None:
            thumbnails.thumbnail_ready.connect(self._on_thumbnail_ready)

    # Qt interface -----------------------------------------------------------------------------

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        rank = self._rows[index.row()]
        tile = self._all[rank]
        if role == Qt.ItemDataRole.DisplayRole:
            return tile.path.name
        if role == PathRole:
            return str(tile.path)
        if role == ScoreRole:
            return tile.score
        if role == InliersRole:
            return tile.inliers
        if role == MatchRole:
            return tile.match
        if role == RankRole:
            return rank + 1
        if role in (ThumbnailRole, Qt.ItemDataRole.DecorationRole):
            return self._thumbnail(tile)
        if role == ThumbnailFailedRole:
            return self._thumbnail_failed(tile)
        if role == NotIndexedRole:
            return str(tile.path) in self._not_indexed
        if role == Qt.ItemDataRole.ToolTipRole:
            skipped = self._not_indexed.get(str(tile.path))
            said = str(tile.path) + (f"\nnot indexed: {skipped}" if skipped else "")
            return said if tile.score is None else f"{said}\nrank {rank + 1}: {tile.explanation()}"
        return None

    def roleNames(self) -> dict[int, QByteArray]:
        names = super().roleNames()
        names[PathRole] = QByteArray(b"path")
        names[ScoreRole] = QByteArray(b"score")
        names[ThumbnailRole] = QByteArray(b"thumbnail")
        names[RankRole] = QByteArray(b"rank")
        names[ThumbnailFailedRole] = QByteArray(b"thumbnailFailed")
        names[NotIndexedRole] = QByteArray(b"notIndexed")
        names[InliersRole] = QByteArray(b"inliers")
        names[MatchRole] = QByteArray(b"match")
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
        paths = [self.path_at(index.row()) for index in indexes if index.isValid()]
        mime.setUrls([QUrl.fromLocalFile(str(path)) for path in paths])
        mime.setText("\n".join(str(path) for path in paths))
        return mime

    def supportedDragActions(self) -> Qt.DropAction:
        return Qt.DropAction.CopyAction

    # Our interface ----------------------------------------------------------------------------

    @property
    def min_score(self) -> float:
        return self._min_score

    @property
    def sort_order(self) -> SortOrder:
        return self._sort

    def tiles(self) -> list[PhotoTile]:
        """The tiles shown now, in the order shown."""
        return [self._all[rank] for rank in self._rows]

    def all_tiles(self) -> list[PhotoTile]:
        """Every tile, shown or below the threshold, in rank order."""
        return list(self._all)

    def total_count(self) -> int:
        return len(self._all)

    def path_at(self, row: int) -> Path:
        return self._all[self._rows[row]].path

    def tile_at(self, row: int) -> PhotoTile:
        return self._all[self._rows[row]]

    def look_of(self, row: int) -> TileLook:
        """What a row's tile shows, in one call: the tile delegate's paint asked data() six times, and
        each call goes through Qt and back into Python, giving up the interpreter lock on the way; with
        a job running Python beside it, each may wait for it (docs/performance.md, issue 18 point 5)."""
        rank = self._rows[row]
        tile = self._all[rank]
        return TileLook(tile.path.name, tile.match, self._thumbnail(tile), self._thumbnail_failed(tile), tile.score,
                        rank + 1, str(tile.path) in self._not_indexed)

    def set_not_indexed(self, skipped: Iterable[tuple[Path, str]]) -> None:
        """The files the library skipped, and why: their tiles say so (a truncated JPEG still shows a
        picture, grey below what was read, and looked like any photo)."""
        self._not_indexed = {str(path): reason for path, reason in skipped}
        if self._rows:
            self.dataChanged.emit(self.index(0), self.index(len(self._rows) - 1))

    def not_indexed_reason(self, path: Path) -> str | None:
        """Why the library skipped this file, or None."""
        return self._not_indexed.get(str(path))

    def _thumbnail(self, tile: PhotoTile) -> QPixmap | None:
        return self._thumbnails.pixmap(tile.path) if self._thumbnails is not None else None

    def _thumbnail_failed(self, tile: PhotoTile) -> bool:
        return self._thumbnails.has_failed(tile.path) if self._thumbnails is not None else False

    def row_of(self, path: Path | str) -> int | None:
        rank = self._rank_of.get(str(path))
        row = -1 if rank is None else self._row_index()[rank]
        return None if row < 0 else row

    def set_tiles(self, tiles: Iterable[PhotoTile]) -> None:
        self.beginResetModel()
        self._all = list(tiles)
        self._rank_of = {str(tile.path): rank for rank, tile in enumerate(self._all)}
        self._keys = None
        self._rows = self._shown_rows()
        self._row_at = None
        self.endResetModel()

    def append_tiles(self, tiles: Iterable[PhotoTile], *, only_at_end: bool = False) -> bool:
        """Add photos found by a folder listing; ones already present are skipped. Tiles that sort
        after every shown one (a listing arrives in name order) are added at the end; otherwise the
        rows are sorted again, or with `only_at_end` nothing is added and False is returned."""
        new: dict[str, PhotoTile] = {}
        for tile in tiles:
            path = str(tile.path)
            if path not in self._rank_of and path not in new:
                new[path] = tile
        first = len(self._all)
        keys = self._sort_keys()
        new_keys = None if keys is None else self._keys_of(new.values())
        shown = [first + offset for offset, tile in enumerate(new.values()) if self._is_shown(tile)]
        at_end = (new_keys is None or not shown or not self._rows
                  or min(new_keys[rank - first] for rank in shown) >= keys[self._rows[-1]])
        if not at_end and only_at_end:
            return False
        self._all.extend(new.values())
        self._rank_of.update((path, first + offset) for offset, path in enumerate(new))
        if self._row_at is not None:
            self._row_at.extend([-1] * len(new))
        if keys is not None:
            keys.extend(new_keys)
            # Stable, as sorting every row would be: equal keys stay in listing order. The shown rows
            # are one sorted run, so only the new ones are sorted before the two are merged.
            shown.sort(key=keys.__getitem__)
        if not at_end:
            self.beginResetModel()
            self._rows = _merged(self._rows, shown, keys)
            self._row_at = None
            self.endResetModel()
        elif shown:
            self.beginInsertRows(QModelIndex(), len(self._rows), len(self._rows) + len(shown) - 1)
            for rank in shown:
                if self._row_at is not None:
                    self._row_at[rank] = len(self._rows)
                self._rows.append(rank)
            self.endInsertRows()
        return True

    def append_paths(self, paths: Iterable[Path]) -> None:
        self.append_tiles(PhotoTile(path) for path in paths)

    def remove_paths(self, paths: Iterable[Path]) -> int:
        """Drop the tiles of photos that left (moved away, trashed); returns how many went."""
        gone = {str(path) for path in paths}
        ranks = {self._rank_of[path] for path in gone if path in self._rank_of}
        if not ranks:
            return 0
        row_at = self._row_index()
        doomed = sorted((row_at[rank] for rank in ranks if row_at[rank] >= 0), reverse=True)
        for row in doomed:  # from the end, so the rows still to remove keep their numbers
            self.beginRemoveRows(QModelIndex(), row, row)
            del self._rows[row]
            self.endRemoveRows()
        kept = [rank for rank in range(len(self._all)) if rank not in ranks]
        new_position = {old: new for new, old in enumerate(kept)}
        self._all = [self._all[rank] for rank in kept]
        self._rank_of = {str(tile.path): rank for rank, tile in enumerate(self._all)}
        self._keys = None if self._keys is None else [self._keys[rank] for rank in kept]
        self._rows = [new_position[rank] for rank in self._rows]
        self._row_at = None
        return len(ranks)

    def clear(self) -> None:
        self.set_tiles([])

    def set_min_score(self, min_score: float) -> None:
        self._min_score = min_score
        self._update_rows()

    def set_sort_order(self, order: SortOrder) -> None:
        if order is self._sort:
            return
        self._sort = order
        self._keys = None
        self.set_tiles(self._all)

    def set_likeness_order(self, paths: Iterable[Path]) -> None:
        """The arranged order for sorting by likeness; photos it does not know yet follow, by name."""
        self._likeness = {str(path): place for place, path in enumerate(paths)}
        self._keys = None
        if self._sort is SortOrder.LIKENESS:
            self.set_tiles(self._all)

    def _update_rows(self) -> None:
        rows = self._shown_rows()
        if self._sort is SortOrder.RANK and rows[: len(self._rows)] == self._rows[: len(rows)]:
            if len(rows) < len(self._rows):
                self.beginRemoveRows(QModelIndex(), len(rows), len(self._rows) - 1)
                self._rows = rows
                self._row_at = None
                self.endRemoveRows()
            elif len(rows) > len(self._rows):
                self.beginInsertRows(QModelIndex(), len(self._rows), len(rows) - 1)
                self._rows = rows
                self._row_at = None
                self.endInsertRows()
            return
        self.beginResetModel()
        self._rows = rows
        self._row_at = None
        self.endResetModel()

    def _is_shown(self, tile: PhotoTile) -> bool:
        return tile.score is None or tile.score >= self._min_score

    def _shown_rows(self) -> list[int]:
        rows = [rank for rank, tile in enumerate(self._all) if self._is_shown(tile)]
        keys = self._sort_keys()
        return rows if keys is None else sorted(rows, key=keys.__getitem__)  # stable: equal keys in rank order

    def _sort_keys(self) -> list[Any] | None:
        """Every tile's sort key in the chosen order, by position in _all; None in rank order."""
        if self._keys is None and self._sort is not SortOrder.RANK:
            self._keys = self._keys_of(self._all)
        return self._keys

    def _keys_of(self, tiles: Iterable[PhotoTile]) -> list[Any] | None:
        """The sort keys of `tiles` in the chosen order; None in rank order."""
        listed = listing_key(self._sort)
        if listed is not None:
            return [listed(tile.path, tile.date) for tile in tiles]
        if self._sort is SortOrder.LIKENESS:
            unplaced = len(self._likeness)
            return [(self._likeness.get(str(tile.path), unplaced), tile.path.name.casefold()) for tile in tiles]
        return None

    def _row_index(self) -> list[int]:
        """Position in _all -> shown row (-1: hidden). Worked out when first asked for after the rows
        change, not with them: at 100,000 rows that is 15 ms the turn that changed them need not pay."""
        if self._row_at is None:
            self._row_at = [-1] * len(self._all)
            for row, rank in enumerate(self._rows):
                self._row_at[rank] = row
        return self._row_at

    def _on_thumbnail_ready(self, path: str) -> None:
        row = self.row_of(path)
        if row is not None:
            index = self.index(row)
            self.dataChanged.emit(
                index, index, [ThumbnailRole, Qt.ItemDataRole.DecorationRole, ThumbnailFailedRole]
            )


def listing_key(order: SortOrder) -> Callable[[Path, float | None], Any] | None:
    """The sort key of a listed photo (its path and date) in `order`, for a listing to come in the
    grid's own order; None for the orders a listing cannot know (rank, likeness)."""
    if order is SortOrder.NAME:
        return lambda path, date: (path.name.casefold(), str(path))
    if order is SortOrder.DATE:
        return lambda path, date: -(date or 0.0)
    return None


def _merged(rows: list[int], new: list[int], keys: list[Any]) -> list[int]:
    """Two lists of positions, each sorted by `keys`, as one sorted list; on equal keys `new` follows
    `rows` (its positions come later in the listing, as a stable sort of all of them would place them)."""
    merged: list[int] = []
    start = 0
    for rank in new:
        at = bisect.bisect_right(rows, keys[rank], lo=start, key=keys.__getitem__)
        merged += rows[start:at]
        merged.append(rank)
        start = at
    merged += rows[start:]
    return merged


class TileFeed(QObject):
    """Streams a folder's listing into a model a slice per turn of the event loop. Appended as the
    listing's chunks arrived, 10,000 photos held the window for 70-110 ms in one go while the model
    loaded beside it (docs/performance.md, issue 18 point 5). A slice that would not go at the end
    (a listing in another order than the grid's) is made as large as the rows shown, up to
    RESORTED_SLICES slices, so that the rows are sorted again a few times as they double, not once a
    slice, and a turn never takes on tens of thousands of photos at once."""

    RESORTED_SLICES = 4  # 4,000 photos: about 25 ms of a turn at 100,000 rows (bench/folder_listing.py)
    drained = Signal()  # the grid holds everything added so far

    def __init__(self, model: PhotoListModel, parent: QObject | None = None, slice_size: int = 1000) -> None:
        super().__init__(parent)
        self._model = model
        self._slice_size = slice_size
        self._backlog: deque[tuple[Path, float | None]] = deque()
        self._timer = QTimer(self, singleShot=True, interval=0)
        self._timer.timeout.connect(self._feed)
        self._collector = CollectorPause()  # the tiles live as long as the grid
        weakref.finalize(self, self._collector.resume)  # a feed that goes mid-listing leaves it on

    def add(self, paths_with_dates: Iterable[tuple[Path, float | None]]) -> None:
        self._backlog.extend(paths_with_dates)
        if self._backlog:
            self._collector.pause()
        self._timer.start()

    def clear(self) -> None:
        self._backlog.clear()
        self._timer.stop()
        self._collector.resume()

    def _feed(self) -> None:
        count = min(self._slice_size, len(self._backlog))
        tiles = self._tiles(itertools.islice(self._backlog, count))
        if not self._model.append_tiles(tiles, only_at_end=True):
            # The rows are sorted again: with as many photos as are shown (up to a few slices), so a
            # listing in another order than the grid's sorts it a few times as it doubles, not once a slice.
            more = min(max(count, self._model.rowCount()), len(self._backlog), self._slice_size * self.RESORTED_SLICES)
            self._model.append_tiles(tiles + self._tiles(itertools.islice(self._backlog, count, more)))
            count = more
        for _ in range(count):
            self._backlog.popleft()
        if self._backlog:
            self._timer.start()
        else:
            self._collector.resume()
            self.drained.emit()

    def feeding(self) -> bool:
        return bool(self._backlog)

    @staticmethod
    def _tiles(paths_with_dates: Iterable[tuple[Path, float | None]]) -> list[PhotoTile]:
        return [PhotoTile(path, date=date) for path, date in paths_with_dates]


class PhotoTileDelegate(QStyledItemDelegate):
    """Paints a tile: the thumbnail centred in a square, the file name, and for results a score badge
    (✓ for the same photo); a result that does not look alike is faded."""

    def __init__(self, thumbnail_size: int, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thumbnail_size = thumbnail_size

    @property
    def thumbnail_size(self) -> int:
        return self._thumbnail_size

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
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
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

        look = index.model().look_of(index.row())
        if look.match is Match.WEAK and not selected:
            painter.setOpacity(WEAK_TILE_OPACITY)
        square = QRect(
            rect.x() + TILE_MARGIN, rect.y() + TILE_MARGIN, self._thumbnail_size, self._thumbnail_size
        )
        pixmap = look.thumbnail
        if pixmap is not None and not pixmap.isNull():
            scaled = pixmap.size().scaled(square.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRect(0, 0, scaled.width(), scaled.height())
            target.moveCenter(square.center())
            painter.drawPixmap(target, pixmap)
        else:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(palette.color(QPalette.ColorRole.AlternateBase))
            painter.drawRoundedRect(square.adjusted(8, 8, -8, -8), 4, 4)
            if look.thumbnail_failed:
                painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
                painter.drawText(square, Qt.AlignmentFlag.AlignCenter, "cannot\ndecode")

        text_role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        painter.setPen(palette.color(text_role))
        label_rect = QRect(
            rect.x() + TILE_MARGIN, square.bottom() + 2, self._thumbnail_size, TILE_LABEL_HEIGHT
        )
        name = option.fontMetrics.elidedText(look.name, Qt.TextElideMode.ElideMiddle, label_rect.width())
        painter.drawText(label_rect, Qt.AlignmentFlag.AlignCenter, name)

        if look.not_indexed:  # said where the score of a result goes: such a file is never one
            # in a smaller type before a bare "!" (QA: at small tiles the "!" alone said nothing)
            self._paint_badge(painter, square, ["not indexed", "!"], option, NOT_INDEXED_BADGE_COLOUR, shrink=True)
        if look.score is not None:
            same = look.match is Match.SAME
            score = f"{look.score:.2f}{' ✓' if same else ''}"
            # On small tiles the rank goes first: the score and the ✓ are what a badge must show.
            self._paint_badge(painter, square, [f"{look.rank} · {score}", score], option,
                              SAME_PHOTO_BADGE_COLOUR if same else BADGE_COLOUR)
        painter.restore()

    @staticmethod
    def _paint_badge(
        painter: QPainter, square: QRect, texts: list[str], option: QStyleOptionViewItem, colour: QColor,
        shrink: bool = False,
    ) -> None:
        """badge_text's choice of `texts` for the tile, on a pill at its top right."""
        text, font = badge_text(texts, option.font, square.width() - 6 - 12, shrink)
        painter.setFont(font)
        metrics = painter.fontMetrics()
        badge = QRect(0, 0, metrics.horizontalAdvance(text) + 12, metrics.height() + 4)
        badge.moveTopRight(square.topRight() + QPoint(-3, 3))
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colour)
        painter.drawRoundedRect(badge, badge.height() / 2, badge.height() / 2)
        painter.setPen(QColor("white"))
        painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, text)


def badge_text(texts: list[str], tile_font: QFont, room: int, shrink: bool = False) -> tuple[str, QFont]:
    """The first of `texts` that fits `room` pixels in the tile's font made bold (the last one otherwise),
    and that font. `shrink`: the first one in a smaller type, down to BADGE_SMALLEST_POINTS, before a
    shorter one."""
    font = QFont(tile_font)
    font.setBold(True)
    if shrink:
        smaller = QFont(font)
        while smaller.pointSizeF() > BADGE_SMALLEST_POINTS and QFontMetrics(smaller).horizontalAdvance(texts[0]) > room:
            smaller.setPointSizeF(smaller.pointSizeF() - 0.5)
        if QFontMetrics(smaller).horizontalAdvance(texts[0]) <= room:
            return texts[0], smaller
    metrics = QFontMetrics(font)
    return next((text for text in texts if metrics.horizontalAdvance(text) <= room), texts[-1]), font


def paint_placeholder(view: QAbstractItemView, text: str) -> None:
    """`text` in the middle of an empty view, in the faded colour of placeholder text."""
    painter = QPainter(view.viewport())
    painter.setPen(view.palette().color(QPalette.ColorRole.PlaceholderText))
    painter.drawText(view.viewport().rect().adjusted(24, 24, -24, -24),
                     Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, text)


@dataclass(frozen=True)
class TileAction:
    """One entry of a tile's context menu: `run` gets the selected photos (the one under the mouse
    for a `single` action); `plural`, with "{count}" in it, names the action for several."""

    text: str
    run: Callable[[list[Path]], None]
    single: bool = False
    plural: str = ""

    def text_for(self, count: int) -> str:
        return self.plural.format(count=count) if count > 1 and self.plural else self.text


class PhotoGridView(QListView):
    """A grid of tiles whose columns share out the whole width, so no ragged gap is left on the right.

    Space asks for a preview of the current tile and Return activates it; the context menu lists
    the `TileAction`s added with `add_tile_actions` (None: a separator).
    """

    preview_requested = Signal(int)  # row
    activated_row = Signal(int)  # row: Return or double-click

    def __init__(
        self, model: PhotoListModel, delegate: PhotoTileDelegate, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._delegate = delegate
        self._tile_actions: list[TileAction | None] = []
        self._empty_text = ""
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
        # The columns always fit the width. While a batched layout still used the previous grid, a
        # horizontal scroll bar came and went, and each time the whole grid was laid out again (40
        # times in the first 2 s of a 10,000-photo folder).
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setItemDelegate(delegate)
        self.setModel(model)
        self.doubleClicked.connect(lambda index: self.activated_row.emit(index.row()))
        self.fit_columns()

    def photo_model(self) -> PhotoListModel:
        model = self.model()
        assert isinstance(model, PhotoListModel)
        return model

    def add_tile_actions(self, actions: Iterable[TileAction | None]) -> None:
        self._tile_actions.extend(actions)

    def selected_paths(self) -> list[Path]:
        model = self.photo_model()
        rows = sorted(index.row() for index in self.selectionModel().selectedIndexes())
        return [model.path_at(row) for row in rows]

    def set_thumbnail_size(self, size: int) -> None:
        self._delegate.set_thumbnail_size(size)
        self.fit_columns()
        self.doItemsLayout()
        self.viewport().update()

    def fit_columns(self) -> None:
        tile = self._delegate.tile_size()
        # The vertical scroll bar's room is left whether it shows or not: columns fitted to the width
        # without it no longer fit once it shows, and the grid flipped between one column more (with an
        # idle scroll bar) and one fewer (with a gap, and the last row cut off without a scroll bar).
        inside = self.contentsRect().width() - self.verticalScrollBar().sizeHint().width()
        width = max(tile.width(), inside - 1)
        columns = max(1, width // tile.width())
        self.setGridSize(QSize(width // columns, tile.height()))

    def resizeEvent(self, event: QResizeEvent) -> None:
        self.fit_columns()
        super().resizeEvent(event)

    def set_empty_text(self, text: str) -> None:
        """What an empty grid says (nothing: a blank grid, as while a folder is still being listed)."""
        self._empty_text = text
        self.viewport().update()

    def empty_text(self) -> str:
        return self._empty_text

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if self._empty_text and self.model().rowCount() == 0:
            paint_placeholder(self, self._empty_text)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        index = self.currentIndex()
        if index.isValid() and event.key() == Qt.Key.Key_Space and not event.modifiers():
            self.preview_requested.emit(index.row())
            return
        if index.isValid() and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.activated_row.emit(index.row())
            return
        menu_key = event.key() == Qt.Key.Key_Menu and not event.modifiers()
        if menu_key or (event.key() == Qt.Key.Key_F10 and event.modifiers() == Qt.KeyboardModifier.ShiftModifier):
            self._menu_from_keyboard()
            return
        super().keyPressEvent(event)

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        if event.reason() == QContextMenuEvent.Reason.Keyboard:
            self._menu_from_keyboard()
            return
        menu = self.tile_menu(event.pos())
        if menu is not None:
            menu.popup(event.globalPos())

    def _menu_from_keyboard(self) -> None:
        """The Menu key or Shift+F10: the current tile's menu, on that tile."""
        index = self.currentIndex()
        if not index.isValid():
            return
        self.scrollTo(index)
        point = self.visualRect(index).center()
        menu = self.tile_menu(point)
        if menu is not None:
            menu.popup(self.viewport().mapToGlobal(point))

    def tile_menu(self, point: QPoint) -> QMenu | None:
        """The context menu for the tile at `point` (viewport coordinates), or None off the tiles."""
        index = self.indexAt(point)
        if not index.isValid() or not self._tile_actions:
            return None
        model = self.photo_model()
        here = model.path_at(index.row())
        selected = self.selected_paths()
        if here not in selected:
            selected = [here]
        menu = QMenu(self)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        for action in self._tile_actions:
            if action is None:
                menu.addSeparator()
                continue
            paths = [here] if action.single else selected
            menu.addAction(action.text_for(len(paths)), lambda run=action.run, chosen=paths: run(chosen))
        return menu
