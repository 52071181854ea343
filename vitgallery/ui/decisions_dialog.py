"""The groups the user's decisions hide ("not duplicates", "keep all"), listed so that any can be taken
back in another session than the one that made it (Ctrl+Z only takes back this session's steps)."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from vitgallery.core.duplicates import time_ago
from vitgallery.core.store import DecisionRow

DECIDED_AS = {"not_duplicates": "not duplicates", "keep_all": "all kept"}


def decision_text(row: DecisionRow, now: float) -> str:
    """'IMG_0001.jpg and 6 more · not duplicates · 2 days ago'."""
    names = sorted(Path(path).name for path in row.paths)
    photos = names[0] + (f" and {len(names) - 1} more" if len(names) > 1 else "") if names else "no photo"
    return f"{photos} · {DECIDED_AS.get(row.decision, row.decision)} · {time_ago(now - row.at)}"


class DecisionsDialog(QDialog):
    """The group decisions kept in the library, newest first; "Review again" forgets the selected ones."""

    review_again = Signal(object)  # the keys of the groups to show again

    def __init__(self, decisions: list[DecisionRow], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Groups you decided on")
        self.list = QListWidget()
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        now = time.time()
        for row in sorted(decisions, key=lambda d: -d.at):
            item = QListWidgetItem(decision_text(row, now))
            item.setData(Qt.ItemDataRole.UserRole, row.key)
            item.setToolTip("\n".join(row.paths))
            self.list.addItem(item)
        explanation = QLabel("These groups are hidden from the review until one of their photos changes. "
                             "Review again shows the selected ones in the list again.")
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
        keys = tuple(item.data(Qt.ItemDataRole.UserRole) for item in self.list.selectedItems())
        if keys:
            self.review_again.emit(keys)
            self.accept()
