"""One pause of the garbage collector shared by the grid's feed, the jobs that group a scan and an index run's check of the folder."""

from __future__ import annotations

import gc

from vitgallery.core.collector import CollectorPause, collector_paused


def test_the_collector_stays_off_while_any_user_holds_the_pause_and_freezes_what_they_made() -> None:
    assert gc.isenabled()
    feed = CollectorPause()
    feed.pause()
    feed.pause()  # held once, however often asked
    with collector_paused():  # a grouping job, on its own thread, while the grid still fills
        made = [[n] for n in range(1000)]  # kept by the window
        feed.resume()
        feed.resume()
        assert not gc.isenabled(), "off while the job still runs"
        frozen = gc.get_freeze_count()
    assert gc.isenabled()
    assert gc.get_freeze_count() >= frozen + len(made), "kept out of later passes, not walked at once"


def test_a_collector_switched_off_by_someone_else_is_left_off() -> None:
    gc.disable()  # as the start sequence does while it builds the window
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
