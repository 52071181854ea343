"""The Decisions… dialog: the decisions kept in the library, each read whole."""

from __future__ import annotations

import time

from vitgallery.core.duplicates import Separation
from vitgallery.core.store import DecisionRow
from vitgallery.ui.decisions_dialog import DecisionsDialog


def test_a_long_entry_wraps_and_is_read_whole(qtbot):
    long_name = "g0002_3_squash-crop-jpeg-from-the-phone-backup-of-last-summer.jpg"
    separation = Separation(frozenset({("a", "b")}), time.time(), (long_name,),
                            tuple(f"g0002_{n}_crop-flip-and-a-long-name.jpg" for n in range(7)))
    row = DecisionRow("k", ["a"], ["/photos/g0010_0.jpg"], "keep_all", time.time() - 120)
    dialog = DecisionsDialog([row], [separation])
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    listed = dialog.list
    assert listed.horizontalScrollBar().maximum() == 0
    rects = [listed.visualItemRect(listed.item(i)) for i in range(listed.count())]
    assert all(rect.right() < listed.viewport().width() for rect in rects)
    line = listed.fontMetrics().lineSpacing()
    assert rects[0].height() >= 2 * line > rects[1].height(), "the long one on two lines, the short one on one"
    assert listed.item(0).text().endswith(" · just now")
