from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from vitgallery.ui import settings as opt
from vitgallery.ui.settings import MAX_RECENT_FOLDERS, Settings
from vitgallery.ui.settings_dialog import SettingsDialog
from vitgallery.ui.workers import IndexedModel


def test_preferences_round_trip_through_the_ini_file(tmp_path: Path) -> None:
    path = tmp_path / "settings.ini"
    first = Settings.from_file(path)
    values = {
        opt.MODEL: "dinov2-b14",
        opt.WEIGHTS: "/weights/model.pth",
        opt.DEVICE: "cuda",
        opt.BATCH_SIZE: 48,
        opt.LIBRARY_DIR: "/data/library",
        opt.THUMBNAIL_SIZE: 224,
        opt.RESULT_COUNT: 75,
        opt.MIN_SCORE: 0.35,
    }
    for option, value in values.items():
        first.set(option, value)
    first.sync()

    second = Settings.from_file(path)
    for option, value in values.items():
        read = second.get(option)
        assert read == value and type(read) is type(value), option.key
    assert second.library_dir() == Path("/data/library")
    assert second.weights() == Path("/weights/model.pth")


def test_defaults_when_unset_and_bad_values_fall_back(tmp_path: Path) -> None:
    path = tmp_path / "settings.ini"
    path.write_text("[prefs]\nbatch_size=lots\ndevice=abacus\nthumbnail_size=9999\nmin_score=-1\n")
    settings = Settings.from_file(path)
    assert settings.get(opt.MODEL) == "dinov2-s14"
    assert settings.get(opt.BATCH_SIZE) == opt.BATCH_SIZE.default
    assert settings.get(opt.DEVICE) == "auto"
    assert settings.get(opt.THUMBNAIL_SIZE) == opt.THUMBNAIL_SIZE.maximum
    assert settings.get(opt.MIN_SCORE) == 0.0
    assert settings.library_dir() is None and settings.weights() is None


def test_recent_folders_most_recent_first_without_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "settings.ini"
    settings = Settings.from_file(path)
    assert settings.recent_folders() == []
    for number in range(MAX_RECENT_FOLDERS + 3):
        settings.add_recent_folder(Path(f"/photos/{number}"))
    settings.add_recent_folder(Path("/photos/5"))
    settings.sync()

    reread = Settings.from_file(path)
    recent = reread.recent_folders()
    assert recent[0] == Path("/photos/5")
    assert len(recent) == MAX_RECENT_FOLDERS and len(set(recent)) == len(recent)
    assert reread.get(opt.LAST_FOLDER) == "/photos/5"
    # One folder is stored by QSettings as a plain string; it still reads back as a list.
    single = Settings.from_file(tmp_path / "single.ini")
    single.add_recent_folder(Path("/only"))
    single.sync()
    assert Settings.from_file(tmp_path / "single.ini").recent_folders() == [Path("/only")]


def test_preferences_and_window_state_are_kept_apart(tmp_path: Path) -> None:
    path = tmp_path / "settings.ini"
    settings = Settings.from_file(path)
    settings.set(opt.BATCH_SIZE, 4)
    settings.add_recent_folder(Path("/photos"))
    settings.sync()
    groups = set(QSettings(str(path), QSettings.Format.IniFormat).childGroups())
    assert groups == {"prefs", "session"}
    assert all(option.key.startswith("prefs/") for option in opt.PREFERENCES)


def test_settings_dialog_writes_preferences_and_reports_changes(qtbot, settings: Settings) -> None:
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    dialog.model_combo.setCurrentIndex(dialog.model_combo.findData("dinov2-s14"))
    dialog.batch_spin.setValue(24)
    dialog.thumbnail_spin.setValue(200)
    dialog.library_edit.setText("/elsewhere")
    asked = []
    dialog.confirm = lambda question: asked.append(question) is not None  # Cancel
    dialog.accept()
    assert asked == ["A folder's library indexed with another model embeds every photo again when the folder is "
                     "next opened, which takes as long as a first index. The library starts again in the new "
                     "location (every photo is indexed there); the one used so far stays where it is. Apply the "
                     "settings?"]
    assert dialog.changed() == set() and settings.library_dir() != Path("/elsewhere"), "nothing applied"
    dialog.confirm = lambda question: True
    dialog.accept()
    assert settings.get(opt.MODEL) == "dinov2-s14"
    assert settings.get(opt.BATCH_SIZE) == 24
    assert settings.get(opt.THUMBNAIL_SIZE) == 200
    assert settings.library_dir() == Path("/elsewhere")
    assert dialog.changed() == {opt.MODEL, opt.BATCH_SIZE, opt.THUMBNAIL_SIZE, opt.LIBRARY_DIR}


def test_window_geometry_is_restored(qtbot, make_window, settings: Settings) -> None:
    window = make_window()
    window.show()
    # The offscreen screen is 800x600; restoreGeometry keeps windows on screen. The window is 800 px
    # wide at the least (tests/ui/test_desktop.py), so only its height has room to change.
    window.resize(800, 500)
    qtbot.waitUntil(lambda: window.size().height() == 500)
    window.splitter.setSizes([210, 570])
    window.close()
    settings.sync()

    reopened = make_window()
    reopened.show()
    assert reopened.size().height() == 500 and abs(reopened.size().width() - 800) <= 2  # a frame's rounding
    assert abs(reopened.splitter.sizes()[0] - 210) <= 2


def test_settings_that_leave_the_vectors_alone_apply_without_a_question(qtbot, settings: Settings) -> None:
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    dialog.confirm = lambda question: pytest.fail(f"asked: {question}")
    dialog.thumbnail_spin.setValue(200)
    dialog.batch_spin.setValue(dialog.batch_spin.value() + 4)
    dialog.accept()
    assert dialog.changed() == {opt.THUMBNAIL_SIZE, opt.BATCH_SIZE}


def test_devices_this_machine_lacks_are_shown_but_cannot_be_chosen(qtbot, settings: Settings, monkeypatch) -> None:
    from vitgallery.ui import settings_dialog

    monkeypatch.setattr(settings_dialog, "device_problem",
                        lambda device: "PyTorch sees no CUDA GPU" if device == "cuda" else None)
    settings.set(opt.DEVICE, "cuda")  # chosen on another machine
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    combo = dialog.device_combo
    cuda = combo.findData("cuda")
    assert combo.currentIndex() == cuda and combo.itemText(cuda) == "cuda (not here: PyTorch sees no CUDA GPU)"
    assert not combo.model().item(cuda).isEnabled()
    assert all(combo.model().item(combo.findData(device)).isEnabled() for device in ("auto", "cpu", "mps"))


def test_a_weights_file_that_is_not_there_is_said_in_the_dialog_and_not_applied(
    qtbot, settings: Settings, tmp_path: Path
) -> None:
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    dialog.confirm = lambda question: True
    dialog.weights_edit.setText(str(tmp_path / "dinov2_vits14_pretrian.pth"))  # a typo
    dialog.accept()
    assert dialog.problem_label.isVisibleTo(dialog) and "is not there" in dialog.problem_label.text()
    assert dialog.changed() == set() and dialog.result() != SettingsDialog.DialogCode.Accepted
    weights = tmp_path / "weights.pth"
    weights.write_bytes(b"checked when the model loads")
    dialog.weights_edit.setText(str(weights))
    notes = tmp_path / "notes.txt"
    notes.write_text("a file, not a folder")
    dialog.library_edit.setText(str(notes))
    dialog.accept()
    assert dialog.problem_label.text().startswith(f"{notes} is a file: choose a folder"), "the reason of now, not the last"
    assert dialog.result() != SettingsDialog.DialogCode.Accepted and settings.get(opt.LIBRARY_DIR) != str(notes)
    # QA: a relative location was kept as typed: the app started from elsewhere made a new library there
    dialog.library_edit.setText("libraries")
    dialog.accept()
    assert dialog.problem_label.text().startswith("libraries is not a whole path")
    assert dialog.result() != SettingsDialog.DialogCode.Accepted and settings.get(opt.LIBRARY_DIR) != "libraries"
    dialog.library_edit.clear()
    dialog.accept()
    assert settings.get(opt.WEIGHTS) == str(weights) and dialog.result() == SettingsDialog.DialogCode.Accepted
    assert not dialog.problem_label.isVisibleTo(dialog)


def test_a_reason_just_longer_than_a_line_is_shown_whole(qtbot, settings: Settings) -> None:
    """The form laid such a reason out one line high (seen in a screenshot of the relative-path reason)."""
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.library_edit.setText("libraries")
    dialog.accept()
    label = dialog.problem_label
    assert label.height() >= label.heightForWidth(label.width()) > label.fontMetrics().lineSpacing() * 1.5


def test_a_moved_folder_leaves_the_recent_list(tmp_path: Path) -> None:
    settings = Settings.from_file(tmp_path / "settings.ini")
    for folder in ("/photos/a", "/photos/b"):
        settings.add_recent_folder(Path(folder))
    settings.forget_recent_folder(Path("/photos/a"))
    assert settings.recent_folders() == [Path("/photos/b")]


TINY_FP32 = "tiny-test|weights:0123456789abcdef|pre:trim-squash224-imagenet|pool:cls|prec:fp32"


def test_a_model_put_back_to_the_librarys_is_applied_without_a_warning(qtbot, settings: Settings, tmp_path) -> None:
    """The dialog warned that every photo is embedded again when the weights were put back to the ones the
    library was indexed with: it compared with the settings (another file, chosen since), not the library."""
    indexed, other = tmp_path / "indexed.pth", tmp_path / "other.pth"
    for weights in (indexed, other):
        weights.write_bytes(b"checked when the model loads")
    settings.set(opt.PRECISION, "fp32")
    settings.set(opt.WEIGHTS, str(other))  # chosen since the folder was indexed (its model failed to load, say)
    dialog = SettingsDialog(settings, indexed_with=IndexedModel(TINY_FP32, indexed))
    qtbot.addWidget(dialog)
    dialog.confirm = lambda question: pytest.fail(f"asked: {question}")
    dialog.weights_edit.setText(str(indexed))
    dialog.accept()
    assert settings.get(opt.WEIGHTS) == str(indexed) and dialog.result() == SettingsDialog.DialogCode.Accepted


def test_a_model_other_than_the_librarys_says_exactly_what_indexing_again_does(qtbot, settings: Settings,
                                                                              tmp_path) -> None:
    indexed, other = tmp_path / "indexed.pth", tmp_path / "other.pth"
    for weights in (indexed, other):
        weights.write_bytes(b"checked when the model loads")
    settings.set(opt.PRECISION, "fp32")
    dialog = SettingsDialog(settings, indexed_with=IndexedModel(TINY_FP32, indexed))
    qtbot.addWidget(dialog)
    asked = []
    dialog.confirm = lambda question: asked.append(question) is not None  # Cancel
    dialog.weights_edit.setText(str(other))
    dialog.accept()
    assert asked == ["This folder was indexed with tiny-test (fp32); with these settings the tiny-test weights "
                     "changed. It is indexed again at once and every photo embedded anew, which takes as long as a "
                     "first index: its vectors, keypoints and duplicate findings are dropped as that starts "
                     "(stopping it or changing back later does not bring them back), so searches and Find "
                     "duplicates see only the photos done until it ends. Your duplicate decisions are kept. Other "
                     "folders indexed with another model are embedded again when next opened. Apply the settings?"]
    dialog.weights_edit.clear()  # no file: the run takes the library's own
    dialog.precision_combo.setCurrentIndex(dialog.precision_combo.findData("int8"))
    dialog.accept()
    assert "with these settings the precision changed from fp32 to int8." in asked[-1]
    asked.clear()
    dialog.precision_combo.setCurrentIndex(dialog.precision_combo.findData("fp32"))
    dialog.thumbnail_spin.setValue(dialog.thumbnail_spin.value() + 16)
    dialog.accept()
    assert asked == [] and dialog.result() == SettingsDialog.DialogCode.Accepted, "the library's model: no question"


def test_the_window_compares_settings_with_its_librarys_model(qtbot, indexed_window, settings: Settings,
                                                              monkeypatch) -> None:
    from vitgallery.ui import main_window

    asked = []

    def answering(change):
        """SettingsDialog.exec as a user who makes `change` and presses OK (Cancel to any question)."""
        def exec_(dialog: SettingsDialog) -> int:
            dialog.confirm = lambda question: asked.append(question) is not None
            change(dialog)
            dialog.accept()
            return dialog.result()
        return exec_

    settings.set(opt.PRECISION, "int8")  # chosen since (with no folder open); the library stays as indexed
    monkeypatch.setattr(main_window.SettingsDialog, "exec", answering(
        lambda dialog: dialog.precision_combo.setCurrentIndex(dialog.precision_combo.findData("auto"))))
    indexed_window.open_settings()
    assert asked == [] and settings.get(opt.PRECISION) == "auto", "the precision the library was indexed with"
    qtbot.waitUntil(lambda: not indexed_window.is_indexing(), timeout=60_000)

    settings.set(opt.PRECISION, "int8")
    monkeypatch.setattr(main_window.SettingsDialog, "exec", answering(
        lambda dialog: dialog.batch_spin.setValue(dialog.batch_spin.value() + 1)))  # indexes again with int8
    indexed_window.open_settings()
    assert len(asked) == 1 and "the precision changed from" in asked[0] and asked[0].count("to int8.") == 1
