"""A worker process of its own (pipeline.WorkerProcess): work that would hold the app's interpreter."""

from __future__ import annotations

import functools
import operator
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from vitgallery.core.pipeline import WorkCancelled, WorkerDied, WorkerProcess


def test_work_runs_there_and_its_errors_are_raised_here():
    with WorkerProcess() as worker:
        assert worker.run(os.getpid) != os.getpid()
        with pytest.raises(ZeroDivisionError):
            worker.run(operator.truediv, 1, 0)
        assert worker.run(operator.add, 2, 3) == 5, "it goes on after an error"


def test_a_cancel_ends_the_work_and_its_process():
    cancel = threading.Event()
    worker = WorkerProcess(cancel=cancel)
    pid = worker.run(os.getpid)
    threading.Timer(0.3, cancel.set).start()
    with pytest.raises(WorkCancelled), worker:
        worker.run(time.sleep, 600)
    _wait_until_gone(pid)
    with pytest.raises(WorkCancelled):
        worker.run(os.getpid)  # cancelled before it starts


def test_a_cancel_while_it_prepares_ends_it_on_leaving(tmp_path):
    """A calibration cancelled while its photos are decoded: the worker, still importing or converting,
    ends then, rather than finishing a preparation no work will use."""
    cancel = threading.Event()
    pid_file = tmp_path / "pid"
    with WorkerProcess(prepare=functools.partial(_slow_preparation, pid_file), cancel=cancel):
        pid = _pid_from(pid_file)
        cancel.set()
    _wait_until_gone(pid)


def test_a_worker_that_dies_says_so():
    with WorkerProcess() as worker, pytest.raises(RuntimeError, match=r"ended \(exit code 3\) while running _exit"):
        worker.run(os._exit, 3)


@pytest.mark.parametrize("killed", ["before its work is sent", "with its work unread"])
def test_a_worker_killed_before_it_reads_its_work_says_so(tmp_path, killed):
    """Killed from outside (the OOM killer, say) while it prepares: its end of the connection is gone
    (sending fails) or reset with the work unread in it (receiving fails). Either way the caller learns
    that the worker died, as it does of one killed while it works."""
    pid_file = tmp_path / "pid"
    with WorkerProcess(prepare=functools.partial(_slow_preparation, pid_file)) as worker:
        pid = _pid_from(pid_file)
        if killed == "before its work is sent":
            os.kill(pid, signal.SIGKILL)
            _wait_until_gone(pid)
        else:
            threading.Timer(0.3, os.kill, (pid, signal.SIGKILL)).start()
        with pytest.raises(WorkerDied) as died:
            worker.run(os.getpid)
    assert died.value.exitcode == -signal.SIGKILL


def test_a_failed_preparation_does_not_stop_the_work():
    with WorkerProcess(prepare=_failing_preparation) as worker:
        assert worker.run(operator.mul, 6, 7) == 42


def _pid_from(pid_file: Path) -> int:
    for _ in range(200):
        if pid_file.exists() and pid_file.read_text():
            return int(pid_file.read_text())
        time.sleep(0.05)
    pytest.fail("the worker never started its preparation")


def _wait_until_gone(pid: int) -> None:
    for _ in range(100):  # the fork server that started it reaps it
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    pytest.fail("the worker process is still there")


def _slow_preparation(pid_file: Path) -> None:
    pid_file.write_text(str(os.getpid()))
    time.sleep(600)


def _failing_preparation() -> None:
    raise OSError("disk full")
