"""The Settings dialog: edits the preferences of the option registry."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QWidget,
)

from vitgallery.core.models import (
    MODELS,
    USER_MODELS,
    choice_change,
    device_problem,
    signature_model_and_precision,
)
from vitgallery.ui import settings as opt
from vitgallery.ui.settings import Option, Settings
from vitgallery.ui.widgets import ERROR_TINT, confirmation_box

if TYPE_CHECKING:
    from vitgallery.ui.workers import IndexedModel

PRECISION_HINTS = {
    "auto": "automatic (OpenVINO int8, bf16 with AMX; else bf16 where the hardware has it, else fp32)",
    "int8": "int8 (faster on a CPU, slightly less accurate)",
}


class SettingsDialog(QDialog):
    """Edits the preferences; the models, devices and precisions offered are the core's. `indexed_with`:
    what the open folder's library was indexed with (None: no folder open, or not indexed yet)."""

    def __init__(self, settings: Settings, parent: QWidget | None = None, *,
                 indexed_with: IndexedModel | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setMinimumWidth(480)
        self._settings = settings
        self._indexed_with = indexed_with
        self._before = {option.key: settings.get(option) for option in opt.PREFERENCES}

        self.model_combo = QComboBox()
        current_model = settings.get(opt.MODEL)
        names = list(USER_MODELS) + ([current_model] if current_model not in USER_MODELS else [])
        for name in names:
            self.model_combo.addItem(f"{name} — {MODELS[name].description}", name)
        self.model_combo.setCurrentIndex(self.model_combo.findData(current_model))

        self.weights_edit = QLineEdit(settings.get(opt.WEIGHTS))
        self.weights_edit.setPlaceholderText("official weights, downloaded on first use")
        self.device_combo = QComboBox()
        for device in opt.DEVICE.choices or ():
            problem = device_problem(device)
            self.device_combo.addItem(device if problem is None else f"{device} (not here: {problem})", device)
            if problem is not None:  # shown, so a setting made on another machine reads as such
                self.device_combo.model().item(self.device_combo.count() - 1).setEnabled(False)
        self.device_combo.setCurrentIndex(self.device_combo.findData(settings.get(opt.DEVICE)))
        self.precision_combo = QComboBox()
        for precision in opt.PRECISION.choices or ():
            self.precision_combo.addItem(PRECISION_HINTS.get(precision, precision), precision)
        self.precision_combo.setCurrentIndex(self.precision_combo.findData(settings.get(opt.PRECISION)))
        self.batch_spin = _spin(opt.BATCH_SIZE, settings.get(opt.BATCH_SIZE))
        self.batch_spin.setSpecialValueText("automatic (fits the device)")
        self.library_edit = QLineEdit(settings.get(opt.LIBRARY_DIR))
        self.library_edit.setPlaceholderText("default: one library per folder in the user data folder")
        self.thumbnail_spin = _spin(opt.THUMBNAIL_SIZE, settings.get(opt.THUMBNAIL_SIZE))
        self.thumbnail_spin.setSuffix(" px")
        self.thumbnail_spin.setSingleStep(16)

        form = QFormLayout(self)
        form.addRow(opt.MODEL.label, self.model_combo)
        form.addRow(opt.WEIGHTS.label, _with_browse(self.weights_edit, self._choose_weights))
        form.addRow(opt.DEVICE.label, self.device_combo)
        form.addRow(opt.PRECISION.label, self.precision_combo)
        form.addRow(opt.BATCH_SIZE.label, self.batch_spin)
        form.addRow(opt.LIBRARY_DIR.label, _with_browse(self.library_edit, self._choose_library))
        form.addRow(opt.THUMBNAIL_SIZE.label, self.thumbnail_spin)
        self.problem_label = QLabel()  # what stops OK, said in the dialog itself
        self.problem_label.setWordWrap(True)
        self.problem_label.setStyleSheet(f"background: {ERROR_TINT}; border-radius: 4px; padding: 4px")
        self.problem_label.hide()
        form.addRow(self.problem_label)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _values(self) -> dict[Option, object]:
        """The preferences as the dialog shows them."""
        return {
            opt.MODEL: self.model_combo.currentData(),
            opt.WEIGHTS: self.weights_edit.text().strip(),
            opt.DEVICE: self.device_combo.currentData(),
            opt.PRECISION: self.precision_combo.currentData(),
            opt.BATCH_SIZE: self.batch_spin.value(),
            opt.LIBRARY_DIR: self.library_edit.text().strip(),
            opt.THUMBNAIL_SIZE: self.thumbnail_spin.value(),
        }

    def accept(self) -> None:
        values = self._values()
        problem, field = self._problem(values)
        self.problem_label.setText(problem or "")  # a reason said before and mended since goes
        self.problem_label.setVisible(problem is not None)
        if problem is not None:
            # Grown to show the whole reason. The form can give a wrapped reason too little height (one just
            # longer than a line got one line), so the label asks for what its text needs at the width it got.
            self.adjustSize()
            self.problem_label.setMinimumHeight(self.problem_label.heightForWidth(self.problem_label.width()))
            self.adjustSize()
            field.setFocus()
            return
        consequences = self._consequences(values)
        if consequences and not self.confirm(" ".join(consequences) + " Apply the settings?"):
            return  # the dialog stays open to change them back
        for option, value in values.items():
            self._settings.set(option, value)
        self._settings.sync()
        super().accept()

    def _problem(self, values: dict[Option, object]) -> tuple[str | None, QLineEdit]:
        """What stops the settings from applying, and the field to mend, as the dialog shows them now."""
        for option, field in ((opt.WEIGHTS, self.weights_edit), (opt.LIBRARY_DIR, self.library_edit)):
            # a path relative to wherever the app was started from names another place at the next start
            if values[option] and not Path(str(values[option])).expanduser().is_absolute():
                return (f"{values[option]} is not a whole path: start it with / (or ~ for your home folder), or "
                        "choose it with the button."), field
        weights = Path(str(values[opt.WEIGHTS])).expanduser()
        if values[opt.WEIGHTS] and not weights.is_file():
            return (f"{weights} is {'a folder' if weights.is_dir() else 'not there'}: choose the weights file "
                    "again, or leave it empty for the official weights."), self.weights_edit
        location = Path(str(values[opt.LIBRARY_DIR])).expanduser()
        if values[opt.LIBRARY_DIR] and location.exists() and not location.is_dir():
            return (f"{location} is a file: choose a folder for the libraries, or leave it empty for the user "
                    "data folder."), self.library_edit
        return None, self.weights_edit

    def _consequences(self, values: dict[Option, object]) -> list[str]:
        """What applying `values` sets off beyond the settings, said before it does."""
        said = []
        new = {option for option, value in values.items() if value != self._before[option.key]}
        model_change = self._model_change(values, new)
        if model_change:
            said.append(model_change)
        if opt.LIBRARY_DIR in new:
            said.append("The library starts again in the new location (every photo is indexed there); the "
                        "one used so far stays where it is.")
        return said

    def _model_change(self, values: dict[Option, object], new: set[Option]) -> str | None:
        """What the chosen model does to the open folder's library, said when it embeds every photo again:
        its model is told apart from the library's (core.models.choice_change), not from the settings, so
        a choice put back to the library's says nothing. What that drops is Store.start_new_model's."""
        indexed = self._indexed_with
        if indexed is None or opt.LIBRARY_DIR in new:  # no library to compare with, or another one then
            shaping = [option.label.lower() for option in (opt.MODEL, opt.WEIGHTS, opt.PRECISION) if option in new]
            if not shaping:
                return None
            return (f"A folder's library indexed with another {' or '.join(shaping)} embeds every photo again "
                    "when the folder is next opened, which takes as long as a first index.")
        if not new & opt.INDEXING:
            return None  # the folder is not indexed again now
        weights = Path(str(values[opt.WEIGHTS])).expanduser() if values[opt.WEIGHTS] else None
        change = choice_change(indexed.signature, indexed.weights_file, str(values[opt.MODEL]), weights,
                               str(values[opt.DEVICE]), str(values[opt.PRECISION]))
        if change is None:
            return None
        name, precision = signature_model_and_precision(indexed.signature)
        return (f"This folder was indexed with {name} ({precision}); with these settings {change}. It is "
                "indexed again at once and every photo embedded anew, which takes as long as a first index: "
                "its vectors, keypoints and duplicate findings are dropped as that starts (stopping it or "
                "changing back later does not bring them back), so searches and Find duplicates see only the "
                "photos done until it ends. Your duplicate decisions are kept. Other folders indexed with "
                "another model are embedded again when next opened.")

    def confirm(self, question: str) -> bool:
        """Asks before settings that embed every photo again apply (Cancel is the default); tests replace it."""
        return confirmation_box(self, "Settings", question, "Apply").exec() == QMessageBox.StandardButton.Yes

    def changed(self) -> set[Option]:
        """The preferences that the dialog changed."""
        return {
            option for option in opt.PREFERENCES if self._settings.get(option) != self._before[option.key]
        }

    def _choose_weights(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Model weights",
            self.weights_edit.text(),
            "Weights (*.pth *.pt *.safetensors *.bin);;All files (*)",
        )
        if path:
            self.weights_edit.setText(path)

    def _choose_library(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Library location", self.library_edit.text())
        if path:
            self.library_edit.setText(path)


def _spin(option: Option[int], value: int) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(option.minimum if option.minimum is not None else 0, option.maximum or 10_000)
    spin.setValue(value)
    return spin


def _with_browse(edit: QLineEdit, choose) -> QWidget:
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(edit, 1)
    button = QPushButton("Browse…")
    button.clicked.connect(choose)
    layout.addWidget(button)
    return row
