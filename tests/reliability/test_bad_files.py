"""Promise 3: a bad file costs only itself. Each is indexed or skipped with a reason that the CLI
shows; a decoder that crashes natively kills a worker process, never the app, and the file that
crashed it is not tried again until it changes."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

from tests.reliability import crashing_decoder
from tests.reliability.bad_files import Expected, write_bad_files
from tests.reliability.support import add_photos, counting_embedder, index
from vitgallery.core import pipeline
from vitgallery.core.imageio import HEIF_PLUGIN_MISSING
from vitgallery.core.library import Library
from vitgallery.core.pipeline import CRASHED_DECODER

SYMLINK_LOOP = "symbolic links"


def add_scanner_traps(root: Path) -> dict[str, Expected]:
    """Things only the folder walk meets: a folder linked into itself, a loop of file links, a FIFO
    (reading it would block forever), a link to a file that is gone and a folder with a photo's name."""
    (root / "sub").mkdir()
    add_photos(root / "sub", range(70, 72))
    (root / "sub" / "loop").symlink_to("..", target_is_directory=True)
    (root / "link-a.jpg").symlink_to("link-b.jpg")
    (root / "link-b.jpg").symlink_to("link-a.jpg")
    os.mkfifo(root / "pipe.jpg")
    (root / "gone.jpg").symlink_to(root / "deleted" / "p0001.jpg")
    (root / "folder.jpg").mkdir()
    return {"sub/p0070.jpg": Expected(True), "sub/p0071.jpg": Expected(True),
            "link-a.jpg": Expected(False, SYMLINK_LOOP), "link-b.jpg": Expected(False, SYMLINK_LOOP),
            "pipe.jpg": Expected(False, "not a regular file (a named pipe)"),
            "gone.jpg": Expected(False, "a link to a missing file")}


def check_outcome(lib: Library, expected: dict[str, Expected]) -> None:
    indexed = {row.path for row in lib.photos()}
    reasons = {skip.path: skip.reason for skip in lib.skipped()}
    assert indexed == {path for path, e in expected.items() if e.indexed}
    assert set(reasons) == {path for path, e in expected.items() if not e.indexed}
    for path, reason in reasons.items():
        assert expected[path].reason in reason, f"{path}: {reason!r}"


def test_each_bad_file_is_indexed_or_skipped_with_its_reason(tmp_path):
    root = tmp_path / "photos"
    expected = write_bad_files(root) | add_scanner_traps(root)
    embedder = counting_embedder()
    lib = Library.open(root, tmp_path / "library")
    summary = lib.index(embedder, decode_workers=2, batch_size=4)  # the real path: worker processes
    check_outcome(lib, expected)
    skipped = [e for e in expected.values() if not e.indexed]
    assert summary.skipped == len(skipped) and sum(summary.skipped_reasons.values()) == len(skipped)
    assert len(set(lib.store.files())) == summary.added, "the folder linked into itself adds nothing twice"

    embedder.embedded = 0
    summary = index(lib, embedder)
    assert embedder.embedded == 0 and summary.skipped == len(skipped), "skipped files wait until they change"
    lib.close()


def test_cli_names_every_skipped_file_and_its_reason(tmp_path, cli):
    """`vitgallery index` then `vitgallery status`, as a user who cannot read one of the files (root
    reads everything) and with pillow-heif missing."""
    shared = Path(tempfile.mkdtemp(prefix="vg-unreadable-"))  # reachable by an unprivileged user
    try:
        shared.chmod(0o777)
        root, library = shared / "photos", shared / "library"
        expected = write_bad_files(root)
        expected["photo.heic"] = Expected(False, HEIF_PLUGIN_MISSING)
        add_photos(root, range(80, 81), prefix="locked")
        (root / "locked0080.jpg").chmod(0)
        expected["locked0080.jpg"] = Expected(False, "permission denied")
        user = 65534 if os.geteuid() == 0 else None
        if user is not None:
            for path in [shared, *shared.rglob("*")]:
                os.chown(path, user, user)
        options = {"user": user, "hide_modules": ["pillow_heif"], "env": {"XDG_DATA_HOME": str(shared / "xdg")}}

        returncode, out = cli.run(["index", str(root), "--library", str(library), "--model", "tiny-test",
                                   "--workers", "0"], output=tmp_path / "index.txt", **options)
        assert returncode == 0, out
        skipped = {name: e for name, e in expected.items() if not e.indexed}
        assert f"skipped {len(skipped)}" in out
        for e in skipped.values():
            assert f": {e.reason}" in out, f"the summary lists the reason {e.reason!r}:\n{out}"

        returncode, out = cli.run(["status", "--library", str(library)], output=tmp_path / "status.txt", **options)
        assert returncode == 0, out
        assert f"skipped      : {len(skipped)}" in out
        for name, e in skipped.items():
            assert f"skipped {name}: " in out and e.reason in out.split(f"skipped {name}: ")[1].splitlines()[0]
        assert "Traceback" not in out
    finally:
        for path in shared.rglob("*"):
            if not path.is_symlink():
                path.chmod(stat.S_IRWXU)
        shutil.rmtree(shared)


def test_file_vanishing_between_scan_and_decode(tmp_path):
    root = tmp_path / "photos"
    add_photos(root, range(12))
    doomed = root / "p0009.jpg"

    def delete_once_embedding_starts(p):
        if p.phase == "embedding" and doomed.exists():
            doomed.unlink()

    lib = Library.open(root, tmp_path / "library")
    summary = index(lib, counting_embedder(), progress=delete_once_embedding_starts)
    assert summary.added == 11 and summary.skipped_reasons == {"file vanished": 1}
    assert [(s.path, s.reason) for s in lib.skipped()] == [("p0009.jpg", "file vanished")]
    summary = index(lib, counting_embedder())
    assert summary.unchanged == 11 and summary.removed == 0 and lib.skipped() == [], "a vanished file is forgotten"
    lib.close()


def test_native_decoder_crash_kills_a_worker_not_the_app_and_is_not_retried(tmp_path, monkeypatch):
    root = tmp_path / "photos"
    add_photos(root, range(16))
    add_photos(root, range(50, 51), prefix=crashing_decoder.CRASH_MARK)  # sorts between the others
    monkeypatch.setattr(pipeline, "decode_one", crashing_decoder.decode_or_crash)
    embedder = counting_embedder()
    attempts = crashing_decoder.attempts_log(root / "x.jpg")

    lib = Library.open(root, tmp_path / "library")
    summary = lib.index(embedder, decode_workers=2, batch_size=4)
    assert summary.added == 16 and summary.skipped_reasons == {CRASHED_DECODER: 1}
    assert [(s.path, s.reason) for s in lib.skipped()] == [("crash-me0050.jpg", CRASHED_DECODER)]
    crashes = len(attempts.read_text().splitlines())
    assert crashes >= 2, "tried in the pool, then alone to tell it from its neighbours"
    lib.close()

    lib = Library.open(root, tmp_path / "library")  # a restart: the file stays quarantined
    embedder.embedded = 0
    summary = lib.index(embedder, decode_workers=2, batch_size=4)
    assert summary.unchanged == 16 and summary.skipped_reasons == {CRASHED_DECODER: 1} and embedder.embedded == 0
    assert len(attempts.read_text().splitlines()) == crashes, "a quarantined file is not decoded again"
    lib.close()
