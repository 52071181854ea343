"""The Duplicates page: groups of near-duplicates, a keep choice per photo, bulk actions with undo.

Everything that reads photos or the library (the scan, the actions, decisions, undo) runs in one
worker thread; the page only keeps the last scan and regroups it when the threshold slider moves,
which needs no I/O.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QSize, Qt, QThread, Signal, Slot
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
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
    QVBoxLayout,
    QWidget,
)

from vitgallery.core import actions
from vitgallery.core.actions import ActionReport, GroupSelection
from vitgallery.core.duplicates import (
    DEFAULT_RULE,
    DEFAULT_THRESHOLD,
    DuplicateGroup,
    DuplicateProgress,
    DuplicateScan,
    KeepRule,
    choose_keeper,
    decide,
    match_reason,
    scan_duplicates,
)
from vitgallery.core.store import Store
from vitgallery.ui.thumbnails import ThumbnailLoader
from vitgallery.ui.workers import abandon_thread

log = logging.getLogger(__name__)

THUMBNAIL_SIZE = 128
SHUTDOWN_WAIT_MS = 5000  # a scan checks for cancel at least every 64 pairs or one photo per thread
PathRole = Qt.ItemDataRole.UserRole + 1
GroupKeyRole = Qt.ItemDataRole.UserRole + 2


@dataclass(frozen=True)
class ActionRequest:
    kind: str  # "trash", "move", "export"
    selections: tuple[GroupSelection, ...]
    target: Path | None = None  # the folder for "move", the file for "export"


@dataclass(frozen=True)
class HistoryEntry:
    action_id: int
    text: str
    undoable: bool


class DuplicatesWorker(QObject):
    """Runs in its own thread; each request opens the library or its database for just that request."""

    progress = Signal(object)  # DuplicateProgress
    scanned = Signal(object)  # DuplicateScan
    acted = Signal(object)  # ActionReport
    decisions_changed = Signal(object)  # list[DecisionRow]
    history = Signal(object)  # list[HistoryEntry]
    library_resolved = Signal(str)  # the library folder of a photo folder
    failed = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.cancel = threading.Event()
        self._last_progress = 0.0

    def _report(self, progress: DuplicateProgress) -> None:
        now = time.monotonic()
        if now - self._last_progress > 0.1 or progress.done == progress.total:
            self._last_progress = now
            self.progress.emit(progress)

    @Slot(str, str)
    def resolve_library(self, folder: str, library_dir: str) -> None:
        from vitgallery.core.library import default_library_dir  # 0.2 s of imports: off the GUI thread

        self.library_resolved.emit(library_dir or str(default_library_dir(Path(folder))))

    @Slot(str)
    def scan(self, library_dir: str) -> None:
        self.cancel.clear()
        try:
            from vitgallery.core.library import Library  # imported in the worker thread, like above

            library = Library.open(library_dir=library_dir)
            try:
                scan = scan_duplicates(library, progress=self._report, cancel=self.cancel)
            finally:
                library.close()
        except Exception as error:  # noqa: BLE001 - shown to the user, never a crash of the window
            log.exception("duplicate scan failed")
            self.failed.emit(str(error))
            return
        self.scanned.emit(scan)

    @Slot(str, object)
    def act(self, library_dir: str, request: ActionRequest) -> None:
        try:
            with _store(library_dir) as store:
                if request.kind == "trash":
                    report = actions.move_to_trash(store, request.selections)
                elif request.kind == "move":
                    report = actions.move_to_folder(store, request.selections, request.target)
                else:
                    report = actions.export_list(store, request.selections, request.target)
                self.history.emit(_history(store))
        except Exception as error:  # noqa: BLE001
            log.exception("duplicate action failed")
            self.failed.emit(str(error))
            return
        self.acted.emit(report)

    @Slot(str, int)
    def undo(self, library_dir: str, action_id: int) -> None:
        try:
            with _store(library_dir) as store:
                report = actions.undo(store, action_id)
                self.history.emit(_history(store))
        except Exception as error:  # noqa: BLE001
            self.failed.emit(str(error))
            return
        self.acted.emit(report)

    @Slot(str, object, str)
    def decide(self, library_dir: str, group: DuplicateGroup, decision: str) -> None:
        try:
            with _store(library_dir) as store:
                decide(store, group, decision)
                self.decisions_changed.emit(store.decisions())
        except Exception as error:  # noqa: BLE001
            self.failed.emit(str(error))

    @Slot(str)
    def load_history(self, library_dir: str) -> None:
        from vitgallery.core.library import DB_NAME

        if not (Path(library_dir) / DB_NAME).exists():
            self.history.emit([])  # not indexed yet: nothing done either
            return
        try:
            with _store(library_dir) as store:
                self.history.emit(_history(store))
        except Exception as error:  # noqa: BLE001
            self.failed.emit(str(error))


class _store:
    """The library's database, open for one request."""

    def __init__(self, library_dir: str) -> None:
        from vitgallery.core.library import DB_NAME

        self.path = Path(library_dir) / DB_NAME

    def __enter__(self) -> Store:
        if not self.path.exists():
            raise FileNotFoundError(f"no library in {self.path.parent}")
        self.store = Store(self.path)
        return self.store

    def __exit__(self, *exc) -> None:
        self.store.close()


def _history(store: Store) -> list[HistoryEntry]:
    return [
        HistoryEntry(a.id, actions.describe_action(a, store.action_items(a.id)), actions.can_undo(store, a))
        for a in store.actions(limit=50)
    ]


def _mark_kept(item: QListWidgetItem) -> None:
    font = item.font()
    font.setBold(item.checkState() == Qt.CheckState.Checked)
    item.setFont(font)


def _size_text(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.0f} kB"


class DuplicatesView(QWidget):
    """Scan a library for near-duplicates, pick what to keep, act on the rest, undo."""

    scan_finished = Signal(int)  # groups shown
    action_finished = Signal(object)  # ActionReport
    history_changed = Signal()
    _request_scan = Signal(str)
    _request_action = Signal(str, object)
    _request_undo = Signal(str, int)
    _request_decision = Signal(str, object, str)
    _request_history = Signal(str)
    _request_resolve = Signal(str, str)

    def __init__(
        self,
        library_dir: Path | None = None,
        parent: QWidget | None = None,
        *,
        thumbnail_cache_dir: Path | None = None,
    ) -> None:
        super().__init__(parent)
        self._library_dir = Path(library_dir) if library_dir else None
        self._scan: DuplicateScan | None = None
        self._groups: list[DuplicateGroup] = []
        self._keep: dict[str, set[Path]] = {}  # group key -> the paths the user keeps
        self._gone: set[int] = set()  # file ids moved away by an action since the scan
        self._preferred_folder: Path | None = None
        self._busy = False
        self._history: list[HistoryEntry] = []

        self.thumbnails = ThumbnailLoader(THUMBNAIL_SIZE, thumbnail_cache_dir, parent=self)
        self.thumbnails.thumbnail_ready.connect(self._on_thumbnail)
        self._build()

        self.worker_thread = QThread(self)
        self.worker_thread.setObjectName("vitgallery-duplicates")
        self.worker = DuplicatesWorker()
        self.worker.moveToThread(self.worker_thread)
        self.worker_thread.finished.connect(self.worker.deleteLater)
        self._request_scan.connect(self.worker.scan)
        self._request_action.connect(self.worker.act)
        self._request_undo.connect(self.worker.undo)
        self._request_decision.connect(self.worker.decide)
        self._request_history.connect(self.worker.load_history)
        self._request_resolve.connect(self.worker.resolve_library)
        self.worker.library_resolved.connect(lambda path: self.set_library(Path(path)))
        self.worker.progress.connect(self._on_progress)
        self.worker.scanned.connect(self._on_scanned)
        self.worker.acted.connect(self._on_acted)
        self.worker.decisions_changed.connect(self._on_decisions_changed)
        self.worker.history.connect(self._on_history)
        self.worker.failed.connect(self._on_failed)
        self.worker_thread.start()
        self._update_enabled()
        if self._library_dir is not None:
            self._request_history.emit(str(self._library_dir))

    # -- building ----------------------------------------------------------------------------------

    def _build(self) -> None:
        self.scan_button = QPushButton("Find duplicates")
        self.scan_button.clicked.connect(self.start_scan)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_scan)
        self.threshold_slider = QSlider(Qt.Orientation.Horizontal)
        self.threshold_slider.setRange(1, 99)
        self.threshold_slider.setValue(round(DEFAULT_THRESHOLD * 100))
        self.threshold_slider.setToolTip(
            "How sure a match must be: to the right, fewer and closer duplicates"
        )
        self.threshold_slider.valueChanged.connect(self._on_threshold_changed)
        self.threshold_label = QLabel()
        self.threshold_label.setMinimumWidth(36)
        self.rule_combo = QComboBox()
        for rule in KeepRule:
            self.rule_combo.addItem(f"Keep the {rule.label}", rule)
        self.rule_combo.currentIndexChanged.connect(self._on_rule_changed)
        self.folder_button = QPushButton("Preferred folder…")
        self.folder_button.clicked.connect(self.choose_preferred_folder)
        self.progress_bar = QProgressBar()
        self.progress_bar.setMaximumWidth(220)
        self.progress_bar.hide()
        top = QHBoxLayout()
        top.addWidget(self.scan_button)
        top.addWidget(self.cancel_button)
        top.addWidget(QLabel("Match threshold"))
        top.addWidget(self.threshold_slider, 1)
        top.addWidget(self.threshold_label)
        top.addWidget(self.progress_bar)
        keep_row = QHBoxLayout()
        keep_row.addWidget(self.rule_combo)
        keep_row.addWidget(self.folder_button)
        keep_row.addStretch(1)

        self.group_list = QListWidget()
        self.group_list.setIconSize(QSize(64, 64))
        self.group_list.currentRowChanged.connect(self._show_group)
        self.member_list = QListWidget()
        self.member_list.setViewMode(QListView.ViewMode.IconMode)
        self.member_list.setIconSize(QSize(THUMBNAIL_SIZE, THUMBNAIL_SIZE))
        self.member_list.setResizeMode(QListView.ResizeMode.Adjust)
        self.member_list.setMovement(QListView.Movement.Static)
        self.member_list.setWordWrap(True)
        self.member_list.setSpacing(8)
        self.member_list.setGridSize(QSize(THUMBNAIL_SIZE + 60, THUMBNAIL_SIZE + 100))
        self.member_list.itemChanged.connect(self._on_member_checked)
        self.not_duplicates_button = QPushButton("Not duplicates")
        self.not_duplicates_button.setToolTip(
            "Hide this group for good (it comes back only if one of its photos changes)"
        )
        self.not_duplicates_button.clicked.connect(lambda: self.mark_group("not_duplicates"))
        self.keep_all_button = QPushButton("Keep all")
        self.keep_all_button.setToolTip("Keep every photo of this group and stop showing it")
        self.keep_all_button.clicked.connect(lambda: self.mark_group("keep_all"))
        self.group_title = QLabel()
        group_bar = QHBoxLayout()
        group_bar.addWidget(self.group_title, 1)
        group_bar.addWidget(self.not_duplicates_button)
        group_bar.addWidget(self.keep_all_button)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addLayout(group_bar)
        right_layout.addWidget(self.member_list, 1)
        splitter = QSplitter()
        splitter.addWidget(self.group_list)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 3)

        self.trash_button = QPushButton("Trash the rest")
        self.trash_button.setToolTip("Move every photo of the group that is not kept to the trash")
        self.trash_button.clicked.connect(self.trash_rest)
        self.move_button = QPushButton("Move the rest…")
        self.move_button.setToolTip("Move every photo of the group that is not kept to a folder")
        self.move_button.clicked.connect(lambda: self.move_rest())
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Save the groups and the choices as CSV or JSON")
        self.export_button.clicked.connect(lambda: self.export_list())
        self.history_combo = QComboBox()
        self.history_combo.setMinimumWidth(160)
        self.history_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.history_combo.setMinimumContentsLength(18)
        self.history_combo.currentIndexChanged.connect(self._update_enabled)
        self.undo_button = QPushButton("Undo")
        self.undo_button.clicked.connect(self.undo_selected)
        bottom = QHBoxLayout()
        bottom.addWidget(self.trash_button)
        bottom.addWidget(self.move_button)
        bottom.addWidget(self.export_button)
        bottom.addStretch(1)
        history = QHBoxLayout()
        history.addWidget(QLabel("Done:"))
        history.addWidget(self.history_combo, 1)
        history.addWidget(self.undo_button)

        self.status_label = QLabel("Find duplicates to see groups of near-identical photos.")
        self.status_label.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(keep_row)
        layout.addWidget(self.status_label)
        layout.addWidget(splitter, 1)
        layout.addLayout(bottom)
        layout.addLayout(history)
        self._on_threshold_changed(self.threshold_slider.value())

    # -- public ------------------------------------------------------------------------------------

    @property
    def threshold(self) -> float:
        return self.threshold_slider.value() / 100

    @property
    def groups(self) -> list[DuplicateGroup]:
        return list(self._groups)

    def set_library(self, library_dir: Path | None) -> None:
        """Show another library (the window opened another folder); the old scan is dropped."""
        library_dir = Path(library_dir) if library_dir else None
        if library_dir == self._library_dir:
            return
        self.cancel_scan()
        self._library_dir = library_dir
        self._scan = None
        self._gone.clear()
        self._keep.clear()
        self._regroup()
        self.status_label.setText("Find duplicates to see groups of near-identical photos.")
        if library_dir is not None:
            self._request_history.emit(str(library_dir))

    def open_folder(self, folder: Path, library_dir: Path | None = None) -> None:
        """Show the library of a photo folder: `library_dir`, or the folder's default library."""
        self.set_library(None)
        self._request_resolve.emit(str(folder), str(library_dir) if library_dir else "")

    def start_scan(self) -> None:
        if self._library_dir is None or self._busy:
            return
        self._set_busy(True, "Looking for near-duplicates…")
        self._request_scan.emit(str(self._library_dir))

    def cancel_scan(self) -> None:
        self.worker.cancel.set()

    def keep_paths(self, group: DuplicateGroup) -> set[Path]:
        """What the user keeps of a group: their own choice, else what the rule picks."""
        chosen = self._keep.get(group.key)
        if chosen is not None:
            return set(chosen)
        choice = choose_keeper(group.members, self.rule, self._preferred_folder)
        return {m.path for m in (choice.member, *choice.same_file)}

    def set_keep(self, group: DuplicateGroup, paths: set[Path]) -> None:
        self._keep[group.key] = set(paths)
        if self._current_group() is group:
            self._show_group(self.group_list.currentRow())

    @property
    def rule(self) -> KeepRule:
        rule = self.rule_combo.currentData()
        if rule is KeepRule.PREFERRED_FOLDER and self._preferred_folder is None:
            return DEFAULT_RULE
        return rule

    def set_preferred_folder(self, folder: Path | None) -> None:
        self._preferred_folder = folder
        self.folder_button.setToolTip(str(folder) if folder else "")
        self._on_rule_changed()

    def choose_preferred_folder(self) -> None:
        start = str(self._scan.root) if self._scan else ""
        folder = QFileDialog.getExistingDirectory(self, "Prefer to keep photos in", start)
        if folder:
            self.set_preferred_folder(Path(folder))
            self.rule_combo.setCurrentIndex(self.rule_combo.findData(KeepRule.PREFERRED_FOLDER))

    def selections(self) -> list[GroupSelection]:
        return [GroupSelection(g.members, frozenset(self.keep_paths(g))) for g in self._groups]

    def trash_rest(self) -> None:
        self._act("trash")

    def move_rest(self, folder: Path | None = None) -> None:
        if folder is None:
            chosen = QFileDialog.getExistingDirectory(self, "Move the photos not kept into")
            if not chosen:
                return
            folder = Path(chosen)
        self._act("move", folder)

    def export_list(self, target: Path | None = None) -> None:
        if target is None:
            chosen, _ = QFileDialog.getSaveFileName(
                self, "Export the list", "duplicates.csv", "CSV (*.csv);;JSON (*.json)"
            )
            if not chosen:
                return
            target = Path(chosen)
        self._act("export", target)

    def undo_selected(self) -> None:
        entry = self._selected_history()
        if entry is None or not entry.undoable or self._library_dir is None or self._busy:
            return
        self._set_busy(True, "Putting files back…")
        self._request_undo.emit(str(self._library_dir), entry.action_id)

    def mark_group(self, decision: str) -> None:
        group = self._current_group()
        if group is None or self._library_dir is None:
            return
        self._request_decision.emit(str(self._library_dir), group, decision)

    def confirm(self, question: str) -> bool:
        """Asks before files move; tests replace it."""
        answer = QMessageBox.question(self, "Duplicates", question)
        return answer == QMessageBox.StandardButton.Yes

    def shutdown(self, wait_ms: int = SHUTDOWN_WAIT_MS) -> bool:
        """Cancel the scan and stop the worker; False when it did not stop in time (it is then left
        to finish on its own, never destroyed while running)."""
        self.cancel_scan()
        self.thumbnails.shutdown(200)
        self.worker_thread.quit()
        if self.worker_thread.wait(wait_ms):
            return True
        log.warning("the duplicates worker did not stop within %d ms", wait_ms)
        abandon_thread(self.worker_thread)
        return False

    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)

    # -- acting ------------------------------------------------------------------------------------

    def _act(self, kind: str, target: Path | None = None) -> None:
        if self._library_dir is None or self._busy or not self._groups:
            return
        selections = tuple(s for s in self.selections() if s.to_remove or kind == "export")
        count = sum(len(s.to_remove) for s in selections)
        if kind != "export":
            if not count:
                self.status_label.setText("Nothing to move: every photo is marked to keep.")
                return
            where = "to the trash" if kind == "trash" else f"into {target}"
            if not self.confirm(
                f"Move {count} photo{'s' if count != 1 else ''} from {len(selections)} "
                f"group{'s' if len(selections) != 1 else ''} {where}?\nThe photos marked keep stay."
            ):
                return
        self._set_busy(True, "Working…")
        self._request_action.emit(str(self._library_dir), ActionRequest(kind, selections, target))

    def _on_acted(self, report: ActionReport) -> None:
        self._set_busy(
            False,
            report.summary()
            + (
                ""
                if not report.problems
                else ": " + "; ".join(f"{path.name} {why}" for path, why in report.problems[:5])
            ),
        )
        if self._scan is not None:
            by_path = {self._scan.root / row.path: file_id for file_id, row in self._scan.files.items()}
            if report.kind in ("trash", "move"):
                self._gone |= {by_path[source] for source, _ in report.done if source in by_path}
            elif report.kind == "undo":
                self._gone -= {by_path[source] for _, source in report.done if source in by_path}
            self._regroup()
        self.action_finished.emit(report)

    def _on_history(self, entries: list[HistoryEntry]) -> None:
        self._history = entries
        self.history_combo.blockSignals(True)
        self.history_combo.clear()
        for entry in entries:
            self.history_combo.addItem(entry.text, entry.action_id)
        self.history_combo.blockSignals(False)
        self._update_enabled()
        self.history_changed.emit()

    def _selected_history(self) -> HistoryEntry | None:
        row = self.history_combo.currentIndex()
        return self._history[row] if 0 <= row < len(self._history) else None

    def _on_decisions_changed(self, decisions) -> None:
        if self._scan is not None:
            self._scan.decisions = decisions
            self._regroup()

    # -- scanning ----------------------------------------------------------------------------------

    def _on_progress(self, progress: DuplicateProgress) -> None:
        names = {"candidates": "Finding candidates", "keypoints": "Reading photos", "verifying": "Comparing"}
        self.progress_bar.setFormat(f"{names.get(progress.phase, progress.phase)} %v/%m")
        self.progress_bar.setRange(0, max(progress.total, 1))
        self.progress_bar.setValue(progress.done)

    def _on_scanned(self, scan: DuplicateScan) -> None:
        self._scan = scan
        self._gone.clear()
        self._regroup()
        text = "Scan cancelled: showing nothing." if scan.cancelled else self._summary()
        if scan.problems:
            text += (
                f" {len(scan.problems)} photo{'s' if len(scan.problems) != 1 else ''} could not be read "
                "(index the folder again)."
            )
        self._set_busy(False, text)
        self.scan_finished.emit(len(self._groups))

    def _on_failed(self, message: str) -> None:
        self._set_busy(False, f"Failed: {message}")

    def _summary(self) -> str:
        if self._scan is None:
            return ""
        photos = sum(len(g.members) for g in self._groups)
        extra = sum(
            g.total_size - sum(m.size for m in g.members if m.path in self.keep_paths(g))
            for g in self._groups
        )
        hidden = self._scan.hidden_count(self.threshold, self._gone)
        text = (
            f"{len(self._groups)} group{'s' if len(self._groups) != 1 else ''}, {photos} photos; "
            f"{_size_text(extra)} in photos not kept."
        )
        if hidden:
            text += f" {hidden} group{'s' if hidden != 1 else ''} hidden by your decisions."
        return text

    # -- showing -----------------------------------------------------------------------------------

    def _on_threshold_changed(self, value: int) -> None:
        self.threshold_label.setText(f"{value / 100:.2f}")
        if self._scan is not None:
            self._regroup()
            if not self._busy:
                self.status_label.setText(self._summary())

    def _on_rule_changed(self) -> None:
        self._keep.clear()  # a new rule re-picks every group
        self._show_group(self.group_list.currentRow())

    def _regroup(self) -> None:
        current = self._current_group()
        self._groups = (
            []
            if self._scan is None or self._scan.cancelled
            else self._scan.groups(self.threshold, exclude=self._gone)
        )
        self.group_list.blockSignals(True)
        self.group_list.clear()
        for group in self._groups:
            seed = group.members[0]
            item = QListWidgetItem(
                f"{len(group.members)} photos · {_size_text(group.total_size)}\n{seed.path.name}"
            )
            item.setData(PathRole, str(seed.path))
            item.setData(GroupKeyRole, group.key)
            pixmap = self.thumbnails.pixmap(seed.path)
            if pixmap is not None:
                item.setIcon(QIcon(pixmap))
            self.group_list.addItem(item)
        self.group_list.blockSignals(False)
        keys = [g.key for g in self._groups]
        row = keys.index(current.key) if current is not None and current.key in keys else 0
        self.group_list.setCurrentRow(row if self._groups else -1)
        self._show_group(self.group_list.currentRow())
        self._update_enabled()

    def _current_group(self) -> DuplicateGroup | None:
        row = self.group_list.currentRow()
        return self._groups[row] if 0 <= row < len(self._groups) else None

    def _show_group(self, row: int) -> None:
        self.member_list.blockSignals(True)
        self.member_list.clear()
        group = self._groups[row] if 0 <= row < len(self._groups) else None
        if group is None:
            self.group_title.setText("")
        else:
            keep = self.keep_paths(group)
            self.group_title.setText(
                f"{len(group.members)} photos, {_size_text(group.total_size)}: ticked photos are kept,"
                " the actions below move the others"
            )
            for m in group.members:
                when = time.strftime("%Y-%m-%d %H:%M", time.localtime(m.date))
                item = QListWidgetItem(
                    f"{m.path.name}\n{m.width}×{m.height} · {_size_text(m.size)}\n{when}\n"
                    f"sharpness {m.sharpness:.0f} · match {m.similarity:.2f}"
                )
                item.setToolTip(f"{m.path}\nIn this group: {match_reason(m.match)}\nTick to keep this photo")
                item.setData(PathRole, str(m.path))
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Checked if m.path in keep else Qt.CheckState.Unchecked)
                _mark_kept(item)
                pixmap = self.thumbnails.pixmap(m.path)
                if pixmap is not None:
                    item.setIcon(QIcon(pixmap))
                self.member_list.addItem(item)
        self.member_list.blockSignals(False)
        self._update_enabled()

    def _on_member_checked(self, item: QListWidgetItem) -> None:
        group = self._current_group()
        if group is None:
            return
        self.member_list.blockSignals(True)
        _mark_kept(item)
        self.member_list.blockSignals(False)
        keep = {
            Path(self.member_list.item(i).data(PathRole))
            for i in range(self.member_list.count())
            if self.member_list.item(i).checkState() == Qt.CheckState.Checked
        }
        self._keep[group.key] = keep
        if not self._busy:
            self.status_label.setText(self._summary())

    def _on_thumbnail(self, path: str) -> None:
        pixmap = self.thumbnails.pixmap(path)
        if pixmap is None:
            return
        for widget in (self.group_list, self.member_list):
            for i in range(widget.count()):
                item = widget.item(i)
                if item.data(PathRole) == path:
                    item.setIcon(QIcon(pixmap))

    def _set_busy(self, busy: bool, text: str) -> None:
        self._busy = busy
        self.status_label.setText(text)
        self.progress_bar.setVisible(busy)
        if busy:
            self.progress_bar.setRange(0, 0)
        self._update_enabled()

    def _update_enabled(self) -> None:
        idle = not self._busy
        has_library = self._library_dir is not None
        self.scan_button.setEnabled(idle and has_library)
        self.cancel_button.setVisible(self._busy)
        has_groups = idle and bool(self._groups)
        for button in (self.trash_button, self.move_button, self.export_button):
            button.setEnabled(has_groups)
        has_group = idle and self._current_group() is not None
        self.not_duplicates_button.setEnabled(has_group)
        self.keep_all_button.setEnabled(has_group)
        entry = self._selected_history()
        self.undo_button.setEnabled(idle and entry is not None and entry.undoable)
        if not actions.TRASH_UNDO_SUPPORTED:
            self.undo_button.setToolTip(
                "Files moved to the trash are put back from the system trash on this system"
            )
