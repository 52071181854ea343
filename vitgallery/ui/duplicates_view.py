"""The Duplicates page: review near-duplicate groups one by one, choose what to keep, act, undo.

The review, as in the best duplicate tools: each group shows the photo kept first, with a KEEP badge
and the reason it was chosen; the keyboard keeps (K) or rejects (R) photos and steps through the
groups (N, P); C compares two photos side by side (compare.py); a photo can be taken out of its group
(T, or a group split when several are selected) and two photos marked "not duplicates" (D) without
hiding the rest of the group. "Resolve this group" acts on the group on screen and moves on; "Resolve
all N groups…" is a separate button that asks first, with the counts, Cancel being the default.

What can be done with the photos not kept comes from the core's BULK_ACTIONS (one entry per action):
those that move files fill the "Not kept" choice, the others (the list export) get a button.
Everything that reads photos or the library (the scan, actions, decisions, undo, the history) runs
as a job of the window's JobRunner on the window's one Library; the page keeps the last scan and
regroups it when the slider moves or a decision is made, which needs no I/O.
"""

from __future__ import annotations

import html
import logging
import math
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from PySide6.QtCore import QModelIndex, QRect, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QGuiApplication,
    QIcon,
    QKeySequence,
    QPainter,
    QPen,
    QShortcut,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSlider,
    QSplitter,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from vitgallery.core.collector import collector_paused
from vitgallery.core.duplicates import (
    BULK_ACTIONS,
    DEFAULT_RULE,
    DEFAULT_THRESHOLD,
    ActionEntry,
    ActionReport,
    BulkAction,
    Decision,
    DuplicateGroup,
    DuplicateMember,
    DuplicateProgress,
    DuplicateScan,
    GroupSelection,
    KeepRule,
    Separation,
    UserDecisions,
    choose_keeper,
    group_key,
    move_target_problem,
    time_ago,
)
from vitgallery.core.scan import root_is_available
from vitgallery.core.store import DecisionRow, FileRow
from vitgallery.core.words import count_text, size_text, unreadable_text
from vitgallery.ui.compare import CompareDialog
from vitgallery.ui.decisions_dialog import DecisionsDialog
from vitgallery.ui.desktop_thumbnails import DesktopThumbnailCache
from vitgallery.ui.group_list import GroupList, GroupListModel
from vitgallery.ui.results_model import PathRole
from vitgallery.ui.thumbnails import ThumbnailLoader
from vitgallery.ui.widgets import JobPage, confirmation_box
from vitgallery.ui.workers import Job, JobRunner, WorkerError

if TYPE_CHECKING:
    from vitgallery.core.library import Library

log = logging.getLogger(__name__)

THUMBNAIL_SIZE = 128
ACTION_LABEL_WIDTH = 420  # pixels of "Move into a folder /a/long/path" before its middle is elided
NO_SCAN_YET = "Find duplicates to see groups of near-identical photos."
NO_FOLDER = "Open a folder to find its near-duplicates."
# Before a first index ends, the library has not learnt what tells its photos apart: a scan then grouped
# different objects on one background, and would have moved all but one of them.
WAITS_FOR_INDEX = "Find duplicates waits until indexing is done: then every photo is compared, as the library sees them."
# the last scan was made by an earlier version of the check, which this one cannot read
OUTDATED_SCAN = ("The duplicates check changed since the last scan ({age}): Find duplicates to see the groups "
                 "again. What you decided about groups is kept.")
READING_LAST_SCAN = "Reading the last scan…"
KEPT_COLOUR = QColor(46, 125, 50)
NOT_KEPT_COLOUR = QColor(183, 28, 28, 200)
# the keys the buttons do not show; one line at 1024 px (two cost a row of photos)
KEYS_HINT = "Keys: N / P next / previous group · Ctrl+Enter resolve this group · Ctrl+Z undo"


@dataclass(frozen=True)
class _Grouped:
    """A scan grouped in a job, with what it was grouped at (DuplicatesView._grouping)."""

    scan: DuplicateScan | None
    threshold: float
    rule: KeepRule
    folder: Path | None
    groups: list[DuplicateGroup]
    hidden: int  # groups at the threshold that decisions hide
    choices: dict[str, _RuleChoice]  # group key -> what the rule keeps
    chosen: dict[str, frozenset[Path]] = field(default_factory=dict)  # group key -> what the user keeps instead


@dataclass(frozen=True)
class _KeepChange:
    """A keep choice made in one group (K, R, a tick, Keep this in Compare), for Ctrl+Z to take back."""

    group_key: str
    before: frozenset[Path] | None  # the user's own choice before; None: the rule's


@dataclass(frozen=True)
class _DecisionStep:
    """A decision made here (not duplicates, keep all, photos taken out, a pair), for Ctrl+Z to take back
    and then show the group its photos link into again."""

    decision: Decision
    photos: frozenset[Path]


def in_review_order(groups: list[DuplicateGroup], rank_of: dict[Path, int]) -> list[DuplicateGroup]:
    """`groups` in the order the review first listed their photos in (`rank_of`: the row of a photo's
    group then, see review_ranks): a review goes through the groups in order, and a group that shrank (a
    photo taken out, two told apart) sorted further down would make "next group" skip the ones that moved
    up, and a group an undo put back would come last. A group split off stays beside the one it left;
    groups with none of those photos come after, in their own order."""

    def place(numbered: tuple[int, DuplicateGroup]) -> tuple[float, int]:
        n, group = numbered
        return min((rank_of[m.path] for m in group.members if m.path in rank_of), default=math.inf), n

    return [group for _, group in sorted(enumerate(groups), key=place)]


def review_ranks(groups: list[DuplicateGroup], known: dict[Path, int] | None = None) -> dict[Path, int]:
    """Each photo's rank in the review: its group's row, for photos `known` has no rank for (all, without
    it), after every rank it has. A photo keeps its rank while it is away (moved, then put back)."""
    ranks = dict(known or {})
    after = max(ranks.values(), default=-1) + 1
    for row, group in enumerate(groups):
        for member in group.members:
            ranks.setdefault(member.path, after + row)
    return ranks


class _RuleChoice(NamedTuple):
    """What the rule keeps of a group (the kept file under every name it has in the group), why in a
    few words, and what it leaves: counted where the choice is made, in the grouping job, as "Resolve
    all" counts over every group (hashing 74,000 members' paths on the window's thread took 0.19 s)."""

    keep: frozenset[Path]
    reason: str
    not_kept: int
    size_not_kept: int


def _rule_choice(group: DuplicateGroup, rule: KeepRule, folder: Path | None) -> _RuleChoice:
    choice = choose_keeper(group.members, rule, folder)
    keep = frozenset(m.path for m in (choice.member, *choice.same_file))
    left = [m.size for m in group.members if m.path not in keep]
    return _RuleChoice(keep, choice.reason, len(left), sum(left))


STALE_SCAN = "The library changed since the scan: find duplicates again (only new or changed photos are checked)."
PHASES = {"candidates": "Finding candidates", "keypoints": "Reading photos", "verifying": "Comparing pairs",
          "measuring": "Measuring quality", "done": "Grouping"}


def _is_as_scanned(path: Path, row: FileRow) -> bool:
    """Whether the file at `path` is the one a scan saw there (its size and time unchanged: moved away and
    back keeps both), so that what the scan found of it still holds."""
    try:
        found = path.stat()
    except OSError:
        return False
    return stat.S_ISREG(found.st_mode) and (found.st_size, found.st_mtime_ns) == (row.size, row.mtime_ns)


def _is_checked(item: QListWidgetItem) -> bool:
    return item.checkState() == Qt.CheckState.Checked


class KeepBadgeDelegate(QStyledItemDelegate):
    """A photo drawn as usual, then a green KEEP badge and frame when it is kept, a red mark when not."""

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        return super().sizeHint(option, index) + QSize(0, 6)  # room under the text for the frame

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        super().paint(painter, option, index)
        state = index.data(Qt.ItemDataRole.CheckStateRole)
        kept = state in (Qt.CheckState.Checked, Qt.CheckState.Checked.value)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        colour = KEPT_COLOUR if kept else NOT_KEPT_COLOUR
        if kept:
            painter.setPen(QPen(colour, 3))
            painter.drawRoundedRect(option.rect.adjusted(2, 2, -2, -2), 6, 6)
        font = QFont(option.font)
        font.setBold(True)
        font.setPointSizeF(max(font.pointSizeF() - 1, 7))
        painter.setFont(font)
        text = "KEEP" if kept else "✕"
        width = painter.fontMetrics().horizontalAdvance(text) + 12
        badge = QRect(option.rect.left() + 8, option.rect.top() + 8, width, painter.fontMetrics().height() + 4)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colour)
        painter.drawRoundedRect(badge, 4, 4)
        painter.setPen(QColor("white"))
        painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, text)
        painter.restore()


# Lines of text under a tile: its name (two where long), size, date, and the kept one's reason (its first
# part: the rest is in the line above the photos) on two
TILE_TEXT_LINES = 6
SMALLEST_TILE_PHOTO = 72


class MemberTiles(QListWidget):
    """A group's photos as tiles, whose photos shrink so that a whole row fits a short window (at 1024x640
    only the top of the tiles showed, the kept one's reason cut), and whose width lets two fit a row.
    Like the folder's grid, its columns always fit the width: it never scrolls sideways."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

    def text_height(self) -> int:
        return TILE_TEXT_LINES * self.fontMetrics().lineSpacing() + 16  # and the badge frame's margins

    def fit_tiles(self) -> None:
        room = self.viewport().height() - self.text_height() - 2 * self.spacing()
        side = max(SMALLEST_TILE_PHOTO, min(THUMBNAIL_SIZE, room))
        # in a narrow window two tiles a row, their text wrapped tighter, rather than one (a review compares)
        across = self.viewport().width() - 3 * self.spacing()
        grid = QSize(max(min(THUMBNAIL_SIZE + 84, across // 2), side + 24), side + self.text_height())
        if side != self.iconSize().width() or grid != self.gridSize():
            self.setIconSize(QSize(side, side))
            self.setGridSize(grid)

    def texts_changed(self) -> None:
        """The tiles' texts were set or changed (a kept tile's reason on two lines is wider than a tile
        without text): laid out again. The icon view places a tile when it is added and does not move it
        when its size changes, and the third column was pushed past the right edge."""
        self.doItemsLayout()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.fit_tiles()


class _Tally(NamedTuple):
    """The groups listed, as the user left them."""

    photos: int
    groups_to_resolve: int  # with a photo not kept
    not_kept: int
    size_not_kept: int


class DuplicatesView(QWidget, JobPage):
    """Scan a library for near-duplicates, review the groups, act on the photos not kept, undo."""

    scan_finished = Signal(int)  # groups shown
    action_finished = Signal(object)  # ActionReport
    history_changed = Signal(object)  # list[ActionEntry]: the library's actions, newest first
    decisions_changed = Signal()
    decisions_shown = Signal(object)  # the DecisionsDialog opened

    def __init__(
        self,
        jobs: JobRunner,
        parent: QWidget | None = None,
        *,
        thumbnail_cache_dir: Path | None = None,
    ) -> None:
        """`jobs` runs the page's work on the window's library (set_library says when there is one)."""
        super().__init__(parent)
        self._jobs = jobs
        self._scan_job: Job | None = None
        self._library_dir: Path | None = None
        self._scan: DuplicateScan | None = None
        self._groups: list[DuplicateGroup] = []
        self._hidden = 0  # groups at the threshold that decisions hide
        self._grouped_at: float | None = None  # the threshold self._groups are of
        self._keep: dict[str, set[Path]] = {}  # group key -> the paths the user keeps
        # Counted once per change of what is listed or kept (_edited): the status line and Resolve all
        # both read it, and at a thousand groups each count held the window's thread 15-40 ms.
        self._edits = 0
        self._tally_of: tuple[int, _Tally] | None = None
        self._rule_choices: dict[str, _RuleChoice] = {}  # group key -> what the rule keeps
        self._gone: set[int] = set()  # file ids moved away by an action since the scan
        self._put_back: set[Path] = set()  # photos an undo put back, whose group the next grouping shows
        self._action_said = ""  # the status line an action's report left
        self._review_rank: dict[Path, int] = {}  # the order of the review at this threshold (review_ranks)
        self._preferred_folder: Path | None = None
        self._busy = False
        # Regrouping runs in a job (see _regroup): one at a time; asked again meanwhile, once more after.
        self._regrouping = False
        self._regroups_asked = 0
        self._after_regroup: list[Callable[[], None]] = []  # what waits for the groups asked for
        # The kept scan is read when the page is first shown: at 10,000 photos reading and grouping it
        # is seconds of Python that would compete with the window's start (docs/performance.md).
        self._last_scan_unread = False
        self._indexing = False
        self._history: list[ActionEntry] = []
        # What Ctrl+Z takes back, latest last: this session's decisions and actions on this page. Older
        # actions are undone from the Done list, which says what each did.
        self._undo_steps: list[_DecisionStep | int | _KeepChange] = []  # a decision, an action's id, a keep choice
        self.action_targets: dict[str, Path] = {}  # the folder or file chosen for an action
        self.compare_dialog: CompareDialog | None = None

        self.thumbnails = ThumbnailLoader(
            THUMBNAIL_SIZE, thumbnail_cache_dir, shared_cache=DesktopThumbnailCache.for_this_desktop(), parent=self
        )
        self.thumbnails.thumbnail_ready.connect(self._on_thumbnail)
        self._build()
        self._bind_keys()
        self._update_enabled()
        # An action taken from the command line is logged in the library too: the Done list reads it again
        # when the user comes back to the window (from the terminal, say) and when the page shows.
        QGuiApplication.instance().applicationStateChanged.connect(self._on_application_state)

    # -- building ----------------------------------------------------------------------------------

    def _build(self) -> None:
        self.scan_button = QPushButton("Find duplicates")
        self.scan_button.clicked.connect(self.start_scan)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_scan)
        self.threshold_slider = QSlider(Qt.Orientation.Horizontal)
        self.threshold_slider.setRange(1, 99)
        self.threshold_slider.setValue(round(DEFAULT_THRESHOLD * 100))
        self.threshold_slider.setToolTip("How sure a match must be: to the right, fewer and closer duplicates")
        # Regrouping a library of thousands of groups takes a moment: once, where the slider is let go,
        # while the figure follows the drag.
        self.threshold_slider.setTracking(False)
        self.threshold_slider.valueChanged.connect(self._on_threshold_changed)
        self.threshold_slider.sliderMoved.connect(lambda value: self.threshold_label.setText(f"{value / 100:.2f}"))
        self.threshold_label = QLabel()
        self.threshold_label.setMinimumWidth(36)
        self.rule_combo = QComboBox()
        for rule in KeepRule:
            self.rule_combo.addItem(f"Keep the {rule.label}", rule)
        self.rule_combo.currentIndexChanged.connect(self._on_rule_changed)
        self._rule_shown: KeepRule = self.rule_combo.currentData()  # what a cancelled change goes back to
        self.folder_button = QPushButton("Preferred folder…")
        self.folder_button.clicked.connect(self.choose_preferred_folder)
        self.decisions_button = QPushButton("Decisions…")
        self.decisions_button.setToolTip("The groups you marked \"not duplicates\" or \"keep all\", and the photos "
                                      "you told apart: take any back")
        self.decisions_button.clicked.connect(self.show_decisions)
        # Rows short enough for a window 800 px wide (the query panel beside the page).
        top = QHBoxLayout()
        top.addWidget(self.scan_button)
        top.addWidget(self.cancel_button)
        top.addWidget(QLabel("Match threshold"))
        top.addWidget(self.threshold_slider, 1)
        top.addWidget(self.threshold_label)
        rule_row = QHBoxLayout()
        rule_row.addWidget(self.rule_combo)
        rule_row.addWidget(self.folder_button)
        rule_row.addStretch(1)
        rule_row.addWidget(self.decisions_button)

        # A bar as wide as the page: its text ("Reading photos 120 of 318") always fits.
        self.progress_bar = QProgressBar()
        self.progress_bar.setTextVisible(True)
        self.progress_bar.hide()
        self.status_label = QLabel(NO_FOLDER)
        self.status_label.setWordWrap(True)

        self.group_list = GroupList(GroupListModel(self.thumbnails, self._kept_members, QSize(64, 64), self))
        self.group_list.setIconSize(QSize(64, 64))
        self.group_list.setMinimumWidth(160)
        self.group_list.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # the kept photo's name, both ends
        self.group_list.currentRowChanged.connect(self._show_group)

        self.group_title = QLabel()
        title_font = self.group_title.font()
        title_font.setBold(True)
        self.group_title.setFont(title_font)
        self.keeper_label = QLabel()
        self.keeper_label.setWordWrap(True)
        self.member_list = MemberTiles()
        self.focus_while_busy = self.member_list
        self.member_list.setViewMode(QListView.ViewMode.IconMode)
        self.member_list.setIconSize(QSize(THUMBNAIL_SIZE, THUMBNAIL_SIZE))
        self.member_list.setResizeMode(QListView.ResizeMode.Adjust)
        self.member_list.setMovement(QListView.Movement.Static)
        self.member_list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.member_list.setWordWrap(True)
        self.member_list.setSpacing(8)
        self.member_list.fit_tiles()
        self.member_list.setItemDelegate(KeepBadgeDelegate(self.member_list))
        self.member_list.itemChanged.connect(self._on_member_checked)
        self.member_list.itemSelectionChanged.connect(self._update_group_buttons)
        self.member_list.itemDoubleClicked.connect(lambda item: self.compare_selected())

        self.keep_button = QPushButton("Keep (K)")
        self.keep_button.setToolTip("Keep the selected photos")
        self.keep_button.clicked.connect(self.keep_selected)
        self.reject_button = QPushButton("Reject (R)")
        self.reject_button.setToolTip("Do not keep the selected photos (one photo of a group is always kept)")
        self.reject_button.clicked.connect(self.reject_selected)
        self.compare_button = QPushButton("Compare (C)")
        self.compare_button.setToolTip("Side by side, with zoom and what differs: the two selected photos, "
                                       "or the selected one and the kept one")
        self.compare_button.clicked.connect(self.compare_selected)
        self.take_out_button = QPushButton("Take out (T)")
        self.take_out_button.clicked.connect(self.take_out_selected)
        self.pair_button = QPushButton("Not these two (D)")
        self.pair_button.setToolTip("The two selected photos are different pictures; the rest of the group stays")
        self.pair_button.clicked.connect(self.mark_pair_not_duplicates)
        self.not_duplicates_button = QPushButton("Group: not duplicates")
        self.not_duplicates_button.setToolTip("Hide this whole group for good (it comes back if one of its photos changes)")
        self.not_duplicates_button.clicked.connect(lambda: self.mark_group("not_duplicates"))
        self.keep_all_button = QPushButton("Keep all")
        self.keep_all_button.setToolTip("Keep every photo of this group and stop showing it")
        self.keep_all_button.clicked.connect(lambda: self.mark_group("keep_all"))
        member_tools = QHBoxLayout()
        for button in (self.keep_button, self.reject_button, self.compare_button, self.take_out_button):
            member_tools.addWidget(button)
        member_tools.addStretch(1)
        group_tools = QHBoxLayout()
        group_tools.addWidget(self.pair_button)
        group_tools.addStretch(1)
        group_tools.addWidget(self.not_duplicates_button)
        group_tools.addWidget(self.keep_all_button)

        review = QWidget()
        review_layout = QVBoxLayout(review)
        review_layout.setContentsMargins(0, 0, 0, 0)
        review_layout.addWidget(self.group_title)
        review_layout.addWidget(self.keeper_label)
        review_layout.addWidget(self.member_list, 1)
        review_layout.addLayout(member_tools)
        review_layout.addLayout(group_tools)
        splitter = QSplitter()
        splitter.addWidget(self.group_list)
        splitter.addWidget(review)
        splitter.setStretchFactor(1, 3)

        self.action_combo = QComboBox()
        # As wide as its text: the folder chosen is read in it (a long path is elided in its middle).
        self.action_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.action_combo.setToolTip("What happens to the photos not kept when a group is resolved")
        for action in BULK_ACTIONS.values():
            if action.moves_files:
                self.action_combo.addItem(action.label, action.name)
        self.action_combo.activated.connect(self._on_action_chosen)
        self.action_combo.currentIndexChanged.connect(lambda _: self._update_resolve_all())  # its tooltip says it
        self.resolve_group_button = QPushButton("Resolve this group")
        self.resolve_group_button.setToolTip("Do it for the group on screen, then show the next (Ctrl+Enter)")
        self.resolve_group_button.clicked.connect(self.resolve_group)
        self.resolve_all_button = QPushButton("Resolve all groups…")
        self.resolve_all_button.clicked.connect(self.resolve_all)
        bottom = QHBoxLayout()
        bottom.addWidget(QLabel("Not kept:"))
        bottom.addWidget(self.action_combo)
        bottom.addWidget(self.resolve_group_button)
        bottom.addStretch(1)
        # Every group at once: on a row of its own, away from the one-group button, its counts in full.
        resolve_all_row = QHBoxLayout()
        resolve_all_row.addStretch(1)
        resolve_all_row.addWidget(self.resolve_all_button)
        history = QHBoxLayout()
        self.list_buttons: dict[str, QPushButton] = {}
        for action in BULK_ACTIONS.values():
            if not action.moves_files:
                button = QPushButton(action.label)
                button.setToolTip(action.help[0].upper() + action.help[1:])
                button.clicked.connect(lambda _=False, name=action.name: self.run_list_action(name))
                self.list_buttons[action.name] = button
                history.addWidget(button)

        self.history_combo = QComboBox()
        self.history_combo.setMinimumWidth(160)
        self.history_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.history_combo.setMinimumContentsLength(18)
        self.history_combo.currentIndexChanged.connect(self._update_enabled)
        self.undo_button = QPushButton("Undo")
        self.undo_button.clicked.connect(self.undo_selected)
        history.addWidget(QLabel("Done:"))
        history.addWidget(self.history_combo, 1)
        history.addWidget(self.undo_button)
        self.keys_label = QLabel(KEYS_HINT)
        self.keys_label.setWordWrap(True)
        self.keys_label.setEnabled(False)  # drawn greyed: a hint, not a control

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(rule_row)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)
        layout.addWidget(splitter, 1)
        layout.addLayout(bottom)
        layout.addLayout(resolve_all_row)
        layout.addLayout(history)
        layout.addWidget(self.keys_label)
        self._on_threshold_changed(self.threshold_slider.value())

    def _bind_keys(self) -> None:
        for keys, slot in (
            (("K",), self.keep_selected),
            (("R",), self.reject_selected),
            (("C",), self.compare_selected),
            (("T",), self.take_out_selected),
            (("D",), self.mark_pair_not_duplicates),
            (("N", "PgDown"), self.next_group),
            (("P", "PgUp"), self.previous_group),
            (("Ctrl+Return", "Ctrl+Enter"), self.resolve_group),
            (("Ctrl+Z",), self.undo_last),
        ):
            for key in keys:
                shortcut = QShortcut(QKeySequence(key), self)
                shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
                shortcut.activated.connect(slot)

    # -- the library and the scan ------------------------------------------------------------------

    @property
    def threshold(self) -> float:
        return self.threshold_slider.value() / 100

    @property
    def groups(self) -> list[DuplicateGroup]:
        return list(self._groups)

    def set_library(self, library_dir: Path | None) -> None:
        """The window opened another library (or none): the old scan is dropped."""
        library_dir = Path(library_dir) if library_dir else None
        if library_dir == self._library_dir:
            return
        self.cancel_scan()
        self._library_dir = library_dir
        self._scan = None
        self._gone.clear()
        self._keep.clear()  # the library's own are read with its scan
        self._undo_steps.clear()
        self._edited()
        self._regroup()
        self.status_label.setText(self._no_scan_text())
        self._on_history([])
        self._last_scan_unread = library_dir is not None
        if library_dir is not None:
            self.refresh_history()
            if self.isVisible():
                self._read_last_scan()
        self._update_enabled()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._last_scan_unread:
            self._read_last_scan()
        self.refresh_history()

    def _on_application_state(self, state: Qt.ApplicationState) -> None:
        if state == Qt.ApplicationState.ApplicationActive and self.isVisible():
            self.refresh_history()

    def _read_last_scan(self) -> None:
        self._last_scan_unread = False
        self.status_label.setText(READING_LAST_SCAN)
        grouping = self._grouping()

        def read(library) -> tuple[_Grouped, float | None]:
            with collector_paused():  # over a million pairs at 100,000 photos
                return grouping(library.last_duplicate_scan(), library), library.outdated_duplicate_scan_age()

        self._run(read, self._on_last_scan)

    def _on_last_scan(self, outcome: tuple[_Grouped, float | None]) -> None:
        """The scan kept in the library, shown at once with its age (unless a scan started meanwhile)."""
        grouped, outdated_age = outcome
        if self._scan is not None or self._busy:
            return
        if grouped.scan is None:
            self.status_label.setText(self._no_scan_text() if outdated_age is None else
                                      OUTDATED_SCAN.format(age=time_ago(outdated_age)))
            return
        self._scan = grouped.scan
        self._show_grouped(grouped)
        self.status_label.setText(self._summary())

    def _grouping(self, gone: set[int] | None = None,
                  ranks: dict[Path, int] | None = None) -> Callable[[DuplicateScan | None], _Grouped]:
        """What groups a scan as the view would, with the threshold and rule of now (and the photos moved
        away, `gone`, or the view's), to run in a job: a library can have thousands of groups, and
        grouping them and choosing each one's keeper takes a second or more, which the window's thread
        must not wait for. With `ranks` the groups keep the review's order (in_review_order); with the
        `library`, what the user chose to keep of them before (a restart, a new scan) comes too."""
        threshold, rule, folder = self.threshold, self.rule, self._preferred_folder
        gone = set(self._gone) if gone is None else gone

        def grouped(scan: DuplicateScan | None, library: Library | None = None) -> _Grouped:
            if scan is None or scan.cancelled:
                return _Grouped(scan, threshold, rule, folder, [], 0, {})
            with collector_paused():  # a member object for each photo grouped
                groups, hidden = scan.groups_and_hidden(threshold, exclude=gone)
                if ranks is not None:
                    groups = in_review_order(groups, ranks)
                return _Grouped(scan, threshold, rule, folder, groups, hidden,
                                {group.key: _rule_choice(group, rule, folder) for group in groups},
                                library.chosen_keeps(groups) if library is not None else {})

        return grouped

    def _show_grouped(self, grouped: _Grouped) -> None:
        """Show groups made in a job (see _grouping), or group again where the threshold or the rule
        changed meanwhile."""
        self._regroups_asked += 1  # a regroup still running is of what was shown before
        self._rule_choices.clear()
        # what the library kept of earlier choices, and this session's (one made during the scan may not be saved yet)
        self._keep = {**{key: set(keep) for key, keep in grouped.chosen.items()}, **self._keep}
        if (grouped.threshold, grouped.rule, grouped.folder) != (self.threshold, self.rule, self._preferred_folder):
            self._regroup()
            return
        self._rule_choices.update(grouped.choices)
        self._groups, self._hidden, self._grouped_at = grouped.groups, grouped.hidden, grouped.threshold
        self._review_rank = review_ranks(self._groups)
        self._edited()
        self._fill_group_list(0)

    def refresh_history(self) -> None:
        """Read the library's action history again: on opening it, when the page shows or the window is
        active again (actions from the command line), and after the Groups or Sort page moved photos,
        whose actions are listed and undone here too."""
        if self._library_dir is not None:
            self._run(lambda library: library.action_history(), self._on_history)

    def library_changed(self) -> None:
        """The library changed: a scan made before may miss new photos. Whether it does is the library's
        to say: the app's own actions keep it current, and then what an action did stays said. Photos of
        the groups deleted meanwhile leave the review (it would offer to keep a file that is gone), and come
        back into it once their file is back as it was scanned (moved away by another program or the
        command line and put back: they stayed out, and whole groups with them, until the next scan)."""
        if self._scan is None or self._busy:
            return
        groups, up_to_date = list(self._groups), self._scan.up_to_date  # walked in the job: 100,000 members at scale
        away = {file_id: self._scan.files[file_id] for file_id in self._gone if file_id in self._scan.files}
        root = self._scan.root

        def check(library: Library, progress, cancel) -> tuple[bool, set[int], set[int]]:
            current = up_to_date and library.duplicate_scan_is_current()
            if not root_is_available(library.root):  # an unplugged drive's photos are not deleted ones
                return current, set(), set()
            gone = {m.file_id for group in groups for m in group.members if not m.path.is_file()}
            return current, gone, {file_id for file_id, row in away.items() if _is_as_scanned(root / row.path, row)}

        self._jobs.submit_library(check, name="duplicate scan check", on_finished=self._on_scan_checked)

    def _on_scan_checked(self, outcome: tuple[bool, set[int], set[int]]) -> None:
        current, gone, back = outcome
        if self._scan is None or self._busy:
            return
        deleted, returned = gone - self._gone, back & self._gone
        if deleted or returned:
            self._gone = (self._gone | deleted) - returned
            if deleted or not current:
                self._scan.up_to_date = False
            said = []
            if deleted:
                said.append(f"{count_text(len(deleted), 'photo')} of these groups {'is' if len(deleted) == 1 else 'are'} "
                            "gone from the folder: left out of the review.")
            if returned:
                said.append(f"{count_text(len(returned), 'photo')} left out of the review "
                            f"{'is' if len(returned) == 1 else 'are'} back in the folder: reviewed again.")
            self._regroup(then=lambda: self.status_label.setText(" ".join([*said, self._summary()])))
            return
        if current or not self._scan.up_to_date:
            return
        self._scan.up_to_date = False
        said = self.status_label.text()
        if said == self._action_said:  # what the action did stays said (a file renamed on a name clash changes the library)
            self.status_label.setText(f"{said}. {STALE_SCAN}")
        else:
            self.status_label.setText(self._summary())

    def _no_scan_text(self) -> str:
        return NO_FOLDER if self._library_dir is None else WAITS_FOR_INDEX if self._indexing else NO_SCAN_YET

    def set_indexing(self, indexing: bool) -> None:
        """The window's index run started or ended: a scan waits for it."""
        self._indexing = indexing
        if self._scan is None and not self._busy and self.status_label.text() in (NO_SCAN_YET, WAITS_FOR_INDEX):
            self.status_label.setText(self._no_scan_text())
        self._update_enabled()

    def start_scan(self) -> None:
        if self._library_dir is None or self._busy or self._indexing:
            return
        self._last_scan_unread = False  # the new scan brings it up to date
        self._set_busy(True, "Looking for near-duplicates…")
        grouping = self._grouping(gone=set())  # what a new scan shows: photos moved away are not in it
        self._scan_job = self._jobs.submit_library(
            lambda library, progress, cancel: grouping(library.duplicate_scan(progress=progress, cancel=cancel), library),
            name="duplicate scan",
            on_progress=self._on_progress,
            on_finished=self._on_scanned,
            on_failed=self._on_failed,
        )

    def cancel_scan(self) -> None:
        if self._scan_job is not None:
            self._scan_job.cancel()

    def shutdown(self) -> None:
        """Cancel the scan; the window's JobRunner stops the threads."""
        self.cancel_scan()
        if self.compare_dialog is not None:
            self.compare_dialog.close()
        self.thumbnails.shutdown(200)

    def _run(self, work, on_finished) -> None:
        """Run `work(library)` on the window's library as a job; failures end up in the status line."""
        self._jobs.submit_library(
            lambda library, progress, cancel: work(library),
            name="duplicates request",
            on_finished=on_finished,
            on_failed=self._on_failed,
        )

    def _on_progress(self, progress: DuplicateProgress) -> None:
        name = PHASES.get(progress.phase, progress.phase)
        self.progress_bar.setFormat(f"{name}: %v of %m")
        self.progress_bar.setRange(0, max(progress.total, 1))
        self.progress_bar.setValue(progress.done)

    def _on_scanned(self, grouped: _Grouped) -> None:
        self._scan_job = None
        scan = self._scan = grouped.scan
        self._gone.clear()
        self._edited()
        self._show_grouped(grouped)
        text = "Scan cancelled: showing nothing." if scan.cancelled else self._summary()
        if scan.problems:
            text += f" {unreadable_text(scan.problems)} Index the folder again to read them."
        self._set_busy(False, text)
        self.scan_finished.emit(len(self._groups))

    def _on_failed(self, error: WorkerError) -> None:
        self._scan_job = None
        self._set_busy(False, f"Failed: {error.message}")

    def _summary(self) -> str:
        if self._scan is None:
            return ""
        tally = self._tally()
        text = (f"{count_text(len(self._groups), 'group')}, {tally.photos} photos; "
                f"{size_text(tally.size_not_kept)} in photos not kept." if self._groups else
                f"No group of near-duplicates at the threshold {self.threshold:.2f}.")
        if self._hidden:
            text += f" {count_text(self._hidden, 'group')} hidden by your decisions (Decisions… lists them)."
        text += f" Scanned {self._scan.age_text}."
        if not self._scan.up_to_date:
            text += f" {STALE_SCAN}"
        return text

    # -- what is kept ------------------------------------------------------------------------------

    @property
    def rule(self) -> KeepRule:
        rule = self.rule_combo.currentData()
        if rule is KeepRule.PREFERRED_FOLDER and self._preferred_folder is None:
            return DEFAULT_RULE
        return rule

    def rule_choice(self, group: DuplicateGroup) -> tuple[set[Path], str]:
        """What the rule keeps of a group (the kept file under every name it has in the group), and why
        in a few words."""
        found = self._choice_of(group)
        return set(found.keep), found.reason

    def _choice_of(self, group: DuplicateGroup) -> _RuleChoice:
        found = self._rule_choices.get(group.key)
        if found is None:
            found = self._rule_choices[group.key] = _rule_choice(group, self.rule, self._preferred_folder)
        return found

    def keep_paths(self, group: DuplicateGroup) -> set[Path]:
        """What the user keeps of a group: their own choice, else what the rule picks."""
        chosen = self._keep.get(group.key)
        return set(chosen) if chosen is not None else self.rule_choice(group)[0]

    def keep_reason(self, group: DuplicateGroup) -> str:
        """Why the kept photos are kept: the rule's reason, or the user's choice."""
        chosen = self._keep.get(group.key)
        by_rule, reason = self.rule_choice(group)
        return reason if chosen is None or chosen == by_rule else "your choice"

    def set_preferred_folder(self, folder: Path | None) -> None:
        before, self._preferred_folder = self._preferred_folder, folder
        if self.rule_combo.currentData() is KeepRule.PREFERRED_FOLDER and not self._repick():
            self._preferred_folder = before  # the user kept their choices, and the folder they were made with
        self.folder_button.setToolTip(str(self._preferred_folder) if self._preferred_folder else "")

    def choose_preferred_folder(self) -> None:
        start = str(self._scan.root) if self._scan else ""
        folder = QFileDialog.getExistingDirectory(self, "Prefer to keep photos in", start)
        if folder:
            self.set_preferred_folder(Path(folder))
            self.rule_combo.setCurrentIndex(self.rule_combo.findData(KeepRule.PREFERRED_FOLDER))

    def selections(self) -> list[GroupSelection]:
        return [GroupSelection(g.members, frozenset(self.keep_paths(g))) for g in self._groups]

    def _on_rule_changed(self) -> None:
        if not self._repick():
            self.rule_combo.blockSignals(True)  # the rule before stays, and with it the choices
            self.rule_combo.setCurrentIndex(self.rule_combo.findData(self._rule_shown))
            self.rule_combo.blockSignals(False)

    def _repick(self) -> bool:
        """Every group picked again by the rule shown (a new rule, or another preferred folder): the user's
        own choices are forgotten, once they agree to it. False when they did not."""
        rule = self.rule_combo.currentData()
        chosen_in = sum(1 for group in self._groups if group.key in self._keep)
        if chosen_in and not self.confirm_rule(
            f"Keep the {rule.label} in every group? The photos you chose yourself in "
            f"{count_text(chosen_in, 'group')} are then chosen by the rule, and your choices are forgotten."
        ):
            return False
        self._rule_shown = rule
        if self._keep and self._library_dir is not None:
            self._run(lambda library: library.forget_keep_choices(), lambda _: None)
        self._keep.clear()  # a new rule re-picks every group
        self._undo_steps = [step for step in self._undo_steps if not isinstance(step, _KeepChange)]  # forgotten
        self._rule_choices.clear()
        self._edited()
        self._fill_group_list()
        return True

    # -- reviewing one group -----------------------------------------------------------------------

    def current_group(self) -> DuplicateGroup | None:
        row = self.group_list.currentRow()
        return self._groups[row] if 0 <= row < len(self._groups) else None

    def shown_members(self) -> list[DuplicateMember]:
        """The current group's photos in the order shown: the kept ones first."""
        group = self.current_group()
        if group is None:
            return []
        by_path = {m.path: m for m in group.members}
        return [by_path[Path(self.member_list.item(i).data(PathRole))] for i in range(self.member_list.count())]

    def selected_members(self) -> list[DuplicateMember]:
        """The selected photos of the group on screen (the current one when none is), in shown order."""
        members = self.shown_members()
        rows = sorted(index.row() for index in self.member_list.selectedIndexes())
        if not rows and self.member_list.currentRow() >= 0:
            rows = [self.member_list.currentRow()]
        return [members[row] for row in rows if row < len(members)]

    def next_group(self) -> None:
        if self.group_list.currentRow() + 1 < self.group_list.count():
            self.group_list.setCurrentRow(self.group_list.currentRow() + 1)

    def previous_group(self) -> None:
        if self.group_list.currentRow() > 0:
            self.group_list.setCurrentRow(self.group_list.currentRow() - 1)

    def keep_selected(self) -> None:
        self._set_kept(self.selected_members(), True)

    def reject_selected(self) -> None:
        self._set_kept(self.selected_members(), False)

    def _set_kept(self, members: list[DuplicateMember], kept: bool) -> None:
        group = self.current_group()
        if group is None or not members or self._busy:
            return
        keep = self.keep_paths(group)
        keep = keep | {m.path for m in members} if kept else keep - {m.path for m in members}
        if not keep:
            self.status_label.setText("One photo of a group is always kept: keep another one first.")
            return
        rows = [self.shown_members().index(m) for m in members]
        self._choose_keep(group, keep)
        following = max(rows) + 1  # the next photo, so K and R step through the group
        if following < self.member_list.count():
            self.member_list.setCurrentRow(following)
        self.status_label.setText(self._summary())

    def compare_selected(self) -> CompareDialog | None:
        """The two selected photos side by side, or the selected one beside the (first) kept one."""
        group = self.current_group()
        if group is None or len(group.members) < 2:
            return None
        selected = self.selected_members()
        if len(selected) >= 2:
            left, right = selected[:2]
        else:
            keep = self.keep_paths(group)
            left = next((m for m in self.shown_members() if m.path in keep), group.members[0])
            focus = selected[0] if selected else None
            right = focus if focus is not None and focus is not left else next(m for m in group.members if m is not left)
        if self.compare_dialog is not None:
            self.compare_dialog.close()
        dialog = CompareDialog(left, right, self._jobs, self, kept=self.keep_paths(group))
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.keep_chosen.connect(lambda keep, drop, key=group.key: self._keep_instead(key, keep, drop))
        dialog.destroyed.connect(lambda _=None, closed=dialog: self._compare_closed(closed))
        dialog.show()
        self.compare_dialog = dialog
        return dialog

    def _compare_closed(self, dialog: CompareDialog) -> None:
        if self.compare_dialog is dialog:  # not a newer one
            self.compare_dialog = None

    def _keep_instead(self, key: str, keep: Path, drop: Path) -> None:
        group = self.current_group()
        if group is None or group.key != key:
            return
        self._choose_keep(group, (self.keep_paths(group) - {drop}) | {keep})
        self.status_label.setText(self._summary())

    def _show_group(self, row: int) -> None:
        """Show a group from the top, its kept photos first."""
        group = self._groups[row] if 0 <= row < len(self._groups) else None
        keep = self.keep_paths(group) if group is not None else set()
        ordered = [] if group is None else sorted(group.members, key=lambda m: m.path not in keep)
        self.member_list.blockSignals(True)
        self.member_list.clear()
        for m in ordered:
            item = QListWidgetItem()
            item.setData(PathRole, str(m.path))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            pixmap = self.thumbnails.pixmap(m.path)
            if pixmap is not None:
                item.setIcon(QIcon(pixmap))
            self.member_list.addItem(item)
        self.member_list.blockSignals(False)
        self.member_list.scrollToTop()
        if group is not None:
            # The first photo not kept is current: K, R and C apply to it at once.
            self.member_list.setCurrentRow(next((n for n, m in enumerate(ordered) if m.path not in keep), 0))
            self._refresh_members(group)
        elif self._scan is None:
            self.group_title.setText("")
            self.keeper_label.setText("")
        else:  # said where the group would be, not only in the status line
            reviewed = bool(self._gone or self._hidden)
            self.group_title.setText("Nothing left to review" if reviewed else "No near-duplicates")
            self.keeper_label.setText(
                ("Every group is resolved or hidden by your decisions. " if reviewed else "")
                + "A lower match threshold finds looser matches; Find duplicates also checks photos added since.")
        self._update_group_buttons()  # what Resolve all removes is the same whichever group is shown

    def _edited(self) -> None:
        """What is listed or kept changed."""
        self._edits += 1

    def _tally(self) -> _Tally:
        if self._tally_of is None or self._tally_of[0] != self._edits:
            photos = groups = not_kept = size = 0
            for group in self._groups:
                chosen = self._keep.get(group.key)
                if chosen is None:
                    by_rule = self._choice_of(group)
                    left, left_size = by_rule.not_kept, by_rule.size_not_kept
                else:
                    sizes = [m.size for m in group.members if m.path not in chosen]
                    left, left_size = len(sizes), sum(sizes)
                photos += len(group.members)
                groups += left > 0
                not_kept += left
                size += left_size
            self._tally_of = (self._edits, _Tally(photos, groups, not_kept, size))
        return self._tally_of[1]

    def _choose_keep(self, group: DuplicateGroup, keep: set[Path], *, undoable: bool = True) -> None:
        """The user keeps `keep` of a group: shown, counted, and kept in the library for a restart."""
        if keep == self.keep_paths(group):
            self._refresh_members(group)  # a tick put back as it was: nothing to remember or undo
            return
        if undoable:
            before = self._keep.get(group.key)
            self._undo_steps.append(_KeepChange(group.key, frozenset(before) if before is not None else None))
        by_rule = keep == self.rule_choice(group)[0]
        if by_rule:
            self._keep.pop(group.key, None)
        else:
            self._keep[group.key] = keep
        self._run(lambda library: library.remember_keep(group, None if by_rule else sorted(keep)), lambda _: None)
        self._edited()
        self._refresh_members(group)
        self._update_resolve_all()

    def _row_of(self, group: DuplicateGroup) -> int:
        """The group's row in the list (-1: not listed), found by identity: the one on screen at once,
        and without comparing a thousand groups member by member."""
        row = self.group_list.currentRow()
        if 0 <= row < len(self._groups) and self._groups[row] is group:
            return row
        return next((n for n, listed in enumerate(self._groups) if listed is group), -1)

    def _refresh_members(self, group: DuplicateGroup) -> None:
        """The ticks, texts and titles after what is kept changed (the order stays while one looks)."""
        keep = self.keep_paths(group)
        reason = self.keep_reason(group)
        row = self._row_of(group)
        self.group_title.setText(
            f"Group {row + 1} of {len(self._groups)} · {count_text(len(group.members), 'photo')} · "
            f"{size_text(group.total_size)}"
        )
        kept_names = [m.path.name for m in self.shown_members() if m.path in keep]
        self.keeper_label.setText(
            f"<span style='color:{KEPT_COLOUR.name()}'><b>Keeping {html.escape(', '.join(kept_names))}</b></span>"
            f" — {html.escape(reason)}. The others go when the group is resolved."
        )
        self.member_list.blockSignals(True)
        # copies in other folders (a phone backup beside the originals): each tile says which folder it is in
        in_folders = len({m.path.parent for m in group.members}) > 1
        largest = max(m.size for m in group.members)
        for member, i in zip(self.shown_members(), range(self.member_list.count()), strict=True):
            item = self.member_list.item(i)
            kept = member.path in keep
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(member.date))
            matched = f"match {member.similarity:.2f}" + (f", agrees with {member.agreeing}" if member.agreeing else "")
            last = f"Kept: {reason.split(';')[0]}" if kept else matched
            name = f"{member.path.parent.name}/{member.path.name}" if in_folders else member.path.name
            item.setText(f"{name}\n{member.width}×{member.height} · {size_text(member.size, like=largest)}\n{when}\n{last}")
            item.setToolTip(f"{member.path}\nIn this group: {member.reason}\n"
                            "K keeps it, R does not; C compares it with the kept photo")
            item.setCheckState(Qt.CheckState.Checked if kept else Qt.CheckState.Unchecked)
        self.member_list.blockSignals(False)
        self.member_list.texts_changed()
        self.member_list.viewport().update()
        self.group_list.group_model().refresh_row(self._row_of(group))

    def _on_member_checked(self, item: QListWidgetItem) -> None:
        group = self.current_group()
        if group is None or (Path(item.data(PathRole)) in self.keep_paths(group)) == _is_checked(item):
            return  # another change of the item (its icon): what is kept stays
        keep = {Path(self.member_list.item(i).data(PathRole)) for i in range(self.member_list.count())
                if _is_checked(self.member_list.item(i))}
        if not keep:
            self.status_label.setText("One photo of a group is always kept: keep another one first.")
            self._refresh_members(group)
            return
        self._choose_keep(group, keep)
        if not self._busy:
            self.status_label.setText(self._summary())

    # -- the group list ----------------------------------------------------------------------------

    def _regroup(self, then: Callable[[], None] | None = None) -> None:
        """Group the scan again (threshold, decisions, moved photos) in a job, as _grouping does: at
        10,000 photos that takes a few hundred milliseconds, which no step of the threshold slider may
        freeze the window for. Asked while one runs, it runs once more when that one ends, with what is
        asked then. `then` runs once the groups are shown."""
        if then is not None and then not in self._after_regroup:  # a drag's steps show one summary
            self._after_regroup.append(then)
        self._regroups_asked += 1
        if self._scan is None or self._scan.cancelled:
            self._show_regrouped(_Grouped(self._scan, self.threshold, self.rule, self._preferred_folder, [], 0, {}))
        elif not self._regrouping:
            self._regrouping = True
            # at the threshold the review is at, the groups keep the order it goes through them in
            ranks = dict(self._review_rank) if self._grouped_at == self.threshold else None
            asked, grouping, scan = self._regroups_asked, self._grouping(ranks=ranks), replace(self._scan)  # a copy: decisions change
            self._jobs.submit(lambda progress, cancel: (asked, grouping(scan)), name="duplicates regroup",
                              on_finished=self._on_regrouped, on_failed=self._on_regroup_failed)

    def _on_regrouped(self, outcome: tuple[int, _Grouped]) -> None:
        asked, grouped = outcome
        self._regrouping = False
        if asked != self._regroups_asked:  # asked again meanwhile (or another scan came): group as asked now
            self._regroup()
        else:
            self._show_regrouped(grouped)

    def _on_regroup_failed(self, error: WorkerError) -> None:
        self._regrouping = False
        self.status_label.setText(f"Failed: {error.message}")
        self._run_after_regroup()

    def _show_regrouped(self, grouped: _Grouped) -> None:
        """The group on screen stays on screen, as what is left of it when a photo was taken out; a
        group resolved away gives its row to the next one."""
        current, row = self.current_group(), self.group_list.currentRow()
        same_review = grouped.threshold == self._grouped_at
        self._groups, self._hidden, self._grouped_at = grouped.groups, grouped.hidden, grouped.threshold
        self._review_rank = review_ranks(self._groups, self._review_rank if same_review else None)
        self._edited()
        if (grouped.rule, grouped.folder) == (self.rule, self._preferred_folder):
            self._rule_choices.update(grouped.choices)
        # an undo shows the group it put photos back into (the resolve had moved on to the next)
        before = self._put_back or ({m.path for m in current.members} if current is not None else set())
        self._put_back = set()
        if before:
            shared = [len(before & {m.path for m in g.members}) for g in self._groups]
            if shared and max(shared) > 0:
                row = shared.index(max(shared))
        self._fill_group_list(min(max(row, 0), len(self._groups) - 1))
        self._run_after_regroup()

    def _run_after_regroup(self) -> None:
        waiting, self._after_regroup = self._after_regroup, []
        for then in waiting:
            then()

    def _show_summary(self) -> None:
        if not self._busy:
            self.status_label.setText(self._summary())

    def _fill_group_list(self, row: int | None = None) -> None:
        row = self.group_list.currentRow() if row is None else row
        self.group_list.blockSignals(True)  # the group is shown once, below
        self.group_list.group_model().set_groups(self._groups)
        self.group_list.setCurrentRow(row if self._groups else -1)
        self.group_list.blockSignals(False)
        self._show_group(self.group_list.currentRow())
        self._update_enabled()

    def _kept_members(self, group: DuplicateGroup) -> list[DuplicateMember]:
        """The photos a group keeps, for its row: the first one is shown."""
        keep = self.keep_paths(group)
        return [m for m in group.members if m.path in keep] or [group.members[0]]

    def _on_threshold_changed(self, value: int) -> None:
        self.threshold_label.setText(f"{value / 100:.2f}")
        if self._scan is not None:
            self._regroup(then=self._show_summary)

    def _on_thumbnail(self, path: str) -> None:
        pixmap = self.thumbnails.pixmap(path)
        if pixmap is None:
            return
        icon = QIcon(pixmap)
        members = [self.member_list.item(i) for i in range(self.member_list.count())]  # one group's: a few
        self.member_list.blockSignals(True)  # a new icon is no change of what is kept
        for item in members:
            if item.data(PathRole) == path:
                item.setIcon(icon)
        self.member_list.blockSignals(False)
        self.member_list.viewport().update()

    # -- decisions ---------------------------------------------------------------------------------

    def mark_group(self, decision: str) -> None:
        """The whole group on screen is "not_duplicates" or "keep_all": hidden until it changes."""
        group = self.current_group()
        if group is None or self._busy:
            return
        self._decide(lambda library: library.decide(group, decision), photos=[m.path for m in group.members])

    def take_out_selected(self) -> None:
        """The selected photos leave their group (several selected: they split off as a group of their own)."""
        group = self.current_group()
        selected = self.selected_members()
        if group is None or not selected or len(selected) == len(group.members) or self._busy:
            return
        rest = [m for m in group.members if m not in selected]
        self._decide(lambda library: library.separate(selected, rest),
                     then=lambda: self._say_where_taken([m.path for m in selected], [m.path for m in rest]),
                     photos=[m.path for m in group.members], chosen=self._keep.get(group.key))

    def _say_where_taken(self, taken: list[Path], rest: list[Path]) -> None:
        """Where photos taken out went: said, or it looked as if they had vanished from the review."""
        holding = [g for g in self._groups if any(m.path in taken for m in g.members)]
        if len(taken) == 1:
            place = "in another group" if holding else "in no group"
            said = f"{taken[0].name} left this group: it is {place} now"
        else:
            own = len(holding) == 1 and {m.path for m in holding[0].members} == set(taken)
            place = "form a group of their own" if own else "are in other groups" if holding else "are in no group"
            said = f"{count_text(len(taken), 'photo')} split off this group: they {place} now"
        if len(rest) == 1 and not any(m.path == rest[0] for g in self._groups for m in g.members):
            said += f"; {rest[0].name}, left alone, is in no group either"  # the group is gone
        self.status_label.setText(f"{said}{self._left_with(rest, 'it' if len(taken) == 1 else 'them')} "
                                  "(Ctrl+Z takes this back).")

    def _left_with(self, rest: list[Path], them: str) -> str:
        """Photos of the `rest` of a group that left it with the ones taken out or told apart (`them`), in
        words: in it only through those (a crop of a crop, a photo in by agreement), they vanished unsaid."""
        group = self.current_group()
        members = {m.path for m in group.members} if group is not None else set()
        if not members & set(rest):  # the group is gone: said already
            return ""
        gone = [path.name for path in rest if path not in members]
        return f"; {', '.join(gone)} left with {them}, in this group only through {them}" if gone else ""

    def mark_pair_not_duplicates(self) -> None:
        """The two selected photos are different pictures. Where one of them is kept, the other leaves the
        group (the photo the user keeps never does); else the one less like the group leaves, and every
        other link of the group stays."""
        group = self.current_group()
        selected = self.selected_members()
        if group is None or len(selected) != 2 or self._busy:
            self.status_label.setText("Select the two photos that are not duplicates of each other.")
            return
        first, second = selected
        kept, paths = self.keep_paths(group), [m.path for m in group.members]
        if (first.path in kept) != (second.path in kept):
            stays, other = (first, second) if first.path in kept else (second, first)
            rest = [m for m in group.members if m is not other]
            self._decide(lambda library: library.separate([other], rest),
                         then=lambda: self._say_who_left(stays.path, other.path, "the photo kept", paths),
                         photos=paths, chosen=self._keep.get(group.key))
            return
        self._decide(lambda library: library.separate([first], [second]),
                     then=lambda: self._say_who_left(first.path, second.path, "closer to the rest of the group", paths),
                     photos=paths, chosen=self._keep.get(group.key))

    def _say_who_left(self, first: Path, second: Path, why_it_stayed: str, group_paths: list[Path]) -> None:
        """Two pictures told apart cannot share a group: which one left is said (and any photo of the group,
        `group_paths`, that left with it), or it looked as if a photo had vanished from the review."""
        group = self.current_group()
        members = {m.path for m in group.members} if group is not None else set()

        def place(path: Path) -> str:
            return "in another group" if any(m.path == path for g in self._groups for m in g.members) else "in no group"

        if first not in members and second not in members:  # their group was the two of them (or broke up)
            self.status_label.setText(
                f"{first.name} and {second.name} are not duplicates of each other: their group is gone; "
                f"{first.name} is {place(first)}, {second.name} {place(second)} now (Ctrl+Z takes this back).")
            return
        if first in members and second in members:
            return
        stayed, left = (first, second) if first in members else (second, first)
        self.status_label.setText(
            f"{left.name} left this group: it is not a duplicate of {stayed.name}, {why_it_stayed}. "
            f"It is {place(left)} now{self._left_with([p for p in group_paths if p != left], 'it')} "
            "(Ctrl+Z takes this back).")

    def show_decisions(self) -> None:
        """The decisions kept (groups hidden, photos told apart), any of them to take back: Ctrl+Z takes
        back only this session's. The dialog opens once the separations are read (`decisions_shown`)."""
        if self._scan is None or not (self._scan.decisions or self._scan.separated) or self._busy:
            return
        decisions = self._scan.decisions
        self._run(lambda library: library.separations(), lambda found: self._open_decisions(decisions, found))

    def _open_decisions(self, decisions: list[DecisionRow], separations: list[Separation]) -> None:
        dialog = DecisionsDialog(decisions, separations, self)
        dialog.review_again.connect(self._take_back)
        dialog.open()
        self.decisions_shown.emit(dialog)

    def _take_back(self, decision: Decision, photos: frozenset[Path] = frozenset()) -> None:
        """Forget a decision (Ctrl+Z, or Review again of a hidden group): its groups and photos link again.
        With the `photos` it concerned, the group they link into is shown and said."""
        def take_back(library: Library) -> UserDecisions:
            library.take_back(decision)
            return library.duplicate_decisions()

        def taken_back(decisions: UserDecisions) -> None:
            self._put_back = set(photos)
            self._on_decisions(decisions, then=self._say_taken_back if photos else None)

        self._run(take_back, taken_back)

    def _say_taken_back(self) -> None:
        group = self.current_group()
        self.status_label.setText("Taken back: the photos link again as the scan found them" +
                                  (f" (group {self.group_list.currentRow() + 1}, {count_text(len(group.members), 'photo')})."
                                   if group is not None else "."))

    def _decide(self, work: Callable[[Library], Decision], then: Callable[[], None] | None = None, *,
                photos: Iterable[Path], chosen: set[Path] | None = None) -> None:
        """Run a decision in a job; `photos`: the group it concerns, shown again if Ctrl+Z takes it back;
        `chosen`: the photos the user keeps of it, still kept of what is left of it (_carry_keep)."""
        concerned = frozenset(photos)

        def decide(library: Library) -> tuple[Decision, UserDecisions]:
            return work(library), library.duplicate_decisions()

        def regrouped() -> None:
            if chosen is not None:
                self._carry_keep(concerned, chosen)
            if then is not None:
                then()

        def decided(outcome: tuple[Decision, UserDecisions]) -> None:
            self._undo_steps.append(_DecisionStep(outcome[0], concerned))
            self._on_decisions(outcome[1], regrouped)

        self._run(decide, decided)

    def _carry_keep(self, members: frozenset[Path], chosen: set[Path]) -> None:
        """The photos the user kept of a group that a decision split or took a photo out of stay kept in
        each group left of it (one made only of its photos: a group a new photo joined is reviewed anew).
        QA: taking one photo out dropped the keep choice for the rest, and Resolve would have moved a photo
        the user had chosen to keep."""
        for group in self._groups:
            paths = {m.path for m in group.members}
            still = chosen & paths
            if still and paths <= members and group.key not in self._keep:
                self._choose_keep(group, still, undoable=False)

    def _on_decisions(self, decisions: UserDecisions, then: Callable[[], None] | None = None) -> None:
        if self._scan is None:
            self.decisions_changed.emit()
            return
        self._scan.decisions = decisions.groups
        self._scan.separated = decisions.separated
        self._regroup(then=lambda: (self._show_summary(), then and then(), self.decisions_changed.emit()))

    # -- acting ------------------------------------------------------------------------------------

    @property
    def current_action(self) -> BulkAction:
        return BULK_ACTIONS[self.action_combo.currentData()]

    def set_action(self, name: str, target: Path | None = None) -> None:
        """Choose what resolving does with the photos not kept (and its folder, if it needs one)."""
        self.action_combo.setCurrentIndex(self.action_combo.findData(name))
        if target is not None:
            self.action_targets[name] = Path(target)
        self._show_action_target()

    def _on_action_chosen(self, index: int) -> None:
        action = self.current_action
        if action.target is not None:
            self.choose_target(action)
        self._show_action_target()

    def _show_action_target(self) -> None:
        for i in range(self.action_combo.count()):
            action = BULK_ACTIONS[self.action_combo.itemData(i)]
            target = self.action_targets.get(action.name)
            label = action.label if target is None else f"{action.label.rstrip('…')} {target}"
            elided = self.action_combo.fontMetrics().elidedText(label, Qt.TextElideMode.ElideMiddle,
                                                                 ACTION_LABEL_WIDTH)
            self.action_combo.setItemText(i, elided)
            self.action_combo.setItemData(i, label, Qt.ItemDataRole.ToolTipRole)

    def choose_target(self, action: BulkAction) -> Path | None:
        """Ask for the folder or file an action needs; it is remembered for the next time."""
        if action.target == "folder":
            chosen = QFileDialog.getExistingDirectory(self, "Move the photos not kept into")
            problem = (move_target_problem(Path(chosen), self._scan.root, self._library_dir)
                       if chosen and self._scan is not None and self._library_dir is not None else None)
            if problem is not None:  # said now, not after the question about moving them
                self.status_label.setText(problem)
                return None
        else:
            chosen, _ = QFileDialog.getSaveFileName(self, action.label.rstrip("…"), "duplicates.csv",
                                                    "CSV (*.csv);;JSON (*.json)")
        if chosen:
            self.action_targets[action.name] = Path(chosen)
            self._show_action_target()  # also when asked for by a resolve (QA: the box never named the folder)
        return self.action_targets.get(action.name) if chosen else None

    def _target(self, action: BulkAction) -> Path | None | bool:
        """The action's target, asked for if needed; False when the user cancelled."""
        if action.target is None:
            return None
        target = self.action_targets.get(action.name) or self.choose_target(action)
        return target if target is not None else False

    def resolve_group(self) -> None:
        """Act on the group on screen with the chosen action, then show the next group. An action that
        can be undone runs at once; one that cannot asks first."""
        group = self.current_group()
        if group is None or self._busy:
            return
        selection = GroupSelection(group.members, frozenset(self.keep_paths(group)))
        if not selection.to_remove:
            self.status_label.setText("Every photo of this group is kept: Keep all hides it.")
            return
        action = self.current_action
        target = self._target(action)
        if target is False:
            return
        if not action.undoable and not self.confirm(action.confirmation([selection], target)):
            return
        self._act(action, [selection], target)

    def resolve_all(self) -> None:
        """Act on every group shown, after a question with the counts whose default answer is Cancel."""
        selections = [s for s in self.selections() if s.to_remove]
        if self._busy or not selections:
            return
        action = self.current_action
        target = self._target(action)
        if target is False:
            return
        if not self.confirm(action.confirmation(selections, target)):
            return
        self._act(action, selections, target)

    def run_list_action(self, name: str, target: Path | None = None) -> None:
        """An action that moves no file (the list export) over every group shown."""
        action = BULK_ACTIONS[name]
        if target is not None:
            self.action_targets[name] = Path(target)
        elif self.choose_target(action) is None:
            return
        if self._busy or not self._groups:
            return
        self._act(action, self.selections(), self.action_targets[name])

    def confirmation_box(self, question: str) -> QMessageBox:
        return confirmation_box(self, "Duplicates", question, self.current_action.label.rstrip("…"))

    def confirm(self, question: str) -> bool:
        """Asks before files move; tests replace it."""
        return self.confirmation_box(question).exec() == QMessageBox.StandardButton.Yes

    def confirm_rule(self, question: str) -> bool:
        """Asks before a new rule replaces the user's own choices (Cancel is the default); tests replace it."""
        box = confirmation_box(self, "Duplicates", question, "Use the rule")
        return box.exec() == QMessageBox.StandardButton.Yes

    def _act(self, action: BulkAction, selections: list[GroupSelection], target: Path | None) -> None:
        self._set_busy(True, f"{action.label.rstrip('…')}…")

        def act(library):
            report = library.act(action.name, selections, target)
            if action.moves_files:
                # A group resolved with more than one photo kept is done with: its kept photos are
                # remembered as "keep all", so they do not come back as a group of their own.
                moved = {source for source, _ in report.done}
                for selection in selections:
                    kept = tuple(m for m in selection.members if m.path in selection.keep)
                    if len(kept) > 1 and all(m.path in moved for m in selection.to_remove):
                        library.decide(DuplicateGroup(kept, group_key(m.fingerprint for m in kept)), "keep_all")
            return report, library.action_history(), library.duplicate_decisions()

        self._run(act, self._on_acted)

    def undo_selected(self) -> None:
        entry = self._selected_history()
        if entry is not None:
            self._undo(entry)

    def undo_last(self) -> None:
        """Take back the last thing done on this page in this session (Ctrl+Z): a decision (not
        duplicates, keep all, photos taken out, a pair) or an action, never an older action by surprise."""
        if self._busy or self._library_dir is None:
            return
        if not self._undo_steps:
            self.status_label.setText("Nothing done here to undo. Older actions are undone from the Done list below.")
            return
        step = self._undo_steps.pop()
        if isinstance(step, _DecisionStep):
            self._take_back(step.decision, step.photos)
            return
        if isinstance(step, _KeepChange):
            self._take_back_keep(step)
            return
        entry = next((e for e in self._history if e.action_id == step), None)
        if entry is None or not entry.undoable:
            self.status_label.setText("The last action can no longer be undone.")
            return
        self._undo(entry)

    def _take_back_keep(self, change: _KeepChange) -> None:
        row = next((n for n, group in enumerate(self._groups) if group.key == change.group_key), -1)
        if row < 0:
            self.status_label.setText("The group of the last keep choice is no longer listed (its photos moved "
                                      "or the threshold changed): nothing to take back.")
            return
        group = self._groups[row]
        self.group_list.setCurrentRow(row)
        self._choose_keep(group, set(change.before) if change.before is not None else self.rule_choice(group)[0],
                          undoable=False)
        self.status_label.setText("Keep choice taken back: " + (
            "your choice before it is kept again." if change.before is not None
            else f"the rule picks again ({self.keep_reason(group)})."))

    def _undo(self, entry: ActionEntry) -> None:
        if not entry.undoable or self._library_dir is None or self._busy:
            return
        if entry.action_id in self._undo_steps:
            self._undo_steps.remove(entry.action_id)
        self._set_busy(True, "Putting files back…")
        self._run(
            lambda library: (library.undo(entry.action_id), library.action_history(), library.duplicate_decisions()),
            self._on_acted,
        )

    def _on_acted(self, outcome: tuple[ActionReport, list[ActionEntry], UserDecisions]) -> None:
        report, history, decisions = outcome
        if report.kind != "undo" and report.done and report.moved_files:
            self._undo_steps.append(report.action_id)
        self._on_history(history)

        def finished() -> None:  # once the groups show what the action left
            self._action_said = report.status_line()
            if any(entry.action_id == report.action_id and entry.undoable for entry in history):
                self._action_said += " (Ctrl+Z takes this back)"
            self._set_busy(False, self._action_said)
            self.action_finished.emit(report)

        if self._scan is None:
            finished()
            return
        self._scan.decisions, self._scan.separated = decisions.groups, decisions.separated
        by_path = {self._scan.root / row.path: file_id for file_id, row in self._scan.files.items()}
        if report.kind == "undo":
            back = [source for _, source in report.done] + report.back_by_hand
            self._gone -= {by_path[source] for source in back if source in by_path}
            self._put_back = set(back)
        elif report.moved_files:
            self._gone |= {by_path[source] for source, _ in report.done if source in by_path}
        self._regroup(then=finished)

    def _on_history(self, entries: list[ActionEntry]) -> None:
        self._history = entries
        self.history_combo.blockSignals(True)
        self.history_combo.clear()
        for entry in entries:
            self.history_combo.addItem(entry.text, entry.action_id)
        self.history_combo.blockSignals(False)
        self._update_enabled()
        self.history_changed.emit(entries)

    def _selected_history(self) -> ActionEntry | None:
        row = self.history_combo.currentIndex()
        return self._history[row] if 0 <= row < len(self._history) else None

    # -- state -------------------------------------------------------------------------------------

    def _update_enabled(self) -> None:
        idle = not self._busy
        self.scan_button.setEnabled(idle and self._library_dir is not None and not self._indexing)
        self.scan_button.setToolTip(WAITS_FOR_INDEX if self._indexing else "")
        self.cancel_button.setVisible(self._busy and self._scan_job is not None)
        self._update_group_buttons()
        self._update_resolve_all()
        for button in self.list_buttons.values():
            button.setEnabled(idle and bool(self._groups))
        entry = self._selected_history()
        self.undo_button.setEnabled(idle and entry is not None and entry.undoable)
        self.decisions_button.setEnabled(idle and self._scan is not None
                                      and bool(self._scan.decisions or self._scan.separated))
        if not BULK_ACTIONS["trash"].undoable:
            self.undo_button.setToolTip("Files moved to the trash are put back from the system trash on this system")

    def _update_group_buttons(self) -> None:
        """The buttons acting on the group on screen and its selected photos."""
        group = self.current_group() if not self._busy else None
        selected = len(self.selected_members()) if group is not None else 0
        for button in (self.keep_button, self.reject_button, self.compare_button, self.not_duplicates_button,
                       self.keep_all_button, self.resolve_group_button):
            button.setEnabled(group is not None)
        self.take_out_button.setEnabled(group is not None and 0 < selected < len(group.members))
        self.take_out_button.setText("Split off (T)" if selected > 1 else "Take out (T)")
        self.take_out_button.setToolTip(
            "The selected photos form a group of their own" if selected > 1
            else "This photo is not a duplicate of the others: it leaves the group, the rest stays")
        self.pair_button.setEnabled(selected == 2)

    def _update_resolve_all(self) -> None:
        """What Resolve all would remove, counted over every group: after what is kept or listed changed
        (milliseconds at a thousand groups, so not at each step from group to group)."""
        tally = self._tally() if not self._busy else _Tally(0, 0, 0, 0)
        groups, photos = tally.groups_to_resolve, tally.not_kept
        self.resolve_all_button.setText(f"Resolve all {count_text(groups, 'group')} ({count_text(photos, 'photo')})…"
                                        if groups else "Resolve all groups…")
        self.resolve_all_button.setToolTip(
            f"{self.current_action.label.rstrip('…')}: the {count_text(photos, 'photo')} not kept, "
            f"from every group listed; asks first")
        self.resolve_all_button.setEnabled(groups > 0)
