"""The Similar page: the query, its ranked results, what they mean, and the way back to earlier queries.

`SearchPage` owns the query state, the results grid, the line that says what the results are, and
the history (Back/Forward over queries; Esc leaves the results without losing them). A query can be
narrowed to a box drawn on its photo (region_box) and refined by marking results "more like this" /
"not this" (marks); each visit of the history keeps its own box and marks. Its drop zone
(`QueryPanel`) sits beside every page of the window, so the window places it; the page still owns it.
Searches run as jobs on the window's library (workers.JobRunner); a result that came from a partial
index, or from a library that changed since, is searched again by `refresh`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QImage, QKeySequence, QPalette, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from vitgallery.core.fetch import download
from vitgallery.ui.drop import QuerySource
from vitgallery.ui.marks import Mark, MarkingTileDelegate
from vitgallery.ui.preview import PreviewDialog
from vitgallery.ui.region_box import RegionSelector
from vitgallery.ui.results_model import (
    Match,
    PhotoGridView,
    PhotoListModel,
    PhotoTile,
    SortOrder,
    TileAction,
)
from vitgallery.ui.thumbnails import ThumbnailLoader
from vitgallery.ui.widgets import WrappedCaption
from vitgallery.ui.workers import (
    ExplainRequest,
    Job,
    JobRunner,
    ModelChoice,
    ModelLoading,
    QueryBox,
    SearchOutcome,
    SearchRequest,
    WorkerError,
    search_work,
)

log = logging.getLogger(__name__)

BOX_HINT = "Drag on the photo to search part of it"
DROP_HINT = "Drop a photo here\n\nfrom a file manager, a browser\nor the grid, paste it (Ctrl+V)\nor open one (Ctrl+O)"
RESEARCH_DELAY_MS = 300  # the result count spin box settles before searching again
MAX_HISTORY = 20  # each visit keeps its query image (up to 4 MB at 1024 px) and its results


class QueryPanel(QFrame):
    """The drop zone: shows the query photo and the controls that shape the results."""

    result_count_changed = Signal(int)
    min_score_changed = Signal(float)
    clear_requested = Signal()
    box_changed = Signal(object)  # QueryBox, or None: the whole photo again

    def __init__(self, result_count: int, min_score: float, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("queryPanel")
        self.setMinimumWidth(180)
        self.setMaximumWidth(420)
        self._highlighted = False
        self._set_drag_highlight(False)

        self.image = RegionSelector(DROP_HINT)
        self.image.box_drawn.connect(self.set_box)
        self.image.setMinimumSize(150, 150)
        self.image.setMaximumHeight(400)
        self.image.setWordWrap(True)
        self.image.setToolTip("Drop a photo, a file, a link or image data here")
        self.caption = WrappedCaption("No query yet")
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.box_hint = QLabel(BOX_HINT)
        self.box_hint.setWordWrap(True)
        self.box_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.box_hint.setEnabled(False)  # drawn in the faded text colour: a hint, not a message
        self.box_hint.hide()
        self.clear_box_button = QPushButton("Whole photo")
        self.clear_box_button.setToolTip("Clear the box: search with the whole photo again")
        self.clear_box_button.clicked.connect(self.clear_box)
        self.clear_box_button.hide()

        self.count_spin = QSpinBox()
        self.count_spin.setRange(1, 500)
        self.count_spin.setValue(result_count)
        self.count_spin.setToolTip("How many similar photos to look for")
        self.count_spin.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # Tab reaches it; the grid keeps the focus at start
        self.count_spin.valueChanged.connect(self.result_count_changed)

        self.threshold_slider = QSlider(Qt.Orientation.Horizontal)
        self.threshold_slider.setRange(0, 100)
        self.threshold_slider.setValue(round(min_score * 100))
        self.threshold_slider.setToolTip("Hide results less similar than this")
        self.threshold_label = QLabel()
        self.threshold_slider.valueChanged.connect(self._on_threshold_moved)
        self._on_threshold_moved(self.threshold_slider.value(), emit=False)

        self.clear_button = QPushButton("Back to the folder")
        self.clear_button.setToolTip("Leave the results (Esc); Back (Alt+Left) brings them back")
        self.clear_button.clicked.connect(self.clear_requested)
        self.clear_button.setEnabled(False)

        count_row = QHBoxLayout()
        count_row.addWidget(QLabel("Results"))
        count_row.addStretch(1)
        count_row.addWidget(self.count_spin)
        threshold_row = QHBoxLayout()
        threshold_row.addWidget(QLabel("Min. similarity"))
        threshold_row.addStretch(1)
        threshold_row.addWidget(self.threshold_label)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 10, 10, 10)
        layout.addWidget(self.image, 1)
        layout.addWidget(self.caption)
        layout.addWidget(self.box_hint)
        layout.addWidget(self.clear_box_button)
        layout.addSpacing(8)
        layout.addLayout(count_row)
        layout.addLayout(threshold_row)
        layout.addWidget(self.threshold_slider)
        layout.addSpacing(4)
        layout.addWidget(self.clear_button)
        layout.addStretch(1)

    def result_count(self) -> int:
        return self.count_spin.value()

    def min_score(self) -> float:
        return self.threshold_slider.value() / 100

    def show_query(self, image: QImage, caption: str, box: QueryBox | None = None) -> None:
        self.image.set_image(QPixmap.fromImage(image) if not image.isNull() else QPixmap())
        if image.isNull():
            self.image.setText("(no preview for this image)")
        self.caption.setText(caption)
        self.clear_button.setEnabled(True)
        self.image.set_drawing_enabled(not image.isNull())
        self._show_box(box)

    def box(self) -> QueryBox | None:
        return self.image.box()

    def clear_box(self) -> None:
        if self.image.box() is not None:
            self._show_box(None)
            self.box_changed.emit(None)

    def set_box(self, box: QueryBox) -> None:
        """Search with the part of the query in `box` (what drawing it on the photo does)."""
        self._show_box(box)
        self.box_changed.emit(box)

    def _show_box(self, box: QueryBox | None) -> None:
        self.image.set_box(box)
        drawable = self.image.has_image()
        self.box_hint.setVisible(drawable and box is None)
        self.clear_box_button.setVisible(drawable and box is not None)

    def show_pending(self, caption: str) -> None:
        self.caption.setText(caption)
        self.clear_button.setEnabled(True)

    def clear_query(self) -> None:
        self.image.set_image(QPixmap())
        self.image.set_drawing_enabled(False)
        self._show_box(None)
        self.image.setText(DROP_HINT)
        self.caption.setText("No query yet")
        self.clear_button.setEnabled(False)

    def show_failed(self, caption: str) -> None:
        """A query that could not be searched: no photo (the one shown before is not it), and why."""
        self.clear_query()
        self.caption.setText(caption)
        self.clear_button.setEnabled(True)

    def set_drag_highlight(self, on: bool) -> None:
        self._set_drag_highlight(on)

    def _set_drag_highlight(self, on: bool) -> None:
        self._highlighted = on
        if on:
            colour = "palette(highlight)"
        else:
            # Faded text colour: visible on the light and the dark palette alike.
            text = self.palette().color(QPalette.ColorRole.WindowText)
            colour = f"rgba({text.red()}, {text.green()}, {text.blue()}, 90)"
        style = f"#queryPanel {{ border: 2px dashed {colour}; border-radius: 10px; }}"
        if style != self.styleSheet():  # restyling changes the palette: stop when nothing changes
            self.setStyleSheet(style)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self._set_drag_highlight(self._highlighted)

    def _on_threshold_moved(self, value: int, emit: bool = True) -> None:
        self.threshold_label.setText(f"{value / 100:.2f}")
        if emit:
            self.min_score_changed.emit(value / 100)


@dataclass
class Visit:
    """One query as the history keeps it: what was asked and what came back."""

    source: QuerySource
    image: QImage = field(default_factory=QImage)
    tiles: list[PhotoTile] = field(default_factory=list)
    searched: int = 0  # photos the search could find
    asked: int = 0  # the number of results it asked for: all of them copies means there may be more
    partial: bool = False  # searched while indexing ran: more photos may match
    done: bool = False  # results have arrived
    failure: str | None = None  # why its search failed; a failed visit leaves the history when the user moves on
    library_version: int = 0  # the library as it was when searched (SearchPage counts its changes)
    box: QueryBox | None = None  # search with that part of the query photo alone
    marks: dict[Path, Mark] = field(default_factory=dict)  # results marked "more like this" / "not this"

    def marked(self, mark: Mark) -> tuple[Path, ...]:
        return tuple(path for path, kind in self.marks.items() if kind is mark)


def tiles_from(outcome: SearchOutcome) -> list[PhotoTile]:
    return [
        PhotoTile(
            hit.path,
            hit.score,
            hit.cosine,
            hit.inliers,
            Match.SAME if hit.verified else Match.SIMILAR if hit.looks_similar else Match.WEAK,
            date,
            hit.agreement,
            hit.likeness,
        )
        for hit, date in zip(outcome.hits, outcome.dates)
    ]


class SearchPage(QWidget):
    """Ranked results for a query, with the history of queries."""

    results_shown = Signal(int, bool)  # a search finished and its tiles are in the model; True: shown ones refreshed
    failed = Signal(object)  # WorkerError, for the window's message bar
    leave_requested = Signal()  # back to the folder
    revisited = Signal()  # Back or Forward came to a query's results: they are shown

    def __init__(
        self,
        runner: JobRunner,
        thumbnails: ThumbnailLoader,
        thumbnail_size: int,
        model_choice: Callable[[], ModelChoice],
        result_count: int,
        min_score: float,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._runner = runner
        self._model_choice = model_choice
        self._history: list[Visit | None] = []
        self._at = -1
        self._search_job: Job | None = None
        self._search_serial = 0  # only the newest search's answer is shown
        self._download_job: Job | None = None
        self._indexing = False
        self._library_version = 0
        self._preview: PreviewDialog | None = None

        self.query_panel = QueryPanel(result_count, min_score)
        self.query_panel.clear_requested.connect(self.leave)
        self.query_panel.result_count_changed.connect(self._on_result_count_changed)
        self.query_panel.min_score_changed.connect(self.set_min_score)
        self.query_panel.box_changed.connect(self.set_box)

        self.model = PhotoListModel(thumbnails, self)
        self.model.set_min_score(min_score)
        self.delegate = MarkingTileDelegate(thumbnail_size, self.mark_of, self)
        self.delegate.mark_clicked.connect(self.toggle_mark)
        self.view = PhotoGridView(self.model, self.delegate)
        self.view.preview_requested.connect(self.open_preview)
        self.view.activated_row.connect(self.open_preview)
        self.view.add_tile_actions(
            [
                TileAction("Preview beside the query", self._preview_path, single=True),
                None,
                TileAction("More like this (+)", lambda paths: self.mark_paths(paths, Mark.LIKE)),
                TileAction("Not this (−)", lambda paths: self.mark_paths(paths, Mark.UNLIKE)),
                None,  # the window's own actions follow (Find similar photos, Open…)
            ]
        )
        # Keys for the selected results: + / − mark them, as the buttons on a tile do.
        for mark, keys in ((Mark.LIKE, ("+", "=")), (Mark.UNLIKE, ("-",))):
            action = QAction(mark.label, self.view)
            action.setShortcuts([QKeySequence(key) for key in keys])
            action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
            action.triggered.connect(lambda checked=False, m=mark: self.mark_paths(self.view.selected_paths(), m))
            self.view.addAction(action)
        for signal in (self.model.rowsInserted, self.model.rowsRemoved, self.model.modelReset):
            signal.connect(self._update_status)

        self.back_action = QAction("Back", self)
        self.back_action.setShortcut(QKeySequence(QKeySequence.StandardKey.Back))
        self.back_action.setToolTip("The previous query (Alt+Left)")
        self.back_action.triggered.connect(self.back)
        self.forward_action = QAction("Forward", self)
        self.forward_action.setShortcut(QKeySequence(QKeySequence.StandardKey.Forward))
        self.forward_action.setToolTip("The next query (Alt+Right)")
        self.forward_action.triggered.connect(self.forward)
        for action in (self.back_action, self.forward_action):
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)

        back_button, forward_button = QToolButton(), QToolButton()
        back_button.setDefaultAction(self.back_action)
        back_button.setArrowType(Qt.ArrowType.LeftArrow)
        forward_button.setDefaultAction(self.forward_action)
        forward_button.setArrowType(Qt.ArrowType.RightArrow)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.status_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.sort_combo = QComboBox()
        for order in (SortOrder.RANK, SortOrder.NAME, SortOrder.DATE):
            self.sort_combo.addItem(order.label, order)
        self.sort_combo.setToolTip("Order of the results")
        self.sort_combo.currentIndexChanged.connect(
            lambda: self.model.set_sort_order(self.sort_combo.currentData())
        )
        header = QHBoxLayout()
        header.setContentsMargins(4, 2, 4, 2)
        header.addWidget(back_button)
        header.addWidget(forward_button)
        # Its arrow lists the marks one by one: a photo marked "not this" leaves the results, so its own
        # tile cannot take the mark off.
        self.clear_marks_button = QToolButton()
        self.clear_marks_button.setToolTip("Forget the marks: the results of the query alone (the arrow: one mark)")
        self.clear_marks_button.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        self.clear_marks_button.setMenu(QMenu(self.clear_marks_button))
        self.clear_marks_button.menu().aboutToShow.connect(self._fill_marks_menu)
        self.clear_marks_button.clicked.connect(self.clear_marks)
        self.clear_marks_button.hide()
        header.addWidget(self.status_label, 1)
        header.addWidget(self.clear_marks_button)
        header.addWidget(self.sort_combo)

        self.empty_label = QLabel()
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.empty_label.setMargin(24)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.view)
        self.stack.addWidget(self.empty_label)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(header)
        layout.addWidget(self.stack, 1)
        self._show_current()  # no query yet: nothing to go back or forward to

    # -- the current query -------------------------------------------------------------------------

    @property
    def current(self) -> Visit | None:
        return self._history[self._at] if 0 <= self._at < len(self._history) else None

    def search(self, source: QuerySource) -> None:
        """Search with a dropped, pasted or opened image; a URL is downloaded first."""
        if source.url is not None:
            self._download(source)
            return
        self._push(Visit(source))
        self._run_search()

    def refresh(self) -> None:
        """Search the current query again: the library changed (indexing ended, files moved)."""
        visit = self.current
        if visit is not None:
            self._run_search(keep_shown=True)

    def library_changed(self) -> None:
        """The library changed outside an index run (the folder watcher applied a batch): the
        results shown are searched again, those back in the history when visited."""
        self._library_version += 1
        self.refresh()

    def set_indexing(self, running: bool, library_changed: bool = False) -> None:
        """Indexing started or ended; results from a partial index, or from a library that indexing
        changed, are searched again."""
        was_running, self._indexing = self._indexing, running
        if library_changed:
            self._library_version += 1
        visit = self.current
        if visit is not None and was_running and not running and (library_changed or visit.partial or not visit.done):
            self.refresh()
        self._update_status()

    def leave(self) -> None:
        """Esc: back to the folder; the results stay one step back in the history."""
        if self.current is not None:
            self._push(None)
            self._show_current()
        self.leave_requested.emit()

    def back(self) -> None:
        if self._drop_failed():
            self._revisit()
        elif self._at > 0:
            self._at -= 1
            self._revisit()

    def forward(self) -> None:
        dropped = self._drop_failed()
        if self._at + 1 < len(self._history):
            self._at += 1
            self._revisit()
        elif dropped:
            self._revisit()

    def _drop_failed(self) -> bool:
        """A query whose search failed has no results to come back to: it leaves the history when the
        user moves on (the visit before it is then the current one). True when it went."""
        visit = self.current
        if visit is None or visit.failure is None:
            return False
        del self._history[self._at]
        self._at -= 1
        return True

    def _revisit(self) -> None:
        """Show a visit as kept; search it again if the library changed since. The place before a query
        (where Esc left the results) is the folder."""
        self._show_current()
        visit = self.current
        if visit is None:
            self.leave_requested.emit()
        else:
            self.revisited.emit()
        if visit is not None and visit.done and visit.library_version != self._library_version:
            self.refresh()

    def remove_paths(self, paths: set[Path]) -> None:
        """Photos that left the library (moved away, trashed) leave every kept result too."""
        self.model.remove_paths(paths)
        names = {str(path) for path in paths}
        for visit in self._history:
            if visit is not None:
                visit.tiles = [tile for tile in visit.tiles if str(tile.path) not in names]

    def follow_moves(self, moves: dict[Path, Path]) -> None:
        """A query photo the app itself moved (a group into a folder, a sort) is searched where it went."""
        for visit in self._history:
            if visit is not None and visit.source.path in moves:
                visit.source = replace(visit.source, path=moves[visit.source.path])

    def set_min_score(self, min_score: float) -> None:
        self.model.set_min_score(min_score)

    # -- box and marks -----------------------------------------------------------------------------

    def set_box(self, box: QueryBox | None) -> None:
        """Search with that part of the query photo alone (None: the whole photo again)."""
        visit = self.current
        if visit is None or visit.box == box:
            return
        visit.box = box
        self._run_search(keep_shown=True)

    def mark_of(self, path: Path) -> Mark | None:
        visit = self.current
        return visit.marks.get(Path(path)) if visit is not None else None

    def toggle_mark(self, path: Path, mark: Mark) -> None:
        """A tile's button: mark the photo, or take the mark off when it has this one."""
        visit = self.current
        if visit is None:
            return
        self.mark_paths([path], None if visit.marks.get(Path(path)) is mark else mark)

    def mark_paths(self, paths: list[Path], mark: Mark | None) -> None:
        """Mark results (None: unmark them); the query moves and the results are searched again."""
        visit = self.current
        if visit is None or not visit.done or not paths:
            return
        for path in map(Path, paths):
            if mark is None:
                visit.marks.pop(path, None)
            else:
                visit.marks[path] = mark
        self._marks_changed()

    def _fill_marks_menu(self) -> None:
        menu = self.clear_marks_button.menu()
        menu.clear()
        visit = self.current
        for path, mark in (visit.marks.items() if visit is not None else ()):
            menu.addAction(f"Take off “{mark.label.lower()}”: {path.name}", lambda path=path: self.mark_paths([path], None))

    def clear_marks(self) -> None:
        visit = self.current
        if visit is not None and visit.marks:
            visit.marks.clear()
            self._marks_changed()

    def _marks_changed(self) -> None:
        self.view.viewport().update()
        self._run_search(keep_shown=True)
        self._update_status()

    def set_thumbnail_size(self, size: int) -> None:
        self.view.set_thumbnail_size(size)

    def reset(self) -> None:
        """Another folder: the history belonged to the old library."""
        self._cancel_jobs()
        self._history.clear()
        self._at = -1
        self._show_current()

    def shutdown(self) -> None:
        self._cancel_jobs()
        if self._preview is not None:
            self._preview.close()

    # -- preview -----------------------------------------------------------------------------------

    def open_preview(self, row: int) -> PreviewDialog | None:
        if not 0 <= row < self.model.rowCount():
            return None
        if self._preview is not None:
            self._preview.close()
        visit = self.current
        label = visit.source.label if visit is not None else ""
        image = visit.image if visit is not None else QImage()
        self._preview = PreviewDialog(
            self.model,
            row,
            self._runner,
            self,
            query_image=image,
            query_label=label,
            explain_request=self._explain_request if visit is not None else None,
        )
        self._preview.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._preview.destroyed.connect(self._forget_preview)
        self._preview.show()
        return self._preview

    @property
    def preview(self) -> PreviewDialog | None:
        return self._preview

    def _explain_request(self, result: Path) -> ExplainRequest:
        visit = self.current
        assert visit is not None
        row = self.model.row_of(result)
        tile = self.model.tile_at(row) if row is not None else None
        return ExplainRequest(self._query_of(visit), result, self._model_choice(), visit.box,
                              tile.explanation() if tile else None,
                              tile is not None and (tile.likeness is not None or tile.agreement is not None))

    @staticmethod
    def _query_of(visit: Visit) -> Path | bytes:
        query = visit.source.path if visit.source.path is not None else visit.source.data
        assert query is not None
        return query

    def _forget_preview(self) -> None:
        self._preview = None

    def _preview_path(self, paths: list[Path]) -> None:
        row = self.model.row_of(paths[0])
        if row is not None:
            self.open_preview(row)

    # -- searching ---------------------------------------------------------------------------------

    def _push(self, visit: Visit | None) -> None:
        self._drop_failed()
        del self._history[self._at + 1 :]
        if visit is None and self.current is None:
            return
        self._history.append(visit)
        if len(self._history) > MAX_HISTORY:
            del self._history[0]
        self._at = len(self._history) - 1

    def _download(self, source: QuerySource) -> None:
        assert source.url is not None
        if self._download_job is not None:
            self._download_job.cancel()
        url = source.url
        self.query_panel.show_pending(f"Downloading {source.label}…")

        def fetch(progress, cancel: threading.Event) -> bytes:
            return download(url)

        self._download_job = self._runner.submit(
            fetch,
            lane="download",
            name="download",
            on_finished=lambda data, s=source: self._on_downloaded(s, data),
            on_failed=lambda error, s=source: self._on_download_failed(s, error),
        )

    def _on_downloaded(self, source: QuerySource, data: bytes) -> None:
        self._download_job = None
        self.search(QuerySource(label=source.label, data=data))

    def _on_download_failed(self, source: QuerySource, error: WorkerError) -> None:
        """Said as a failed search is, on the page (what it said of the query before is not this one's)."""
        self._download_job = None
        visit = Visit(source)
        visit.failure = error.message[:1].upper() + error.message[1:]
        self._push(visit)
        self._show_current()
        self.failed.emit(error)

    def _run_search(self, keep_shown: bool = False) -> None:
        visit = self.current
        if visit is None:
            return
        if self._search_job is not None:
            self._search_job.cancel()  # a search not started yet is skipped; a running one is ignored
        request = SearchRequest(
            self._query_of(visit),
            self.query_panel.result_count(),
            self._model_choice(),
            visit.box,
            visit.marked(Mark.LIKE),
            visit.marked(Mark.UNLIKE),
        )
        partial = self._indexing
        visit.failure = None
        if not keep_shown:
            self.query_panel.show_pending(f"Searching for photos like {visit.source.label}…")
            self._show_current()
        self._search_serial += 1
        serial = self._search_serial
        self._search_job = self._runner.submit_library(
            search_work(self._runner.session, request),
            lane="search",
            name="search",
            on_progress=self._on_search_progress,
            on_finished=lambda outcome: self._on_search_finished(serial, visit, request.k, partial, outcome,
                                                                 keep_shown),
            on_failed=lambda error: self._on_search_failed(serial, visit, error),
        )

    def _on_search_progress(self, report: object) -> None:
        if isinstance(report, ModelLoading):
            self.query_panel.show_pending(f"Loading the model {report.name}…")

    def _on_search_finished(self, serial: int, visit: Visit, asked: int, partial: bool, outcome: SearchOutcome,
                            refreshed: bool) -> None:
        if serial != self._search_serial:
            return
        self._search_job = None
        visit.tiles = tiles_from(outcome)
        visit.asked = asked
        if not outcome.query_image.isNull() or visit.image.isNull():
            visit.image = outcome.query_image
        visit.searched = outcome.photo_count
        visit.partial = partial or self._indexing
        visit.done = True
        visit.library_version = self._library_version
        if visit is self.current:
            # Results searched again (a mark, the library changed) keep the photo the user is on and the
            # scroll; new results start at the best match, with the focus.
            current = self.view.currentIndex()
            kept = self.model.path_at(current.row()) if refreshed and current.isValid() else None
            scrolled = self.view.verticalScrollBar().value()
            self._show_current()
            row = self.model.row_of(kept) if kept is not None else None
            if row is not None:
                self.view.setCurrentIndex(self.model.index(row))
                self.view.verticalScrollBar().setValue(scrolled)
            elif self.model.rowCount() > 0:
                self.view.setCurrentIndex(self.model.index(0))
            if not refreshed:
                self.view.setFocus()
            self.results_shown.emit(len(visit.tiles), refreshed)

    def _on_search_failed(self, serial: int, visit: Visit, error: WorkerError) -> None:
        if serial != self._search_serial:
            return
        self._search_job = None
        if error.library_empty and self._indexing and not visit.done:
            # A photo opened with the app while its folder's first index runs: searched when it ends.
            if visit is self.current:
                self.query_panel.show_pending(f"{visit.source.label}: searched once the folder is indexed…")
                self.status_label.setText("The folder's first photos are being indexed; the search follows.")
            return
        if error.library_empty:  # indexed, and no photo of the folder came of it (the core's words name a command)
            error = replace(error, message=f"{visit.source.label} has nothing to be compared with: no photo of this "
                                           "folder is indexed (it holds none that vitgallery reads, or its index failed).")
        elif not error.model_failed:  # the model's own message says what to do about it
            error = replace(error, message=f"The search for {visit.source.label} failed: {error.message}")
        if not visit.done:  # results searched before stay shown when searching them again fails
            visit.failure = error.message
            if visit is self.current:
                self._show_current()
        self.failed.emit(error)

    def _on_result_count_changed(self, count: int) -> None:
        # Wait until the user stops spinning, then search again with the new count.
        QTimer.singleShot(RESEARCH_DELAY_MS, self, lambda: self._rerun_if_count(count))

    def _rerun_if_count(self, count: int) -> None:
        if self.current is not None and self.query_panel.result_count() == count:
            self._run_search(keep_shown=True)

    def _cancel_jobs(self) -> None:
        self._search_serial += 1  # what is still running is not shown
        for job in (self._search_job, self._download_job):
            if job is not None:
                job.cancel()
        self._search_job = self._download_job = None

    # -- showing -----------------------------------------------------------------------------------

    def _show_current(self) -> None:
        visit = self.current
        self.back_action.setEnabled(self._at > 0)
        self.forward_action.setEnabled(self._at + 1 < len(self._history))
        if visit is None:
            self.model.clear()
            self.query_panel.clear_query()
        else:
            self.model.set_tiles(visit.tiles)
            if visit.done:
                self.query_panel.show_query(visit.image, visit.source.label, visit.box)
            elif visit.failure is not None:
                self.query_panel.show_failed(f"{visit.source.label}: not searched")
        self._update_status()

    def status_text(self) -> str:
        return self.status_label.text()

    def query_panel_toggled(self) -> None:
        """The query panel was shown or hidden (F9): the status names the query while it is hidden."""
        self._update_status()

    def _update_status(self) -> None:
        visit = self.current
        liked, unliked = (len(visit.marked(Mark.LIKE)), len(visit.marked(Mark.UNLIKE))) if visit else (0, 0)
        self.clear_marks_button.setVisible(bool(liked or unliked))
        self.clear_marks_button.setText(f"Clear marks (+{liked} −{unliked})")
        if visit is None:
            self.status_label.setText("")
            self._show_empty("Drop a photo on the left, or pick one in the folder and press Return.")
            return
        if visit.failure is not None:
            self.status_label.setText(visit.failure)
            self._show_empty("Nothing was searched. Drop another photo, or pick one in the folder and press Return.")
            return
        if not visit.done:
            self.status_label.setText(f"Searching for photos like {visit.source.label}…")
            self._show_empty("")
            return
        tiles = visit.tiles
        shown = self.model.tiles()
        same = sum(tile.match is Match.SAME for tile in shown)
        similar = sum(tile.match is Match.SIMILAR for tile in shown)
        weak = len(shown) - same - similar
        shown_ids = {id(tile) for tile in shown}
        hidden = [tile for tile in tiles if id(tile) not in shown_ids]
        # copies the minimum similarity hides are copies still: counted as such, not with the unrelated
        hidden_copies = sum(tile.match is Match.SAME for tile in hidden)
        unrelated = sum(tile.score is not None and tile.score < 0 for tile in hidden)
        below = len(hidden) - hidden_copies - unrelated
        parts = []
        if same or hidden_copies:
            # every result a copy: the count stopped at the number of results, not at the copies
            more = same + hidden_copies == len(tiles) >= visit.asked
            copies = same or hidden_copies
            hidden_text = ("" if not hidden_copies else f" and {hidden_copies} more hidden by the minimum similarity"
                           if same else ", hidden by the minimum similarity")
            parts.append(f"{copies} cop{'ies' if copies != 1 else 'y'} of this photo (✓){hidden_text}"
                         + (", perhaps more: raise Results to see them" if more else ""))
        if similar:
            parts.append(f"{similar} similar photo{'s' if similar != 1 else ''}")
        if not any(tile.match in (Match.SAME, Match.SIMILAR) for tile in tiles):
            # A box is compared with whole photos, so a small one rarely looks like any of them.
            subject = "this part of the photo" if visit.box is not None else "this photo"
            parts = [f"Nothing in the library looks like {subject}" + ("; the closest are shown faded" if shown else "")]
        elif weak:
            parts.append(f"{weak} less alike, faded")
        if below:
            parts.append(f"{below} below the minimum similarity")
        if unrelated:  # under 0 at the slider's lowest too: unrelated, not a setting to lower
            parts.append(f"{unrelated} unrelated (score under 0) not shown")
        text = " · ".join(parts)
        narrowed = []
        if visit.box is not None:
            narrowed.append("Searched with the part of the photo in the box")
        if liked or unliked:
            narrowed.append(f"Refined by {liked} “more like this” and {unliked} “not this”")
        if narrowed:
            text = f"{' · '.join(narrowed)}\n{text}"
        if self.query_panel.isHidden():  # F9: nothing else names the query, nor offers its settings
            text = f"Photos like {visit.source.label} (F9 shows it, the number of results and the minimum similarity)\n{text}"
        if visit.partial:
            text += (
                f"\nSearched the {visit.searched:,} photos indexed so far"
                + ("; the results refresh when indexing ends." if self._indexing else ".")
            )
        self.status_label.setText(text)
        if not tiles:
            self._show_empty("No results: the library has no other photos.")
        elif not shown and unrelated == len(tiles):
            self._show_empty(f"All {len(tiles)} results scored under 0: nothing in the library is related to this photo.")
        elif not shown:
            related = len(tiles) - unrelated  # the unrelated stay hidden at the slider's lowest too
            which = (f"All {related} results are" if not unrelated
                     else f"The {related} result{'s' if related != 1 else ''} related to it {'are' if related != 1 else 'is'}")
            self._show_empty(f"{which} below the minimum similarity {self.model.min_score:.2f}.\n"
                             "Lower it on the left to see them.")
        else:
            self._show_empty(None)

    def _show_empty(self, message: str | None) -> None:
        if message is None:
            self.stack.setCurrentWidget(self.view)
        else:
            self.empty_label.setText(message)
            self.stack.setCurrentWidget(self.empty_label)

