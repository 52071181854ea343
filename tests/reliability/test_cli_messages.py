"""Pillow's warnings about a file reach the log, never the terminal raw. (Out-of-range arguments are
refused by the parser: tests/core/test_cli.py.)"""

from __future__ import annotations

import pytest

from tests.reliability.bad_files import broken_exif
from tests.reliability.support import add_photos


@pytest.mark.parametrize("workers", ["0", "2"])
def test_pillow_warnings_go_to_the_log_not_the_terminal(tmp_path, cli, workers):
    root, library = tmp_path / "photos", tmp_path / "library"
    add_photos(root, range(4))
    (root / "broken-exif.jpg").write_bytes(broken_exif())
    argv = ["index", str(root), "--library", str(library), "--model", "tiny-test", "--workers", workers]
    returncode, out = cli.run(argv, output=tmp_path / "index.txt")
    assert returncode == 0 and "added 5" in out, out
    assert "Warning" not in out and "warnings.warn" not in out, out
    if workers == "0":  # with -v the log shows it (workers log nothing: they have no handler)
        (root / "broken-exif.jpg").write_bytes(broken_exif() + b"\0")
        returncode, out = cli.run(["-v", *argv], output=tmp_path / "verbose.txt")
        assert returncode == 0 and "Pillow: Corrupt EXIF data" in out and "warnings.warn" not in out, out
