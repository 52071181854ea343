"""Downloading a query image: every way a server or an address can fail is a DownloadError with words,
never a traceback that ends a search of several queries (QA: a port that is not a number, an answer
that is not HTTP, a server that trickles a byte at a time)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from vitgallery.core.fetch import DownloadError, download


@pytest.fixture
def raw_server() -> Iterator[Callable[[Callable[[socket.socket], None]], str]]:
    """serve(answer): the address of a TCP server that hands each connection to `answer`."""
    servers = []

    def serve(answer: Callable[[socket.socket], None]) -> str:
        listener = socket.create_server(("127.0.0.1", 0))
        servers.append(listener)

        def accept() -> None:
            while True:
                try:
                    connection, _ = listener.accept()
                except OSError:
                    return
                with connection:
                    connection.recv(4096)
                    try:
                        answer(connection)
                    except OSError:
                        pass

        threading.Thread(target=accept, daemon=True).start()
        return f"http://127.0.0.1:{listener.getsockname()[1]}/photo.jpg"

    yield serve
    for listener in servers:
        listener.close()


@pytest.mark.parametrize("url", ["http://127.0.0.1:abc/x.jpg", "http://[::1/x.jpg"])
def test_an_address_urllib_cannot_read_is_a_download_error(url):
    with pytest.raises(DownloadError, match="could not download"):
        download(url, timeout_s=2)


def test_an_answer_that_is_not_http_is_a_download_error(raw_server):
    url = raw_server(lambda connection: connection.sendall(b"GARBAGE RESPONSE\r\n\r\n"))
    with pytest.raises(DownloadError, match="could not download .*BadStatusLine"):
        download(url, timeout_s=2)


def test_a_server_that_trickles_is_given_up_once_the_whole_download_takes_too_long(raw_server):
    def trickle(connection: socket.socket) -> None:
        connection.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: 100000\r\n\r\n")
        for _ in range(100):  # each byte well within the timeout between two parts
            connection.sendall(b"x")
            time.sleep(0.1)

    url = raw_server(trickle)
    with pytest.raises(DownloadError, match="not all of it came within 1 s"):
        download(url, timeout_s=2, total_s=1)
