"""Ctrl+C while photos are decoded: it reaches every process of the terminal's process group, and the
decode workers leave it to the process that started them (which stops them and keeps what was done)."""

from __future__ import annotations

import os
import signal
import time

from vitgallery.core.pipeline import _new_pool


def test_decode_workers_leave_ctrl_c_to_their_parent(capfd):
    pool = _new_pool(1)
    try:
        worker = pool.submit(os.getpid).result()
        os.kill(worker, signal.SIGINT)
        time.sleep(0.5)  # the worker, waiting for work, has had time to take the signal
        assert pool.submit(os.getpid).result() == worker, "the worker went on"
    finally:
        pool.shutdown()
    assert "KeyboardInterrupt" not in capfd.readouterr().err
