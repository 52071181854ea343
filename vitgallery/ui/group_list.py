"""The Duplicates page's list of groups: a model that works a row out when the list asks for it.

A QListWidget made an item per group, with its text and icon, each time the groups changed: at a
thousand groups that held the window's thread 70-110 ms at every regrouping (the threshold slider, a
decision, an action). Here a refill is a reset, and only the rows on screen are ever worked out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, QPersistentModelIndex, QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import QListView, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from vitgallery.core.duplicates import DuplicateGroup, DuplicateMember
from vitgallery.core.words import count_text, size_text
from vitgallery.ui.results_model import PathRole
from vitgallery.ui.thumbnails import ThumbnailLoader

AnyIndex = QModelIndex | QPersistentModelIndex
SERVED_ROLES = frozenset({Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.DecorationRole, PathRole})


class GroupListModel(QAbstractListModel):
    """One row a group: its photos, their size and the photo it keeps, shown by that photo's thumbnail.
    `kept` says which photos a group keeps, the one shown first (the user's choice or the rule's). A
    thumbnail is asked for when its row is drawn; until it arrives the row shows a blank icon of the same size."""

    def __init__(self, thumbnails: ThumbnailLoader, kept: Callable[[DuplicateGroup], list[DuplicateMember]],
                 icon_size: QSize, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thumbnails = thumbnails
        self._kept = kept
        self._groups: Sequence[DuplicateGroup] = ()
        self._waiting: dict[str, set[int]] = {}  # thumbnail path -> rows drawn without it
        self._shown: dict[int, tuple[str, int]] = {}  # row -> the kept photo it was drawn with, and how many
        self.icon_size = icon_size
        blank = QPixmap(icon_size)
        blank.fill(Qt.GlobalColor.transparent)
        self.placeholder = QIcon(blank)
        thumbnails.thumbnail_ready.connect(self._on_thumbnail)

    def set_groups(self, groups: Sequence[DuplicateGroup]) -> None:
        self.beginResetModel()
        self._groups = groups
        self._waiting.clear()
        self._shown.clear()
        self.endResetModel()

    def refresh_row(self, row: int) -> None:
        """A group whose kept photos may have changed: its row is drawn again if it was drawn with others."""
        shown = self._shown.get(row)
        if shown is not None and shown != self._drawn(self._groups[row]):
            index = self.index(row)
            self.dataChanged.emit(index, index)

    def _drawn(self, group: DuplicateGroup) -> tuple[str, int]:
        kept = self._kept(group)
        return str(kept[0].path), len(kept)

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._groups)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        row = index.row()
        if role not in SERVED_ROLES or not index.isValid() or not 0 <= row < len(self._groups):
            return None  # a drawn row is asked for ten roles: the others are not worked out
        group = self._groups[row]
        kept = self._kept(group)
        keeper = kept[0]
        self._shown[row] = (str(keeper.path), len(kept))
        if role == Qt.ItemDataRole.DisplayRole:
            photos = count_text(len(group.members), "photo")
            more = f" and {len(kept) - 1} more" if len(kept) > 1 else ""
            return f"{photos} · {size_text(group.total_size)}\nkeeps {keeper.path.name}{more}"
        if role == PathRole:
            return str(keeper.path)
        if role == Qt.ItemDataRole.DecorationRole:
            pixmap = self._thumbnails.pixmap(keeper.path)
            if pixmap is None:
                self._waiting.setdefault(str(keeper.path), set()).add(row)
                return self.placeholder
            return QIcon(pixmap)
        return None

    def _on_thumbnail(self, path: str) -> None:
        for row in sorted(self._waiting.pop(path, ())):
            if row < len(self._groups) and str(self._kept(self._groups[row])[0].path) == path:
                index = self.index(row)
                self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])


class _SquareRowDelegate(QStyledItemDelegate):
    """Rows as tall as a square thumbnail: measured on the first row's own thumbnail (a wide photo, or
    the blank square before it loads) they were short one time and tall the next. And as wide as the
    list, never as wide as their text: a row wider than the list brought a horizontal scroll bar and
    cut the kept photo's name at the list's edge instead of eliding its middle."""

    def __init__(self, height: int, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._height = height + 6

    def sizeHint(self, option: QStyleOptionViewItem, index: AnyIndex) -> QSize:
        hint = super().sizeHint(option, index)
        return QSize(1, max(hint.height(), self._height))  # a list's rows span it whatever they ask


class GroupList(QListView):
    """The groups, one row each, with the row-based calls of a QListWidget."""

    currentRowChanged = Signal(int)

    def __init__(self, model: GroupListModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setUniformItemSizes(True)  # rows are never measured one by one
        self.setIconSize(model.icon_size)
        self.setItemDelegate(_SquareRowDelegate(model.icon_size.height(), self))
        self.setModel(model)
        self.selectionModel().currentRowChanged.connect(lambda current, _: self.currentRowChanged.emit(current.row()))

    def group_model(self) -> GroupListModel:
        model = self.model()
        assert isinstance(model, GroupListModel)
        return model

    def count(self) -> int:
        return self.model().rowCount()

    def currentRow(self) -> int:
        return self.currentIndex().row()

    def setCurrentRow(self, row: int) -> None:
        self.setCurrentIndex(self.model().index(row, 0) if 0 <= row < self.count() else QModelIndex())

    def row_data(self, row: int, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        return self.model().index(row, 0).data(role)
