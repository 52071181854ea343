from __future__ import annotations

import http.server
import io
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QByteArray, QMimeData, QUrl
from PySide6.QtGui import QColor, QImage

from tests.photos import make_photo
from vitgallery.core.fetch import DownloadError, download
from vitgallery.ui.drop import can_accept, query_from_mime, query_from_text


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "beach.jpg"
    make_photo(3).save(path)
    return path


def _jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    make_photo(4).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_local_file_from_a_file_manager(photo: Path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(photo))])
    source = query_from_mime(mime)
    assert source is not None and source.path == photo and source.label == "beach.jpg"
    assert can_accept(mime)


def test_image_data_beats_the_page_link_a_browser_sends_along() -> None:
    mime = QMimeData()
    mime.setUrls([QUrl("https://example.org/gallery/page.html")])
    image = QImage(40, 30, QImage.Format.Format_RGB32)
    image.fill(QColor("orange"))
    mime.setImageData(image)
    source = query_from_mime(mime)
    assert source is not None and source.data is not None and source.url is None
    decoded = QImage.fromData(source.data)
    assert (decoded.width(), decoded.height()) == (40, 30)


def test_encoded_image_bytes_are_kept_as_sent() -> None:
    data = _jpeg_bytes()
    mime = QMimeData()
    mime.setData("image/jpeg", QByteArray(data))
    source = query_from_mime(mime)
    assert source is not None and source.data == data


def test_http_url_and_file_url_and_path_text(photo: Path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl("https://example.org/cat.jpg")])
    source = query_from_mime(mime)
    assert source is not None and source.url == "https://example.org/cat.jpg" and source.label == "cat.jpg"

    as_text = QMimeData()
    as_text.setText(f"  {photo}\n")
    assert query_from_mime(as_text).path == photo
    assert query_from_text(QUrl.fromLocalFile(str(photo)).toString()).path == photo
    assert query_from_text("http://example.org/x.png").url == "http://example.org/x.png"


def test_img_src_in_dropped_html() -> None:
    mime = QMimeData()
    mime.setHtml('<p>look</p><img alt="x" src="https://example.org/pics/dog.webp">')
    source = query_from_mime(mime)
    assert source is not None and source.url == "https://example.org/pics/dog.webp"


def test_nothing_usable() -> None:
    mime = QMimeData()
    mime.setText("just some words")
    assert query_from_mime(mime) is None and not can_accept(mime)
    missing = QMimeData()
    missing.setUrls([QUrl.fromLocalFile("/no/such/file.jpg")])
    assert query_from_mime(missing) is None


def test_local_files_that_are_no_image_are_refused_while_dragged(photo: Path, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(notes)), QUrl.fromLocalFile(str(tmp_path))])
    assert not can_accept(mime), "a text file and a folder: nothing to search with"
    mime.setUrls([QUrl.fromLocalFile(str(notes)), QUrl.fromLocalFile(str(photo))])
    assert can_accept(mime) and query_from_mime(mime).path == photo
    mime.setUrls([QUrl.fromLocalFile(str(notes)), QUrl("https://example.org/page")])
    assert can_accept(mime), "a link may lead to an image: only fetching it tells"


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, str, bytes]] = {}

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        status, kind, body = self.routes.get(self.path, (404, "text/plain", b"not found"))
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def web_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_with_clear_failures(web_server: str) -> None:
    jpeg = _jpeg_bytes()
    _Handler.routes = {
        "/photo.jpg": (200, "image/jpeg", jpeg),
        "/page.html": (200, "text/html", b"<html></html>"),
        "/big.jpg": (200, "image/jpeg", b"x" * 2048),
    }
    assert download(f"{web_server}/photo.jpg") == jpeg
    with pytest.raises(DownloadError, match="not an image"):
        download(f"{web_server}/page.html")
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(f"{web_server}/missing.jpg")
    with pytest.raises(DownloadError, match="larger than"):
        download(f"{web_server}/big.jpg", max_bytes=1024)
    with pytest.raises(DownloadError, match="could not download http://127.0.0.1:9/refused.jpg: Connection refused"):
        download("http://127.0.0.1:9/refused.jpg", timeout_s=2)
    with pytest.raises(DownloadError, match=r"its server was not found \(no internet connection, or a mistyped"):
        download("http://example.invalid/cat.jpg", timeout_s=2)  # .invalid never resolves (RFC 2606)
