"""What the window needs from the system, checked before Qt starts.

Qt aborts the whole process (no message a user can act on) when its platform plugin cannot load:
no display, or system libraries that the X11 plugin links and the PySide6 wheel does not ship.
This module imports no Qt module, so the CLI can check first and say what to install.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

# The libraries Qt's X11 plugin (PySide6 6.x) links that a minimal Linux lacks, and the Debian/Ubuntu
# package holding each: from `ldd` on PySide6/Qt/plugins/platforms/libqxcb.so on a Debian 12 server.
XCB_LIBRARY_PACKAGES = {
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
    "libdbus-1.so.3": "libdbus-1-3",
    "libfontconfig.so.1": "libfontconfig1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb.so.1": "libxcb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0",
}
LDD_TIMEOUT_S = 10
DISPLAY_CONNECT_TIMEOUT_S = 2.0
# PySide6 releases that crash the window: 6.12.0 drops a reference to True on every signal emitted
# from Python, and the window aborts after a few thousand (tests/ui/test_app.py).
BROKEN_PYSIDE_RELEASES = ("6.12.0",)


def xcb_plugin() -> Path | None:
    try:
        import PySide6  # the package only: no Qt library is loaded by this
    except ImportError:
        return None
    plugin = Path(PySide6.__file__).parent / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    return plugin if plugin.is_file() else None


def missing_libraries(binary: Path) -> list[str]:
    """The shared libraries `binary` needs that the system does not have ([] when ldd cannot tell)."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return []
    try:
        result = subprocess.run([ldd, str(binary)], capture_output=True, text=True, timeout=LDD_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return []
    missing = []
    for line in result.stdout.splitlines():
        name, _, where = line.strip().partition(" => ")
        if where.strip() == "not found" and name not in missing:
            missing.append(name)
    return missing


def binding_problem() -> str | None:
    """A PySide6 release known to crash the window, and what to install instead."""
    try:
        import PySide6
    except ImportError:
        return None
    if PySide6.__version__ not in BROKEN_PYSIDE_RELEASES:
        return None
    return (
        f"PySide6 {PySide6.__version__} crashes the window after a few thousand thumbnails "
        '(a reference-counting bug); install another release: pip install "PySide6-Essentials!=6.12.0"'
    )


def display_problem(environ: Mapping[str, str] | None = None) -> str | None:
    """Why the window cannot start here, in words a user can act on; None when nothing is known to stop it."""
    environ = os.environ if environ is None else environ
    if not sys.platform.startswith("linux"):
        return None
    platform = environ.get("QT_QPA_PLATFORM", "")
    if platform and not platform.startswith("xcb"):
        return None  # offscreen, wayland, vnc...: Qt's own message is clear enough
    if not platform and environ.get("WAYLAND_DISPLAY"):
        return None
    if not environ.get("DISPLAY"):
        return (
            "there is no display to open the window on (DISPLAY is not set).\n"
            "Start vitgallery from a desktop session; the commands work without one: vitgallery --help"
        )
    plugin = xcb_plugin()
    missing = missing_libraries(plugin) if plugin is not None else []
    if missing:
        packages = sorted({XCB_LIBRARY_PACKAGES[name] for name in missing if name in XCB_LIBRARY_PACKAGES})
        text = f"the window needs system libraries that are missing: {', '.join(missing)}."
        if packages:
            text += f"\nOn Debian or Ubuntu: sudo apt install {' '.join(packages)}"
        return text + "\nThe commands work without them: vitgallery --help"
    if display_unreachable(environ["DISPLAY"]):
        return (
            f"no display answers at DISPLAY={environ['DISPLAY']} (its X server is not running, or the "
            "session it belonged to ended).\nStart vitgallery from a desktop session; the commands work "
            "without one: vitgallery --help"
        )
    return None


def display_unreachable(display: str) -> bool:
    """Whether no X server answers at `display` (":0", "unix:0.0", "localhost:10.0"): Qt's X11 plugin
    aborts the process there. False where that cannot be told (a form this does not know)."""
    found = re.fullmatch(r"(?P<host>[^:/]*)(?:/unix)?:(?P<number>\d+)(?:\.\d+)?", display)
    if found is None:
        return False
    number, host = int(found["number"]), found["host"]
    if host in ("", "unix"):
        # Linux servers listen on an abstract socket and on the socket file; either will do.
        places = [(socket.AF_UNIX, f"\0/tmp/.X11-unix/X{number}"), (socket.AF_UNIX, f"/tmp/.X11-unix/X{number}")]
    else:
        places = [(socket.AF_INET, (host, 6000 + number))]
    for family, address in places:
        try:
            with socket.socket(family, socket.SOCK_STREAM) as connection:
                connection.settimeout(DISPLAY_CONNECT_TIMEOUT_S)
                connection.connect(address)
                return False
        except (ConnectionRefusedError, FileNotFoundError):
            continue
        except OSError:
            return False  # a slow network, a name that does not resolve...: leave it to Qt
    return True
