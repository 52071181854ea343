"""Files saved under a temporary name and renamed once complete, and the clean-up of those a writer
that was killed left behind (a crash, the OOM killer, a worker process ended by a cancel).

A temporary file for NAME starts `.NAME.PID.`: the writer's process id tells a save still running in
another process from one cut short.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

ABANDONED_S = 24 * 3600  # no save takes this long, and a process id can be reused


def writer_prefix(name: str) -> str:
    """The start of this process's temporary files for `name`."""
    return f".{name}.{os.getpid()}."


def write_whole(target: Path, write: Callable[[Path], None]) -> None:
    """Make `target` by `write`ing a temporary file beside it (its suffix kept, for writers that go by it)
    and renaming that over it: a failure (a full disk, a folder that cannot be written) leaves whatever was at
    `target` as it was, and no part-written file."""
    temporary = target.with_name(f"{writer_prefix(target.name)}tmp{target.suffix}")
    try:
        write(temporary)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        raise


def remove_abandoned(directory: Path, name: str) -> None:
    """Delete the temporary files for `name` in `directory` of saves that never finished: those whose
    process is gone, and any older than ABANDONED_S."""
    for temporary in directory.glob(f".{name}.*"):
        writer = temporary.name[len(name) + 2:].split(".")[0]
        try:
            if time.time() - temporary.stat().st_mtime > ABANDONED_S or (
                    writer.isdigit() and not _process_exists(int(writer))):
                temporary.unlink()
                log.info("removed %s, left by a save that did not finish", temporary.name)
        except OSError:
            continue  # gone meanwhile, or not ours to delete


def _process_exists(pid: int) -> bool:
    if os.name == "nt":  # os.kill would end the process: leave the file to the age rule
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
