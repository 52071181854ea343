"""Fetching a query image from the web: http(s) only, with timeouts and a size cap."""

from __future__ import annotations

import http.client
import socket
import time
import urllib.error
import urllib.request

DOWNLOAD_TIMEOUT_S = 20.0  # for an answer, and between two parts of it
DOWNLOAD_TOTAL_S = 120.0  # for the whole image: a server may trickle a byte at a time
DOWNLOAD_MAX_BYTES = 50 * 1024 * 1024
_PART_BYTES = 64 * 1024
URL_SCHEMES = ("http://", "https://")


def is_url(text: str) -> bool:
    """An http(s) address, to be downloaded rather than read as a path."""
    return text.strip().lower().startswith(URL_SCHEMES)


class DownloadError(Exception):
    """The image could not be downloaded; the message says why."""


def _reason(reason: object) -> str:
    """Why a connection failed, in words: a host not found is the usual sign of no connection."""
    if isinstance(reason, socket.gaierror):
        return "its server was not found (no internet connection, or a mistyped address)"
    if isinstance(reason, TimeoutError):
        return f"no answer within {DOWNLOAD_TIMEOUT_S:.0f} s"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason)


def download(url: str, timeout_s: float = DOWNLOAD_TIMEOUT_S, max_bytes: int = DOWNLOAD_MAX_BYTES,
             total_s: float = DOWNLOAD_TOTAL_S) -> bytes:
    """Fetch an image over http(s) with timeouts and a size cap; failures read well in a message."""
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "vitgallery"})
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            kind = response.headers.get_content_type()
            if not kind.startswith("image/") and kind != "application/octet-stream":
                raise DownloadError(f"{url} is not an image (the server says {kind})")
            declared = response.headers.get("Content-Length")
            if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                raise DownloadError(f"{url} is larger than {max_bytes // (1024 * 1024)} MB")
            data = _read_within(response, max_bytes + 1, time.monotonic() + total_s)
            if data is None:
                raise DownloadError(f"could not download {url}: not all of it came within {total_s:.0f} s")
    except urllib.error.HTTPError as error:
        raise DownloadError(f"could not download {url}: HTTP {error.code} {error.reason}") from error
    except urllib.error.URLError as error:
        raise DownloadError(f"could not download {url}: {_reason(error.reason)}") from error
    except http.client.HTTPException as error:  # a port that is not a number, an answer that is not HTTP
        raise DownloadError(f"could not download {url}: {type(error).__name__} {error}".rstrip()) from error
    except ValueError as error:  # an address urllib cannot read ("http://[::1/x.jpg")
        raise DownloadError(f"could not download {url}: {error}") from error
    except (TimeoutError, OSError) as error:
        raise DownloadError(f"could not download {url}: {_reason(error)}") from error
    if len(data) > max_bytes:
        raise DownloadError(f"{url} is larger than {max_bytes // (1024 * 1024)} MB")
    if not data:
        raise DownloadError(f"{url} returned no data")
    return data


def _read_within(response: http.client.HTTPResponse, most: int, deadline: float) -> bytes | None:
    """Up to `most` bytes of the answer, read part by part until the deadline (None: it passed first)."""
    parts: list[bytes] = []
    got = 0
    while got < most:
        if time.monotonic() > deadline:
            return None
        part = response.read1(min(_PART_BYTES, most - got))  # what came, not waiting for a full part
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)
