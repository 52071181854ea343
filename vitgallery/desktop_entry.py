"""`vitgallery desktop-entry`: put vitgallery in the applications menu and in "Open with" for photos,
for installs whose share/ folder desktops do not search (pipx, a venv, the bundle, setup.sh's .venv).

The work is packaging/install-desktop-entry.sh's, which the bundle carries beside its binary and a
wheel installs as share/vitgallery/; this finds the copy that came with this install and runs it, so a
user of pipx never has to look for it."""

from __future__ import annotations

import site
import subprocess
import sys
from pathlib import Path

SCRIPT = "install-desktop-entry.sh"


class DesktopEntryError(Exception):
    """The entry cannot be installed here; the message says why."""


def install_script() -> Path:
    """The install script that came with this vitgallery."""
    bundle = [Path(sys.executable).parent / SCRIPT] if getattr(sys, "frozen", False) else []  # beside its binary
    candidates = [
        *bundle,
        Path(sys.prefix) / "share" / "vitgallery" / SCRIPT,  # a wheel in a venv or pipx
        Path(site.USER_BASE or "~/.local").expanduser() / "share" / "vitgallery" / SCRIPT,  # pip install --user
        Path(__file__).resolve().parents[1] / "packaging" / SCRIPT,  # a checkout (an editable install)
    ]
    found = next((path for path in candidates if path.is_file()), None)
    if found is None:
        raise DesktopEntryError(f"this install has no {SCRIPT} (looked in {', '.join(str(c.parent) for c in candidates)})")
    return found


def launcher() -> Path | None:
    """The command the menu entry should start: the bundle's binary, or the `vitgallery` this runs as (a
    pipx link is kept as the link, so an upgrade that replaces the venv keeps the entry working); None
    when run another way (`python -m vitgallery`): the script then takes the vitgallery on PATH."""
    if getattr(sys, "frozen", False):
        return Path(sys.executable)
    started_as = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if started_as is not None and started_as.name == "vitgallery" and started_as.is_file():
        return started_as.absolute()
    return None


def run_install_script(uninstall: bool = False) -> str:
    """Install (or remove) the desktop entry; returns what the script said."""
    if not sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        raise DesktopEntryError("desktop entries are for Linux and BSD desktops; on macOS and Windows the app "
                                "bundle is what adds vitgallery to the system (see packaging/README.md)")
    command = ["sh", str(install_script())]
    target = launcher()
    if uninstall:
        command.append("--uninstall")
    elif target is not None:
        command.append(str(target))
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise DesktopEntryError((done.stderr or done.stdout).strip().removeprefix("error: ")
                                or f"{SCRIPT} failed (exit status {done.returncode})")
    return done.stdout.strip()
