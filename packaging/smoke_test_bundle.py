"""Check a built bundle the way a user meets it: --version, then a headless index and search of a
small generated folder, then the window starting (offscreen) without an error. Everything it writes
goes to a temporary folder (its own XDG folders), never the user's.

    python packaging/smoke_test_bundle.py dist/vitgallery/vitgallery [--weights dinov2_vits14_pretrain.pth]

Without --weights it uses the tiny test model (no download, seconds); with the official DINOv2
ViT-S/14 file it checks the real model. Needs Pillow (pillow-heif to add a HEIC photo). Exit status 0
when every check passes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
WINDOW_SETTLE_S = 12  # long enough for the window to import torch, open the library and list the folder


def expected_version() -> str:
    text = (REPO / "vitgallery" / "__init__.py").read_text()
    return re.search(r'__version__ = "([^"]+)"', text)[1]


def make_photo(seed: int) -> Image.Image:
    rng = random.Random(seed)
    image = Image.new("RGB", (320, 240), tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(10):
        x, y = rng.randrange(320), rng.randrange(240)
        box = [x, y, x + rng.randrange(20, 160), y + rng.randrange(20, 120)]
        colour = tuple(rng.randrange(256) for _ in range(3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
    return image


def make_folder(root: Path) -> list[Path]:
    root.mkdir(parents=True)
    photos = []
    for seed in range(6):
        path = root / (f"photo_{seed}.jpg" if seed % 2 else f"photo_{seed}.png")
        make_photo(seed).save(path)
        photos.append(path)
    try:
        import pillow_heif
    except ImportError:
        print("  (no pillow-heif here: no HEIC photo in the folder)")
    else:
        path = root / "phone.heic"
        pillow_heif.from_pillow(make_photo(6)).save(path, quality=90)
        photos.append(path)
    return photos


class Checker:
    def __init__(self, binary: Path, work: Path) -> None:
        self.binary = binary
        self.env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "TORCH_HOME": str(work / "torch")}
        for name in ("XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME"):
            self.env[name] = str(work / name.lower())
        self.failures: list[str] = []

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        started = time.monotonic()
        done = subprocess.run([str(self.binary), *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        print(f"  vitgallery {' '.join(args)}  -> exit {done.returncode} in {time.monotonic() - started:.1f} s")
        return done

    def check(self, ok: bool, what: str, detail: str = "") -> None:
        print(f"{'ok  ' if ok else 'FAIL'} {what}")
        if not ok:
            self.failures.append(what)
            if detail:
                print("     " + detail.strip().replace("\n", "\n     ")[-3000:])

    def log_text(self) -> str:
        log = Path(self.env["XDG_STATE_HOME"]) / "vitgallery" / "log" / "vitgallery.log"
        return log.read_text() if log.exists() else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binary", type=Path)
    parser.add_argument("--weights", type=Path, help="the official dinov2_vits14_pretrain.pth (else the tiny test model)")
    parser.add_argument("--work", type=Path, help="folder for the photos, library and XDG folders (else a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vitgallery-smoke-") as temporary:
        work = args.work or Path(temporary)
        checker = Checker(args.binary.absolute(), work)
        return smoke(checker, work, args.weights)


def smoke(checker: Checker, work: Path, weights: Path | None) -> int:
    done = checker.run("--version", timeout=120)
    checker.check(done.returncode == 0 and done.stdout.strip() == f"vitgallery {expected_version()}",
                  "--version prints the version", done.stdout + done.stderr)

    photos = make_folder(work / "photos")
    library = work / "library"
    model = ["--model", "dinov2-s14", "--weights", str(weights)] if weights else ["--model", "tiny-test"]
    done = checker.run("index", str(work / "photos"), "--library", str(library), *model, "--workers", "2")
    checker.check(done.returncode == 0 and f"added {len(photos)}," in done.stdout and "skipped 0" in done.stdout,
                  f"index embeds all {len(photos)} photos in decoder processes", done.stdout + done.stderr)

    query = work / "query.jpg"
    make_photo(3).resize((240, 180)).save(query, quality=70)
    done = checker.run("search", str(query), "--library", str(library), "--k", "3", "--json")
    try:
        hits = json.loads(done.stdout)[str(query)]
    except (ValueError, KeyError):
        hits = []
    checker.check(done.returncode == 0 and hits and Path(hits[0]["path"]) == photos[3],
                  "search finds the original of a resized copy first", done.stdout + done.stderr)

    done = checker.run("status", "--library", str(library))
    checker.check(done.returncode == 0 and f"photos       : {len(photos)}" in done.stdout, "status", done.stdout + done.stderr)

    # The window's model, as the Settings dialog would store it (QSettings' ini file on Linux)
    settings = Path(checker.env["XDG_CONFIG_HOME"]) / "vitgallery" / "vitgallery.conf"
    settings.parent.mkdir(parents=True, exist_ok=True)
    chosen = f"model=dinov2-s14\nweights={weights}" if weights else "model=tiny-test"
    settings.write_text(f"[prefs]\n{chosen}\ndevice=cpu\n")
    window = subprocess.Popen([str(checker.binary), str(work / "photos"), "--library", str(library)],
                              env=checker.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(WINDOW_SETTLE_S)
    still_running = window.poll() is None
    window.send_signal(signal.SIGTERM)
    try:
        output, _ = window.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        window.kill()
        output, _ = window.communicate()
    log = checker.log_text()
    checker.check(still_running and "starting" in log and "Traceback" not in log + output,
                  f"the window starts and runs {WINDOW_SETTLE_S} s without an error", output + log)

    print("all checks passed" if not checker.failures else f"{len(checker.failures)} checks failed")
    return 0 if not checker.failures else 1


if __name__ == "__main__":
    sys.exit(main())
