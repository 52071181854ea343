"""A worker process of its own (pipeline.WorkerProcess): work that would hold the app's interpreter."""

from __future__ import annotations

import operator
import os
import threading
import time

import pytest

from vitgallery.core.pipeline import WorkCancelled, WorkerProcess


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
    for _ in range(100):  # the fork server that started it reaps it
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the worker process is still there")
    with pytest.raises(WorkCancelled):
        worker.run(os.getpid)  # cancelled before it starts


def test_a_worker_that_dies_says_so():
    with WorkerProcess() as worker, pytest.raises(RuntimeError, match=r"ended \(exit code 3\) while running _exit"):
        worker.run(os._exit, 3)


def test_a_failed_preparation_does_not_stop_the_work():
    with WorkerProcess(prepare=_failing_preparation) as worker:
        assert worker.run(operator.mul, 6, 7) == 42


def _failing_preparation() -> None:
    raise OSError("disk full")
