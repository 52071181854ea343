"""The desktop's shared thumbnail cache (the freedesktop Thumbnail Managing Standard, Linux and BSD).

File managers and viewers keep PNG thumbnails in $XDG_CACHE_HOME/thumbnails/<flavour>/<MD5 of the
photo's file URI>.png, each naming the photo (Thumb::URI) and its modification time (Thumb::MTime).
Reading them spares decoding photos the desktop has already seen; writing ours there spares the file
manager the same work. A thumbnail whose URI, time or size disagrees with the photo is ignored.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import tempfile
import urllib.parse
from pathlib import Path

from PySide6.QtGui import QImage

from vitgallery import __version__

log = logging.getLogger(__name__)

# (folder, longest side in pixels), smallest first, as the standard names them.
FLAVOURS = (("normal", 128), ("large", 256), ("x-large", 512), ("xx-large", 1024))
# What GLib's g_filename_to_uri leaves unescaped in a path besides letters, digits and "-._~", so the
# MD5 names match the ones GNOME, KDE and Xfce compute (';' is escaped, '!' is not).
_URI_PATH_SAFE = "/!$&'()*+,:=@"


def file_uri(path: Path) -> str:
    """The file:// URI the standard hashes: absolute path, its bytes percent-escaped as GLib does."""
    return "file://" + urllib.parse.quote(os.fsencode(path), safe=_URI_PATH_SAFE)


def qt_file_name(path: Path | str) -> str | None:
    """The name Qt opens `path` by, or None where it cannot (read those bytes through Python). Qt 6 takes
    file names as UTF-8 on Unix whatever the locale; Python decodes them with the locale's encoding, so
    in an ISO-8859-1 locale the two bytes of "é" came to Qt as "Ã©" and the photo "could not be read"."""
    if sys.platform == "win32":
        return str(path)
    try:
        return os.fsencode(path).decode("utf-8")
    except UnicodeDecodeError:
        return None


def default_root() -> Path | None:
    """$XDG_CACHE_HOME/thumbnails on desktops that follow the standard; None on Windows and macOS."""
    if sys.platform in ("win32", "darwin"):
        return None
    cache_home = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(cache_home) if os.path.isabs(cache_home) else Path.home() / ".cache"  # the spec ignores a relative one
    return base / "thumbnails"


class DesktopThumbnailCache:
    """Reads and writes thumbnails in one shared thumbnail folder. Safe to use from worker threads:
    every write goes to a private temporary file that is renamed into place."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def for_this_desktop(cls) -> DesktopThumbnailCache | None:
        root = default_root()
        return cls(root) if root is not None else None

    @staticmethod
    def flavour_for(size: int) -> tuple[str, int] | None:
        """The smallest flavour at least `size` pixels long, or None when even xx-large is smaller."""
        return next(((name, pixels) for name, pixels in FLAVOURS if pixels >= size), None)

    def thumbnail_file(self, path: Path, flavour: str) -> Path:
        uri = file_uri(path.absolute())
        return self.root / flavour / f"{hashlib.md5(uri.encode('ascii')).hexdigest()}.png"

    def read(self, path: Path, size: int) -> QImage | None:
        """The desktop's current thumbnail of `path` for `size` pixels (maybe larger: scale it), from the
        flavour for `size`, else from a larger one (file managers often keep only "large")."""
        if self._is_inside(path):
            return None
        try:
            stat = path.stat()
        except OSError:
            return None
        for flavour, pixels in FLAVOURS:
            if pixels < size:
                continue
            candidate = self.thumbnail_file(path, flavour)
            if not candidate.is_file():
                continue
            image = QImage(qt_file_name(candidate) or "")
            if not image.isNull() and self._describes(image, path, stat):
                return image
        return None

    def write(self, path: Path, image: QImage, flavour: str, stat: os.stat_result) -> Path | None:
        """Store `image` (at most the flavour's size) as the thumbnail of `path` as it was when `stat`
        was taken, before decoding, so a photo edited meanwhile gets no stale thumbnail with its new
        time. Returns the file, or None when the cache cannot take it (read-only, disk full)."""
        if self._is_inside(path):
            return None
        try:
            target = self.thumbnail_file(path, flavour)
            # The standard asks for folders only the user can enter, and files only the user can read.
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            target.parent.mkdir(mode=0o700, exist_ok=True)
            thumbnail = QImage(image)
            thumbnail.setText("Thumb::URI", file_uri(path.absolute()))
            thumbnail.setText("Thumb::MTime", str(int(stat.st_mtime)))
            thumbnail.setText("Thumb::Size", str(stat.st_size))
            thumbnail.setText("Software", f"vitgallery {__version__}")
            handle, temporary = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".png", dir=target.parent)
            os.close(handle)  # mkstemp made it 0600, as the standard wants; QImage writes it by name
            try:
                if not thumbnail.save(qt_file_name(temporary) or "", "PNG"):
                    raise OSError(f"could not write {temporary}")
                os.replace(temporary, target)  # readers see the old thumbnail or the new one, never half
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError as error:
            log.debug("cannot share the thumbnail of %s: %s", path, error)
            return None
        return target

    def _describes(self, image: QImage, path: Path, stat: os.stat_result) -> bool:
        if image.text("Thumb::URI") != file_uri(path.absolute()):
            return False  # an MD5 collision, or a thumbnail of another spelling of the path
        try:
            mtime = int(float(image.text("Thumb::MTime")))
        except ValueError:
            return False
        if mtime != int(stat.st_mtime):
            return False
        size = image.text("Thumb::Size")
        return not size or size == str(stat.st_size)

    def _is_inside(self, path: Path) -> bool:
        """The standard: never thumbnail the thumbnails."""
        return path.absolute().is_relative_to(self.root)
