"""Thumbnails decoded small in a thread pool, cached on disk and in memory.

Worker threads only touch QImage (thread-safe); the GUI thread turns it into a QPixmap and
keeps it in an LRU. When the grid changes, queued loads are dropped and loads still running
carry an old generation number, so their results no longer reach the views. The disk cache is
kept under DISK_CACHE_LIMIT: once per process the least recently used thumbnails beyond it are
deleted in the background (a cache hit marks its file as used). Where the desktop keeps a shared
thumbnail cache (desktop_thumbnails), its thumbnails are read first and ours are written there instead.
Formats Qt has no reader for (HEIC, AVIF) are decoded by the core's decoder.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

import platformdirs
from PIL import Image
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QObject, QRunnable, QSize, Qt, QThreadPool, Signal
from PySide6.QtGui import QImage, QImageReader, QPixmap

from vitgallery.core.imageio import DecodeError, open_image
from vitgallery.ui.desktop_thumbnails import DesktopThumbnailCache, qt_file_name

log = logging.getLogger(__name__)

DEFAULT_MEMORY_ITEMS = 2000
DISK_CACHE_LIMIT = 1 << 30  # bytes: about 150,000 thumbnails of 160 px (~7 KB each)
DISK_CACHE_KEEP = 0.8  # a trim leaves this share of the limit, so it is not needed again at once
STALE_TEMPORARY_S = 3600  # a temporary file this old was left by a process that died while writing
_trimmed_dirs: set[Path] = set()
_trimmed_lock = threading.Lock()


def default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("vitgallery")) / "thumbs"


def cache_key(path: Path, size: int) -> str | None:
    """Key by path, modification time, byte size and thumbnail size, so an edited photo gets a new one."""
    try:
        stat = path.stat()
    except OSError:
        return None
    text = f"{path.resolve()}|{stat.st_mtime_ns}|{stat.st_size}|{size}"
    return hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()


def decode_scaled(source: Path | bytes, size: int) -> QImage:
    """Decode to fit a `size` square, letting the reader scale while decoding (JPEG DCT scaling).

    The reader applies the scaled size before the EXIF rotation; fitting a square is the same
    either way round, so the stored size can be used as is.
    """
    buffer: QBuffer | None = None
    if not isinstance(source, bytes) and qt_file_name(source) is None:
        source = Path(source).read_bytes()  # a name Qt cannot spell
    if isinstance(source, bytes):
        buffer = QBuffer()
        buffer.setData(QByteArray(source))
        buffer.open(QIODevice.OpenModeFlag.ReadOnly)
        reader = QImageReader(buffer)
    else:
        reader = QImageReader(qt_file_name(source))
    reader.setAutoTransform(True)
    full = reader.size()
    if full.isValid() and (full.width() > size or full.height() > size):
        reader.setScaledSize(full.scaled(QSize(size, size), Qt.AspectRatioMode.KeepAspectRatio))
    image = reader.read()
    if buffer is not None:
        buffer.close()
    if image.isNull():
        if reader.error() != QImageReader.ImageReaderError.UnsupportedFormatError:
            raise OSError(reader.errorString())
        image = _decode_with_core(source, size)
    return fit_within(image, size)


def fit_within(image: QImage, size: int) -> QImage:
    """`image` scaled down to fit a `size` square (readers that ignore the scaled size, larger cached copies)."""
    if image.width() <= size and image.height() <= size:
        return image
    return image.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)


def _decode_with_core(source: Path | bytes, size: int) -> QImage:
    """HEIC, AVIF and whatever else Qt has no plugin for, through the decoder indexing uses."""
    try:
        photo = open_image(source, draft_size=size)
    except DecodeError as error:
        raise OSError(error.reason) from error
    photo.thumbnail((size, size), Image.Resampling.BICUBIC, reducing_gap=2.0)
    data = photo.tobytes()  # open_image returns 8-bit RGB
    # copy(): the QImage must own its pixels, not borrow `data`, which Python frees
    return QImage(data, photo.width, photo.height, 3 * photo.width, QImage.Format.Format_RGB888).copy()


def trim_disk_cache(cache_dir: Path, limit: int = DISK_CACHE_LIMIT) -> tuple[int, int]:
    """Delete the least recently used thumbnails while the cache holds more than `limit` bytes, down
    to DISK_CACHE_KEEP of it, and temporary files left by a crash. Returns (files deleted, bytes freed).
    A file another process deletes first, or that cannot be deleted, is skipped."""
    thumbnails: list[tuple[float, int, Path]] = []
    to_delete: list[tuple[int, Path]] = []  # (bytes, path)
    now = time.time()
    try:
        folders = [f for f in cache_dir.iterdir() if f.is_dir()]
    except OSError:
        return 0, 0
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                st = entry.stat()
            except OSError:
                continue
            if entry.name.endswith(".tmp") and now - st.st_mtime > STALE_TEMPORARY_S:
                to_delete.append((st.st_size, Path(entry.path)))
            elif entry.name.endswith((".jpg", ".png")):
                thumbnails.append((st.st_mtime, st.st_size, Path(entry.path)))
    total = sum(size for _, size, _ in thumbnails)
    if total > limit:
        for _, size, path in sorted(thumbnails):  # oldest use first
            if total <= limit * DISK_CACHE_KEEP:
                break
            to_delete.append((size, path))
            total -= size
    gone = [(size, path) for size, path in to_delete if _delete(path)]
    return len(gone), sum(size for size, _ in gone)


def _delete(path: Path) -> bool:
    try:
        path.unlink()
    except OSError:
        return False
    return True


def _trim_in_background(cache_dir: Path, limit: int) -> None:
    def trim() -> None:
        deleted, freed = trim_disk_cache(cache_dir, limit)
        if deleted:
            log.info("thumbnail cache: deleted %d least recently used files (%.0f MB)", deleted, freed / 1e6)

    # not on the loaders' pool: clearing its queue when the grid changes would drop the trim
    threading.Thread(target=trim, name="vitgallery-thumbnail-trim", daemon=True).start()


class _LoadSignals(QObject):
    loaded = Signal(str, QImage, int)  # path, image, generation
    failed = Signal(str, str, int)  # path, reason, generation


class _LoadThumbnail(QRunnable):
    def __init__(
        self,
        path: Path,
        size: int,
        cache_dir: Path | None,
        shared_cache: DesktopThumbnailCache | None,
        generation: int,
        signals: _LoadSignals,
    ) -> None:
        super().__init__()
        self._path = path
        self._size = size
        self._cache_dir = cache_dir
        self._shared_cache = shared_cache
        self._generation = generation
        self._signals = signals

    def run(self) -> None:
        try:
            image = self._load()
        except Exception as error:  # noqa: BLE001 - any decode problem becomes a placeholder, never a crash
            self._signals.failed.emit(str(self._path), str(error) or type(error).__name__, self._generation)
            return
        self._signals.loaded.emit(str(self._path), image, self._generation)

    def _load(self) -> QImage:
        key = cache_key(self._path, self._size) if self._cache_dir is not None else None
        if key is not None:
            for cached in self._cache_files(key):
                if cached.exists():
                    image = QImage(qt_file_name(cached) or "")
                    if not image.isNull():
                        _mark_used(cached)
                        return image
        if self._shared_cache is not None:
            shared = self._shared_cache.read(self._path, self._size)
            if shared is not None:
                return fit_within(shared, self._size)
            flavour = self._shared_cache.flavour_for(self._size)
            if flavour is not None:
                return self._decode_and_share(*flavour, key)
        image = decode_scaled(self._path, self._size)
        if key is not None:
            self._store(image, key)
        return image

    def _decode_and_share(self, flavour: str, flavour_size: int, key: str | None) -> QImage:
        """Decode at the desktop's size, store that in the shared cache, hand out our size. Our own
        cache only gets it when the shared one cannot take it."""
        stat = self._path.stat()
        shared = decode_scaled(self._path, flavour_size)
        image = fit_within(shared, self._size)
        assert self._shared_cache is not None
        if self._shared_cache.write(self._path, shared, flavour, stat) is None and key is not None:
            self._store(image, key)
        return image

    def _cache_files(self, key: str) -> tuple[Path, Path]:
        folder = self._cache_dir / key[:2]
        return folder / f"{key}.jpg", folder / f"{key}.png"

    def _store(self, image: QImage, key: str) -> None:
        # JPEG is a fifth of the size of PNG for a photo; PNG only where there is transparency.
        jpeg, png = self._cache_files(key)
        target, kind = (png, "PNG") if image.hasAlphaChannel() else (jpeg, "JPEG")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.with_suffix(f".{os.getpid()}.{id(image)}.tmp")
            # Written under a temporary name so a concurrent reader never sees half a file.
            if image.save(qt_file_name(temporary) or "", kind, 88):
                os.replace(temporary, target)
        except OSError as error:
            log.debug("cannot cache thumbnail %s: %s", target, error)


def _mark_used(cached: Path) -> None:
    """The modification time is the cache's 'last used' (access times are often not kept)."""
    try:
        os.utime(cached)
    except OSError:
        pass


class ThumbnailLoader(QObject):
    """Hands out cached pixmaps and loads missing ones in the background.

    `pixmap(path)` returns the cached pixmap or None and queues a load; `thumbnail_ready(path)`
    fires in the GUI thread once it is available.
    """

    thumbnail_ready = Signal(str)

    def __init__(
        self,
        size: int = 160,
        cache_dir: Path | None = None,
        memory_items: int = DEFAULT_MEMORY_ITEMS,
        max_threads: int | None = None,
        parent: QObject | None = None,
        disk_limit: int = DISK_CACHE_LIMIT,
        shared_cache: DesktopThumbnailCache | None = None,
    ) -> None:
        super().__init__(parent)
        self._size = size
        self._cache_dir = cache_dir
        self._shared_cache = shared_cache
        self._memory_items = memory_items
        self._pixmaps: OrderedDict[str, QPixmap] = OrderedDict()
        self._failed: set[str] = set()
        self._pending: set[str] = set()
        self._generation = 0
        # Later requests get a higher priority: what the user scrolled to last is what they look at.
        self._priority = 0
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(max_threads or max(2, min(4, os.cpu_count() or 2)))
        self._signals = _LoadSignals(self)
        self._signals.loaded.connect(self._on_loaded)
        self._signals.failed.connect(self._on_failed)
        if cache_dir is not None:
            with _trimmed_lock:  # several views share one cache: the first loader of a process trims it
                first = cache_dir not in _trimmed_dirs
                _trimmed_dirs.add(cache_dir)
            if first:
                _trim_in_background(cache_dir, disk_limit)

    @property
    def size(self) -> int:
        return self._size

    def set_size(self, size: int) -> None:
        if size == self._size:
            return
        self._size = size
        self._pixmaps.clear()
        self._failed.clear()
        self.drop_pending()

    def pixmap(self, path: Path | str) -> QPixmap | None:
        key = str(path)
        cached = self._pixmaps.get(key)
        if cached is not None:
            self._pixmaps.move_to_end(key)
            return cached
        if key not in self._pending and key not in self._failed:
            self._pending.add(key)
            self._priority = min(self._priority + 1, 2**30)
            task = _LoadThumbnail(
                Path(key), self._size, self._cache_dir, self._shared_cache, self._generation, self._signals
            )
            self._pool.start(task, self._priority)
        return None

    def forget(self, paths: Iterable[Path | str]) -> None:
        """Photos changed on disk: the next request decodes them again (this memory cache is keyed by
        path alone; the disk cache's key has the file's size and modification time)."""
        for path in map(str, paths):
            self._pixmaps.pop(path, None)
            self._failed.discard(path)
            self.thumbnail_ready.emit(path)  # the views paint it again, and so ask for it

    def has_failed(self, path: Path | str) -> bool:
        return str(path) in self._failed

    def drop_pending(self) -> None:
        """Forget queued loads; loads already running finish but are ignored."""
        self._pool.clear()
        self._pending.clear()
        self._generation += 1
        self._priority = 0

    def pending_count(self) -> int:
        return len(self._pending)

    def wait_for_done(self, msecs: int = -1) -> bool:
        return self._pool.waitForDone(msecs)

    def shutdown(self, msecs: int = 2000) -> None:
        self.drop_pending()
        self._pool.waitForDone(msecs)

    def _on_loaded(self, path: str, image: QImage, generation: int) -> None:
        if generation != self._generation:
            return
        self._pending.discard(path)
        self._pixmaps[path] = QPixmap.fromImage(image)
        while len(self._pixmaps) > self._memory_items:
            self._pixmaps.popitem(last=False)
        self.thumbnail_ready.emit(path)

    def _on_failed(self, path: str, reason: str, generation: int) -> None:
        if generation != self._generation:
            return
        log.debug("no thumbnail for %s: %s", path, reason)
        self._pending.discard(path)
        self._failed.add(path)
        self.thumbnail_ready.emit(path)
