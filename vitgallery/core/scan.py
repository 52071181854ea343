"""Walking a photo root: which files are photos, their size and mtime, and content fingerprints."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from vitgallery.core.imageio import SUPPORTED_EXTENSIONS

log = logging.getLogger(__name__)


class FoundFile(NamedTuple):
    """A tuple: made in half the time of a frozen dataclass (100,000 at a window's start), and looked up
    as it is among a library's (path, size, mtime_ns) stamps (indexing.set_aside_unchanged)."""

    path: str  # relative to the root, '/'-separated
    size: int
    mtime_ns: int


@dataclass
class ScanResult:
    files: list[FoundFile] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (relative path, reason)
    # Relative folders (and links) whose content cannot be seen now: unreadable, or a link to an
    # unplugged drive. What the library knows under them is offline, not deleted.
    unreachable: list[str] = field(default_factory=list)
    # Relative folders on another device than the folder holding them: mount points (or links to
    # one). Unmounted, such a folder is left empty or gone, which must not read as deleted photos.
    mount_points: list[str] = field(default_factory=list)


# Said of a photo-named link whose target is not there: listed with the skipped files, so the user finds it.
LINK_TO_MISSING_FILE = "a link to a missing file (its target was moved or deleted, or is on a drive not mounted)"


def root_is_available(root: Path) -> bool:
    """False for a missing folder or an unmounted drive; such a root must delete nothing."""
    try:
        return root.is_dir() and os.access(root, os.R_OK | os.X_OK)
    except OSError:
        return False


def is_inside(path: Path, folder: Path) -> bool:
    """Whether path is folder or inside it, as written or once links are resolved."""
    path, folder = Path(os.path.abspath(path)), Path(os.path.abspath(folder))
    return path.is_relative_to(folder) or Path(os.path.realpath(path)).is_relative_to(os.path.realpath(folder))


# A listing of the root made beside an indexing run (the window lists the folder for its grid), or None
# when there is none after all: the run then lists the folder itself. Called from the run's thread.
Listing = Callable[[], "ScanResult | None"]


def listed_or_scanned(root: Path, listing: Listing | None) -> ScanResult:
    """The root's listing given by `listing`, or scan_root's own when none is given."""
    found = listing() if listing is not None else None
    return found if found is not None else scan_root(root)


def scan_root(root: Path) -> ScanResult:
    """Every supported image under root; hidden folders skipped, symlinked folders followed once. A link
    to a folder the walk reaches under its own name is not followed: each photo is listed once, at its
    real path (else the link's name, sorted first, took the photos over)."""
    result = ScanResult()
    seen_dirs: set[tuple[int, int]] = set()
    device_of: dict[str, int] = {}
    real_root = os.path.realpath(root)

    def walked_anyway(link: str) -> bool:
        inside = os.path.relpath(os.path.realpath(link), real_root)
        return inside != ".." and not inside.startswith(".." + os.sep) and not any(
            part.startswith(".") for part in Path(inside).parts if part != ".")

    def on_error(error: OSError) -> None:
        rel = _relative(root, Path(error.filename)) if error.filename else "."
        result.problems.append((rel, f"cannot read folder: {error.strerror or error}"))
        result.unreachable.append(rel)

    for dirpath, dirnames, filenames in os.walk(root, onerror=on_error, followlinks=True):
        try:
            st = os.stat(dirpath)
        except OSError:
            dirnames[:] = []
            continue
        if (st.st_dev, st.st_ino) in seen_dirs:  # a symlink loop or a folder linked twice
            dirnames[:] = []
            continue
        seen_dirs.add((st.st_dev, st.st_ino))
        device_of[dirpath] = st.st_dev
        parent_device = device_of.get(os.path.dirname(dirpath))
        if parent_device is not None and parent_device != st.st_dev:
            result.mount_points.append(_relative(root, Path(dirpath)))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                             and not (os.path.islink(os.path.join(dirpath, d)) and walked_anyway(os.path.join(dirpath, d))))
        # The relative path is worked out once a folder, not once a photo: at 10,000 photos the walk
        # runs beside the window's first seconds and holds the interpreter for all of it.
        rel_dir = _relative(root, Path(dirpath))
        prefix = "" if rel_dir == "." else rel_dir + "/"
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            full = os.path.join(dirpath, name)
            if os.path.splitext(name)[1].lower() not in SUPPORTED_EXTENSIONS:
                # os.walk lists a link to a folder that is gone (an unplugged drive) among the files.
                if os.path.islink(full) and not os.path.exists(full):
                    result.unreachable.append(prefix + name)
                continue
            try:
                fst = os.stat(full)  # never an open(): opening a named pipe waits for a writer forever
            except FileNotFoundError:
                if os.path.islink(full):  # a photo the library knows there is offline, not deleted
                    result.unreachable.append(prefix + name)
                    result.problems.append((prefix + name, LINK_TO_MISSING_FILE))
                continue  # else it vanished between listing and stat
            except OSError as exc:
                result.problems.append((prefix + name, f"cannot read file: {exc.strerror or exc}"))
                continue
            if not stat.S_ISREG(fst.st_mode):
                result.problems.append((prefix + name, f"not a regular file ({_special_kind(fst.st_mode)})"))
                continue
            result.files.append(FoundFile(prefix + name, fst.st_size, fst.st_mtime_ns))
    return result


def _special_kind(mode: int) -> str:
    """What a file that is not a regular file is, in words."""
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a file of data"


def photo_root_path(folder: Path | str) -> Path:
    """A photo folder as a library names it: absolute, with `.` and `..` worked out, so that
    `photos/../photos/trip` is one folder with one library (links are kept: a linked folder's paths
    are the ones the user gave)."""
    return Path(os.path.normpath(Path(folder).expanduser().absolute()))


def library_folder_name(root: Path | str) -> str:
    """The name of a photo folder's library folder: its name, and a key of its whole path."""
    root = photo_root_path(root)
    return f"{root.name or 'root'}-{hashlib.sha1(os.fsencode(root)).hexdigest()[:16]}"


def display_path(path: str | os.PathLike[str]) -> str:
    """A path as text to show: a name that is not valid UTF-8 (Python holds its odd bytes as surrogate
    escapes, which a UTF-8 terminal refuses and JSON can only carry as invalid lone surrogates) gets
    those bytes written as `\\xfc`."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def missing_file_reason(path: Path) -> str:
    """Why a path the user gave names no file, in words: a link that leads nowhere is not 'no such file'."""
    return "a link that leads to no file (a loop, or its target is gone)" if path.is_symlink() else "no such file"


def json_path(path: str | os.PathLike[str], key: str = "path") -> dict[str, str]:
    """A path for --json output, which stays valid UTF-8: `key` holds it as shown (display_path); a
    name that is not valid UTF-8 also gets `key_bytes`, its exact bytes in base64, so that
    `os.fsdecode(base64.b64decode(value))` gives the real path back."""
    fields = {key: display_path(path)}
    raw = os.fsencode(path)
    if raw.decode("utf-8", "replace").encode("utf-8") != raw:
        fields[f"{key}_bytes"] = base64.b64encode(raw).decode("ascii")
    return fields


def _relative(root: Path, path: Path) -> str:
    return Path(os.path.relpath(path, root)).as_posix()


def fingerprint_bytes(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def fingerprint_file(path: Path) -> str:
    """A hash of the whole content: equal for a moved or renamed copy, different after any edit."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
