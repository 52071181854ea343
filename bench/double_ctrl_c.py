"""Two Ctrl+C a moment apart during `vitgallery index`: does the command end, and say nothing of a traceback?

Each run indexes FOLDER into a fresh library, sends SIGINT after --first seconds and again --gap seconds
later, and waits --wait seconds for the process to end. Prints one line per run and a JSON summary: runs,
hangs (killed after the wait), tracebacks, exit statuses. Before stop 55 two presses 0.1-0.2 s apart hung
the command in 2 of 6 runs here.

    python bench/double_ctrl_c.py FOLDER --weights W [--runs 12] [--first 6] [--gap 0.15]
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path


def one_run(folder: Path, weights: Path, first: float, gap: float, wait: float) -> tuple[bool, bool, int | None]:
    """(hung, printed a traceback, exit status) of one run."""
    library = Path(tempfile.mkdtemp(prefix="vg-double-ctrl-c-"))
    try:
        process = subprocess.Popen([sys.executable, "-m", "vitgallery", "index", str(folder), "--library", str(library),
                                    "--weights", str(weights)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        time.sleep(first)
        process.send_signal(signal.SIGINT)
        time.sleep(gap)
        process.send_signal(signal.SIGINT)
        try:
            output, _ = process.communicate(timeout=wait)
            hung = False
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
            hung = True
        return hung, b"Traceback" in output, None if hung else process.returncode
    finally:
        shutil.rmtree(library, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=12)
    parser.add_argument("--first", type=float, default=6.0, help="seconds before the first Ctrl+C")
    parser.add_argument("--gap", type=float, default=0.15, help="seconds between the two")
    parser.add_argument("--wait", type=float, default=30.0, help="seconds a run may take to end after them")
    args = parser.parse_args()
    results = []
    for run in range(args.runs):
        hung, traceback, status = one_run(args.folder, args.weights, args.first, args.gap, args.wait)
        print(f"run {run + 1}: {'HUNG' if hung else f'exit {status}'}{', traceback' if traceback else ''}", flush=True)
        results.append((hung, traceback, status))
    print(json.dumps({"runs": len(results), "hangs": sum(hung for hung, _, _ in results),
                      "tracebacks": sum(traceback for _, traceback, _ in results),
                      "exit_statuses": dict(Counter(str(status) for _, _, status in results if status is not None))}))


if __name__ == "__main__":
    main()
