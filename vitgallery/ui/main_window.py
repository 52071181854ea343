"""The main window: folder grid, drop zone, ranked results, indexing progress and problems."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from PySide6.QtCore import QEvent, QModelIndex, QObject, QPoint, QSize, Qt, QThread, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDragLeaveEvent,
    QDropEvent,
    QGuiApplication,
    QImage,
    QKeyEvent,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QListView,
    QListWidget,
    QMainWindow,
    QMenu,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from vitgallery.core.imageio import SUPPORTED_EXTENSIONS
from vitgallery.logs import log_dir, log_file_path
from vitgallery.ui import settings as opt
from vitgallery.ui.app import ErrorReportDialog
from vitgallery.ui.desktop import copy_paths, open_in_system_viewer, reveal_in_file_manager
from vitgallery.ui.desktop_thumbnails import DesktopThumbnailCache
from vitgallery.ui.drop import DownloadSignals, QuerySource, can_accept, query_from_mime, start_download
from vitgallery.ui.duplicates_view import DuplicatesView
from vitgallery.ui.preview import PreviewDialog
from vitgallery.ui.results_model import PathRole, PhotoGridView, PhotoListModel, PhotoTile, PhotoTileDelegate
from vitgallery.ui.settings import Settings
from vitgallery.ui.settings_dialog import SettingsDialog
from vitgallery.ui.thumbnails import ThumbnailLoader, default_cache_dir
from vitgallery.ui.widgets import IndexProgressPanel, MessageBar, ProblemsPanel, QueryPanel
from vitgallery.ui.workers import (
    IndexJob,
    LibraryWorker,
    ListingSignals,
    ModelChoice,
    SearchRequest,
    SearchResult,
    SearchWorker,
    Session,
    WorkerError,
    abandon_thread,
    start_folder_listing,
)

log = logging.getLogger(__name__)

# Closing must finish within 2 s; this leaves room for saving settings and tearing down.
SHUTDOWN_WAIT_MS = 1700
RESEARCH_DELAY_MS = 300

class MainWindow(QMainWindow):
    # Requests to the workers; queued, so they run in the workers' threads.
    _warm_up_requested = Signal()
    _open_requested = Signal(object, object)
    _index_requested = Signal(object)
    _search_requested = Signal(object)

    results_shown = Signal(int)  # a search finished and its tiles are in the model
    indexing_finished = Signal(object)  # IndexSummary or None
    folder_listed = Signal(int)  # photos found in the folder

    def __init__(
        self,
        settings: Settings,
        library_dir: Path | None = None,
        thumbnail_cache_dir: Path | None = None,
        decode_workers: int | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings = settings
        self._library_dir_override = library_dir
        self._decode_workers = decode_workers
        self._folder: Path | None = None
        self._job: IndexJob | None = None
        self._query: QuerySource | None = None
        self._query_image = QImage()
        self._request_id = 0
        self._search_started = 0.0
        self._listing_generation = 0
        self._models: list[tuple[str, str]] = []
        self._preview: PreviewDialog | None = None
        self._shut_down = False

        self.setWindowTitle("vitgallery")
        self.setAcceptDrops(True)
        thumbnail_size = settings.get(opt.THUMBNAIL_SIZE)
        self.thumbnails = ThumbnailLoader(
            size=thumbnail_size,
            cache_dir=thumbnail_cache_dir or default_cache_dir(),
            shared_cache=DesktopThumbnailCache.for_this_desktop(),
            parent=self,
        )
        self.folder_model = PhotoListModel(self.thumbnails, self)
        self.results_model = PhotoListModel(self.thumbnails, self)
        self.results_model.set_min_score(settings.get(opt.MIN_SCORE))

        self._build_workers()
        self._build_widgets(thumbnail_size)
        self._build_actions()
        self._restore_window_state()
        self._warm_up_requested.emit()

    # -- construction ------------------------------------------------------------------------------

    def _build_workers(self) -> None:
        self.session = Session()
        self.library_thread = QThread(self)
        self.library_thread.setObjectName("vitgallery-library")
        self.library_worker = LibraryWorker(self.session)
        self.library_worker.moveToThread(self.library_thread)
        self._warm_up_requested.connect(self.library_worker.warm_up)
        self._open_requested.connect(self.library_worker.open_library)
        self._index_requested.connect(self.library_worker.index)
        self.library_worker.models_available.connect(self._on_models_available)
        self.library_worker.photo_count.connect(
            lambda count: self.count_label.setText(f"{count:,} photos indexed")
        )
        self.library_worker.model_loading.connect(self._on_index_model_loading)
        self.library_worker.index_progress.connect(self._on_index_progress)
        self.library_worker.index_finished.connect(self._on_index_finished)
        self.library_worker.skipped_listed.connect(
            lambda items: self.problems_panel.set_problems("index", items)
        )
        self.library_worker.notice.connect(lambda text: self.message_bar.show_message(text))
        self.library_worker.failed.connect(self.show_worker_error)

        self.search_thread = QThread(self)
        self.search_thread.setObjectName("vitgallery-search")
        self.search_worker = SearchWorker(self.session)
        self.search_worker.moveToThread(self.search_thread)
        self._search_requested.connect(self.search_worker.search)
        self.search_worker.model_loading.connect(
            lambda name: self.query_panel.show_pending(f"Loading the model {name}…")
        )
        self.search_worker.finished.connect(self._on_search_finished)
        self.search_worker.failed.connect(self._on_search_failed)

        self.listing_signals = ListingSignals(self)
        self.listing_signals.found.connect(self._on_listing_found)
        self.listing_signals.finished.connect(self._on_listing_finished)
        self.download_signals = DownloadSignals(self)
        self.download_signals.finished.connect(self._on_download_finished)
        self.download_signals.failed.connect(self._on_download_failed)

        self.library_thread.start()
        self.search_thread.start()

    def _build_widgets(self, thumbnail_size: int) -> None:
        self.message_bar = MessageBar()
        self.message_bar.details_requested.connect(self.show_error_report)

        self.query_panel = QueryPanel(self.settings.get(opt.RESULT_COUNT), self.settings.get(opt.MIN_SCORE))
        self.query_panel.result_count_changed.connect(self._on_result_count_changed)
        self.query_panel.min_score_changed.connect(self._on_min_score_changed)
        self.query_panel.clear_requested.connect(self.clear_query)

        self.folder_delegate = PhotoTileDelegate(thumbnail_size, self)
        self.folder_view = self._make_grid(self.folder_model, self.folder_delegate)
        self.folder_view.doubleClicked.connect(self._on_folder_activated)
        self.results_delegate = PhotoTileDelegate(thumbnail_size, self)
        self.results_view = self._make_grid(self.results_model, self.results_delegate)
        self.results_view.doubleClicked.connect(lambda index: self.open_preview(index.row()))

        self.welcome = self._make_welcome_page()
        self.folder_stack = QStackedWidget()
        self.folder_stack.addWidget(self.welcome)
        self.folder_stack.addWidget(self.folder_view)
        self.problems_panel = ProblemsPanel()

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.folder_stack, "Folder")
        self.tabs.addTab(self.results_view, "Similar")
        self.tabs.addTab(self.problems_panel, "Problems")
        self.duplicates_view = DuplicatesView(None)
        self.tabs.addTab(self.duplicates_view, "Duplicates")
        self.folder_model.rowsInserted.connect(self._update_tab_titles)
        self.folder_model.modelReset.connect(self._update_tab_titles)
        for signal in (
            self.results_model.rowsInserted,
            self.results_model.rowsRemoved,
            self.results_model.modelReset,
        ):
            signal.connect(self._update_tab_titles)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.query_panel)
        self.splitter.addWidget(self.tabs)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([300, 980])
        self.splitter.setChildrenCollapsible(False)

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(8, 6, 8, 4)
        layout.setSpacing(6)
        layout.addWidget(self.message_bar)
        layout.addWidget(self.splitter, 1)
        self.setCentralWidget(central)

        self.progress_panel = IndexProgressPanel()
        self.progress_panel.pause_toggled.connect(self._on_pause_toggled)
        self.progress_panel.cancel_requested.connect(self.cancel_indexing)
        self.count_label = QLabel()
        self.statusBar().addPermanentWidget(self.progress_panel, 1)
        self.statusBar().addPermanentWidget(self.count_label)
        self._update_tab_titles()

    def _make_grid(self, model: PhotoListModel, delegate: PhotoTileDelegate) -> PhotoGridView:
        view = PhotoGridView(model, delegate)
        view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        view.customContextMenuRequested.connect(lambda point, v=view: self._show_tile_menu(v, point))
        view.installEventFilter(self)
        return view

    def _make_welcome_page(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.addStretch(1)
        title = QLabel(
            "<h2>Find similar photos</h2>Open a photo folder. It is indexed in the background; "
            "meanwhile you can browse it."
        )
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        title.setWordWrap(True)
        layout.addWidget(title)
        button = QPushButton("Open a folder…")
        button.clicked.connect(self.choose_folder)
        button.setMinimumHeight(36)
        layout.addWidget(button, 0, Qt.AlignmentFlag.AlignHCenter)
        self.recent_list = QListWidget()
        self.recent_list.setMaximumWidth(640)
        self.recent_list.setMaximumHeight(220)
        self.recent_list.itemActivated.connect(lambda item: self.open_folder(Path(item.text())))
        self.recent_label = QLabel("Recent folders")
        layout.addSpacing(16)
        layout.addWidget(self.recent_label, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.recent_list, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addStretch(2)
        self._fill_recent_list()
        return page

    def _build_actions(self) -> None:
        def action(text: str, slot, shortcut: QKeySequence | str | None = None, tip: str = "") -> QAction:
            item = QAction(text, self)
            if shortcut is not None:
                item.setShortcut(QKeySequence(shortcut))
                item.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            item.setToolTip(tip or text)
            item.triggered.connect(slot)
            self.addAction(item)
            return item

        self.open_folder_action = action(
            "Open Folder…", self.choose_folder, "Ctrl+Shift+O", "Choose the photo folder"
        )
        self.open_query_action = action(
            "Open Image…",
            self.choose_query_file,
            QKeySequence.StandardKey.Open,
            "Find photos like an image file (Ctrl+O)",
        )
        self.paste_action = action(
            "Paste Image",
            self.paste_query,
            QKeySequence.StandardKey.Paste,
            "Find photos like the image on the clipboard (Ctrl+V)",
        )
        self.clear_action = action("Clear Query", self.clear_query, "Esc", "Back to the folder (Esc)")
        self.index_action = action("Index Now", self.start_indexing, "F5", "Look for new and changed photos")
        self.settings_action = action("Settings…", self.open_settings, QKeySequence.StandardKey.Preferences)
        self.quit_action = action("Quit", self.close, QKeySequence.StandardKey.Quit)

        self.recent_menu = QMenu("Recent Folders", self)
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file_menu = self.menuBar().addMenu("&File")
        file_menu.addAction(self.open_folder_action)
        file_menu.addMenu(self.recent_menu)
        file_menu.addSeparator()
        file_menu.addAction(self.open_query_action)
        file_menu.addAction(self.paste_action)
        file_menu.addAction(self.clear_action)
        file_menu.addSeparator()
        file_menu.addAction(self.settings_action)
        file_menu.addAction(self.quit_action)
        library_menu = self.menuBar().addMenu("&Library")
        library_menu.addAction(self.index_action)
        library_menu.addAction(action("Show Log Folder", lambda: open_in_system_viewer(log_dir())))

        toolbar = self.addToolBar("Main")
        toolbar.setObjectName("mainToolbar")
        toolbar.setMovable(False)
        folder_button = QToolButton()
        folder_button.setDefaultAction(self.open_folder_action)
        folder_button.setMenu(self.recent_menu)
        folder_button.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        toolbar.addWidget(folder_button)
        toolbar.addAction(self.open_query_action)
        toolbar.addAction(self.paste_action)
        toolbar.addSeparator()
        toolbar.addAction(self.index_action)
        toolbar.addAction(self.settings_action)

    def _restore_window_state(self) -> None:
        geometry = self.settings.get(opt.WINDOW_GEOMETRY)
        if geometry.isEmpty() or not self.restoreGeometry(geometry):
            self.resize(1280, 800)
        state = self.settings.get(opt.WINDOW_STATE)
        if not state.isEmpty():
            self.restoreState(state)
        splitter = self.settings.get(opt.SPLITTER_STATE)
        if not splitter.isEmpty():
            self.splitter.restoreState(splitter)

    # -- folder and indexing -----------------------------------------------------------------------

    @property
    def folder(self) -> Path | None:
        return self._folder

    def last_folder(self) -> Path | None:
        text = self.settings.get(opt.LAST_FOLDER)
        return Path(text) if text and Path(text).is_dir() else None

    def library_dir(self) -> Path | None:
        return self._library_dir_override or self.settings.library_dir()

    def choose_folder(self) -> None:
        start = str(self._folder or Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Open a photo folder", start)
        if folder:
            self.open_folder(Path(folder))

    def open_folder(self, folder: Path) -> None:
        """Show the folder's photos at once, then open its library and index it in the background."""
        folder = folder.expanduser().absolute()
        if not folder.is_dir():
            self.message_bar.show_message(
                f"{folder} is not a folder (moved, or a drive not mounted?)", error=True
            )
            return
        self.cancel_indexing()
        self.clear_query()
        self._folder = folder
        self.settings.add_recent_folder(folder)
        self._fill_recent_list()
        self.setWindowTitle(f"vitgallery — {folder}")
        self.message_bar.hide()
        self.problems_panel.clear_problems()
        self.thumbnails.drop_pending()
        self.folder_model.clear()
        self.folder_stack.setCurrentWidget(self.folder_view)
        self.tabs.setCurrentIndex(0)
        self._listing_generation += 1
        start_folder_listing(folder, self._listing_generation, self.listing_signals)
        self._open_requested.emit(folder, self.library_dir())
        self.duplicates_view.open_folder(folder, self.library_dir())
        self.start_indexing()

    def start_indexing(self) -> None:
        if self._folder is None:
            return
        if self._job is not None:
            self._job.cancel.set()
        self._job = IndexJob(self._model_choice(), self.settings.get(opt.BATCH_SIZE), self._decode_workers)
        self.progress_panel.start("Starting…")
        self._index_requested.emit(self._job)

    def cancel_indexing(self) -> None:
        if self._job is not None:
            self._job.cancel.set()
            self._job.pause.clear()

    def is_indexing(self) -> bool:
        return self._job is not None

    def _model_choice(self) -> ModelChoice:
        return ModelChoice(
            self.settings.get(opt.MODEL), self.settings.weights(), self.settings.get(opt.DEVICE)
        )

    def _on_pause_toggled(self, paused: bool) -> None:
        if self._job is None:
            return
        if paused:
            self._job.pause.set()
            self.statusBar().showMessage("Indexing paused", 3000)
        else:
            self._job.pause.clear()

    def _on_listing_found(self, generation: int, paths: list[Path]) -> None:
        if generation == self._listing_generation:
            self.folder_model.append_paths(paths)

    def _on_listing_finished(self, generation: int, count: int, problems: list[tuple[Path, str]]) -> None:
        if generation != self._listing_generation:
            return
        self.problems_panel.set_problems("listing", problems)
        self._update_tab_titles()
        self.folder_listed.emit(count)

    def _on_index_model_loading(self, job: IndexJob, name: str) -> None:
        if job is self._job:
            self.progress_panel.start(f"Loading the model {name}…")

    def _on_index_progress(self, job: IndexJob, progress) -> None:
        if job is not self._job:
            return
        self.progress_panel.update_progress(
            progress.phase,
            progress.done,
            progress.total,
            progress.rate,
            progress.eta_s,
            progress.current_path,
        )

    def _on_index_finished(self, job: IndexJob, summary) -> None:
        if job is not self._job:
            return
        self._job = None
        self.progress_panel.finish()
        if summary is not None:
            self.statusBar().showMessage(_summary_text(summary), 15000)
            if summary.offline:
                self.message_bar.show_message(
                    f"{self._folder} is missing or empty (an unmounted drive?): nothing was removed from the library.",
                    error=True,
                )
        self._update_tab_titles()
        self.indexing_finished.emit(summary)

    def _on_models_available(self, models: list[tuple[str, str]]) -> None:
        self._models = models

    # -- queries -----------------------------------------------------------------------------------

    def set_query(self, source: QuerySource) -> None:
        """Search with a dropped, pasted or opened image; a URL is downloaded first."""
        if source.url is not None:
            self.query_panel.show_pending(f"Downloading {source.label}…")
            start_download(source, self.download_signals)
            return
        self._query = source
        self._run_search()

    def _run_search(self) -> None:
        if self._query is None:
            return
        self._request_id += 1
        self.search_worker.note_request(self._request_id)
        query = self._query.path if self._query.path is not None else self._query.data
        assert query is not None
        request = SearchRequest(
            self._request_id, query, self.query_panel.result_count(), self._model_choice()
        )
        self._search_started = time.perf_counter()
        self.query_panel.show_pending(f"Searching for photos like {self._query.label}…")
        self.tabs.setCurrentWidget(self.results_view)
        self._search_requested.emit(request)

    def _on_search_finished(self, result: SearchResult) -> None:
        if result.request_id != self._request_id or self._query is None:
            return
        self.thumbnails.drop_pending()
        self.results_model.set_tiles([PhotoTile(hit.path, hit.score, hit.cosine, hit.inliers) for hit in result.hits])
        self._query_image = result.query_image
        self.query_panel.show_query(result.query_image, self._query.label)
        elapsed_ms = (time.perf_counter() - self._search_started) * 1000
        partial = (
            " (indexing is still running: these come from the photos indexed so far)" if self._job else ""
        )
        self.statusBar().showMessage(
            f"{len(result.hits)} similar photos in {elapsed_ms:.0f} ms{partial}", 10000
        )
        if self.results_model.rowCount() > 0:
            self.results_view.setCurrentIndex(self.results_model.index(0))
        self.tabs.setCurrentWidget(self.results_view)
        self.results_view.setFocus()
        self.results_shown.emit(len(result.hits))

    def _on_search_failed(self, request_id: int, error: WorkerError) -> None:
        if request_id != self._request_id:
            return
        self.query_panel.show_pending("The search failed")
        self.show_worker_error(error)

    def _on_download_finished(self, source: QuerySource, data: bytes) -> None:
        self.set_query(QuerySource(label=source.label, data=data))

    def _on_download_failed(self, source: QuerySource, message: str) -> None:
        self.query_panel.show_pending("The download failed")
        self.message_bar.show_message(message, error=True)

    def _on_result_count_changed(self, count: int) -> None:
        self.settings.set(opt.RESULT_COUNT, count)
        # Wait until the user stops spinning, then search again with the new count.
        QTimer.singleShot(RESEARCH_DELAY_MS, lambda: self._rerun_if_count(count))

    def _rerun_if_count(self, count: int) -> None:
        if self._query is not None and self.query_panel.result_count() == count and not self._shut_down:
            self._run_search()

    def _on_min_score_changed(self, min_score: float) -> None:
        self.settings.set(opt.MIN_SCORE, min_score)
        self.results_model.set_min_score(min_score)

    def clear_query(self) -> None:
        self._request_id += 1
        self.search_worker.note_request(self._request_id)
        self._query = None
        self._query_image = QImage()
        self.results_model.clear()
        self.query_panel.clear_query()
        self.tabs.setCurrentIndex(0)

    def choose_query_file(self) -> None:
        patterns = " ".join(f"*{ext}" for ext in sorted(SUPPORTED_EXTENSIONS))
        start = str(self._folder or Path.home())
        path, _ = QFileDialog.getOpenFileName(
            self, "Find photos like…", start, f"Images ({patterns});;All files (*)"
        )
        if path:
            self.set_query(QuerySource(label=Path(path).name, path=Path(path)))

    def paste_query(self) -> None:
        source = query_from_mime(QGuiApplication.clipboard().mimeData())
        if source is None:
            self.message_bar.show_message("The clipboard holds no image, image file or image link.")
            return
        self.set_query(source)

    def find_similar(self, path: Path) -> None:
        self.set_query(QuerySource(label=path.name, path=path))

    def open_photo(self, photo: Path) -> None:
        """Open the photo's folder and find photos like it (the desktop's "Open with" hands one over):
        at once when its library already holds photos, else when the first indexing run is done."""
        photo = photo.expanduser().absolute()
        self.open_folder(photo.parent)
        if self._folder != photo.parent:
            return  # open_folder said why

        def search_when_opened(count: int) -> None:
            if self._folder != photo.parent:
                return
            if count:
                self.find_similar(photo)
                return
            self.query_panel.show_pending(f"Indexing the folder; then photos like {photo.name} are found…")
            self.indexing_finished.connect(
                lambda _summary: search_if_still_here(), Qt.ConnectionType.SingleShotConnection
            )

        def search_if_still_here() -> None:
            if self._folder == photo.parent:
                self.find_similar(photo)

        self.library_worker.photo_count.connect(search_when_opened, Qt.ConnectionType.SingleShotConnection)

    # -- drag and drop -----------------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if can_accept(event.mimeData()):
            event.setDropAction(Qt.DropAction.CopyAction)
            event.accept()
            self.query_panel.set_drag_highlight(True)
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        event.setDropAction(Qt.DropAction.CopyAction)
        event.accept()

    def dragLeaveEvent(self, event: QDragLeaveEvent) -> None:
        self.query_panel.set_drag_highlight(False)

    def dropEvent(self, event: QDropEvent) -> None:
        self.query_panel.set_drag_highlight(False)
        source = query_from_mime(event.mimeData())
        if source is None:
            self.message_bar.show_message("That drop held no image, image file or image link.")
            event.ignore()
            return
        event.setDropAction(Qt.DropAction.CopyAction)
        event.accept()
        self.set_query(source)

    # -- tiles: preview, context menu, keys --------------------------------------------------------

    def open_preview(self, row: int) -> PreviewDialog | None:
        if not 0 <= row < self.results_model.rowCount():
            return None
        if self._preview is not None:
            self._preview.close()
        label = self._query.label if self._query is not None else ""
        self._preview = PreviewDialog(self._query_image, label, self.results_model, row, self)
        self._preview.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._preview.destroyed.connect(lambda: setattr(self, "_preview", None))
        self._preview.show()
        return self._preview

    def _on_folder_activated(self, index: QModelIndex) -> None:
        if index.isValid():
            self.find_similar(Path(index.data(PathRole)))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
            if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and watched in (
                self.results_view,
                self.folder_view,
            ):
                index = watched.currentIndex()
                if index.isValid():
                    if watched is self.results_view:
                        self.open_preview(index.row())
                    else:
                        self._on_folder_activated(index)
                    return True
        return super().eventFilter(watched, event)

    def _show_tile_menu(self, view: QListView, point: QPoint) -> None:
        index = view.indexAt(point)
        if not index.isValid():
            return
        path = Path(index.data(PathRole))
        selected = [Path(i.data(PathRole)) for i in view.selectionModel().selectedIndexes()] or [path]
        menu = QMenu(self)
        if view is self.results_view:
            menu.addAction("Preview beside the query", lambda: self.open_preview(index.row()))
        menu.addAction("Find similar photos", lambda: self.find_similar(path))
        menu.addSeparator()
        menu.addAction("Open in the default viewer", lambda: open_in_system_viewer(path))
        menu.addAction("Show in the file manager", lambda: reveal_in_file_manager(path))
        menu.addAction(
            "Copy path" if len(selected) == 1 else f"Copy {len(selected)} paths", lambda: copy_paths(selected)
        )
        menu.popup(view.viewport().mapToGlobal(point))

    # -- settings ----------------------------------------------------------------------------------

    def open_settings(self) -> None:
        dialog = SettingsDialog(self.settings, self._models, self)
        if dialog.exec():
            self.apply_settings(dialog.changed())

    def apply_settings(self, changed: set) -> None:
        if opt.THUMBNAIL_SIZE in changed:
            size = self.settings.get(opt.THUMBNAIL_SIZE)
            self.thumbnails.set_size(size)
            for delegate, view in (
                (self.folder_delegate, self.folder_view),
                (self.results_delegate, self.results_view),
            ):
                delegate.set_thumbnail_size(size)
                view.fit_columns()
                view.doItemsLayout()
                view.viewport().update()
        if opt.LIBRARY_DIR in changed and self._folder is not None:
            self.open_folder(self._folder)
        elif changed & {opt.MODEL, opt.WEIGHTS, opt.DEVICE, opt.BATCH_SIZE} and self._folder is not None:
            self.start_indexing()

    # -- problems ----------------------------------------------------------------------------------

    def show_worker_error(self, error: WorkerError) -> None:
        self.message_bar.show_message(error.message, error=True, report=error.report)
        if error.unexpected:
            log.error("worker reported an unexpected error: %s", error.message)
            self.show_error_report(error.message, error.report)

    def show_error_report(self, summary: str, report: str) -> None:
        dialog = ErrorReportDialog(summary, report, log_file_path(), self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()

    # -- bookkeeping -------------------------------------------------------------------------------

    def _update_tab_titles(self) -> None:
        folder_count = self.folder_model.rowCount()
        self.tabs.setTabText(0, f"Folder ({folder_count:,})" if self._folder else "Folder")
        shown, total = self.results_model.rowCount(), self.results_model.total_count()
        self.tabs.setTabText(1, f"Similar ({shown})" if shown == total else f"Similar ({shown} of {total})")
        problems = self.problems_panel.problem_count()
        self.tabs.setTabText(2, f"Problems ({problems})" if problems else "Problems")

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for folder in self.settings.recent_folders():
            self.recent_menu.addAction(str(folder), lambda f=folder: self.open_folder(f))
        if self.recent_menu.isEmpty():
            self.recent_menu.addAction("(none yet)").setEnabled(False)

    def _fill_recent_list(self) -> None:
        self.recent_list.clear()
        recent = [str(folder) for folder in self.settings.recent_folders()]
        self.recent_list.addItems(recent)
        self.recent_list.setVisible(bool(recent))
        self.recent_label.setVisible(bool(recent))

    def sizeHint(self) -> QSize:
        return QSize(1280, 800)

    # -- closing -----------------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        self.settings.set(opt.WINDOW_GEOMETRY, self.saveGeometry())
        self.settings.set(opt.WINDOW_STATE, self.saveState())
        self.settings.set(opt.SPLITTER_STATE, self.splitter.saveState())
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Stop the workers; each indexing batch is committed on its own, so nothing committed is lost."""
        if self._shut_down:
            return
        self._shut_down = True
        started = time.monotonic()
        self.cancel_indexing()
        self._listing_generation += 1
        self._request_id += 1
        self.search_worker.note_request(self._request_id)
        self.thumbnails.drop_pending()
        if self._preview is not None:
            self._preview.close()
        self.library_thread.quit()
        self.search_thread.quit()
        deadline = started + SHUTDOWN_WAIT_MS / 1000
        stopped = True
        for thread in (self.library_thread, self.search_thread):
            remaining_ms = max(0, int((deadline - time.monotonic()) * 1000))
            if not thread.wait(remaining_ms):
                log.warning(
                    "%s did not stop within %d ms; leaving it to process exit",
                    thread.objectName(),
                    SHUTDOWN_WAIT_MS,
                )
                abandon_thread(thread)
                stopped = False
        if stopped:
            # The worker threads have ended, so the library can be closed from here.
            self.session.replace_library(None)
        self.duplicates_view.shutdown(max(0, int((deadline - time.monotonic()) * 1000)))
        self.thumbnails.shutdown(200)
        self.settings.sync()
        log.info("window closed in %.0f ms", (time.monotonic() - started) * 1000)


def _summary_text(summary) -> str:
    if summary.offline:
        return "The folder is offline; the library was left as it was"
    parts = [
        f"{summary.added:,} new",
        f"{summary.updated:,} changed",
        f"{summary.moved:,} moved",
        f"{summary.removed:,} removed",
        f"{summary.skipped:,} skipped",
    ]
    head = "Indexing cancelled" if summary.cancelled else "Indexed"
    return f"{head} in {summary.seconds:.0f} s: " + ", ".join(parts)
