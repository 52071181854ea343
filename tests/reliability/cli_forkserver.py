"""A warm process that runs `vitgallery` CLI commands in forked children, so a test can kill the CLI
dozens of times.

Starting Python with torch and timm takes seconds; a child forked from a process that has already
imported them starts in milliseconds. The server itself never runs a model: forking a process whose
torch threads have worked is unsafe. Each child runs the real `vitgallery.cli.main(argv)`, with the
embedder wrapped to append the number of photos of every embedded batch to a log file (before the
batch is committed), so the test can tell what a killed run embedded.

Protocol, one JSON line each way: the client sends {"argv", "output", "embed_log"} and optionally
"env" (variables to set), "user" (a uid to run as, for unreadable files when the tests run as root)
and "hide_modules" (imports that must fail, as if the package were not installed); the server forks
and answers {"pid"}; the client may kill that pid, then sends {"wait": true} and the server answers
{"returncode"} (minus the signal number for a killed child). The child stays unreaped, so its pid
cannot be reused, until the client asks to wait.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import traceback
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def _count_embeddings(log_fd: int) -> None:
    import vitgallery.commands as commands

    load_embedder = commands.load_embedder

    def counting_load_embedder(*args, **kwargs):
        embedder = load_embedder(*args, **kwargs)
        embed_pixels = embedder.embed_pixels

        def embed_and_count(pixels):
            vectors = embed_pixels(pixels)
            os.write(log_fd, f"{len(pixels)}\n".encode())
            return vectors

        embedder.embed_pixels = embed_and_count
        return embedder

    commands.load_embedder = counting_load_embedder


def _run_child(request: dict) -> None:
    returncode = 1
    try:
        output = os.open(request["output"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(output, 1)
        os.dup2(output, 2)
        _count_embeddings(os.open(request["embed_log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644))
        os.environ.update(request.get("env", {}))
        for module in request.get("hide_modules", []):
            sys.modules[module] = None  # `import module` now raises ImportError
        if request.get("user") is not None:
            os.setgroups([])
            os.setgid(request["user"])
            os.setuid(request["user"])
        import vitgallery.cli as cli

        returncode = cli.main(request["argv"])
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(returncode)


def serve() -> None:
    import timm.models.vision_transformer  # noqa: F401  the tiny test model's class, slow to import

    import vitgallery.commands  # noqa: F401  torch and the whole core

    _answer({"ready": True})
    while line := sys.stdin.readline():
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _run_child(request)
        _answer({"pid": pid})
        sys.stdin.readline()
        _, status = os.waitpid(pid, 0)
        _answer({"returncode": os.waitstatus_to_exitcode(status)})


def _answer(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


class CliForkServer:
    """The test's end: start a CLI run, kill it if you like, wait for its return code."""

    def __init__(self, env: dict[str, str]) -> None:
        env = dict(os.environ, **env, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore::DeprecationWarning")
        self._process = subprocess.Popen([sys.executable, "-m", "tests.reliability.cli_forkserver"],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                         cwd=REPO_ROOT, env=env)
        self._read()  # ready

    def start(self, argv: list[str], *, embed_log: Path, output: Path, **options) -> int:
        """Start `vitgallery argv`; options: env, user, hide_modules (see the module's docstring)."""
        self._send({"argv": argv, "embed_log": str(embed_log), "output": str(output), **options})
        return self._read()["pid"]

    def run(self, argv: list[str], *, output: Path, **options) -> tuple[int, str]:
        """Run `vitgallery argv` to its end: (return code, what it printed on stdout and stderr)."""
        self.start(argv, embed_log=output.with_suffix(".embedded"), output=output, **options)
        returncode = self.wait()
        return returncode, output.read_text()

    def wait(self) -> int:
        self._send({"wait": True})
        return self._read()["returncode"]

    def close(self) -> None:
        self._process.stdin.close()
        self._process.wait(timeout=30)

    def _send(self, message: dict) -> None:
        self._process.stdin.write(json.dumps(message) + "\n")
        self._process.stdin.flush()

    def _read(self) -> dict:
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"the CLI fork server died (exit {self._process.wait()})")
        return json.loads(line)


if __name__ == "__main__":
    serve()
