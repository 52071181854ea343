"""The Groups page: the library clustered into visual groups (core/organise/groups.py), each a strip
with its most typical photo, a few more and a count; a group can be named (the name is stored in the
library and follows the group), opened as a query, or moved into a folder (logged, undoable).

Grouping, naming, moving and undoing run as jobs on the window's library; the page only shows what
they return. When the library changes (an index run, a batch of the folder watcher, a move) the
groups shown are found again.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt, Signal
from PySide6.QtGui import QFontMetrics, QPainter, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from vitgallery.core.duplicates import ActionEntry, ActionReport
from vitgallery.core.organise.groups import (
    DEFAULT_MIN_GROUP,
    Grouping,
    PhotoGroup,
    find_groups,
    found_again,
    move_group,
    name_group,
)
from vitgallery.core.organise.vectors import OrganiseProgress
from vitgallery.core.words import count_text
from vitgallery.ui.desktop_thumbnails import DesktopThumbnailCache
from vitgallery.ui.results_model import (
    PhotoGridView,
    PhotoListModel,
    PhotoTile,
    PhotoTileDelegate,
    TileAction,
)
from vitgallery.ui.thumbnails import ThumbnailLoader
from vitgallery.ui.widgets import JobPage
from vitgallery.ui.workers import Job, JobRunner, WorkerError

log = logging.getLogger(__name__)

THUMBNAIL_SIZE = 128  # decoded once; the strip shows the representative at this size, the others smaller
REPRESENTATIVE_SIZE = 112
MEMBER_SIZE = 72
STRIP_MEMBERS = 10  # photos shown after the representative in a strip
STRIP_MARGIN = 6
STRIP_TITLE_HEIGHT = 22
MAX_MIN_GROUP = 100
NO_FOLDER = "Open a folder to group its photos by likeness."
READY = "Find groups to see the library's photos clustered by likeness."
FIND_TIP = "Cluster the library's photos into groups of look-alikes"

GroupRole = Qt.ItemDataRole.UserRole + 1


def group_title(group: PhotoGroup, number: int) -> str:
    return f"{group.name or f'Group {number}'} · {count_text(len(group.members), 'photo')}"


def fitted_title(title: str, metrics: QFontMetrics, width: int) -> str:
    """A strip's title in `width` pixels: a long name shortened with an ellipsis, the photo count kept."""
    name, _, count = title.rpartition(" · ")
    if metrics.horizontalAdvance(title) <= width or not name:
        return title
    tail = f" · {count}"
    return metrics.elidedText(name, Qt.TextElideMode.ElideRight, max(0, width - metrics.horizontalAdvance(tail))) + tail


class GroupStripDelegate(QStyledItemDelegate):
    """Paints a group as a strip: its title, the representative photo large, then more members small."""

    def __init__(self, thumbnails: ThumbnailLoader, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._thumbnails = thumbnails

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        return QSize(REPRESENTATIVE_SIZE + 2 * STRIP_MARGIN, REPRESENTATIVE_SIZE + STRIP_TITLE_HEIGHT + 2 * STRIP_MARGIN)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> None:
        group: PhotoGroup | None = index.data(GroupRole)
        if group is None:
            return
        painter.save()
        palette = option.palette
        rect = option.rect
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        if selected:
            painter.fillRect(rect, palette.color(QPalette.ColorRole.Highlight))
        painter.setPen(palette.color(QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text))
        font = painter.font()
        font.setBold(True)
        painter.setFont(font)
        title = QRect(rect.x() + STRIP_MARGIN, rect.y() + 2, rect.width() - 2 * STRIP_MARGIN, STRIP_TITLE_HEIGHT)
        painter.drawText(title, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         fitted_title(index.data(), painter.fontMetrics(), title.width()))
        top = rect.y() + STRIP_TITLE_HEIGHT + STRIP_MARGIN // 2
        x = rect.x() + STRIP_MARGIN
        self._paint_photo(painter, option, group.representative, QRect(x, top, REPRESENTATIVE_SIZE, REPRESENTATIVE_SIZE))
        x += REPRESENTATIVE_SIZE + 2 * STRIP_MARGIN
        small_top = top + REPRESENTATIVE_SIZE - MEMBER_SIZE
        for path in group.members[1 : 1 + STRIP_MEMBERS]:
            if x + MEMBER_SIZE > rect.right():
                break
            self._paint_photo(painter, option, path, QRect(x, small_top, MEMBER_SIZE, MEMBER_SIZE))
            x += MEMBER_SIZE + STRIP_MARGIN
        painter.restore()

    def _paint_photo(self, painter: QPainter, option: QStyleOptionViewItem, path: Path, square: QRect) -> None:
        pixmap = self._thumbnails.pixmap(path)
        if pixmap is None or pixmap.isNull():
            painter.fillRect(square.adjusted(4, 4, -4, -4), option.palette.color(QPalette.ColorRole.AlternateBase))
            return
        scaled = pixmap.size().scaled(square.size(), Qt.AspectRatioMode.KeepAspectRatio)
        target = QRect(0, 0, scaled.width(), scaled.height())
        target.moveCenter(square.center())
        painter.drawPixmap(target, pixmap)


class GroupsPage(QWidget, JobPage):
    """Find the library's visual groups, name them, open one as a query, move one into a folder, undo."""

    grouped = Signal(int)  # groups shown
    named = Signal(object)  # PhotoGroup with its new name
    action_finished = Signal(object)  # ActionReport of a move or its undo: the window updates every page
    query_requested = Signal(object)  # Path: find photos like this group's representative

    def __init__(self, jobs: JobRunner, parent: QWidget | None = None, *, thumbnail_cache_dir: Path | None = None) -> None:
        super().__init__(parent)
        self._jobs = jobs
        self._has_library = False
        self._indexing = False
        self._job: Job | None = None
        self._busy = False
        self._grouping: Grouping | None = None
        self._undoable: int | None = None  # the action id of the last move
        self._action_line: str | None = None  # what the last move or undo did, until the groups are found again
        self._shown_size: int | None = None  # the smallest group size of the groups shown
        self.thumbnails = ThumbnailLoader(
            THUMBNAIL_SIZE, thumbnail_cache_dir, shared_cache=DesktopThumbnailCache.for_this_desktop(), parent=self
        )
        self.thumbnails.thumbnail_ready.connect(lambda path: self.strip_list.viewport().update())
        self._build()
        self._update_enabled()

    # -- building ----------------------------------------------------------------------------------

    def _build(self) -> None:
        self.find_button = QPushButton("Find groups")
        self.find_button.clicked.connect(self.find)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.size_spin = QSpinBox()
        self.size_spin.setRange(2, MAX_MIN_GROUP)
        self.size_spin.setValue(DEFAULT_MIN_GROUP)
        self.size_spin.setSuffix(" photos")
        self.size_spin.setToolTip("The smallest group shown: larger leaves the smaller groups out; "
                                  "2 looks for pairs too, so the photos fall into finer groups")
        self.size_spin.valueChanged.connect(self._on_size_changed)
        top = QHBoxLayout()
        top.addWidget(self.find_button)
        top.addWidget(self.cancel_button)
        top.addSpacing(12)
        top.addWidget(QLabel("Smallest group"))
        top.addWidget(self.size_spin)
        top.addStretch(1)
        self.progress_bar = QProgressBar()
        self.progress_bar.hide()
        self.status_label = QLabel(NO_FOLDER)
        self.status_label.setWordWrap(True)

        self.strip_list = QListWidget()
        self.focus_while_busy = self.strip_list
        self.strip_list.setItemDelegate(GroupStripDelegate(self.thumbnails, self.strip_list))
        self.strip_list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.strip_list.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.strip_list.setUniformItemSizes(True)
        self.strip_list.setResizeMode(QListView.ResizeMode.Adjust)
        self.strip_list.currentRowChanged.connect(self._show_group)
        self.strip_list.itemActivated.connect(lambda item: self.open_as_query())

        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("Name this group (Beach, Grandma, Receipts…)")
        self.name_edit.returnPressed.connect(self.name_current)
        self.name_button = QPushButton("Name")
        self.name_button.clicked.connect(self.name_current)
        self.query_button = QPushButton("Find similar")
        self.query_button.setToolTip("Search the library with this group's most typical photo")
        self.query_button.clicked.connect(self.open_as_query)
        self.move_button = QPushButton("Move to folder…")
        self.move_button.setToolTip("Move the group's photos into a folder (undoable)")
        self.move_button.clicked.connect(self.choose_folder_and_move)
        self.undo_button = QPushButton("Undo move")
        self.undo_button.clicked.connect(self.undo)
        actions = QHBoxLayout()
        actions.addWidget(self.name_edit, 1)
        actions.addWidget(self.name_button)
        actions.addWidget(self.query_button)
        actions.addWidget(self.move_button)
        actions.addWidget(self.undo_button)

        self.members_model = PhotoListModel(self.thumbnails, self)
        self.members_view = PhotoGridView(self.members_model, PhotoTileDelegate(96, self))
        self.members_view.activated_row.connect(lambda row: self.query_requested.emit(self.members_model.path_at(row)))
        self.members_view.add_tile_actions(
            [TileAction("Find similar photos", lambda paths: self.query_requested.emit(paths[0]), single=True)]
        )
        members = QWidget()
        members_layout = QVBoxLayout(members)
        members_layout.setContentsMargins(0, 0, 0, 0)
        members_layout.addLayout(actions)
        members_layout.addWidget(self.members_view, 1)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.strip_list)
        splitter.addWidget(members)
        splitter.setSizes([420, 300])
        splitter.setChildrenCollapsible(False)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)
        layout.addWidget(splitter, 1)

    # -- state from the window ---------------------------------------------------------------------

    @property
    def groups(self) -> list[PhotoGroup]:
        return list(self._grouping.groups) if self._grouping is not None else []

    def set_library(self, has_library: bool) -> None:
        """The window opened another library (or none): the groups shown belonged to the old one."""
        self.cancel()
        self._has_library = has_library
        self._grouping = None
        self._undoable = None
        self._fill()
        self.status_label.setText(READY if has_library else NO_FOLDER)
        self._update_enabled()

    def set_indexing(self, indexing: bool) -> None:
        """The window's index run started or ended: groups found meanwhile are of the photos indexed so far."""
        self._indexing = indexing

    def library_changed(self) -> None:
        """Photos came, went or moved: the groups shown are found again."""
        if self._grouping is not None and self._has_library:
            self.find()

    def shutdown(self) -> None:
        self.cancel()
        self.thumbnails.shutdown(200)

    # -- grouping ----------------------------------------------------------------------------------

    def find(self) -> None:
        if not self._has_library:
            return
        if self._job is not None:
            self._job.cancel()
        min_size = self.size_spin.value()
        partial = self._indexing
        self._set_busy(True, "Finding groups…")
        job = self._jobs.submit_library(
            lambda library, progress, cancel: find_groups(library, min_size=min_size, progress=progress, cancel=cancel),
            name="find groups",
            on_progress=self._on_progress,
            on_finished=lambda grouping: self._on_grouped(job, grouping, partial),
            on_failed=lambda error: self._on_failed(job, error),
        )
        self._job = job

    def cancel(self) -> None:
        if self._job is not None:
            self._job.cancel()
            self._job = None
            self._set_busy(False, "Cancelled.")

    def _on_size_changed(self) -> None:
        if self._grouping is not None and self._shown_size != self.size_spin.value():
            self.find()

    def _on_progress(self, progress: OrganiseProgress) -> None:
        self.progress_bar.setRange(0, max(progress.total, 1))
        self.progress_bar.setValue(progress.done)

    def _on_grouped(self, job: Job, grouping: Grouping, partial: bool) -> None:
        if job is not self._job:
            return
        self._job = None
        self._grouping = grouping
        self._shown_size = self.size_spin.value()
        lost = not self._fill()
        grouped = sum(len(g.members) for g in grouping.groups)
        # The groups are found again after a move: what the move did is said first, not replaced.
        moved, self._action_line = self._action_line, None
        self._set_busy(
            False,
            (f"{moved}. " if moved else "")
            + f"{count_text(len(grouping.groups), 'group')} of at least {self._shown_size} photos "
            f"({count_text(grouped, 'photo')}; {count_text(len(grouping.ungrouped), 'photo')} in no group)."
            + (" Of the photos indexed so far: they are found again when indexing is done." if partial else "")
            + (" The group shown before is not among them: choose one above." if lost else ""),
        )
        self.grouped.emit(len(grouping.groups))

    def _on_failed(self, job: Job, error: WorkerError) -> None:
        if job is not self._job or job.cancelled:
            return
        self._job = None
        self._set_busy(False, f"Failed: {error.message}")

    def _fill(self) -> bool:
        """The strips of the groups found; the group selected before stays selected where it is found
        again, else none is (a second Move must not take the group that moved up into its row). False
        when a group was selected and is not found again."""
        previous = self.current_group()
        self.strip_list.clear()
        self.thumbnails.drop_pending()
        for number, group in enumerate(self.groups, 1):
            item = QListWidgetItem(group_title(group, number))
            item.setData(GroupRole, group)
            item.setToolTip(f"{group.representative}\nand {count_text(len(group.members) - 1, 'more photo')}")
            self.strip_list.addItem(item)
        row = 0 if previous is None else found_again(previous, self.groups)
        if row is not None and self.strip_list.count():
            self.strip_list.setCurrentRow(row)
            return True
        self._show_group(-1)
        return previous is None or not self.strip_list.count()

    def current_group(self) -> PhotoGroup | None:
        item = self.strip_list.currentItem()
        return item.data(GroupRole) if item is not None else None

    def _show_group(self, row: int) -> None:
        group = self.current_group()
        self.members_model.set_tiles(PhotoTile(path) for path in (group.members if group else ()))
        self.name_edit.setText((group.name or "") if group is not None else "")
        self._update_enabled()

    # -- acting on a group -------------------------------------------------------------------------

    def name_current(self) -> None:
        group = self.current_group()
        if group is None or self._busy:
            return
        name = self.name_edit.text()
        self._set_busy(True, "Naming the group…")
        self._run(lambda library: name_group(library, group, name), lambda named: self._on_named(group, named))

    def _on_named(self, old: PhotoGroup, named: PhotoGroup) -> None:
        if self._grouping is None:
            return
        self._grouping.groups = [named if g is old else g for g in self._grouping.groups]
        self._fill()
        self._set_busy(False, f"Named “{named.name}”." if named.name else "Name removed.")
        self.named.emit(named)

    def open_as_query(self) -> None:
        group = self.current_group()
        if group is not None:
            self.query_requested.emit(group.representative)

    def choose_folder_and_move(self) -> None:
        group = self.current_group()
        if group is None:
            return
        folder = QFileDialog.getExistingDirectory(self, "Move the group's photos into", str(group.representative.parent))
        if folder:
            self.move_current(Path(folder))

    def move_current(self, folder: Path) -> None:
        group = self.current_group()
        if group is None or self._busy:
            return
        self._set_busy(True, f"Moving {count_text(len(group.members), 'photo')} into {folder}…")
        self._run(lambda library: move_group(library, group, folder), self._on_moved)

    def _on_moved(self, report: ActionReport) -> None:
        self._undoable = report.action_id if report.done else self._undoable  # a move that moved nothing has no undo
        self._action_line = report.status_line()
        self._acted(report)

    def undo(self) -> None:
        action_id = self._undoable
        if action_id is None or self._busy:
            return
        self._set_busy(True, "Putting the photos back…")
        self._run(lambda library: library.undo(action_id), self._on_undone)

    def _on_undone(self, report: ActionReport) -> None:
        if not report.problems:  # else Undo can try the files left again (another file was in the way)
            self._undoable = None
        self._action_line = report.status_line()
        self._acted(report)

    def follow_history(self, entries: list[ActionEntry]) -> None:
        """The library's actions as the Duplicates page lists them: a move of this page undone there (its
        Done list) has nothing left for Undo here."""
        # listed and done with: a list read before this page's move finished does not list it yet
        if any(e.action_id == self._undoable and not e.undoable for e in entries):
            self._undoable = None
            self._update_enabled()

    # -- state -------------------------------------------------------------------------------------

    def _update_enabled(self) -> None:
        idle = not self._busy
        self.find_button.setEnabled(idle and self._has_library)
        self.find_button.setToolTip(FIND_TIP if self._has_library else NO_FOLDER)
        self.cancel_button.setVisible(self._job is not None)
        has_group = idle and self.current_group() is not None
        for widget in (self.name_edit, self.name_button, self.query_button, self.move_button):
            widget.setEnabled(has_group)
        self.undo_button.setEnabled(idle and self._undoable is not None)
