#!/usr/bin/env python3
"""Indexing throughput and query latency on a corpus of 12-megapixel JPEGs (issue 4).

    python bench/throughput.py --weights W --corpus /tmp/vg-12mp

The corpus comes from bench/make_12mp_corpus.py. Without --weights the model has random weights:
the timings are the same, the vectors meaningless.

Measured in the same run, in rounds that interleave the modes so that a load change hits them alike:
  decode-only   decode_all() over the corpus with every core decoding: the decode limit
  model-only    embed_pixels() on photos decoded beforehand, same batch size and threads
  end-to-end    decode_all() feeding embed_pixels() exactly as Library.index does, minus SQLite
and once: Library.index() on the corpus (the app's path: scan, decode, embed, SQLite, HNSW).
The CPU cost of each stage is measured on its own (one core, one thread), which holds even on a
loaded machine and gives the ceiling the cores allow. Query latency: a library of --query-index
synthetic vectors plus real 12 MP query photos (decode + embed + search + rows), p50/p95.
--index-scale N also runs bench/index_scale.py (HNSW at N vectors) and prints its table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from vitgallery.core.imageio import decode_for_model, model_draft_size, open_image
from vitgallery.core.pipeline import DecodeJob, available_cores, decode_all, plan_resources
from vitgallery.core.scan import fingerprint_bytes

# Every decode worker imports this script again as __mp_main__ (CPython's forkserver never preloads
# __main__, so each child runs it): without torch there, a worker starts in a blink, not seconds.
if __name__ != "__mp_main__":
    import torch

    from vitgallery.core.models import DEFAULT_MODEL, MODELS, Embedder, load_embedder, resolve_device

GOALS_CPU = {"e2e_images_per_s": 20.0, "e2e_over_model": 0.9, "query_p95_ms": 150.0}
GOAL_GPU_E2E_OVER_DECODE = 0.9


# -- measuring -------------------------------------------------------------------------------------

class MemorySampler:
    """Peak memory of this process and all its descendants (decode workers), sampled: the sum of their
    proportional set sizes, so pages that forked workers share are counted once."""

    def __init__(self, interval_s: float = 1.0):
        self.interval_s = interval_s
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        if Path("/proc/self/stat").exists():
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, sum(_pss_bytes(pid) for pid in _descendants()))
            self._stop.wait(self.interval_s)


def _descendants() -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(f"/proc/{entry.name}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [os.getpid()]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _pss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return 1024 * int(line.split()[1])
    except (OSError, IndexError, ValueError):
        pass
    return 0


@dataclass
class Pass:
    mode: str
    images: int
    seconds: float
    cpu_seconds: float  # this process only (decode workers are other processes)
    peak_bytes: int = 0

    @property
    def rate(self) -> float:
        return self.images / self.seconds


def timed(mode: str, images: int, work) -> Pass:
    with MemorySampler() as memory:
        wall, cpu = time.perf_counter(), time.process_time()
        work()
        result = Pass(mode, images, time.perf_counter() - wall, time.process_time() - cpu)
    result.peak_bytes = memory.peak_bytes
    return result


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


# -- the three modes -------------------------------------------------------------------------------

def decode_only(paths: list[Path], size: int, workers: int, prefetch: int) -> list[np.ndarray]:
    pixels = []
    for outcome in decode_all((DecodeJob(p, p) for p in paths), size, workers=workers, prefetch=prefetch):
        if outcome.error is not None:
            raise RuntimeError(f"{outcome.job.path}: {outcome.error}")
        pixels.append(outcome.photo.pixels)
    return pixels


def model_only(embedder: Embedder, pixels: list[np.ndarray], batch_size: int) -> None:
    for start in range(0, len(pixels), batch_size):
        embedder.embed_pixels(np.stack(pixels[start:start + batch_size]))
    sync(embedder.device)


def end_to_end(embedder: Embedder, paths: list[Path], workers: int, batch_size: int) -> None:
    """What Library._embed does, without the SQLite writes and the HNSW adds."""
    batch = []
    jobs = (DecodeJob(p, p) for p in paths)
    for outcome in decode_all(jobs, embedder.input_size, workers=workers, prefetch=max(2 * batch_size, 16)):
        batch.append(outcome.photo.pixels)
        if len(batch) >= batch_size:
            embedder.embed_pixels(np.stack(batch))
            batch.clear()
    if batch:
        embedder.embed_pixels(np.stack(batch))
    sync(embedder.device)


def library_index(embedder: Embedder, corpus: Path, workers: int, batch_size: int) -> Pass | None:
    try:
        from vitgallery.core.library import Library
    except ImportError as exc:  # hnswlib/platformdirs missing on a bare GPU machine
        print(f"# Library.index skipped: {exc}", file=sys.stderr)
        return None
    with tempfile.TemporaryDirectory() as lib_dir:
        library = Library.open(corpus, lib_dir)
        summary = None

        def work() -> None:
            nonlocal summary
            summary = library.index(embedder, batch_size=batch_size, decode_workers=workers)

        result = timed("Library.index", 0, work)
        library.close()
    result.images = summary.added
    return result


# -- per-stage CPU cost (one core) -----------------------------------------------------------------

def stage_costs(embedder: Embedder, paths: list[Path], samples: int) -> dict[str, float]:
    """CPU milliseconds per image of each stage, on one core, in this process."""
    threads = torch.get_num_threads()
    paths = paths[:samples]
    costs: dict[str, float] = {}

    def cost(name: str, fn) -> None:
        started = time.process_time()
        for path in paths:
            fn(path)
        costs[name] = 1000 * (time.process_time() - started) / len(paths)

    datas = {p: p.read_bytes() for p in paths}
    size = embedder.input_size
    decode_for_model(datas[paths[0]], size)  # first-use costs: plugin registry, optional HEIF import
    cost("read + fingerprint", lambda p: fingerprint_bytes(p.read_bytes()))
    cost("JPEG decode (draft) + EXIF", lambda p: open_image(datas[p], draft_size=model_draft_size(size)))
    cost("decode_for_model (all of it)", lambda p: decode_for_model(datas[p], size))
    costs["resize + sharpness"] = costs["decode_for_model (all of it)"] - costs["JPEG decode (draft) + EXIF"]
    pixels = np.stack([decode_for_model(datas[p], size).pixels for p in paths[:8]])
    torch.set_num_threads(1)
    try:
        embedder.embed_pixels(pixels)  # warm-up
        started = time.process_time()
        embedder.embed_pixels(pixels)
        costs["model, 1 thread"] = 1000 * (time.process_time() - started) / len(pixels)
    finally:
        torch.set_num_threads(threads)
    return costs


# -- query latency ---------------------------------------------------------------------------------

def query_latency(embedder: Embedder, queries: list[Path], index_size: int, threads: int, seed: int = 0) -> dict:
    from vitgallery.core.imageio import photo_features
    from vitgallery.core.library import Library
    from vitgallery.core.store import EmbeddedFile, StoredWhitening, whitening_fingerprint
    from vitgallery.core.whitening import LibraryWhitening

    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((1000, embedder.dim), dtype=np.float32)
    # Real keypoints for the synthetic rows, so the search re-ranks its top candidates at full cost
    # (each row gets another photo's keypoints than the query's).
    keypoints = [photo_features(open_image(path, draft_size=model_draft_size(embedder.input_size))).keypoints.to_bytes()
                 for path in queries]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "photos"
        root.mkdir()
        library = Library.open(root, Path(tmp) / "library")
        library.store.start_new_model(embedder.signature, embedder.dim)
        started = time.perf_counter()
        for start in range(0, index_size, 10_000):
            count = min(10_000, index_size - start)
            vectors = centres[rng.integers(0, len(centres), count)] + rng.standard_normal(
                (count, embedder.dim), dtype=np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            library.store.add_embedded([
                EmbeddedFile(f"synthetic/{start + i:07d}.jpg", 1, 1, f"{start + i:032x}", 4000, 3000, None, 1.0, v,
                             keypoints[(start + i) % len(keypoints)])
                for i, v in enumerate(vectors)])
        pairs = rng.standard_normal((2000, embedder.dim), dtype=np.float32)
        whitening = LibraryWhitening.fit_pairs(centres, pairs, pairs + 0.1 * rng.standard_normal(pairs.shape, np.float32))
        key = whitening_fingerprint(whitening.mean, whitening.projection)  # any other key reads as damaged
        library.store.save_whitening(StoredWhitening(key, whitening.mean, whitening.projection, index_size, len(pairs)))
        fill_s = time.perf_counter() - started
        started = time.perf_counter()
        library.search(queries[0], k=20, embedder=embedder)  # loads the index: built from SQLite here
        first_s = time.perf_counter() - started
        wall_ms, cpu_ms = [], []
        indexing_threads = torch.get_num_threads()
        torch.set_num_threads(threads)
        for path in queries:
            wall, cpu = time.perf_counter(), time.process_time()
            hits = library.search(path, k=20, embedder=embedder)
            wall_ms.append(1000 * (time.perf_counter() - wall))
            cpu_ms.append(1000 * (time.process_time() - cpu))
            assert len(hits) == 20
        torch.set_num_threads(indexing_threads)
        library.close()
    return {"index_size": index_size, "queries": len(queries), "threads": threads, "fill_sqlite_s": round(fill_s, 1),
            "first_query_with_index_build_s": round(first_s, 1),
            "p50_ms": float(np.percentile(wall_ms, 50)), "p95_ms": float(np.percentile(wall_ms, 95)),
            "cpu_p50_ms": float(np.percentile(cpu_ms, 50)), "cpu_p95_ms": float(np.percentile(cpu_ms, 95))}


# -- report ----------------------------------------------------------------------------------------

@dataclass
class Report:
    machine: dict
    config: dict
    passes: list[Pass] = field(default_factory=list)
    library: Pass | None = None
    stage_ms: dict[str, float] = field(default_factory=dict)
    query: dict | None = None
    load_before: tuple[float, ...] = ()
    load_after: tuple[float, ...] = ()

    def median_rate(self, mode: str) -> float:
        return statistics.median(p.rate for p in self.passes if p.mode == mode)

    def round_ratios(self, top: str, bottom: str) -> list[float]:
        tops = [p.rate for p in self.passes if p.mode == top]
        bottoms = [p.rate for p in self.passes if p.mode == bottom]
        return [t / b for t, b in zip(tops, bottoms, strict=True)]


def machine_info(device: torch.device) -> dict:
    info = {"host": platform.node(), "cpu": platform.processor() or platform.machine(),
            "cores": available_cores(), "torch": torch.__version__, "python": platform.python_version()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def goal_lines(r: Report) -> list[str]:
    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    lines = []
    if r.passes and r.config["device"] == "cuda":
        ratio = statistics.median(r.round_ratios("end-to-end", "decode-only"))
        lines.append(f"end-to-end >= {GOAL_GPU_E2E_OVER_DECODE:.0%} of decode-only: {ratio:.0%} "
                     f"{verdict(ratio >= GOAL_GPU_E2E_OVER_DECODE)}")
    elif r.passes:
        e2e = r.median_rate("end-to-end")
        lines.append(f"end-to-end >= {GOALS_CPU['e2e_images_per_s']:.0f} images/s: {e2e:.1f} "
                     f"{verdict(e2e >= GOALS_CPU['e2e_images_per_s'])}")
        ratio = statistics.median(r.round_ratios("end-to-end", "model-only"))
        lines.append(f"end-to-end >= {GOALS_CPU['e2e_over_model']} x model-only: {ratio:.2f} "
                     f"{verdict(ratio >= GOALS_CPU['e2e_over_model'])}")
    if r.query:
        p95 = r.query["p95_ms"]
        lines.append(f"query p95 <= {GOALS_CPU['query_p95_ms']:.0f} ms at {r.query['index_size']:,}: {p95:.0f} ms "
                     f"{verdict(p95 <= GOALS_CPU['query_p95_ms'])}")
    return lines


def print_report(r: Report) -> None:
    c, m = r.config, r.machine
    print(f"\nmachine: {m['cpu']}, {m['cores']} cores{', ' + m['gpu'] if 'gpu' in m else ''}; "
          f"torch {m['torch']}; load average {r.load_before[0]:.2f} before, {r.load_after[0]:.2f} after")
    print(f"config: {c['model']} {c['precision']} on {c['device']}{' compiled' if c['compile'] else ''}, "
          f"batch {c['batch_size']}, {c['decode_workers']} decode workers + {c['model_threads']} model threads "
          f"(decode-only: {c['decode_limit_workers']} workers), {c['images']} images of {c['mean_mb']:.2f} MB, "
          f"{c['rounds']} rounds")
    print()
    print(f"{'mode':<26}{'images/s (median)':>18}{'per round':>22}{'main CPU ms/img':>17}{'peak PSS':>12}")
    for mode in ("decode-only", "model-only", "end-to-end"):
        passes = [p for p in r.passes if p.mode == mode]
        if passes:
            rounds = " ".join(f"{p.rate:.1f}" for p in passes)
            cpu = statistics.median(1000 * p.cpu_seconds / p.images for p in passes)
            peak = max(p.peak_bytes for p in passes) / 2**20
            print(f"{mode:<26}{r.median_rate(mode):>18.1f}{rounds:>22}{cpu:>17.1f}{peak:>8.0f} MiB")
    if r.library:
        cpu = 1000 * r.library.cpu_seconds / r.library.images
        print(f"{'Library.index (app path)':<26}{r.library.rate:>18.1f}{'':>22}{cpu:>17.1f}"
              f"{r.library.peak_bytes / 2**20:>8.0f} MiB")
    print("(main CPU: this process only, all its threads; the decoders are other processes. Where the "
          "machine is shared, compare it across modes: the images/s follow the CPU share each mode got)")
    for bottom in ("model-only", "decode-only"):
        ratios = r.round_ratios("end-to-end", bottom)
        if ratios:
            print(f"end-to-end / {bottom:<12}: {statistics.median(ratios):.2f}  (rounds: "
                  f"{' '.join(f'{x:.2f}' for x in ratios)})")
    if r.stage_ms:
        print("\nCPU cost per image, one core (ms):")
        for name, ms in r.stage_ms.items():
            print(f"  {name:<32}{ms:>8.1f}")
        per_image = r.stage_ms["read + fingerprint"] + r.stage_ms["decode_for_model (all of it)"]
        if c["device"] == "cpu":
            per_image += r.stage_ms["model, 1 thread"]
        print(f"  => at most {1000 * m['cores'] / per_image:.1f} images/s end-to-end on {m['cores']} idle cores "
              f"(if every core were busy and threads scaled perfectly)")
    goals = goal_lines(r)
    if goals:
        print("\ngoals (issue 4):")
        for line in goals:
            print(f"  {line}")
    if r.query:
        q = r.query
        print(f"\nquery at {q['index_size']:,} vectors (decode 12 MP + embed + HNSW + rows), {q['queries']} queries, "
              f"{q['threads']} model thread(s): "
              f"p50 {q['p50_ms']:.0f} ms, p95 {q['p95_ms']:.0f} ms; CPU time p50 {q['cpu_p50_ms']:.0f} ms, "
              f"p95 {q['cpu_p95_ms']:.0f} ms")
        print(f"  (filling SQLite {q['fill_sqlite_s']} s; first query, building the index from SQLite, "
              f"{q['first_query_with_index_build_s']} s)")


# -- main ------------------------------------------------------------------------------------------

def build_embedder(a: argparse.Namespace) -> Embedder:
    if a.weights:
        return load_embedder(a.model, weights=a.weights, device=a.device, precision=a.precision,
                             compile_model=a.compile)
    spec = MODELS[a.model]
    device = resolve_device(a.device)
    return Embedder(spec, spec.build(), "random-init", device, precision=a.precision, compile_model=a.compile)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--weights", help="model weights; without them random weights (same speed)")
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model")
    ap.add_argument("--batch-size", type=int, help="default: plan_resources()")
    ap.add_argument("--workers", type=int, help="decode workers end to end; default: plan_resources()")
    ap.add_argument("--threads", type=int, help="model threads; default: plan_resources()")
    ap.add_argument("--decode-limit-workers", type=int, help="decode-only workers; default: every core")
    ap.add_argument("--images", type=int, default=0, help="use the first N files (0 = all)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="go over the files this many times per pass (a fast GPU finishes 300 in a second)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--no-library", action="store_true", help="skip the Library.index pass")
    ap.add_argument("--query-index", type=int, default=100_000, help="vectors in the query library (0 = skip)")
    ap.add_argument("--queries", type=int, default=40)
    ap.add_argument("--query-threads", type=int, default=0,
                    help="model threads for queries (0 = the model threads of the plan); on a shared CPU one "
                         "thread is steadier: a preempted OpenMP thread makes the others spin")
    ap.add_argument("--stage-samples", type=int, default=24, help="images for the per-stage CPU costs (0 = skip)")
    ap.add_argument("--index-scale", type=int, default=0, help="also run bench/index_scale.py --n N")
    ap.add_argument("--json", type=Path, help="write the results here too")
    a = ap.parse_args()

    files = sorted(a.corpus.glob("*.jpg"))[: a.images or None]
    if not files:
        print(f"no JPEGs in {a.corpus}; make them with bench/make_12mp_corpus.py", file=sys.stderr)
        return 1
    paths = files * a.repeat
    embedder = build_embedder(a)
    plan = plan_resources(embedder.device.type)
    batch_size = a.batch_size or plan.batch_size
    workers = plan.decode_workers if a.workers is None else a.workers
    threads = a.threads or plan.model_threads
    limit_workers = a.decode_limit_workers or available_cores()
    torch.set_num_threads(threads)
    report = Report(machine_info(embedder.device), {
        "model": embedder.model_id, "signature": embedder.signature, "precision": embedder.precision,
        "device": embedder.device.type, "compile": a.compile, "batch_size": batch_size,
        "decode_workers": workers, "model_threads": threads, "decode_limit_workers": limit_workers,
        "images": len(paths), "mean_mb": sum(p.stat().st_size for p in files) / len(files) / 1e6,
        "rounds": a.rounds, "weights": a.weights or "random"})
    report.load_before = os.getloadavg()
    print(f"# {report.config}", file=sys.stderr)

    size = embedder.input_size
    pixels = decode_only(files, size, limit_workers, prefetch=4 * limit_workers) * a.repeat  # warms the page cache
    model_only(embedder, pixels[: batch_size * 2], batch_size)  # warm-up (and compilation)
    if embedder.compiled:  # every padded shape of the last batch, compiled before timing
        model_only(embedder, pixels[: len(pixels) % batch_size or batch_size], batch_size)

    modes = {
        "decode-only": lambda: decode_only(paths, size, limit_workers, prefetch=4 * limit_workers),
        "model-only": lambda: model_only(embedder, pixels, batch_size),
        "end-to-end": lambda: end_to_end(embedder, paths, workers, batch_size),
    }
    order = list(modes)
    for round_no in range(a.rounds):
        for mode in order if round_no % 2 == 0 else order[::-1]:
            result = timed(mode, len(paths), modes[mode])
            report.passes.append(result)
            print(f"# round {round_no + 1} {mode}: {result.rate:.1f} images/s "
                  f"(load {os.getloadavg()[0]:.1f})", file=sys.stderr)
    if not a.no_library:
        try:
            report.library = library_index(embedder, a.corpus, workers, batch_size)
        except Exception as exc:  # the app path is one row of the table; the others still stand
            print(f"# Library.index failed: {type(exc).__name__}: {exc}", file=sys.stderr)
    if a.stage_samples:
        report.stage_ms = stage_costs(embedder, files, a.stage_samples)
    if a.query_index:
        try:
            report.query = query_latency(embedder, files[: a.queries], a.query_index, a.query_threads or threads)
        except ImportError as exc:  # hnswlib/platformdirs missing on a bare GPU machine
            print(f"# query latency skipped: {exc}", file=sys.stderr)
    report.load_after = os.getloadavg()
    print_report(report)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of this process: {peak:.0f} MiB")

    if a.index_scale:
        script = Path(__file__).with_name("index_scale.py")
        print(f"\n$ python {script.name} --n {a.index_scale}", flush=True)
        subprocess.run([sys.executable, str(script), "--n", str(a.index_scale)], check=False,
                       env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    if a.json:
        data = asdict(report)
        data["median_images_per_s"] = {m: report.median_rate(m) for m in modes if report.passes}
        a.json.write_text(json.dumps(data, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
