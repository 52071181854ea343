"""The main window: the pages (folder grid, similar photos, problems, duplicates, groups, sort),
indexing progress, menus, and the one session through which every page reaches the library.

Every change to the photos (a move, a trash, an undo, an index run, a batch of the folder watcher)
goes through `files_changed` / `_on_index_ended` / `_on_watch_update`, which update every page at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QFileSystemWatcher, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDragLeaveEvent,
    QDropEvent,
    QGuiApplication,
    QKeySequence,
    QPalette,
)
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPushButton,
    QSlider,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

import vitgallery
from vitgallery.core.imageio import SUPPORTED_EXTENSIONS, SUPPORTED_KINDS
from vitgallery.core.library import known_photo_folder, library_dir_under
from vitgallery.core.scan import photo_root_path
from vitgallery.logs import log_dir, log_file_path
from vitgallery.ui import settings as opt
from vitgallery.ui.arrange import FolderArranger
from vitgallery.ui.desktop import copy_paths, open_in_system_viewer, reveal_in_file_manager
from vitgallery.ui.desktop_thumbnails import DesktopThumbnailCache
from vitgallery.ui.drop import QuerySource, can_accept, query_from_mime
from vitgallery.ui.duplicates_view import DuplicatesView
from vitgallery.ui.groups_page import GroupsPage
from vitgallery.ui.library_watch import LibraryWatch, WatchUpdate
from vitgallery.ui.preview import PreviewDialog
from vitgallery.ui.reporting import ErrorReportDialog
from vitgallery.ui.results_model import (
    Match,
    PhotoGridView,
    PhotoListModel,
    PhotoTile,
    PhotoTileDelegate,
    SortOrder,
    TileAction,
    TileFeed,
    listing_key,
)
from vitgallery.ui.search_page import SearchPage
from vitgallery.ui.settings import Settings
from vitgallery.ui.settings_dialog import SettingsDialog
from vitgallery.ui.sort_page import SortPage
from vitgallery.ui.thumbnails import ThumbnailLoader, default_cache_dir
from vitgallery.ui.widgets import (
    IndexProgressPanel,
    MessageAction,
    MessageBar,
    ProblemsPanel,
    resize_within_screen,
)
from vitgallery.ui.workers import (
    FolderListing,
    IndexedModel,
    IndexOutcome,
    IndexRun,
    Job,
    JobRunner,
    ListingHandoff,
    ModelChoice,
    ModelLoading,
    OpenedLibrary,
    Session,
    WorkerError,
    index_work,
    list_folder,
    modified_time,
)

log = logging.getLogger(__name__)

SHUTDOWN_WAIT_S = 1.7  # closing must finish within 2 s; this leaves room for saving settings
FOLDER_CHANGE_DELAY_MS = 1500  # a copy of many files settles before the folder is listed again
MAX_WATCHED_FOLDERS = 1000  # inotify watches are a per-user budget shared with other programs
THUMBNAIL_DECODE_STEP = 64  # thumbnails are decoded at the slider's size rounded up to this
DROP_HINT = "Drop it to find photos like it"  # said while a photo is dragged over the window, its panel hidden
SUMMARY_SHOWN_MS = 15000  # how long the status bar says what an index run did
GONE_FOLDER_WHY = ("moved, renamed, or on a drive not mounted? Open it again once it is back; opened at its new "
                   "place, it keeps its index.")


class MainWindow(QMainWindow):
    results_shown = Signal(int)  # a search finished and its tiles are in the model
    indexing_finished = Signal(object)  # IndexSummary, or None when the run failed
    index_progress = Signal(object)  # IndexProgress or ModelLoading of the running index
    folder_listed = Signal(int)  # photos found in the folder
    library_opened = Signal(object)  # OpenedLibrary
    library_changed = Signal()  # an index run or an action changed the photos: pages refresh what they show

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
        self._index_run: IndexRun | None = None
        self._index_job: Job | None = None
        self._listing_job: Job | None = None
        self._said_before_drag = ""  # the status bar's message a drag's hint covers
        self._photos_in_library = 0
        self._indexed_with: IndexedModel | None = None  # the open library's model (Settings compares with it)
        self._index_again = False  # the folder changed during a run: index once more when it ends
        self._preview: PreviewDialog | None = None
        self._shut_down = False

        self.session = Session()
        self.jobs = JobRunner(self.session, self)
        thumbnail_size = settings.get(opt.THUMBNAIL_SIZE)
        self.thumbnails = ThumbnailLoader(
            size=_decode_size(thumbnail_size),
            cache_dir=thumbnail_cache_dir or default_cache_dir(),
            shared_cache=DesktopThumbnailCache.for_this_desktop(),
            parent=self,
        )
        self.folder_model = PhotoListModel(self.thumbnails, self)
        self.folder_feed = TileFeed(self.folder_model, self)
        self.folder_feed.drained.connect(self._start_run_after_listing)
        self.folder_watcher = QFileSystemWatcher(self)
        self.folder_watcher.directoryChanged.connect(self._on_folder_changed)
        self._folder_change_timer = QTimer(self, singleShot=True, interval=FOLDER_CHANGE_DELAY_MS)
        self._folder_change_timer.timeout.connect(self.refresh_folder)
        # The folder above the photo folder is watched for the photo folder's own coming and going
        # (deleted, renamed, a drive unmounted, and back): its other changes are not ours.
        self._folder_parent: str | None = None
        self._folder_present = False
        self._offline_message: str | None = None
        self._search_error: str | None = None  # the message bar's text from the last failed search
        self._not_a_query: str | None = None  # the message bar's text from a paste or drop that held no image
        self._model_error: str | None = None  # the same of the model that would not load, until one does

        self._build_widgets(thumbnail_size)
        self._build_actions()
        self._restore_window_state()
        self.check_model()

    # -- construction ------------------------------------------------------------------------------

    def _build_widgets(self, thumbnail_size: int) -> None:
        self.message_bar = MessageBar()
        self.message_bar.details_requested.connect(self.show_error_report)

        self.search_page = SearchPage(
            self.jobs,
            self.thumbnails,
            thumbnail_size,
            self._model_choice,
            self.settings.get(opt.RESULT_COUNT),
            self.settings.get(opt.MIN_SCORE),
        )
        self.search_page.results_shown.connect(self._on_results_shown)
        self.search_page.failed.connect(self._on_search_failed)
        self.search_page.leave_requested.connect(self._left_results)
        self.search_page.revisited.connect(lambda: self.tabs.setCurrentWidget(self.search_page))
        self.search_page.query_panel.result_count_changed.connect(
            lambda count: self.settings.set(opt.RESULT_COUNT, count)
        )
        self.search_page.query_panel.min_score_changed.connect(
            lambda value: self.settings.set(opt.MIN_SCORE, value)
        )
        self.search_page.sort_combo.setCurrentIndex(
            self.search_page.sort_combo.findData(SortOrder(self.settings.get(opt.RESULTS_SORT)))
        )
        self.search_page.sort_combo.currentIndexChanged.connect(
            lambda: self.settings.set(opt.RESULTS_SORT, self.search_page.sort_combo.currentData().value)
        )
        self.query_panel = self.search_page.query_panel
        self.results_view = self.search_page.view
        self.results_model = self.search_page.model

        self.folder_delegate = PhotoTileDelegate(thumbnail_size, self)
        self.folder_view = PhotoGridView(self.folder_model, self.folder_delegate)
        self.folder_view.activated_row.connect(lambda row: self.find_similar(self.folder_model.path_at(row)))
        self.folder_view.preview_requested.connect(self.open_folder_preview)
        self.folder_view.add_tile_actions([TileAction("Preview", self._preview_folder_path, single=True)])
        self.folder_sort_combo = QComboBox()
        for order in (SortOrder.NAME, SortOrder.DATE, SortOrder.LIKENESS):
            self.folder_sort_combo.addItem(order.label, order)
        self.folder_arranger = FolderArranger(self.jobs, self.folder_model, self)
        self.folder_arranger.failed.connect(self.show_worker_error)
        self.folder_sort_combo.setToolTip("Order of the folder's photos")
        self.folder_sort_combo.currentIndexChanged.connect(self._on_folder_sort_changed)
        self.folder_sort_combo.setCurrentIndex(
            max(0, self.folder_sort_combo.findData(SortOrder(self.settings.get(opt.FOLDER_SORT))))
        )
        self.folder_model.set_sort_order(self.folder_sort_combo.currentData())
        for view in (self.folder_view, self.results_view):
            view.add_tile_actions(self._shared_tile_actions())

        self.welcome = self._make_welcome_page()
        self.folder_page = QWidget()
        folder_layout = QVBoxLayout(self.folder_page)
        folder_layout.setContentsMargins(0, 0, 0, 0)
        folder_layout.setSpacing(2)
        self.folder_label = QLabel()
        self.folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        folder_header = QHBoxLayout()
        folder_header.setContentsMargins(4, 2, 4, 2)
        folder_header.addWidget(self.folder_label, 1)
        folder_header.addWidget(self.folder_sort_combo)
        folder_layout.addLayout(folder_header)
        folder_layout.addWidget(self.folder_view, 1)
        self.folder_stack = QStackedWidget()
        self.folder_stack.addWidget(self.welcome)
        self.folder_stack.addWidget(self.folder_page)
        self.problems_panel = ProblemsPanel()

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.folder_stack, "Folder")
        self.tabs.addTab(self.search_page, "Similar")
        self.tabs.addTab(self.problems_panel, "Problems")
        self.duplicates_view = DuplicatesView(self.jobs)
        self.duplicates_view.action_finished.connect(self.files_changed)
        self.library_changed.connect(self.duplicates_view.library_changed)
        self.tabs.addTab(self.duplicates_view, "Duplicates")
        self._build_organise_pages()
        for signal in (
            self.folder_model.rowsInserted,
            self.folder_model.rowsRemoved,
            self.folder_model.modelReset,
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
        self.splitter.setSizes([260, 1020])
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
        self.thumbnail_slider = QSlider(Qt.Orientation.Horizontal)
        self.thumbnail_slider.setRange(opt.THUMBNAIL_SIZE.minimum or 64, opt.THUMBNAIL_SIZE.maximum or 400)
        self.thumbnail_slider.setSingleStep(16)
        self.thumbnail_slider.setPageStep(64)
        self.thumbnail_slider.setValue(thumbnail_size)
        self.thumbnail_slider.setFixedWidth(110)
        self.thumbnail_slider.setToolTip("Thumbnail size (Ctrl+Plus, Ctrl+Minus)")
        self.thumbnail_slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.thumbnail_slider.valueChanged.connect(self.set_thumbnail_size)
        self._thumbnail_decode_timer = QTimer(self, singleShot=True, interval=300)
        self._thumbnail_decode_timer.timeout.connect(self._decode_thumbnails_at_new_size)
        self.statusBar().addPermanentWidget(self.progress_panel, 1)
        self.statusBar().addPermanentWidget(self.count_label)
        self.statusBar().addPermanentWidget(self.thumbnail_slider)
        self._update_tab_titles()

    def _build_organise_pages(self) -> None:
        """The Groups and Sort pages, the likeness order and the folder watcher (issue 17)."""
        self.groups_page = GroupsPage(self.jobs)
        self.sort_page = SortPage(self.jobs, self._model_choice)
        if (examples := self.settings.get(opt.SORT_EXAMPLES)) and (unsorted := self.settings.get(opt.SORT_UNSORTED)):
            self.sort_page.set_folders(Path(examples), Path(unsorted))
        self.sort_page.folders_used.connect(self._remember_sort_folders)
        for page in (self.groups_page, self.sort_page):
            page.action_finished.connect(self.files_changed)
            page.action_finished.connect(self.duplicates_view.refresh_history)
        # (the Sort page takes the rows an undo from the Done list brings back through files_changed)
        self.duplicates_view.history_changed.connect(self.groups_page.follow_history)
        self.groups_page.query_requested.connect(self.find_similar)
        self.library_changed.connect(self.groups_page.library_changed)
        self.library_changed.connect(self.folder_arranger.refresh)
        self.tabs.addTab(self.groups_page, "Groups")
        self.tabs.addTab(self.sort_page, "Sort")
        self.library_watch = LibraryWatch(self.jobs, self._model_choice, self)
        self.library_watch.updated.connect(self._on_watch_update)
        self.library_watch.failed.connect(self.show_worker_error)

    def _remember_sort_folders(self, examples: Path, unsorted: Path) -> None:
        self.settings.set(opt.SORT_EXAMPLES, str(examples))
        self.settings.set(opt.SORT_UNSORTED, str(unsorted))

    def _shared_tile_actions(self) -> list[TileAction | None]:
        return [
            TileAction("Find similar photos", lambda paths: self.find_similar(paths[0]), single=True),
            None,
            TileAction("Open in the default viewer", lambda paths: self.open_in_viewer(paths[0]), single=True),
            TileAction("Show in the file manager", lambda paths: self.show_in_file_manager(paths[0]), single=True),
            TileAction("Copy path", self.copy_paths, plural="Copy {count} paths"),
        ]

    # What the desktop was asked to do is said where it could not be done: nothing happened otherwise.
    def open_in_viewer(self, path: Path) -> None:
        if not open_in_system_viewer(path):
            self.message_bar.show_message(f"No program on this system opens {path.name}: open it from the file "
                                          f"manager ({path.parent}).", error=True)

    def show_in_file_manager(self, path: Path) -> None:
        reveal_in_file_manager(path, lambda: self.message_bar.show_message(
            f"No file manager could show {path.name}; it is in {path.parent}.", error=True), self)

    def copy_paths(self, paths: list[Path]) -> None:
        copy_paths(paths)
        self.statusBar().showMessage(f"Copied the path of {paths[0].name}" if len(paths) == 1
                                     else f"Copied {len(paths)} paths", SUMMARY_SHOWN_MS)

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
        self.recent_list.itemActivated.connect(
            lambda item: self.open_folder(Path(item.data(Qt.ItemDataRole.UserRole))))
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
        self.clear_action = action(
            "Back to the Folder", self._leave_results, "Esc", "Leave the results (Esc); Back brings them back"
        )
        self.back_action = self.search_page.back_action
        self.forward_action = self.search_page.forward_action
        self.addAction(self.back_action)
        self.addAction(self.forward_action)
        self.index_action = action("Index Now", self.index_now, "F5", "Look for new and changed photos")
        self.index_action.setEnabled(False)  # until a folder is open: it did nothing, and said nothing
        self.settings_action = action("Settings…", self.open_settings, QKeySequence.StandardKey.Preferences)
        # Linux desktops define no Preferences key: Ctrl+, as most apps there use.
        self.settings_action.setShortcuts([*QKeySequence.keyBindings(QKeySequence.StandardKey.Preferences),
                                           QKeySequence("Ctrl+,")])
        self.quit_action = action("Quit", self.close, QKeySequence.StandardKey.Quit)
        self.larger_action = action(
            "Larger Thumbnails", lambda: self.thumbnail_slider.setValue(self.thumbnail_slider.value() + 32), "Ctrl++"
        )
        self.smaller_action = action(
            "Smaller Thumbnails", lambda: self.thumbnail_slider.setValue(self.thumbnail_slider.value() - 32), "Ctrl+-"
        )
        self.about_action = action("About vitgallery", self.show_about)
        # F9 as file managers' side panel: on a small screen the pages get its width (a photo can still
        # be dropped anywhere on the window)
        self.query_panel_action = action("Query Panel", self._show_query_panel, "F9",
                                         "Show or hide the panel of the photo searched for (F9)")
        self.query_panel_action.setCheckable(True)
        self.query_panel_action.setChecked(True)

        self.recent_menu = QMenu("Recent Folders", self)
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file_menu = self.menuBar().addMenu("&File")
        file_menu.addAction(self.open_folder_action)
        file_menu.addMenu(self.recent_menu)
        file_menu.addSeparator()
        file_menu.addAction(self.open_query_action)
        file_menu.addAction(self.paste_action)
        file_menu.addSeparator()
        file_menu.addAction(self.settings_action)
        file_menu.addAction(self.quit_action)
        view_menu = self.menuBar().addMenu("&View")
        view_menu.addAction(self.back_action)
        view_menu.addAction(self.forward_action)
        view_menu.addAction(self.clear_action)
        view_menu.addSeparator()
        view_menu.addAction(self.larger_action)
        view_menu.addAction(self.smaller_action)
        view_menu.addAction(self.query_panel_action)
        library_menu = self.menuBar().addMenu("&Library")
        library_menu.addAction(self.index_action)
        library_menu.addAction(action("Show Log Folder", lambda: self.open_in_viewer(log_dir())))
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction(self.about_action)

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
        toolbar.addAction(self.back_action)
        toolbar.addAction(self.forward_action)
        toolbar.addSeparator()
        toolbar.addAction(self.index_action)
        toolbar.addAction(self.settings_action)

    def _restore_window_state(self) -> None:
        geometry = self.settings.get(opt.WINDOW_GEOMETRY)
        if geometry.isEmpty() or not self.restoreGeometry(geometry):
            resize_within_screen(self, 1280, 800)
        state = self.settings.get(opt.WINDOW_STATE)
        if not state.isEmpty():
            self.restoreState(state)
        splitter = self.settings.get(opt.SPLITTER_STATE)
        if not splitter.isEmpty():
            self.splitter.restoreState(splitter)
        self.query_panel_action.setChecked(self.settings.get(opt.QUERY_PANEL_SHOWN))
        self.query_panel.setVisible(self.query_panel_action.isChecked())

    # -- folder and indexing -----------------------------------------------------------------------

    @property
    def folder(self) -> Path | None:
        return self._folder

    def last_folder(self) -> Path | None:
        text = self.settings.get(opt.LAST_FOLDER)
        return Path(text) if text and Path(text).is_dir() else None

    def library_dir(self, folder: Path | None = None) -> Path | None:
        """Where the library of `folder` lives: the window's own (given when it was made), else one folder
        per photo folder under the location chosen in Settings (None: the user data folder's)."""
        if self._library_dir_override is not None:
            return self._library_dir_override
        location = self.settings.library_dir()
        return None if location is None or folder is None else library_dir_under(location, folder)

    def preload_library(self, folder: Path, say: Callable[[str], None]) -> None:
        """Before the window shows (the start's splash): open the library of the folder it will open and
        load its index file, so that neither the shown window nor the first search stops for it."""
        folder = known_photo_folder(folder, self.settings.library_dir())
        if folder.is_dir():
            say("Opening the library…")
            try:
                self.session.preload_library(folder, self.library_dir(folder))
            except Exception:  # only a head start: opening it on a worker says what is wrong
                log.warning("could not preload the library of %s", folder, exc_info=True)

    def choose_folder(self) -> None:
        start = str(self._folder or Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Open a photo folder", start)
        if folder:
            self.open_folder(Path(folder))

    def open_folder(self, folder: Path) -> None:
        """Show the folder's photos at once, then open its library and index it in the background."""
        folder = photo_root_path(folder)
        if folder.is_dir():  # a folder through a link shows the library made of where it leads
            folder = known_photo_folder(folder, self.settings.library_dir())
        if not folder.is_dir():
            why = "is a file, not a folder" if folder.exists() else "is not there (moved, or a drive not mounted?)"
            self.message_bar.show_message(f"{folder} {why}: no library was made for it.", error=True)
            return
        self.jobs.cancel_all()
        self._index_run = None
        # what was said of the folder before is not said of this one
        self._photos_in_library = 0
        self._indexed_with = None
        self.count_label.clear()
        self.statusBar().clearMessage()
        self.progress_panel.finish()
        self.search_page.reset()
        self._folder = folder
        self.index_action.setEnabled(True)
        self.settings.add_recent_folder(folder)
        self._fill_recent_list()
        self.setWindowTitle(str(folder))  # Qt adds the application's name
        self.folder_label.setText(str(folder))
        self.message_bar.hide()
        self.problems_panel.clear_problems()
        self.thumbnails.drop_pending()
        self.folder_feed.clear()
        self.folder_model.clear()
        self.folder_stack.setCurrentWidget(self.folder_page)
        self._show_folder_page()
        self.duplicates_view.set_library(None)
        self.groups_page.set_library(False)
        self.sort_page.set_library(False)
        self.library_watch.stop()
        listing = ListingHandoff()  # the folder is listed once, for the grid and the index run
        self._list_folder(streaming=True, handoff=listing)
        self.jobs.open_library(
            folder,
            self.library_dir(folder),
            on_finished=self._on_library_opened,
            on_failed=self.show_worker_error,
        )
        self.folder_arranger.set_folder(folder)  # after open_library: its job waits for the new library
        # Its index run waits until the grid holds the listing: beside the grid's filling, the run's model
        # loading and check made the window wait up to 70 ms at 100,000 photos, and started after it the
        # run ends no later (docs/performance.md, point 5).
        self.start_indexing(listing=listing, after_listing=True)

    def refresh_folder(self) -> None:
        """The folder changed on disk (or by an action): list it again and bring the library up to date.
        A run in progress is not restarted (files still being copied in would restart it for good):
        one more run follows it."""
        if self._folder is None or self._shut_down:
            return
        listing = ListingHandoff()
        self._list_folder(streaming=False, handoff=listing)
        if self.library_watch.watching:
            return  # the watcher applies the changes itself
        if self.is_indexing():
            self._index_again = True
        else:
            self.start_indexing(listing=listing)

    def index_now(self) -> None:
        """F5: list the folder again, so the grid shows what is on disk, and bring the library up to date."""
        if self._folder is None:
            return
        listing = ListingHandoff()
        self._list_folder(streaming=False, handoff=listing)
        self.start_indexing(listing=listing)

    def start_indexing(self, *, forget_missing: bool = False, listing: ListingHandoff | None = None,
                       after_listing: bool = False) -> None:
        """Bring the library up to date with the folder; `listing`: the folder's listing being made
        beside it (without, the run lists the folder itself); `after_listing`: the run starts once that
        listing has ended and the grid holds it (it is shown as started at once)."""
        if self._folder is None:
            return
        if self._index_job is not None:
            self._index_job.cancel()
            self._index_job = None
        self.library_watch.stop()  # it starts again after the run, with the model the run used
        run = IndexRun(self._model_choice(), self.settings.batch_size(), self._decode_workers,
                       forget_missing=forget_missing, listing=listing)
        self._index_run = run
        self._index_again = False
        self.statusBar().clearMessage()  # the last run's summary is not this run's, which may fail
        self.progress_panel.start("Starting…", self._photos_in_library)
        self.search_page.set_indexing(True)
        self.duplicates_view.set_indexing(True)
        self.groups_page.set_indexing(True)
        if not after_listing:
            self._submit_index_run(run)

    def _run_waiting_for_listing(self) -> IndexRun | None:
        """The run start_indexing showed as started and has not submitted yet (`after_listing`)."""
        return self._index_run if self._index_job is None else None

    def _start_run_after_listing(self) -> None:
        run = self._run_waiting_for_listing()
        if run is not None and self._listing_job is None and not self.folder_feed.feeding() and not self._shut_down:
            self._submit_index_run(run)

    def _submit_index_run(self, run: IndexRun) -> None:
        self._index_job = self.jobs.submit_library(
            index_work(self.session, run),
            lane="library",
            name="index",
            on_progress=lambda progress: self._on_index_progress(run, progress),
            on_finished=lambda outcome: self._on_index_outcome(run, outcome),
            on_failed=lambda error: self._on_index_failed(run, error),
            on_ended=lambda: self._on_index_ended(run),
        )

    def cancel_indexing(self) -> None:
        waiting = self._run_waiting_for_listing()
        if waiting is not None:  # it has not started: it ends here
            self.statusBar().showMessage("Indexing cancelled before it started: the library is as it was",
                                         SUMMARY_SHOWN_MS)
            self._on_index_ended(waiting)
        elif self._index_job is not None and self._index_run is not None:
            self._index_run.pause.clear()
            self._index_job.cancel()

    def is_indexing(self) -> bool:
        return self._index_run is not None

    def _model_choice(self) -> ModelChoice:
        return ModelChoice(
            self.settings.get(opt.MODEL),
            self.settings.weights(),
            self.settings.get(opt.DEVICE),
            self.settings.get(opt.PRECISION),
        )

    def _on_pause_toggled(self, paused: bool) -> None:
        if self._index_run is None:
            return
        if paused:
            self._index_run.pause.set()
        else:
            self._index_run.pause.clear()

    def _list_folder(self, streaming: bool, handoff: ListingHandoff | None = None) -> None:
        """List the folder's photos: streamed into the grid when it opens, compared with the grid
        when it changed; given to `handoff` too (an index run started beside it)."""
        assert self._folder is not None
        if self._listing_job is not None:
            self._listing_job.cancel()
        folder = self._folder

        def found(paths_with_dates) -> None:
            if job is self._listing_job and streaming:
                self.folder_feed.add(paths_with_dates)

        job = self.jobs.submit(
            list_folder(folder, handoff, listing_key(self.folder_model.sort_order)),
            lane="listing",
            name="folder listing",
            throttle=False,
            cleanup=None if handoff is None else lambda: handoff.give(None),  # ended without a listing
            on_progress=found,
            on_finished=lambda listing: self._on_listing_finished(job, listing, streaming),
            on_failed=lambda error: self._on_listing_failed(job, error),
        )
        self._listing_job = job

    def _on_listing_failed(self, job: Job, error: WorkerError) -> None:
        if job is self._listing_job:
            self._listing_job = None
            self._start_run_after_listing()  # it lists the folder itself, and says what it finds
        self.show_worker_error(error)

    def _forget_thumbnails(self, paths: set[Path]) -> None:
        """Photos whose file changed: every view's thumbnail of them is made again."""
        if paths:
            for loader in (self.thumbnails, self.duplicates_view.thumbnails, self.groups_page.thumbnails,
                           self.sort_page.thumbnails):
                loader.forget(paths)

    def _on_listing_finished(self, job: Job, listing: FolderListing, streamed: bool) -> None:
        if job is not self._listing_job:
            return
        self._listing_job = None
        if not streamed:
            listed = {str(path): date for path, date in listing.photos}
            shown = {str(tile.path): tile for tile in self.folder_model.all_tiles()}
            gone = {tile.path for path, tile in shown.items() if path not in listed}
            arrived = [path for path, _ in listing.photos if str(path) not in shown]
            # saved over in place (an editor, a sync): a new tile, thumbnail and place in a date order
            replaced = {tile.path for path, tile in shown.items() if path in listed and listed[path] != tile.date}
            if self.library_watch.watching and (gone or arrived):
                self.library_watch.apply([*gone, *arrived])  # the watcher may have started after them
            self.folder_model.remove_paths(gone | replaced)
            self.folder_model.append_tiles(PhotoTile(path, date=date) for path, date in listing.photos)
            self._forget_thumbnails(replaced)
            self.search_page.remove_paths(gone)
            self.sort_page.remove_paths(gone)
        self.problems_panel.set_problems("listing", listing.problems)
        offline = self._folder is not None and not self._folder.is_dir()
        self.folder_view.set_empty_text(
            "" if listing.photos else
            "The folder is not there now (moved, deleted, or a drive not mounted?)." if offline else
            f"No photos in this folder or its subfolders. vitgallery reads {SUPPORTED_KINDS}."
        )
        if offline:
            self._show_folder_offline()
        self._watch_folders(listing.folders)
        self._start_run_after_listing()
        self._update_tab_titles()
        self.folder_listed.emit(len(listing.photos))

    def _watch_folders(self, folders: list[Path]) -> None:
        watched = self.folder_watcher.directories()
        if watched:
            self.folder_watcher.removePaths(watched)
        wanted = [str(folder) for folder in folders[:MAX_WATCHED_FOLDERS]]
        parent = self._folder.parent if self._folder is not None else None
        self._folder_parent = str(parent) if parent is not None and parent != self._folder and parent.is_dir() else None
        self._folder_present = self._folder is not None and self._folder.is_dir()
        if self._folder_parent is not None and self._folder_parent not in wanted:
            wanted.append(self._folder_parent)
        if wanted:
            self.folder_watcher.addPaths(wanted)

    def _on_folder_changed(self, path: str) -> None:
        if path == self._folder_parent:
            present = self._folder is not None and self._folder.is_dir()
            if present == self._folder_present:
                return  # another change in the folder above
            self._folder_present = present
            if present:  # back: watches on the old folder are dead, so start over as F5 does
                self.index_now()
                return
        self._folder_change_timer.start()

    def _show_folder_offline(self) -> None:
        self._offline_message = (
            f"{self._folder} is missing or empty (moved, deleted, or a drive not mounted?): nothing was removed "
            "from the library. Its photos show again when the folder is back."
        )
        self.message_bar.show_message(self._offline_message, error=True)

    def _hide_folder_offline(self) -> None:
        self.message_bar.withdraw(self._offline_message)
        self._offline_message = None

    def _on_library_opened(self, opened: OpenedLibrary) -> None:
        if opened.root != self._folder:
            return
        self._photos_in_library = opened.photo_count
        self._indexed_with = opened.indexed_with
        self._show_photo_count(opened.photo_count)
        if opened.followed_from is not None:
            self.settings.forget_recent_folder(opened.followed_from)
            self._fill_recent_list()
            self.message_bar.show_message(
                f"These are the photos of {opened.followed_from}, indexed before and no longer there (renamed "
                "or moved): their library followed them here, so they are not indexed again."
            )
        self.problems_panel.set_problems("index", opened.skipped)
        self.folder_model.set_not_indexed(opened.skipped)
        self.duplicates_view.set_library(opened.library_dir)
        self.groups_page.set_library(True)
        self.sort_page.set_library(True)
        self._update_tab_titles()
        self.library_opened.emit(opened)

    def _on_index_progress(self, run: IndexRun, progress) -> None:
        if run is not self._index_run:
            return
        self.index_progress.emit(progress)
        if isinstance(progress, ModelLoading):
            self.progress_panel.show_step(
                f"Downloading the model {progress.name} (first run)…"
                if progress.downloading
                else f"Loading the model {progress.name}…"
            )
            return
        if progress.phase in ("embedding", "learning"):
            self.progress_panel.update_progress(progress.phase, progress.done, progress.total, progress.current_path)
            if progress.photos_indexed is not None:
                self._show_photo_count(progress.photos_indexed)
            self.message_bar.withdraw(self._model_error)  # photos embedded: the model loads now
        else:
            self.progress_panel.show_step(
                {
                    "waiting": "Waiting for another vitgallery indexing this library to finish…",
                    "calibrating": "Reading photos to fit the fast model to this library…",
                    "quantising": "Fitting the fast model to this library's photos (done once; it can take a minute)…",
                    "scanning": "Looking for new and changed photos…",
                    "saving": "Saving the index…",
                    "fitting": "Learning what tells this library's photos apart…",
                    "done": "Done",
                }.get(progress.phase, progress.phase),
                pausable=progress.phase not in ("waiting", "calibrating", "quantising"),
            )

    def _on_index_outcome(self, run: IndexRun, outcome: IndexOutcome) -> None:
        run.outcome = outcome
        if run is not self._index_run:
            return
        self._photos_in_library = outcome.photo_count
        self._indexed_with = outcome.indexed_with
        self._show_photo_count(outcome.photo_count)
        self.problems_panel.set_problems("index", outcome.skipped)
        self.folder_model.set_not_indexed(outcome.skipped)
        for notice in outcome.notices:
            self.message_bar.show_message(notice)
        summary = outcome.summary
        self.statusBar().showMessage(_summary_text(summary), SUMMARY_SHOWN_MS)
        if summary.offline:
            self._show_folder_offline()
            return
        self._hide_folder_offline()
        if summary.missing_kept:
            self._ask_to_forget_missing(summary.missing_kept)

    def _ask_to_forget_missing(self, count: int) -> None:
        # Asked, never assumed: a drive unplugged or a folder replaced looks just like a mass delete.
        self.message_bar.show_message(
            f"{count:,} photos are gone from {self._folder} at once (a drive unplugged, "
            "a folder replaced?). They stay in the library until you say to forget them.",
            error=True,
            action=MessageAction("Forget them", self.forget_missing_photos),
        )

    def forget_missing_photos(self) -> None:
        """From the banner after many photos vanished at once: the user confirms they are gone."""
        self.message_bar.hide()
        self.start_indexing(forget_missing=True)

    def _on_index_failed(self, run: IndexRun, error: WorkerError) -> None:
        if run is self._index_run:
            self.show_worker_error(error)

    def _on_index_ended(self, run: IndexRun) -> None:
        if run is not self._index_run:
            return
        self._index_run = None
        self._index_job = None
        self.progress_panel.finish()
        summary = run.outcome.summary if run.outcome is not None else None
        changed = summary is not None and bool(
            summary.added or summary.updated or summary.moved or summary.removed or summary.teaching
        )
        self.search_page.set_indexing(False, library_changed=changed)
        self.duplicates_view.set_indexing(False)
        self.groups_page.set_indexing(False)
        if changed:
            self.library_changed.emit()
        self._update_tab_titles()
        self.indexing_finished.emit(summary)
        if self._index_again and summary is not None and not summary.cancelled:
            self.start_indexing()
        elif summary is not None and not summary.cancelled and not summary.offline:
            self.library_watch.start()

    def _on_watch_update(self, update: WatchUpdate) -> None:
        """The folder watcher applied a batch of changes: every page follows."""
        batch = update.batch
        if batch.summary is None:
            self.message_bar.show_message(f"{batch.paths} changes on disk could not be indexed: {batch.error}", error=True)
            return
        self._photos_in_library = update.photo_count
        self._show_photo_count(update.photo_count)
        if batch.summary.missing_kept:
            self._ask_to_forget_missing(batch.summary.missing_kept)
        if update.changed:
            self.statusBar().showMessage(_summary_text(batch.summary), SUMMARY_SHOWN_MS)
            self._list_folder(streaming=False)
            self.search_page.library_changed()
            self.library_changed.emit()

    def check_model(self) -> None:
        """Say now, not when indexing fails, when the chosen model cannot be loaded here."""
        choice = self._model_choice()

        def check(progress, cancel) -> str | None:
            from vitgallery.core.models import weights_problem

            return weights_problem(choice.name, choice.weights)

        self.jobs.submit(check, lane="checks", name="model check", on_finished=self._on_model_checked)

    def _on_model_checked(self, problem: str | None) -> None:
        if problem is not None and not self.is_indexing():
            self._show_model_problem(problem)

    def _show_model_problem(self, text: str) -> None:
        self.show_worker_error(WorkerError(text, model_failed=True))

    def choose_weights_file(self) -> None:
        """From the model error's banner: point the app at a weights file and index again."""
        path, _ = QFileDialog.getOpenFileName(
            self, "Model weights", str(Path.home()), "Weights (*.pth *.pt *.safetensors *.bin);;All files (*)"
        )
        if path:
            self.settings.set(opt.WEIGHTS, path)
            self.message_bar.withdraw(self._model_error)
            self.start_indexing()

    def _show_photo_count(self, count: int) -> None:
        self.count_label.setText(f"{count:,} photos indexed")
        # at its full width whatever the status bar holds (at 1,024 px it read "23 photos indexe")
        self.count_label.setMinimumWidth(self.count_label.fontMetrics().horizontalAdvance(self.count_label.text()) + 4)

    # -- every page sees every change --------------------------------------------------------------

    def files_changed(self, report) -> None:
        """An action moved, trashed or put back files: every page updates now, the library follows."""
        if not report.moved_files:
            return
        gone = {source for source, _ in report.done}
        arrived = {target for _, target in report.done if target is not None}
        self.folder_model.remove_paths(gone)
        self.search_page.remove_paths(gone)
        self.sort_page.remove_paths(gone)
        self.sort_page.paths_back(arrived)
        if self._folder is not None:
            inside = [path for path in arrived if path.is_relative_to(self._folder)]
            self.folder_model.append_tiles(PhotoTile(path, date=modified_time(path)) for path in inside)
        self._update_tab_titles()
        if report.done or report.back_by_hand:  # the library followed the files at once (Library.act): pages refresh
            self.search_page.follow_moves({source: target for source, target in report.done if target is not None})
            self.search_page.library_changed()
            self.library_changed.emit()
        self.refresh_folder()

    # -- queries -----------------------------------------------------------------------------------

    def set_query(self, source: QuerySource) -> None:
        self.message_bar.withdraw(self._not_a_query)  # said of an earlier paste or drop, not of this query
        self.tabs.setCurrentWidget(self.search_page)
        self.search_page.search(source)

    def find_similar(self, path: Path) -> None:
        self.set_query(QuerySource(label=path.name, path=path))

    def clear_query(self) -> None:
        self.search_page.leave()

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
            self._not_a_query = "The clipboard holds no image, image file or image link."
            self.message_bar.show_message(self._not_a_query)
            return
        self.set_query(source)

    def _on_search_failed(self, error: WorkerError) -> None:
        """The search page says why a search failed, beside its query; the message bar only where it
        has more to give: the model's way out, or a report of the unexpected."""
        if error.model_failed or error.unexpected:
            self._search_error = error.message
            self.show_worker_error(error)

    def _on_results_shown(self, count: int, refreshed: bool) -> None:
        self.message_bar.withdraw(self._search_error)  # a search that fails, then works, leaves no stale error
        self._search_error = None
        if not refreshed:  # results refreshed in the background leave the user on the page they are on
            self.tabs.setCurrentWidget(self.search_page)
        self.results_shown.emit(count)

    def _leave_results(self) -> None:
        """Esc leaves the results from their own page. On another page Esc is that page's (typing a folder
        on Sort, reviewing duplicates): there it cleared the query and jumped to the folder."""
        if self.tabs.currentWidget() is self.search_page:
            self.search_page.leave()

    def _show_query_panel(self, shown: bool) -> None:
        self.query_panel.setVisible(shown)
        self.settings.set(opt.QUERY_PANEL_SHOWN, shown)
        self.search_page.query_panel_toggled()

    def _left_results(self) -> None:
        """Back to the folder: a failed search's error goes with its query (it stayed over every page)."""
        self.message_bar.withdraw(self._search_error)
        self._search_error = None
        self._show_folder_page()

    def _show_folder_page(self) -> None:
        self.tabs.setCurrentIndex(0)
        self.folder_view.setFocus()

    # -- drag and drop -----------------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if can_accept(event.mimeData()):
            event.setDropAction(Qt.DropAction.CopyAction)
            event.accept()
            self.query_panel.set_drag_highlight(True)
            if self.query_panel.isHidden():  # hidden (F9): the panel cannot show where to drop
                if self.statusBar().currentMessage() != DROP_HINT:
                    self._said_before_drag = self.statusBar().currentMessage()
                self.statusBar().showMessage(DROP_HINT)
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        event.setDropAction(Qt.DropAction.CopyAction)
        event.accept()

    def dragLeaveEvent(self, event: QDragLeaveEvent) -> None:
        self._end_drag()

    def _end_drag(self) -> None:
        self.query_panel.set_drag_highlight(False)
        if self.statusBar().currentMessage() == DROP_HINT:  # what it said before comes back
            self.statusBar().showMessage(self._said_before_drag, SUMMARY_SHOWN_MS)

    def dropEvent(self, event: QDropEvent) -> None:
        self._end_drag()
        source = query_from_mime(event.mimeData())
        if source is None:
            self._not_a_query = "That drop held no image, image file or image link."
            self.message_bar.show_message(self._not_a_query)
            event.ignore()
            return
        event.setDropAction(Qt.DropAction.CopyAction)
        event.accept()
        self.set_query(source)

    # -- preview and thumbnails --------------------------------------------------------------------

    def open_folder_preview(self, row: int) -> PreviewDialog | None:
        if not 0 <= row < self.folder_model.rowCount():
            return None
        if self._preview is not None:
            self._preview.close()
        self._preview = PreviewDialog(self.folder_model, row, self.jobs, self)
        self._preview.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._preview.destroyed.connect(self._forget_preview)
        self._preview.show()
        return self._preview

    def _forget_preview(self) -> None:
        self._preview = None

    def _preview_folder_path(self, paths: list[Path]) -> None:
        row = self.folder_model.row_of(paths[0])
        if row is not None:
            self.open_folder_preview(row)

    def _on_folder_sort_changed(self) -> None:
        order = self.folder_sort_combo.currentData()
        self.folder_model.set_sort_order(order)
        self.settings.set(opt.FOLDER_SORT, order.value)
        self.folder_arranger.refresh()

    def set_thumbnail_size(self, size: int) -> None:
        """Tiles resize at once (their pixmaps scaled); thumbnails are decoded anew once the slider rests."""
        self.folder_view.set_thumbnail_size(size)
        self.search_page.set_thumbnail_size(size)
        self.settings.set(opt.THUMBNAIL_SIZE, size)
        if self.thumbnail_slider.value() != size:
            self.thumbnail_slider.setValue(size)
        self._thumbnail_decode_timer.start()

    def _decode_thumbnails_at_new_size(self) -> None:
        size = _decode_size(self.thumbnail_slider.value())
        if size != self.thumbnails.size:
            self.thumbnails.set_size(size)
            for view in (self.folder_view, self.results_view):
                view.viewport().update()

    # -- settings and about ------------------------------------------------------------------------

    def open_settings(self) -> None:
        dialog = SettingsDialog(self.settings, self, indexed_with=self._indexed_with)
        if dialog.exec():
            self.apply_settings(dialog.changed())

    def apply_settings(self, changed: set) -> None:
        if opt.THUMBNAIL_SIZE in changed:
            self.set_thumbnail_size(self.settings.get(opt.THUMBNAIL_SIZE))
        if opt.LIBRARY_DIR in changed and self._folder is not None:
            self.open_folder(self._folder)
        elif changed & opt.INDEXING and self._folder is not None:
            self.message_bar.withdraw(self._model_error)  # the choice it was about is gone; a new failure says so
            self.start_indexing()

    def about_text(self) -> str:
        library = self.session.library_dir
        return (
            f"<h3>vitgallery {vitgallery.__version__}</h3>"
            "<p>Finds similar photos in your own library, offline, with a Vision Transformer (DINOv2).</p>"
            f"<p><b>Library:</b> {library if library is not None else '(no folder open)'}<br>"
            f"<b>Log file:</b> {log_file_path()}</p>"
            "<p>Keys: Return finds similar photos, Space previews, Alt+Left/Right go through earlier "
            "queries, Esc goes back to the folder.</p>"
        )

    def show_about(self) -> None:
        QMessageBox.about(self, "About vitgallery", self.about_text())

    # -- problems ----------------------------------------------------------------------------------

    def show_worker_error(self, error: WorkerError) -> None:
        if error.model_failed:
            self._model_error = error.message
            action = (MessageAction("Settings…", self.open_settings) if error.device_failed
                      else MessageAction("Choose weights file…", self.choose_weights_file))
            self.message_bar.show_message(error.message, error=True, action=action)
            return
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
        # the photos alike, not the closest unlike ones shown faded when nothing is alike; "of" those the
        # minimum similarity hides too
        shown, total = (sum(tile.match in (Match.SAME, Match.SIMILAR) for tile in tiles)
                        for tiles in (self.results_model.tiles(), self.results_model.all_tiles()))
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
        recent = self.settings.recent_folders()
        for folder in recent:
            item = QListWidgetItem(str(folder))
            item.setData(Qt.ItemDataRole.UserRole, str(folder))
            if not folder.is_dir():
                item.setText(f"{folder}  (not there)")
                item.setForeground(self.palette().color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text))
                item.setToolTip(f"{folder} is not there: {GONE_FOLDER_WHY}")
            self.recent_list.addItem(item)
        self.recent_list.setVisible(bool(recent))
        self.recent_label.setVisible(bool(recent))

    def note_missing_last_folder(self) -> None:
        """At start, when the folder used last is not there and the window opened on none: say so."""
        text = self.settings.get(opt.LAST_FOLDER)
        if text and not Path(text).is_dir():
            self.message_bar.show_message(f"The folder used last, {text}, is not there: {GONE_FOLDER_WHY}")

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
        """Stop every job; each indexing batch is committed on its own, so nothing committed is lost.

        Cancelling the index job also ends its decoding processes: the core's decode pool is shut
        down as the index call returns.
        """
        if self._shut_down:
            return
        self._shut_down = True
        started = time.monotonic()
        self._folder_change_timer.stop()
        self.folder_feed.clear()  # the garbage collector waits while it feeds the grid
        self.cancel_indexing()
        self.search_page.shutdown()
        self.duplicates_view.shutdown()
        self.groups_page.shutdown()
        self.sort_page.shutdown()
        self.library_watch.stop()
        self.thumbnails.drop_pending()
        if self._preview is not None:
            self._preview.close()
        if self.jobs.shutdown(SHUTDOWN_WAIT_S):
            # Every job has returned the library, so it can be closed from here.
            self.session.replace_library(None)
        self.thumbnails.shutdown(200)
        self.settings.sync()
        log.info("window closed in %.0f ms", (time.monotonic() - started) * 1000)


def _decode_size(thumbnail_size: int) -> int:
    return -(-thumbnail_size // THUMBNAIL_DECODE_STEP) * THUMBNAIL_DECODE_STEP


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
