"""Where vitgallery logs, and setting that up once per process for the window and the CLI alike.

Both write to one rotating file in the platform's log folder (platformdirs: ~/.local/state/vitgallery/log
on Linux, ~/Library/Logs/vitgallery on macOS, %LOCALAPPDATA%\\vitgallery\\vitgallery\\Logs on Windows),
so a user has one file to attach to a bug report whichever way they ran it. No Qt here: the CLI
imports this without loading the GUI.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

import platformdirs

log = logging.getLogger(__name__)

APP_NAME = "vitgallery"
LOG_FILE_NAME = "vitgallery.log"
LOG_FILE_BYTES = 2_000_000  # a long indexing session at INFO writes about 100 KB; --verbose far more
LOG_FILE_BACKUPS = 3
LOG_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"
# Libraries whose DEBUG output drowns ours (Pillow logs every PNG chunk it reads).
QUIET_LIBRARIES = ("PIL", "urllib3", "filelock", "fsspec", "matplotlib")

_installed: list[logging.Handler] = []


def log_dir() -> Path:
    return Path(platformdirs.user_log_dir(APP_NAME))


def log_file_path() -> Path:
    """The file the log is written to (its rotated copies sit beside it as .1, .2, .3)."""
    return log_dir() / LOG_FILE_NAME


class _CurrentStderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a record comes (tests and tools swap it)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self):  # StreamHandler's own attribute, made live
        return sys.stderr


class _TerminalFormatter(logging.Formatter):
    """Our own warnings as a user reads them ("warning: the photo folder is missing…"); another
    library's keep their source, and --verbose shows every logger's name."""

    def __init__(self, verbose: bool) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")
        self.verbose = verbose

    def format(self, record: logging.LogRecord) -> str:
        if self.verbose or not record.name.startswith(APP_NAME):
            return super().format(record)
        return f"{record.levelname.lower()}: {record.getMessage()}"


def configure_logging(verbose: bool = False) -> Path | None:
    """Log to stderr (warnings, or everything with `verbose`) and to the rotating file (INFO, or
    DEBUG with `verbose`). Calling it again replaces what an earlier call installed. Returns the
    log file, or None when it cannot be written (then only stderr gets the log)."""
    root = logging.getLogger()
    for handler in _installed:
        root.removeHandler(handler)
        handler.close()
    _installed.clear()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.INFO)
    formatter = logging.Formatter(LOG_FORMAT)
    stderr = _CurrentStderrHandler()
    stderr.setLevel(logging.DEBUG if verbose else logging.WARNING)
    stderr.setFormatter(_TerminalFormatter(verbose))
    _install(root, stderr)
    target = log_file_path()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # backslashreplace: a file name that is not UTF-8 (os.fsdecode's surrogates) must not cost a line
        file_handler = logging.handlers.RotatingFileHandler(
            target, maxBytes=LOG_FILE_BYTES, backupCount=LOG_FILE_BACKUPS, encoding="utf-8", errors="backslashreplace"
        )
    except OSError as error:
        log.warning("cannot write the log file %s: %s", target, error)
        return None
    file_handler.setFormatter(formatter)
    _install(root, file_handler)
    return target


def _install(root: logging.Logger, handler: logging.Handler) -> None:
    root.addHandler(handler)
    _installed.append(handler)
