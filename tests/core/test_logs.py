"""One log file for the window and the CLI, --verbose everywhere, and --version from one source."""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from pathlib import Path

import pytest

import vitgallery
from vitgallery.cli import main
from vitgallery.logs import configure_logging, log_file_path

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def restore_root_logger():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    configure_logging()  # closes the handlers this test's calls installed
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def test_the_log_file_is_in_the_platforms_log_folder_and_rotates(capsys) -> None:
    path = configure_logging()
    assert path == log_file_path()
    if sys.platform.startswith("linux"):
        assert path == Path(os.environ["XDG_STATE_HOME"]) / "vitgallery" / "log" / "vitgallery.log"
    logging.getLogger("vitgallery.test").info("an ordinary step")
    logging.getLogger("vitgallery.test").debug("a detail")
    logging.getLogger("vitgallery.test").warning("something to see")
    configure_logging()  # again, as each CLI command does: no line written twice
    logging.getLogger("vitgallery.test").info("after the second set-up")
    text = path.read_text()
    assert "an ordinary step" in text and "a detail" not in text and text.count("after the second set-up") == 1
    logging.getLogger("otherlib").warning("a library's own")
    err = capsys.readouterr().err
    assert "an ordinary step" not in err  # the terminal gets warnings only
    assert "warning: something to see" in err.splitlines(), "ours as a user reads them"
    assert "WARNING otherlib: a library's own" in err.splitlines(), "another library's with its source"
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.handlers.RotatingFileHandler)]
    assert len(handlers) == 1 and handlers[0].maxBytes > 0 and handlers[0].backupCount > 0


def test_a_file_name_that_is_not_utf8_is_logged_escaped(capsys) -> None:
    path = configure_logging()
    logging.getLogger("vitgallery.test").info("indexing %s", os.fsdecode(b"/photos/M\xfcnchen.jpg"))
    assert "/photos/M\\udcfcnchen.jpg" in path.read_text(encoding="utf-8")
    assert "Logging error" not in capsys.readouterr().err


def test_verbose_logs_details_to_the_file_and_the_terminal(capsys) -> None:
    path = configure_logging(verbose=True)
    logging.getLogger("vitgallery.test").debug("a detail")
    logging.getLogger("PIL.PngImagePlugin").debug("STREAM b'IHDR'")  # a library's chatter stays out
    assert "a detail" in path.read_text() and "IHDR" not in path.read_text()
    assert "a detail" in capsys.readouterr().err


def test_the_cli_logs_to_the_same_file_and_takes_verbose_after_the_command(tmp_path: Path, capsys) -> None:
    missing = str(tmp_path / "none")
    assert main(["status", "--library", missing]) == 2
    assert main(["status", "--library", missing, "-v"]) == 2
    assert main(["-v", "status", "--library", missing]) == 2
    err = capsys.readouterr().err
    assert err.count("error: no library") == 3
    assert err.count("INFO vitgallery: vitgallery") == 2  # the two verbose runs echo the log
    log = log_file_path().read_text()
    assert log.count("status stopped: no library") == 3


def test_version_comes_from_one_place(capsys) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"vitgallery {vitgallery.__version__}"
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "vitgallery.__version__"}
