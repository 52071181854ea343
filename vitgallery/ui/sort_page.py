"""The Sort page: photos sorted into folders by example (core/organise/sort.py). The user picks a
folder whose subfolders are already sorted (Pets/, Receipts/…: the classes, their photos the examples)
and the photos to sort; a classifier head is trained on the examples' vectors (progress and cancel
here), the model's last block too when the user asks for fine-tuning, and each photo gets a suggested
folder and a confidence, "not sure" below the threshold.
Suggestions are accepted all at once, one by one, or changed first; every move is one logged action
that Undo puts back.

Training, suggesting, moving and undoing run as jobs on the window's library.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from vitgallery.core.duplicates import ActionReport
from vitgallery.core.organise.sort import (
    CONFIDENT_FROM,
    SortPlan,
    SortSuggestion,
    apply_suggestions,
    suggest_folders,
)
from vitgallery.core.organise.vectors import OrganiseProgress
from vitgallery.core.words import count_text, unreadable_text
from vitgallery.ui.desktop_thumbnails import DesktopThumbnailCache
from vitgallery.ui.thumbnails import ThumbnailLoader
from vitgallery.ui.widgets import JobPage, confirmation_box
from vitgallery.ui.workers import Job, JobRunner, ModelChoice, WorkerError

log = logging.getLogger(__name__)

THUMBNAIL_SIZE = 64
NO_FOLDER = "Open a folder to sort its photos into folders like your examples."
READY = "Choose the examples and the photos to sort."
SUGGEST_TIP = "Train on the examples, then suggest a folder for each unsorted photo"
PHOTO_COLUMN, FOLDER_COLUMN, CONFIDENCE_COLUMN = range(3)
PHASES = {
    "embedding": "Reading the photos outside the library",
    "training": "Training on the examples",
    "preparing": "Running the examples through the model",
    "fine-tuning": "Fine-tuning the model",
    "suggesting": "Suggesting folders",
}
METHODS = {"head": "the trained head", "knn": "a vote of the nearest examples", "finetuned": "the fine-tuned model"}


class SortPage(QWidget, JobPage):
    """Sort photos into the user's folders by example: suggest, review, accept, undo."""

    suggested = Signal(int)  # suggestions shown
    folders_used = Signal(object, object)  # examples, unsorted: the window remembers them for the next start
    action_finished = Signal(object)  # ActionReport of a move or its undo: the window updates every page

    def __init__(
        self,
        jobs: JobRunner,
        model_choice: Callable[[], ModelChoice],
        parent: QWidget | None = None,
        *,
        thumbnail_cache_dir: Path | None = None,
    ) -> None:
        super().__init__(parent)
        self._jobs = jobs
        self._model_choice = model_choice
        self._has_library = False
        self._job: Job | None = None
        self._busy = False
        self._plan: SortPlan | None = None
        self._sure: set[Path] = set()  # the photos the plan is sure of, whatever folder the user then picks
        self._rows: list[SortSuggestion] = []  # the table's rows, as shown
        self._moved: dict[int, list[SortSuggestion]] = {}  # action id -> the rows it moved (Undo brings them back)
        self._left: dict[Path, SortSuggestion] = {}  # rows whose photo another page moved away, until it is back
        self.thumbnails = ThumbnailLoader(
            THUMBNAIL_SIZE, thumbnail_cache_dir, shared_cache=DesktopThumbnailCache.for_this_desktop(), parent=self
        )
        self.thumbnails.thumbnail_ready.connect(self._on_thumbnail)
        self._build()
        self._update_enabled()

    # -- building ----------------------------------------------------------------------------------

    def _build(self) -> None:
        self.examples_edit = QLineEdit()
        self.examples_edit.setPlaceholderText("A folder whose subfolders are sorted already: Pets/, Receipts/…")
        self.examples_edit.textChanged.connect(self._update_enabled)
        examples_button = QPushButton("Choose…")
        examples_button.clicked.connect(lambda: self._choose(self.examples_edit, "Folder with sorted subfolders"))
        self.unsorted_edit = QLineEdit()
        self.unsorted_edit.setPlaceholderText("The photos to sort (photos already in the example folders stay)")
        self.unsorted_edit.textChanged.connect(self._update_enabled)
        unsorted_button = QPushButton("Choose…")
        unsorted_button.clicked.connect(lambda: self._choose(self.unsorted_edit, "Photos to sort"))
        folders = QGridLayout()
        folders.addWidget(QLabel("Examples"), 0, 0)
        folders.addWidget(self.examples_edit, 0, 1)
        folders.addWidget(examples_button, 0, 2)
        folders.addWidget(QLabel("Unsorted"), 1, 0)
        folders.addWidget(self.unsorted_edit, 1, 1)
        folders.addWidget(unsorted_button, 1, 2)

        self.suggest_button = QPushButton("Suggest folders")
        self.suggest_button.clicked.connect(self.suggest)
        self.finetune_box = QCheckBox("Fine-tune the model")
        self.finetune_box.setToolTip(
            "Also fine-tune the model's last block on the examples; it sorts only if it is more accurate on the "
            "examples held out. Seconds with a GPU, minutes on a CPU."
        )
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.progress_bar = QProgressBar()
        self.progress_bar.hide()
        run_row = QHBoxLayout()
        run_row.addWidget(self.suggest_button)
        run_row.addWidget(self.finetune_box)
        run_row.addWidget(self.cancel_button)
        run_row.addWidget(self.progress_bar, 3)
        run_row.addStretch(1)  # the buttons keep their size while the bar is hidden
        self.status_label = QLabel(NO_FOLDER)
        self.status_label.setWordWrap(True)

        self.table = QTableWidget(0, 3)
        self.focus_while_busy = self.table
        self.table.setHorizontalHeaderLabels(["Photo", "Folder", "Confidence"])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setTabKeyNavigation(False)  # rows are chosen with the arrows; Tab goes on to the buttons
        self.table.setIconSize(QSize(THUMBNAIL_SIZE, THUMBNAIL_SIZE))
        self.table.verticalHeader().setDefaultSectionSize(THUMBNAIL_SIZE + 6)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(PHOTO_COLUMN, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(FOLDER_COLUMN, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(CONFIDENCE_COLUMN, QHeaderView.ResizeMode.ResizeToContents)
        # A header click orders the page's rows (the table's own sorting would part them from self._rows).
        header.setSectionsClickable(True)
        header.setSortIndicatorShown(True)
        header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)  # the plan's order until a column is clicked
        header.sortIndicatorChanged.connect(lambda column, order: self._show(self._rows))
        self.table.itemSelectionChanged.connect(self._update_enabled)

        self.accept_all_button = QPushButton("Move all with a folder")
        self.accept_all_button.clicked.connect(self.accept_all)
        self.accept_selected_button = QPushButton("Move selected")
        self.accept_selected_button.clicked.connect(self.accept_selected)
        self.undo_button = QPushButton("Undo")
        self.undo_button.clicked.connect(self.undo)
        actions = QHBoxLayout()
        actions.addWidget(self.accept_all_button)
        actions.addWidget(self.accept_selected_button)
        actions.addStretch(1)
        actions.addWidget(self.undo_button)

        layout = QVBoxLayout(self)
        layout.addLayout(folders)
        layout.addLayout(run_row)
        layout.addWidget(self.status_label)
        layout.addWidget(self.table, 1)
        layout.addLayout(actions)

    def _choose(self, edit: QLineEdit, title: str) -> None:
        folder = QFileDialog.getExistingDirectory(self, title, edit.text() or str(Path.home()))
        if folder:
            edit.setText(folder)

    # -- state from the window ---------------------------------------------------------------------

    def set_library(self, has_library: bool) -> None:
        """The window opened another library (or none): suggestions made for the old one are dropped. The
        photos to sort are the user's to name: the whole photo folder as a default had "Move all" take
        photos from every folder of the library into the example folders."""
        self.cancel()
        self._has_library = has_library
        self._plan = None
        self._moved.clear()
        self._left.clear()
        self._show([])
        self.status_label.setText(READY if has_library else NO_FOLDER)
        self._update_enabled()

    def remove_paths(self, paths: set[Path]) -> None:
        """Photos that left (moved, deleted) leave the table."""
        if any(s.path in paths for s in self._rows):
            self._left.update((s.path, s) for s in self._rows if s.path in paths)
            self._show([s for s in self._rows if s.path not in paths])

    def paths_back(self, paths: set[Path]) -> None:
        """Photos put back where they were (another page's Undo, also of a move this page made) come back to
        the table with their suggestion."""
        back = [self._left.pop(path) for path in paths if path in self._left]
        back += self._take_moved(paths)
        if back:
            self._show(sorted([*self._rows, *back], key=lambda s: str(s.path)))

    def set_folders(self, examples: Path, unsorted: Path) -> None:
        self.examples_edit.setText(str(examples))
        self.unsorted_edit.setText(str(unsorted))

    def shutdown(self) -> None:
        self.cancel()
        self.thumbnails.shutdown(200)

    # -- suggesting --------------------------------------------------------------------------------

    def suggest(self) -> None:
        if not self._has_library or self._busy:
            return
        examples = Path(self.examples_edit.text().strip()).expanduser()  # a pasted path may end in a space
        unsorted = Path(self.unsorted_edit.text().strip()).expanduser()
        session, choice = self._jobs.session, self._model_choice()
        finetune = self.finetune_box.isChecked()
        self._plan = None
        self._show([])  # the suggestions of other folders or examples: not to be moved once this run fails
        self._set_busy(True, "Reading the examples and the photos to sort…")
        self.folders_used.emit(examples, unsorted)
        job = self._jobs.submit_library(
            lambda library, progress, cancel: suggest_folders(
                library,
                unsorted,
                examples,
                lambda: session.search_embedder(library, choice),  # photos outside the library; fine-tuning
                finetune=finetune,
                progress=progress,
                cancel=cancel,
            ),
            name="sort by example",
            on_progress=self._on_progress,
            on_finished=lambda plan: self._on_suggested(job, plan),
            on_failed=lambda error: self._on_failed(job, error),
        )
        self._job = job
        self._update_enabled()

    def cancel(self) -> None:
        if self._job is not None:
            self._job.cancel()
            self._job = None
            self._set_busy(False, "Cancelled: nothing was moved.")

    def _on_progress(self, progress: OrganiseProgress) -> None:
        phase = PHASES.get(progress.phase, progress.phase)
        self.status_label.setText(f"{phase}…")  # the line and the bar say the same step
        self.progress_bar.setFormat(f"{phase}: %v of %m")
        self.progress_bar.setRange(0, max(progress.total, 1))
        self.progress_bar.setValue(progress.done)
        # wide enough for its longest text, which a narrow window otherwise cuts off
        longest = f"{phase}: {progress.total} of {progress.total}"
        self.progress_bar.setMinimumWidth(self.progress_bar.fontMetrics().horizontalAdvance(longest) + 24)

    def _on_suggested(self, job: Job, plan: SortPlan) -> None:
        if job is not self._job:
            return
        self._job = None
        self._plan = plan
        self._sure = {s.path for s in plan.suggestions if s.folder is not None}
        self._left.clear()
        self._show(plan.suggestions)
        sure = len(self._sure)
        method = METHODS[plan.method]
        right = plan.right_on_held_out(plan.method)
        checked = f"; it sorted {right} examples held out right" if right is not None else ""
        text = (
            f"{count_text(len(plan.suggestions), 'photo')}: {sure} sure, {len(plan.suggestions) - sure} not sure "
            f"(below {CONFIDENT_FROM[plan.method]:.0%}, or unlike the folder's examples). Sorted by {method}{checked}."
        )
        tuned = plan.right_on_held_out("finetuned")
        if tuned is not None and plan.method != "finetuned":
            text += f" The fine-tuned model sorted {tuned} right, no more than that, and was not used."
        if plan.problems:
            text += " " + unreadable_text(plan.problems)
        self._set_busy(False, text)
        self.suggested.emit(len(plan.suggestions))

    def _on_failed(self, job: Job, error: WorkerError) -> None:
        if job is not self._job or job.cancelled:
            return
        self._job = None
        self._set_busy(False, f"Failed: {error.message}")

    # -- the table ---------------------------------------------------------------------------------

    @property
    def suggestions(self) -> list[SortSuggestion]:
        """The rows as they stand, with the folder the user chose (None: leave the photo where it is)."""
        return list(self._rows)

    def classes(self) -> list[Path]:
        return list(self._plan.classes) if self._plan is not None else []

    def _show(self, suggestions: list[SortSuggestion]) -> None:
        self._rows = self._ordered(suggestions)
        self.table.setRowCount(0)
        self.table.setRowCount(len(self._rows))
        for row, suggestion in enumerate(self._rows):
            photo = QTableWidgetItem(suggestion.path.name)
            photo.setToolTip(str(suggestion.path))
            pixmap = self.thumbnails.pixmap(suggestion.path)
            if pixmap is not None:
                photo.setIcon(QIcon(pixmap))
            self.table.setItem(row, PHOTO_COLUMN, photo)
            self.table.setCellWidget(row, FOLDER_COLUMN, self._folder_combo(suggestion))
            self.table.setItem(row, CONFIDENCE_COLUMN, self._confidence_item(suggestion))
        self._update_enabled()

    def _ordered(self, suggestions: list[SortSuggestion]) -> list[SortSuggestion]:
        """The rows in the order of the column the user clicked; a confidence orders the sure ones apart."""
        header = self.table.horizontalHeader()
        keys: dict[int, Callable[[SortSuggestion], object]] = {
            PHOTO_COLUMN: lambda s: s.path.name.casefold(),
            FOLDER_COLUMN: lambda s: (s.folder is None, s.folder.name.casefold() if s.folder else ""),
            CONFIDENCE_COLUMN: lambda s: (s.path in self._sure, s.confidence),
        }
        key = keys.get(header.sortIndicatorSection())
        if key is None:
            return list(suggestions)
        return sorted(suggestions, key=key, reverse=header.sortIndicatorOrder() is Qt.SortOrder.DescendingOrder)

    def _folder_combo(self, suggestion: SortSuggestion) -> QComboBox:
        """The row's folder list; its data are path strings (findData does not compare Path objects)."""
        combo = QComboBox()
        combo.addItem(f"Leave it (perhaps {suggestion.likeliest.name})", "")
        for folder in self.classes():
            combo.addItem(folder.name, str(folder))
        combo.setCurrentIndex(max(0, combo.findData(str(suggestion.folder or ""))))
        combo.currentIndexChanged.connect(
            lambda index, c=combo, p=suggestion.path: self._change_folder(p, Path(c.currentData()) if c.currentData() else None)
        )
        return combo

    def _confidence_item(self, suggestion: SortSuggestion) -> QTableWidgetItem:
        # as the plan said: a confident photo unlike the folder's examples is not sure either (its 99 % read as sure)
        sure = suggestion.path in self._sure
        unlike = not sure and self._plan is not None and self._plan.unlike_its_examples(suggestion)
        item = QTableWidgetItem(f"{suggestion.shown_confidence:.0%}" + ("" if sure else " · not sure: unlike the examples"
                                                                   if unlike else " · not sure"))
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if not sure:
            item.setForeground(self.palette().placeholderText())
            item.setToolTip("The folder's examples are not much like this photo: too few of them, or none of its "
                            "kind" if unlike else "Under the confidence a move needs")
        return item

    def change_folder(self, path: Path, folder: Path | None) -> None:
        """Choose another folder for a photo (None: leave it), as the row's folder list does."""
        row = next((i for i, s in enumerate(self._rows) if s.path == path), None)
        if row is None:
            return
        combo = self.table.cellWidget(row, FOLDER_COLUMN)
        if isinstance(combo, QComboBox):
            combo.setCurrentIndex(max(0, combo.findData(str(folder or ""))))

    def _change_folder(self, path: Path, folder: Path | None) -> None:
        self._rows = [replace(s, folder=folder) if s.path == path else s for s in self._rows]
        self._update_enabled()

    def _on_thumbnail(self, path: str) -> None:
        for row, suggestion in enumerate(self._rows):
            if str(suggestion.path) == path:
                pixmap = self.thumbnails.pixmap(path)
                item = self.table.item(row, PHOTO_COLUMN)
                if pixmap is not None and item is not None:
                    item.setIcon(QIcon(pixmap))
                return

    # -- moving ------------------------------------------------------------------------------------

    def accept_all(self) -> None:
        chosen = [s for s in self._rows if s.folder is not None]
        folders = len({s.folder for s in chosen})
        unsorted, examples = self.unsorted_edit.text().strip(), self.examples_edit.text().strip()
        if chosen and self.confirm(
            f"Move {count_text(len(chosen), 'photo')} from {unsorted} (and the folders in it) into "
            f"{count_text(folders, 'folder')} of {examples}? "
            "Photos marked \"Leave it\" stay where they are; Undo puts the moved ones back."
        ):
            self._move(chosen)

    def confirm(self, question: str) -> bool:
        """Asks before every suggestion is acted on at once (a single row moves without asking); tests
        replace it."""
        box = confirmation_box(self, "Sort", question, "Move")
        return box.exec() == QMessageBox.StandardButton.Yes

    def accept_selected(self) -> None:
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        self._move([self._rows[row] for row in rows if self._rows[row].folder is not None])

    def _move(self, chosen: list[SortSuggestion]) -> None:
        if not chosen or self._busy:
            return
        self._set_busy(True, f"Moving {count_text(len(chosen), 'photo')}…")
        self._run(lambda library: apply_suggestions(library, chosen), lambda report: self._on_moved(report, chosen))

    def _on_moved(self, report: ActionReport, chosen: list[SortSuggestion]) -> None:
        moved = {source for source, _ in report.done}
        if report.action_id is not None and moved:
            self._moved[report.action_id] = [s for s in chosen if s.path in moved]
        self._show([s for s in self._rows if s.path not in moved])
        self._acted(report)

    def undo(self) -> None:
        if not self._moved or self._busy:
            return
        action_id = max(self._moved)
        # the photos may have come from a folder outside the library's: this page moved them, so back there
        origins = sorted({suggestion.path.parent for suggestion in self._moved[action_id]})
        self._set_busy(True, "Putting the photos back…")
        self._run(lambda library: library.undo(action_id, origins), lambda report: self._on_undone(action_id, report))

    def _on_undone(self, action_id: int, report: ActionReport) -> None:
        returned = self._take_moved({target for _, target in report.done}, action_id)
        self._show(sorted([*self._rows, *returned], key=lambda s: str(s.path)))
        self._acted(report)

    def _take_moved(self, back: set[Path], action_id: int | None = None) -> list[SortSuggestion]:
        """The rows of this page's moves (of one action, or all) whose photos are `back`; a move keeps the
        rows still away, so Undo can try them again (a file was in the way)."""
        returned = []
        for moved_by in [action_id] if action_id is not None else list(self._moved):
            rows = self._moved.pop(moved_by, [])
            returned += [s for s in rows if s.path in back]
            if away := [s for s in rows if s.path not in back]:
                self._moved[moved_by] = away
        return returned

    # -- state -------------------------------------------------------------------------------------

    def _update_enabled(self) -> None:
        idle = not self._busy
        self.suggest_button.setEnabled(
            idle and self._has_library and bool(self.examples_edit.text()) and bool(self.unsorted_edit.text())
        )
        self.suggest_button.setToolTip(SUGGEST_TIP if self._has_library else NO_FOLDER)
        self.finetune_box.setEnabled(idle)
        self.cancel_button.setVisible(self._job is not None)
        with_folder = sum(1 for s in self._rows if s.folder is not None)
        self.accept_all_button.setText(f"Move all with a folder ({with_folder})")
        self.accept_all_button.setEnabled(idle and with_folder > 0)
        selected = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        self.accept_selected_button.setEnabled(
            idle and any(self._rows[index.row()].folder is not None for index in selected)
        )
        self.undo_button.setEnabled(idle and bool(self._moved))
