"""Bad arguments and Pillow's warnings reach the user as one clear line each, never a traceback or a
raw warning."""

from __future__ import annotations

import pytest

from tests.reliability.bad_files import broken_exif
from tests.reliability.support import add_photos
from vitgallery.commands import main


@pytest.mark.parametrize("argv, message", [
    (["search", "x.jpg", "--k", "-5"], "--k: must be at least 1, not -5"),
    (["search", "x.jpg", "--k", "0"], "--k: must be at least 1, not 0"),
    (["index", "folder", "--workers", "-1"], "--workers: must be at least 0, not -1"),
    (["index", "folder", "--batch-size", "0"], "--batch-size: must be at least 1, not 0"),
    (["duplicates", "--threshold", "-1"], "--threshold: must be between 0 and 1, not -1"),
    (["duplicates", "--threshold", "1.5"], "--threshold: must be between 0 and 1, not 1.5"),
    (["search", "x.jpg", "--k", "many"], "--k: 'many' is not a whole number"),
])
def test_out_of_range_arguments_are_refused_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err


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
