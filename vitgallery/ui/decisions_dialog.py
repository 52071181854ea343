"""The user's decisions kept in the library: the groups they hide ("not duplicates", "keep all") and
the photos told apart ("not these two", taken out, split), listed so that any can be taken back in
another session than the one that made it (Ctrl+Z only takes back this session's steps)."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from vitgallery.core.duplicates import Decision, Separation, time_ago
from vitgallery.core.store import DecisionRow

DECIDED_AS = {"not_duplicates": "not duplicates", "keep_all": "all kept"}


def _photos_text(paths) -> str:
    names = sorted(Path(path).name for path in paths)
    return names[0] + (f" and {len(names) - 1} more" if len(names) > 1 else "") if names else "no photo"


def decision_text(row: DecisionRow, now: float) -> str:
    """'IMG_0001.jpg and 6 more · not duplicates · 2 days ago'."""
    return f"{_photos_text(row.paths)} · {DECIDED_AS.get(row.decision, row.decision)} · {time_ago(now - row.at)}"


def separation_text(separation: Separation, now: float) -> str:
    """'IMG_0001_crop.jpg · told apart from IMG_0001.jpg and 2 more · 2 days ago'."""
    return (f"{_photos_text(separation.photos)} · told apart from {_photos_text(separation.others)} · "
            f"{time_ago(now - separation.at)}")


class DecisionsDialog(QDialog):
    """The decisions kept in the library, newest first; "Review again" forgets the selected ones."""

    review_again = Signal(object)  # a Decision: what to forget, so the photos are grouped as found again

    def __init__(self, decisions: list[DecisionRow], separations: list[Separation],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Your decisions")
        self.list = QListWidget()
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        # an entry wraps onto more lines rather than running off the right edge (its end says when)
        self.list.setWordWrap(True)
        self.list.setResizeMode(QListView.ResizeMode.Adjust)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setAlternatingRowColors(True)  # where one entry of two lines ends and the next begins
        now = time.time()
        listed = [(row.at, decision_text(row, now), "\n".join(row.paths), Decision(group_keys=(row.key,)))
                  for row in decisions]
        listed += [(sep.at, separation_text(sep, now), "\n".join([*sep.photos, "told apart from", *sep.others]),
                    Decision(pairs=sep.pairs)) for sep in separations]
        for _, text, tip, decision in sorted(listed, key=lambda entry: -entry[0]):
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, decision)
            item.setToolTip(tip)
            self.list.addItem(item)
        explanation = QLabel("Groups marked \"not duplicates\" or \"keep all\" are hidden from the review until one "
                             "of their photos changes; photos told apart are never grouped together. Review again "
                             "takes the selected decisions back: the photos are grouped as the scan found them.")
        explanation.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.review_button = QPushButton("Review again")
        self.review_button.setEnabled(False)
        buttons.addButton(self.review_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        self.review_button.clicked.connect(self._review_selected)
        self.list.itemSelectionChanged.connect(
            lambda: self.review_button.setEnabled(bool(self.list.selectedItems())))
        layout = QVBoxLayout(self)
        layout.addWidget(explanation)
        layout.addWidget(self.list, 1)
        layout.addWidget(buttons)
        self.resize(520, 360)

    def _review_selected(self) -> None:
        chosen = [item.data(Qt.ItemDataRole.UserRole) for item in self.list.selectedItems()]
        if chosen:
            self.review_again.emit(Decision(group_keys=tuple(k for d in chosen for k in d.group_keys),
                                            pairs=frozenset(p for d in chosen for p in d.pairs)))
            self.accept()
