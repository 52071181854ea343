"""Fuzz `open_image` / `read_meta` / `decode_for_model` / `decode_teaching_views` with mutated image files.

Inputs come from Hypothesis: random bytes, and small valid JPEG/PNG/GIF/WebP/TIFF/BMP (plus AVIF
and HEIC when available) files generated in memory and then mutated (bit flips, "interesting"
integers written over size fields, truncation, deletion, duplication, splicing two files).
Each input is decoded in this process. A finding is:

* crash: any exception other than DecodeError escaping open_image or read_meta, or, on the
  inputs open_image decoded, decode_for_model and decode_teaching_views (frame trimming, SIFT
  keypoints, the whitening's edited copies);
* unexpected: a DecodeError whose reason says a decoder raised an exception type we did not
  expect (the contract held, but the plugin misbehaved);
* slow: one input taking more than --slow-s seconds;
* memory: one input raising the process' peak RSS by more than --memory-jump-mb, or running
  out of the --memory-limit-mb address space.

Every finding's input is saved under --crashes (deduplicated by signature) with a .txt note.
A watchdog thread saves the current input and exits if one input hangs for --hang-s seconds.
If the process dies in native code, --crashes holds last-input.bin (written before each input)
and faulthandler.log (the Python stack at the fault). libjpeg/libtiff chatter on stderr goes to
/dev/null unless --native-stderr is given.

    nice -n 10 .venv/bin/python bench/fuzz_decode.py --minutes 10 --seed 1 --crashes /tmp/vg-fuzz
    .venv/bin/python bench/fuzz_decode.py --replay /tmp/vg-fuzz      # re-run saved inputs
"""

from __future__ import annotations

import argparse
import collections
import faulthandler
import hashlib
import io
import logging
import os
import random
import re
import resource
import sys
import tempfile
import threading
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from PIL import ExifTags, Image, features

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from vitgallery.core.imageio import (  # noqa: E402
    DecodeError,
    Teaching,
    decode_for_model,
    decode_teaching_views,
    open_image,
    read_meta,
)

UNEXPECTED_PREFIX = "unexpected decoder error"
OUT_OF_MEMORY_PREFIX = "not enough memory"
INTERESTING_INTS = [0, 1, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF, 0xFFFFFFFF]
EXAMPLES_PER_ROUND = 200
MUTANTS_PER_EXAMPLE = 15  # Hypothesis costs ~2 ms an example, more than decoding: amortise it


def make_seeds() -> dict[str, bytes]:
    """Small valid files covering the formats and the odd modes open_image handles."""
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
    gradient = Image.linear_gradient("L").resize((32, 24))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = "2021:06:15 12:30:45"
    frames = [Image.new("RGB", (16, 16), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    palette = noise.convert("P")

    def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, fmt, **params)
        return buffer.getvalue()

    seeds = {
        "jpeg": encode(noise, "JPEG", quality=80),
        "jpeg-progressive-exif": encode(noise, "JPEG", progressive=True, exif=exif.tobytes()),
        "jpeg-grey": encode(gradient, "JPEG"),
        "jpeg-cmyk": encode(noise.convert("CMYK"), "JPEG"),
        "png": encode(noise, "PNG"),
        "png-interlaced-rgba": encode(noise.convert("RGBA"), "PNG", optimize=False, interlace=1),
        "png-palette-transparency": encode(palette, "PNG", transparency=0),
        "png-16bit": encode(Image.fromarray(np.asarray(gradient).astype(np.uint16) * 257), "PNG"),
        "png-1bit": encode(gradient.convert("1"), "PNG"),
        "gif-animated": encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50),
        "webp-lossy": encode(noise, "WEBP", quality=70),
        "webp-lossless-alpha": encode(noise.convert("RGBA"), "WEBP", lossless=True),
        "webp-animated": encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=50),
        "tiff-raw": encode(noise, "TIFF"),
        "tiff-deflate": encode(noise, "TIFF", compression="tiff_deflate"),
        "tiff-lzw-multipage": encode(
            frames[0], "TIFF", compression="tiff_lzw", save_all=True, append_images=frames[1:]
        ),
        "tiff-jpeg": encode(noise, "TIFF", compression="jpeg"),
        "tiff-float": encode(Image.fromarray(np.asarray(gradient, dtype=np.float32) / 255), "TIFF"),
        "bmp": encode(noise, "BMP"),
        "bmp-palette": encode(palette, "BMP"),
    }
    if features.check("avif"):
        seeds["avif"] = encode(noise, "AVIF", quality=60)
    try:
        import pillow_heif
    except ImportError:
        pass
    else:
        buffer = io.BytesIO()
        pillow_heif.from_pillow(noise).save(buffer, quality=60)
        seeds["heic"] = buffer.getvalue()
    return seeds


MUTATIONS = ("flip", "byte", "int", "truncate", "delete", "duplicate", "splice", "insert")


def mutate(original: bytes, seeds: list[bytes], rng: random.Random) -> bytes:
    data = bytearray(original)
    for _ in range(rng.randint(1, 6)):
        if not data:
            break
        # Half the mutations hit the first 64 bytes, where the headers and sizes are.
        at = rng.randrange(min(len(data), 64) if rng.random() < 0.5 else len(data))
        op = rng.choice(MUTATIONS)
        if op == "flip":
            data[at] ^= 1 << rng.randrange(8)
        elif op == "byte":
            data[at] = rng.choice([0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF])
        elif op == "int":
            width = rng.choice([2, 4])
            value = rng.choice(INTERESTING_INTS) & ((1 << (8 * width)) - 1)
            data[at : at + width] = value.to_bytes(width, rng.choice(["big", "little"]))
        elif op == "truncate":
            del data[at:]
        elif op == "delete":
            del data[at : at + rng.randint(1, 64)]
        elif op == "duplicate":
            data[at:at] = data[at : at + rng.randint(1, 64)]
        elif op == "splice":
            other = rng.choice(seeds)
            data[at:] = other[rng.randrange(len(other)) :]
        else:
            data[at:at] = rng.randbytes(rng.randint(1, 16))
    return bytes(data)


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / 1024 if sys.platform == "darwin" else peak / 1024  # bytes there, KiB here


@dataclass
class Report:
    crashes_dir: Path
    slow_s: float
    memory_jump_mb: float
    inputs: int = 0
    decoded: int = 0
    reasons: collections.Counter[str] = field(default_factory=collections.Counter)
    findings: collections.Counter[str] = field(default_factory=collections.Counter)
    saved: set[str] = field(default_factory=set)
    slowest_s: float = 0.0
    peak_mb: float = field(default_factory=peak_rss_mb)
    current: bytes = b""
    current_started: float = 0.0
    last_input_fd: int | None = None

    def run(self, data: bytes, draft_size: int | None) -> None:
        self.inputs += 1
        if self.last_input_fd is not None:  # rewritten in place: open/close per input costs ms
            os.ftruncate(self.last_input_fd, 0)
            os.pwrite(self.last_input_fd, data, 0)
        self.current, self.current_started = data, time.perf_counter()
        before_mb = self.peak_mb
        decoded = False
        for call in ("open_image", "read_meta", "decode_for_model"):
            try:
                if call == "open_image":
                    open_image(data, draft_size=draft_size)
                    self.decoded += 1
                    decoded = True
                elif call == "read_meta":
                    read_meta(data)
                elif decoded:
                    decode_for_model(data, 32)
                    decode_teaching_views(data, 32, Teaching(seed=len(data), views=3))
            except DecodeError as exc:
                self.reasons[_normalise(exc.reason)] += 1
                if exc.reason.startswith(UNEXPECTED_PREFIX):
                    self.finding("unexpected", exc.reason, data, f"{call}: {exc.reason}")
                elif exc.reason.startswith(OUT_OF_MEMORY_PREFIX):
                    self.finding("memory", exc.reason, data, f"{call}: {exc.reason}")
            except Exception as exc:  # the contract is broken: this is what we are looking for
                where = traceback.extract_tb(exc.__traceback__)[-1]
                signature = f"{type(exc).__name__} at {Path(where.filename).name}:{where.lineno}"
                self.finding("crash", signature, data, f"{call}: {traceback.format_exc()}")
        elapsed = time.perf_counter() - self.current_started
        self.slowest_s = max(self.slowest_s, elapsed)
        if elapsed > self.slow_s:
            self.finding("slow", f"{elapsed:.0f}s", data, f"{elapsed:.2f} s for {len(data)} bytes")
        self.peak_mb = peak_rss_mb()
        if self.peak_mb - before_mb > self.memory_jump_mb:
            jump = f"+{self.peak_mb - before_mb:.0f} MB"
            self.finding("memory", jump, data, f"peak RSS {before_mb:.0f} -> {self.peak_mb:.0f} MB")
        self.current = b""

    def finding(self, kind: str, signature: str, data: bytes, note: str) -> None:
        key = f"{kind}: {_normalise(signature)}"
        self.findings[key] += 1
        if key in self.saved:
            return
        self.saved.add(key)
        self.save(kind, data, f"{key}\n\n{note}\n")
        print(f"  finding {key}", flush=True)

    def save(self, kind: str, data: bytes, note: str) -> Path:
        self.crashes_dir.mkdir(parents=True, exist_ok=True)
        path = self.crashes_dir / f"{kind}-{hashlib.sha1(data).hexdigest()[:12]}.bin"
        path.write_bytes(data)
        path.with_suffix(".txt").write_text(note)
        return path

    def summary(self, seconds: float) -> str:
        kinds = collections.Counter()
        for key, count in self.findings.items():
            kinds[key.split(":")[0]] += count
        top = ", ".join(f"{reason} x{count}" for reason, count in self.reasons.most_common(6))
        return (
            f"fuzz_decode: {self.inputs} inputs in {seconds:.0f} s ({self.inputs / max(seconds, 1e-9):.0f}/s), "
            f"{kinds['crash']} crashes, {kinds['unexpected']} unexpected, {kinds['slow']} slow, "
            f"{kinds['memory']} memory; {self.decoded} decoded; slowest {self.slowest_s:.2f} s; "
            f"peak RSS {self.peak_mb:.0f} MB; top reasons: {top}"
        )


def _normalise(text: str) -> str:
    return re.sub(r"\d+", "N", text)[:160]


def watchdog(report: Report, hang_s: float) -> None:
    # Decoders release the GIL, so this thread still runs while one hangs inside C code.
    while True:
        time.sleep(1.0)
        data, started = report.current, report.current_started
        if data and time.perf_counter() - started > hang_s:
            path = report.save("hang", data, f"hang: one input ran for more than {hang_s:.0f} s\n")
            print(f"  finding hang: saved {path}; stopping", flush=True)
            os._exit(3)


def fuzz(args: argparse.Namespace) -> Report:
    seeds = make_seeds()
    print(f"seeds: {len(seeds)} files ({', '.join(seeds)})", flush=True)
    report = Report(args.crashes, args.slow_s, args.memory_jump_mb)
    args.crashes.mkdir(parents=True, exist_ok=True)
    report.last_input_fd = os.open(args.crashes / "last-input.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    fault_log = (args.crashes / "faulthandler.log").open("w")
    faulthandler.enable(fault_log)
    threading.Thread(target=watchdog, args=(report, args.hang_s), daemon=True).start()
    deadline = time.monotonic() + args.minutes * 60

    seed_files = list(seeds.values())

    # Each example: Hypothesis' own random bytes, then mutants of seed files driven by a Random
    # Hypothesis chose (drawing every mutation through Hypothesis would cost ms per input).
    @settings(
        max_examples=EXAMPLES_PER_ROUND,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(raw=st.binary(max_size=1024), rng=st.randoms(use_true_random=True))
    def one_example(raw: bytes, rng: random.Random) -> None:
        if time.monotonic() > deadline:  # past it, the rest of the round is skipped cheaply
            return
        report.run(raw, None)
        for _ in range(MUTANTS_PER_EXAMPLE):
            report.run(mutate(rng.choice(seed_files), seed_files, rng), rng.choice([None, 64, 224]))

    started = time.monotonic()
    round_number = 0
    while time.monotonic() < deadline:
        seed(args.seed * 1_000_003 + round_number)(one_example)()
        round_number += 1
        print(f"  round {round_number}: {report.inputs} inputs, findings {dict(report.findings)}", flush=True)
    print(report.summary(time.monotonic() - started), flush=True)
    return report


def replay(folder: Path) -> int:
    failures = 0
    for path in sorted(folder.glob("*.bin")) if folder.is_dir() else [folder]:
        data = path.read_bytes()
        started = time.perf_counter()
        try:
            outcome = f"decoded {open_image(data).size}"
        except DecodeError as exc:
            outcome = f"DecodeError: {exc.reason}"
        except Exception as exc:
            outcome = f"CRASH {type(exc).__name__}: {exc}"
            failures += 1
        print(f"{path.name}: {outcome} ({time.perf_counter() - started:.2f} s)")
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--crashes",
        type=Path,
        default=Path(tempfile.gettempdir()) / "vitgallery-fuzz",
        help="where findings go",
    )
    parser.add_argument("--slow-s", type=float, default=2.0, help="an input slower than this is a finding")
    parser.add_argument("--hang-s", type=float, default=120.0, help="save the input and stop after this")
    parser.add_argument("--memory-jump-mb", type=float, default=512.0)
    parser.add_argument(
        "--memory-limit-mb",
        type=int,
        default=4096,
        help="address-space limit (0: none) so a runaway "
        "allocation raises MemoryError instead of swapping the machine",
    )
    parser.add_argument("--replay", type=Path, help="decode saved inputs (a file or a folder) and exit")
    parser.add_argument("--native-stderr", action="store_true", help="keep libjpeg/libtiff messages")
    args = parser.parse_args()

    # The report counts what these would say on every other input: unexpected errors, corrupt
    # EXIF, bomb warnings, libtiff complaints.
    logging.basicConfig(level=logging.CRITICAL)
    warnings.simplefilter("ignore")
    if not args.native_stderr and not args.replay:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        sys.stderr = sys.stdout
    if args.memory_limit_mb:
        limit = args.memory_limit_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if args.replay:
        return 1 if replay(args.replay) else 0
    report = fuzz(args)
    return 1 if report.findings else 0


if __name__ == "__main__":
    sys.exit(main())
