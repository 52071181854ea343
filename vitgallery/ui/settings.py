"""Typed options over QSettings: one registry, preferences kept apart from window state."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from PySide6.QtCore import QByteArray, QSettings

from vitgallery.core.models import DEFAULT_MODEL, DEVICES, MODELS, PRECISIONS
from vitgallery.ui.results_model import SortOrder

log = logging.getLogger(__name__)

T = TypeVar("T")

ORGANIZATION = "vitgallery"
APPLICATION = "vitgallery"
MAX_RECENT_FOLDERS = 8


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: each option is one registry entry
class Option(Generic[T]):
    """One persisted value: its key, Python type and default; `choices`/`minimum`/`maximum` constrain it."""

    key: str
    type: type
    default: T
    choices: tuple[T, ...] | None = None
    minimum: T | None = None
    maximum: T | None = None
    label: str = ""

    def coerce(self, raw: Any) -> T:
        """Turn what QSettings hands back (often a string from an ini file) into a valid value."""
        try:
            value = _convert(raw, self.type)
        except (TypeError, ValueError):
            log.warning("setting %s: %r is not a %s, using the default", self.key, raw, self.type.__name__)
            return self.default
        if self.choices is not None and value not in self.choices:
            log.warning("setting %s: %r is not one of %s, using the default", self.key, value, self.choices)
            return self.default
        if self.minimum is not None and value < self.minimum:
            return self.minimum
        if self.maximum is not None and value > self.maximum:
            return self.maximum
        return value


def _convert(raw: Any, target: type) -> Any:
    if target is bool:
        if isinstance(raw, str):
            lowered = raw.strip().lower()
            if lowered in ("true", "1", "yes", "on"):
                return True
            if lowered in ("false", "0", "no", "off", ""):
                return False
            raise ValueError(raw)
        return bool(raw)
    if target is int:
        return int(float(raw)) if isinstance(raw, str) else int(raw)
    if target is float:
        return float(raw)
    if target is str:
        return str(raw)
    if target is list:
        # An ini file stores a one-element list as a plain string and an empty one as None.
        if raw is None or raw == "":
            return []
        if isinstance(raw, str):
            return [raw]
        return [str(item) for item in raw]
    raise TypeError(f"unsupported option type {target!r}")


# Preferences the user edits in the Settings dialog. The model, device and precision choices are the
# core's; the dialog offers only the models meant for users (models.USER_MODELS).
MODEL = Option("prefs/model", str, DEFAULT_MODEL, choices=tuple(MODELS), label="Model")
WEIGHTS = Option("prefs/weights", str, "", label="Weights file")
DEVICE = Option("prefs/device", str, "auto", choices=DEVICES, label="Device")
PRECISION = Option("prefs/precision", str, "auto", choices=PRECISIONS, label="Precision")
AUTOMATIC_BATCH_SIZE = 0  # the core plans the batch for the device, as the CLI does
BATCH_SIZE = Option("prefs/batch_size", int, AUTOMATIC_BATCH_SIZE, minimum=0, maximum=256, label="Batch size")
LIBRARY_DIR = Option("prefs/library_dir", str, "", label="Library location")
THUMBNAIL_SIZE = Option("prefs/thumbnail_size", int, 160, minimum=64, maximum=400, label="Thumbnail size")
RESULT_COUNT = Option("prefs/result_count", int, 40, minimum=1, maximum=500, label="Results")
MIN_SCORE = Option("prefs/min_score", float, 0.0, minimum=0.0, maximum=1.0, label="Min. similarity")

# Session state: restored at start, never shown in the Settings dialog.
LAST_FOLDER = Option("session/last_folder", str, "")
RECENT_FOLDERS = Option("session/recent_folders", list, [])
FOLDER_SORT = Option(
    "session/folder_sort",
    str,
    SortOrder.NAME.value,
    choices=(SortOrder.NAME.value, SortOrder.DATE.value, SortOrder.LIKENESS.value),
)
RESULTS_SORT = Option(
    "session/results_sort",
    str,
    SortOrder.RANK.value,
    choices=(SortOrder.RANK.value, SortOrder.NAME.value, SortOrder.DATE.value),
)
SORT_EXAMPLES = Option("session/sort_examples", str, "")  # the Sort page's folders, as last used
SORT_UNSORTED = Option("session/sort_unsorted", str, "")
WINDOW_GEOMETRY = Option("window/geometry", QByteArray, QByteArray())
WINDOW_STATE = Option("window/state", QByteArray, QByteArray())
SPLITTER_STATE = Option("window/splitter", QByteArray, QByteArray())
QUERY_PANEL_SHOWN = Option("window/query_panel_shown", bool, True)

PREFERENCES: tuple[Option, ...] = (
    MODEL,
    WEIGHTS,
    DEVICE,
    PRECISION,
    BATCH_SIZE,
    LIBRARY_DIR,
    THUMBNAIL_SIZE,
    RESULT_COUNT,
    MIN_SCORE,
)

# The preferences whose change indexes the open folder again at once (with the model they choose).
INDEXING: frozenset[Option] = frozenset({MODEL, WEIGHTS, DEVICE, PRECISION, BATCH_SIZE})


class Settings:
    """Reads and writes registered options; tests pass a QSettings on a temporary ini file."""

    def __init__(self, qsettings: QSettings | None = None) -> None:
        self._qsettings = qsettings if qsettings is not None else QSettings(ORGANIZATION, APPLICATION)

    @classmethod
    def from_file(cls, path: Path) -> Settings:
        return cls(QSettings(str(path), QSettings.Format.IniFormat))

    def get(self, option: Option[T]) -> T:
        if option.type is QByteArray:
            raw = self._qsettings.value(option.key)
            return raw if isinstance(raw, QByteArray) else option.default
        if not self._qsettings.contains(option.key):
            return copy.copy(option.default)
        return option.coerce(self._qsettings.value(option.key))

    def set(self, option: Option[T], value: T) -> None:
        if option.type is not QByteArray:
            value = option.coerce(value)
        self._qsettings.setValue(option.key, value)

    def sync(self) -> None:
        self._qsettings.sync()

    def add_recent_folder(self, folder: Path) -> None:
        """Put `folder` first in the recent list and make it the folder reopened next time."""
        text = str(folder)
        recent = [item for item in self.get(RECENT_FOLDERS) if item != text]
        self.set(RECENT_FOLDERS, [text, *recent][:MAX_RECENT_FOLDERS])
        self.set(LAST_FOLDER, text)

    def forget_recent_folder(self, folder: Path) -> None:
        """A folder that moved: its old place leaves the recent list."""
        self.set(RECENT_FOLDERS, [item for item in self.get(RECENT_FOLDERS) if item != str(folder)])

    def recent_folders(self) -> list[Path]:
        return [Path(item) for item in self.get(RECENT_FOLDERS)]

    def library_dir(self) -> Path | None:
        text = self.get(LIBRARY_DIR)
        return Path(text) if text else None

    def weights(self) -> Path | None:
        text = self.get(WEIGHTS)
        return Path(text) if text else None

    def batch_size(self) -> int | None:
        """The batch the user set, or None for the core's plan."""
        size = self.get(BATCH_SIZE)
        return None if size == AUTOMATIC_BATCH_SIZE else size
