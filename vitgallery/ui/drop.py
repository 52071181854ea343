"""What a drop or a paste carries, turned into a query: a local file, image bytes, or a URL to fetch.

Order of preference: a local image file (one of a known image kind first), then image data (a browser
drag often carries both the page link and the picture, and the picture needs no network), then an
http(s) URL, then text that names a path or URL, then an <img src> in dropped HTML.
"""

from __future__ import annotations

import html.parser
import logging
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QMimeData, QUrl
from PySide6.QtGui import QImage

from vitgallery.core.fetch import is_url
from vitgallery.core.imageio import SUPPORTED_EXTENSIONS

log = logging.getLogger(__name__)

IMAGE_MIME_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif", "image/bmp", "image/tiff")


@dataclass(frozen=True)
class QuerySource:
    """Exactly one of `path`, `data` or `url` is set. `label` names it for the user."""

    label: str
    path: Path | None = None
    data: bytes | None = None
    url: str | None = None


def query_from_mime(mime: QMimeData) -> QuerySource | None:
    files = [source for url in (mime.urls() if mime.hasUrls() else []) if (source := _query_from_url(url)) is not None
             and source.path is not None]
    if files:  # an image file among several dropped: that one, not the notes dragged along
        return next((f for f in files if f.path.suffix.lower() in SUPPORTED_EXTENSIONS), files[0])
    data = _image_bytes(mime)
    if data is not None:
        return QuerySource(label="pasted image", data=data)
    for url in mime.urls() if mime.hasUrls() else []:
        source = _query_from_url(url)
        if source is not None:
            return source
    if mime.hasText():
        source = query_from_text(mime.text())
        if source is not None:
            return source
    if mime.hasHtml():
        src = _first_img_src(mime.html())
        if src:
            return query_from_text(src)
    return None


def can_accept(mime: QMimeData) -> bool:
    """A quick check for drag-enter: does this look like something we could query with? Local files all
    of kinds that are no image (notes.txt, a folder) are refused while still dragged, not after the drop."""
    if mime.hasImage() or any(mime.hasFormat(kind) for kind in IMAGE_MIME_TYPES):
        return True
    if mime.hasUrls():
        return any(not url.isLocalFile() or Path(url.toLocalFile()).suffix.lower() in SUPPORTED_EXTENSIONS
                   for url in mime.urls())
    return mime.hasText() and query_from_text(mime.text()) is not None


def query_from_text(text: str) -> QuerySource | None:
    text = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not text:
        return None
    if is_url(text) or text.startswith("file://"):
        return _query_from_url(QUrl(text))
    path = Path(text).expanduser()
    if path.is_file():
        return QuerySource(label=path.name, path=path)
    return None


def _query_from_url(url: QUrl) -> QuerySource | None:
    if url.isLocalFile():
        path = Path(url.toLocalFile())
        return QuerySource(label=path.name, path=path) if path.is_file() else None
    if url.scheme() in ("http", "https"):
        text = url.toString()
        return QuerySource(label=url.fileName() or url.host(), url=text)
    return None


def _image_bytes(mime: QMimeData) -> bytes | None:
    # Encoded bytes as the source app sent them keep the original quality and EXIF.
    for kind in IMAGE_MIME_TYPES:
        if mime.hasFormat(kind):
            data = bytes(mime.data(kind).data())
            if data:
                return data
    if mime.hasImage():
        image = mime.imageData()
        if isinstance(image, QImage) and not image.isNull():
            return image_to_png(image)
    return None


def image_to_png(image: QImage) -> bytes:
    array = QByteArray()
    buffer = QBuffer(array)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    buffer.close()
    return bytes(array.data())


class _ImgSrcParser(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.src: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img" and self.src is None:
            self.src = dict(attrs).get("src")


def _first_img_src(markup: str) -> str | None:
    parser = _ImgSrcParser()
    parser.feed(markup)
    return parser.src
