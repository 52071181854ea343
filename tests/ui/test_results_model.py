from __future__ import annotations

import gc
from pathlib import Path

import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtTest import QAbstractItemModelTester
from PySide6.QtWidgets import QListView, QStyleOptionViewItem

from tests.photos import make_photo
from vitgallery.ui.results_model import (
    InliersRole,
    Match,
    MatchRole,
    NotIndexedRole,
    PathRole,
    PhotoGridView,
    PhotoListModel,
    PhotoTile,
    PhotoTileDelegate,
    RankRole,
    ScoreRole,
    SortOrder,
    ThumbnailFailedRole,
    ThumbnailRole,
    TileFeed,
    badge_text,
    listing_key,
)
from vitgallery.ui.thumbnails import ThumbnailLoader
from vitgallery.ui.workers import sorted_in_runs

RANKED = [PhotoTile(Path(f"/photos/{name}.jpg"), score) for name, score in
          [("a", 0.93), ("b", 0.81), ("c", 0.80), ("d", 0.52), ("e", 0.31)]]  # fmt: skip


@pytest.fixture
def checked_model(qtbot):
    model = PhotoListModel()
    # Fatal mode: any broken invariant (bad signals, wrong row counts...) raises during the test.
    tester = QAbstractItemModelTester(model, QAbstractItemModelTester.FailureReportingMode.Fatal)
    yield model
    del tester


def test_ranked_rows_expose_named_roles(checked_model: PhotoListModel) -> None:
    checked_model.set_tiles(RANKED)
    assert checked_model.rowCount() == 5
    second = checked_model.index(1)
    assert second.data(PathRole) == "/photos/b.jpg"
    assert second.data(ScoreRole) == pytest.approx(0.81)
    assert second.data(RankRole) == 2
    assert second.data(Qt.ItemDataRole.DisplayRole) == "b.jpg"
    assert "0.810" in second.data(Qt.ItemDataRole.ToolTipRole)
    names = {bytes(name.data()) for name in checked_model.roleNames().values()}
    assert {b"path", b"score", b"thumbnail", b"rank", b"inliers"} <= names
    assert checked_model.rowCount(second) == 0  # a flat list: items have no children


def test_a_tiles_look_in_one_call_is_what_its_roles_give(checked_model: PhotoListModel) -> None:
    """The delegate paints from look_of (one call instead of six through Qt): it must say what data() does."""
    checked_model.set_tiles([PhotoTile(Path("/p/crop.jpg"), 0.97, 0.62, 48, Match.SAME),
                             PhotoTile(Path("/p/far.jpg"), 0.1, 0.1, None, Match.WEAK)])
    checked_model.set_min_score(0.05)
    checked_model.set_not_indexed([(Path("/p/far.jpg"), "truncated file")])
    for row in range(checked_model.rowCount()):
        index, look = checked_model.index(row), checked_model.look_of(row)
        assert look == (index.data(Qt.ItemDataRole.DisplayRole), index.data(MatchRole), index.data(ThumbnailRole),
                        index.data(ThumbnailFailedRole), index.data(ScoreRole), index.data(RankRole),
                        index.data(NotIndexedRole))
    assert checked_model.look_of(1).match is Match.WEAK and checked_model.look_of(1).rank == 2
    assert checked_model.look_of(1).not_indexed and not checked_model.look_of(0).not_indexed


def test_a_result_says_why_it_ranked(checked_model: PhotoListModel) -> None:
    checked_model.set_tiles([
        PhotoTile(Path("/p/crop.jpg"), 0.97, 0.62, 48, Match.SAME),
        PhotoTile(Path("/p/squashed.jpg"), 0.71, 0.71, 0, Match.SIMILAR),
        PhotoTile(Path("/p/other.jpg"), 0.58, 0.58, 3, Match.SIMILAR),
        PhotoTile(Path("/p/far.jpg"), 0.1, 0.1, None, Match.WEAK),
        PhotoTile(Path("/p/same-table.jpg"), 0.12, 0.12, 47, Match.WEAK),  # verified, but its picture differs
        PhotoTile(Path("/p/smooth-copy.jpg"), 0.8, 0.74, 2, Match.SAME, likeness=0.984),  # by its grey levels
        PhotoTile(Path("/p/grey-crop.jpg"), 0.8, 0.43, 8, Match.SAME, agreement=0.97),  # by the pixels 8 points align
    ])
    verified, squashed, few, far, scene, smooth, grouped = (checked_model.index(row).data(Qt.ItemDataRole.ToolTipRole)
                                                            for row in range(7))
    assert checked_model.index(0).data(InliersRole) == 48 and checked_model.index(3).data(InliersRole) is None
    assert "the same photo: 48 matching points" in verified
    # A true copy whose keypoints were lost (squashed and blurred) is never called another scene.
    assert "looks similar" in squashed and "not verified by keypoints" in squashed and "scene" not in squashed
    assert "3 matching points, too few to verify" in few
    assert "does not look alike" in far
    assert "47 matching points, but the pictures differ where they overlap: the same scene" in scene
    assert "same photo" not in scene
    assert "the same photo: too few details to match point by point, but its shapes and shades align with 98%" in smooth
    assert "the same photo: 8 matching points, and 97% of the overlap they align alike, as the Duplicates page" in grouped


def test_threshold_cuts_the_tail_and_brings_it_back(qtbot, checked_model: PhotoListModel) -> None:
    checked_model.set_tiles(RANKED)
    with qtbot.waitSignal(checked_model.rowsRemoved) as removed:
        checked_model.set_min_score(0.80)
    assert removed.args[1:] == [3, 4]
    assert [tile.path.stem for tile in checked_model.tiles()] == ["a", "b", "c"]
    assert checked_model.total_count() == 5
    assert checked_model.row_of(Path("/photos/d.jpg")) is None

    with qtbot.waitSignal(checked_model.rowsInserted):
        checked_model.set_min_score(0.5)
    assert checked_model.rowCount() == 4
    checked_model.set_min_score(0.99)
    assert checked_model.rowCount() == 0
    # A new result set is filtered by the threshold in force.
    checked_model.set_tiles([PhotoTile(Path("/x.jpg"), 0.995), PhotoTile(Path("/y.jpg"), 0.2)])
    assert checked_model.rowCount() == 1


def test_folder_listing_appends_without_duplicates(checked_model: PhotoListModel) -> None:
    checked_model.append_paths([Path("/p/1.jpg"), Path("/p/2.jpg")])
    checked_model.append_paths([Path("/p/2.jpg"), Path("/p/3.jpg")])
    assert [tile.path.name for tile in checked_model.tiles()] == ["1.jpg", "2.jpg", "3.jpg"]
    assert checked_model.index(0).data(ScoreRole) is None
    checked_model.set_min_score(0.9)  # no scores: the threshold does not apply
    assert checked_model.rowCount() == 3
    checked_model.clear()
    assert checked_model.rowCount() == 0


@pytest.mark.parametrize("order", [SortOrder.NAME, SortOrder.DATE, SortOrder.RANK])
def test_a_listing_fed_in_slices_ends_in_the_order_of_the_whole(qtbot, checked_model: PhotoListModel,
                                                                 order: SortOrder) -> None:
    """Tiles that sort after the shown ones are added at the end (no reset); others reorder the rows,
    a few times as they double, a few slices at most at a time: either way the grid ends as if the
    whole listing had been set at once."""
    names = [f"{folder}/{stem}_{i:03d}.jpg" for folder in ("b", "A", "c", "d") for stem in ("img", "IMG", "x")
             for i in range(17)]  # walked folder by folder: by name, the folders interleave
    listing = [(Path("/r") / name, float((7 * i) % 11)) for i, name in enumerate(names + names[:30])]
    checked_model.set_sort_order(order)
    resets, before_resets = [], []
    checked_model.modelAboutToBeReset.connect(lambda: before_resets.append(checked_model.rowCount()))
    checked_model.modelReset.connect(lambda: resets.append(checked_model.rowCount()))
    feed = TileFeed(checked_model, slice_size=4)
    feed.add(listing[:10])
    feed.add(listing[10:])
    assert checked_model.rowCount() == 0, "fed by the event loop, not at once"
    qtbot.waitUntil(lambda: checked_model.rowCount() == len(names))
    first_seen: dict[Path, float] = {}
    for path, date in listing:
        first_seen.setdefault(path, date)
    whole = PhotoListModel()
    whole.set_sort_order(order)
    whole.set_tiles(PhotoTile(path, date=date) for path, date in first_seen.items())
    assert checked_model.tiles() == whole.tiles()
    assert all(checked_model.row_of(tile.path) == row for row, tile in enumerate(whole.tiles()))
    most = 4 * TileFeed.RESORTED_SLICES
    assert len(resets) <= 2 + len(listing) // most, f"{len(resets)} resets: sorted again as the rows double, not once a slice of 4"
    added = [after - before for before, after in zip(before_resets, resets, strict=True)]
    assert max(added, default=0) <= most, f"a turn took on {max(added)} photos"
    if order is SortOrder.RANK:
        assert not resets, "in listing order every slice is added at the end"


@pytest.mark.parametrize("order", [SortOrder.NAME, SortOrder.DATE])
def test_a_listing_sorted_in_the_grids_order_is_fed_without_reordering_the_rows(
        qtbot, checked_model: PhotoListModel, order: SortOrder) -> None:
    """Sorted by the worker that lists it, a few thousand at a time (sorted_in_runs), every slice goes
    after the rows shown: a listing walked folder by folder no longer merges into all of them each turn."""
    names = [f"{folder}/{stem}_{i:03d}.jpg" for folder in ("b", "A", "c", "d") for stem in ("img", "IMG", "x")
             for i in range(17)]
    listing = [(Path("/r") / name, float((7 * i) % 11)) for i, name in enumerate(names)]
    key = listing_key(order)
    checked_model.set_sort_order(order)
    resets = []
    checked_model.modelReset.connect(lambda: resets.append(1))
    feed = TileFeed(checked_model, slice_size=4)
    feed.add(sorted_in_runs(listing, lambda photo: key(*photo), run=7))
    qtbot.waitUntil(lambda: checked_model.rowCount() == len(names))
    whole = PhotoListModel()
    whole.set_sort_order(order)
    whole.set_tiles(PhotoTile(path, date=date) for path, date in listing)
    assert checked_model.tiles() == whole.tiles() and not resets


def test_a_feed_says_when_the_grid_holds_all_it_was_given(qtbot, checked_model: PhotoListModel) -> None:
    """The window starts a folder's index run on it (issue 18 point 5): once, when the last slice is in."""
    feed = TileFeed(checked_model, slice_size=4)
    drained = []
    feed.drained.connect(lambda: drained.append(checked_model.rowCount()))
    feed.add([(Path(f"/r/{i:02d}.jpg"), None) for i in range(10)])
    assert feed.feeding()
    qtbot.waitUntil(lambda: bool(drained))
    assert drained == [10] and not feed.feeding()


def test_the_garbage_collector_waits_while_a_listing_feeds_the_grid(qtbot, checked_model: PhotoListModel) -> None:
    """Its passes walked every tile again as the grid filled; what lives once the listing is in is frozen."""
    assert gc.isenabled()
    frozen = gc.get_freeze_count()
    feed = TileFeed(checked_model, slice_size=4)
    feed.add([(Path(f"/r/{i:02d}.jpg"), None) for i in range(10)])
    assert not gc.isenabled()
    qtbot.waitUntil(lambda: checked_model.rowCount() == 10)
    assert gc.isenabled()
    assert gc.get_freeze_count() > frozen
    feed.add([(Path(f"/s/{i:02d}.jpg"), None) for i in range(10)])
    assert not gc.isenabled()
    feed.clear()  # another folder opened, or the window closed, before the listing was in
    assert gc.isenabled()
    dropped = TileFeed(checked_model)
    dropped.add([(Path("/u/1.jpg"), None)])
    assert not gc.isenabled()
    del dropped  # gone before its listing was in
    assert gc.isenabled()
    gc.disable()
    try:
        feed.add([(Path("/t/1.jpg"), None)])
        qtbot.waitUntil(lambda: checked_model.rowCount() == 11)
        assert not gc.isenabled(), "switched off by someone else: left as it was"
    finally:
        gc.enable()


def test_a_listing_in_name_order_is_added_at_the_end(checked_model: PhotoListModel) -> None:
    checked_model.set_sort_order(SortOrder.NAME)
    resets = []
    checked_model.modelReset.connect(lambda: resets.append(1))
    checked_model.append_paths([Path("/p/a.jpg"), Path("/p/b.jpg")])
    checked_model.append_paths([Path("/p/c.jpg"), Path("/p/A2.jpg")])  # A2 sorts between a and b
    checked_model.append_paths([Path("/p/d.jpg")])
    assert [tile.path.name for tile in checked_model.tiles()] == ["a.jpg", "A2.jpg", "b.jpg", "c.jpg", "d.jpg"]
    assert len(resets) == 1, "only the slice that sorts before shown tiles reorders the rows"


def test_tiles_drag_out_as_files(checked_model: PhotoListModel) -> None:
    checked_model.set_tiles(RANKED)
    mime = checked_model.mimeData([checked_model.index(0), checked_model.index(2)])
    assert [url.toLocalFile() for url in mime.urls()] == ["/photos/a.jpg", "/photos/c.jpg"]
    assert checked_model.flags(checked_model.index(0)) & Qt.ItemFlag.ItemIsDragEnabled
    assert checked_model.flags(QModelIndex()) == Qt.ItemFlag.NoItemFlags


def test_thumbnail_role_loads_in_the_background_and_announces_it(qtbot, tmp_path: Path) -> None:
    photo = tmp_path / "photo.jpg"
    make_photo(1, (640, 480)).save(photo)
    loader = ThumbnailLoader(size=64, cache_dir=tmp_path / "thumbs")
    model = PhotoListModel(loader)
    tester = QAbstractItemModelTester(model, QAbstractItemModelTester.FailureReportingMode.Fatal)
    model.set_tiles([PhotoTile(photo, 0.9)])
    with qtbot.waitSignal(model.dataChanged, timeout=10_000) as changed:
        assert model.index(0).data(ThumbnailRole) is None  # not cached yet: queued
    assert changed.args[0].row() == 0 and ThumbnailRole in changed.args[2]
    pixmap = model.index(0).data(ThumbnailRole)
    assert isinstance(pixmap, QPixmap) and (pixmap.width(), pixmap.height()) == (64, 48)
    loader.shutdown()
    del tester


def painted_tiles(qtbot, model: PhotoListModel, tiles: list[PhotoTile], thumbnail_size: int,
                  ) -> tuple[QListView, PhotoTileDelegate, QImage]:
    """`tiles` in a plain icon view painted by the tile delegate: the view, the delegate, its picture."""
    view = QListView()
    qtbot.addWidget(view)
    delegate = PhotoTileDelegate(thumbnail_size, view)
    view.setItemDelegate(delegate)
    view.setViewMode(QListView.ViewMode.IconMode)
    view.setModel(model)
    model.set_tiles(tiles)
    view.resize(600, 400)
    view.show()
    return view, delegate, view.grab().toImage()


def test_delegate_paints_tiles_with_score_badges(qtbot, checked_model: PhotoListModel) -> None:
    view, delegate, image = painted_tiles(qtbot, checked_model, RANKED, 96)
    assert delegate.sizeHint(QStyleOptionViewItem(), checked_model.index(0)) == delegate.tile_size()
    # The badge is a dark pill in the top-right corner of the first tile.
    rect = view.visualRect(checked_model.index(0))
    badge_pixel = image.pixelColor(rect.right() - 14, rect.top() + 12)
    assert badge_pixel.lightness() < 100


def test_a_growing_grid_is_not_laid_out_again_and_again(qtbot) -> None:
    """Streamed into a grid as a folder opens, tiles must not make a horizontal scroll bar come and go:
    each time it did, the grid's height changed and all its tiles were laid out again."""
    model = PhotoListModel()
    view = PhotoGridView(model, PhotoTileDelegate(160))
    qtbot.addWidget(view)
    view.resize(1000, 700)
    view.show()
    qtbot.waitExposed(view)
    heights = []
    feed = TileFeed(model, slice_size=300)
    feed.add((Path(f"/p/{i:05d}.jpg"), None) for i in range(3000))
    for _ in range(40):
        heights.append(view.viewport().height())
        qtbot.wait(15)
    assert model.rowCount() == 3000
    assert len(set(heights[len(heights) // 4:])) == 1, f"the grid's height kept changing: {sorted(set(heights))}"
    assert not view.horizontalScrollBar().isVisible()


@pytest.mark.parametrize("width", [1000, 1250, 1280])
def test_the_columns_fit_whether_the_scroll_bar_shows_or_not(qtbot, width) -> None:
    """Fitted to the width without the scroll bar, the columns no longer fit once it shows: the grid
    flipped between one column more and one fewer with a gap, its last row cut off (13 results at 1280 px)."""
    model = PhotoListModel()
    view = PhotoGridView(model, PhotoTileDelegate(160))
    qtbot.addWidget(view)
    view.resize(width, 600)
    view.show()
    qtbot.waitExposed(view)
    model.append_paths(Path(f"/p/{i:02d}.jpg") for i in range(3))  # one row: no scroll bar
    qtbot.wait(50)
    assert not view.verticalScrollBar().isVisible()
    few = view.gridSize()
    model.append_paths(Path(f"/p/{i:02d}.jpg") for i in range(3, 40))  # rows enough to scroll
    qtbot.waitUntil(view.verticalScrollBar().isVisible)
    qtbot.wait(50)
    assert view.gridSize() == few, "the grid stays as it was"
    columns = view.viewport().width() // few.width()
    assert columns * few.width() <= view.viewport().width()
    view.scrollToBottom()
    qtbot.wait(50)
    last = view.visualRect(model.index(model.rowCount() - 1))
    assert last.bottom() <= view.viewport().height(), "the last row can be scrolled into view"
    assert view.visualRect(model.index(columns - 1)).right() <= view.viewport().width()


def test_a_badge_on_the_smallest_tiles_stays_on_its_tile(qtbot, checked_model: PhotoListModel) -> None:
    """At 64 px "12 · 0.94 ✓" is wider than the tile and covered its neighbour: the rank gives way."""
    copies = [PhotoTile(Path(f"/photos/{n}.jpg"), 0.94, match=Match.SAME) for n in range(12)]
    view, _, image = painted_tiles(qtbot, checked_model, copies, 64)
    last = view.visualRect(checked_model.index(11))
    left_of_it = [image.pixelColor(last.left() - 1 - x, last.top() + 12).lightness() for x in range(6)]
    assert min(left_of_it) > 200, "nothing painted between the tile and the one before it"
    assert image.pixelColor(last.right() - 14, last.top() + 12).lightness() < 200, "the badge is there"


def test_the_not_indexed_badge_says_so_in_words_on_small_tiles(qapp) -> None:
    """QA: on a 96-px tile it read "!" alone; its words now fit in a smaller type, down to a size still read."""
    from PySide6.QtGui import QFontMetrics
    from PySide6.QtWidgets import QApplication

    font = QApplication.font()
    room = 96 - 6 - 12  # the badge's room on a 96-px tile
    text, used = badge_text(["not indexed", "!"], font, room, shrink=True)
    assert text == "not indexed" and QFontMetrics(used).horizontalAdvance(text) <= room and used.bold()
    assert badge_text(["not indexed", "!"], font, 20, shrink=True)[0] == "!", "a tile too small for any word"
    score, plain = badge_text(["1 · 0.93 ✓", "0.93 ✓"], font, room)
    assert plain.pointSizeF() == font.pointSizeF(), "the score keeps its type: shorter words go first"
