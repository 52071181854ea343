"""The desktop entry, AppStream metadata and icons that installs carry, and the script that puts them
in the menu for pipx, venv and bundle installs."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

import vitgallery
from vitgallery import commands
from vitgallery import desktop_entry as desktop_entry_module
from vitgallery.core.imageio import SUPPORTED_EXTENSIONS
from vitgallery.desktop_entry import SCRIPT, install_script

REPO = Path(__file__).resolve().parents[1]
APP_ID = "io.github.vitgallery.vitgallery"
DESKTOP_FILE = REPO / "resources" / f"{APP_ID}.desktop"
METAINFO = REPO / "resources" / f"{APP_ID}.metainfo.xml"
ICON_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
MIME_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".jpe": "image/jpeg", ".jfif": "image/jpeg",
              ".png": "image/png", ".webp": "image/webp",
              ".gif": "image/gif", ".bmp": "image/bmp", ".tif": "image/tiff", ".tiff": "image/tiff",
              ".heic": "image/heic", ".heif": "image/heif", ".avif": "image/avif"}


def validate(tool: str, *args: str) -> subprocess.CompletedProcess:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (Debian: desktop-file-utils, appstream)")
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=60)


def desktop_entry(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str  # keys are case-sensitive
    parser.read(path, encoding="utf-8")
    return parser


def test_the_desktop_file_validates_and_opens_every_supported_image_type() -> None:
    done = validate("desktop-file-validate", str(DESKTOP_FILE))
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr
    entry = desktop_entry(DESKTOP_FILE)
    main = entry["Desktop Entry"]
    assert main["Exec"] == "vitgallery %f" and main["Icon"] == "vitgallery"
    assert set(main["MimeType"].strip(";").split(";")) == {MIME_TYPES[ext] for ext in SUPPORTED_EXTENSIONS}
    assert main["Actions"] == "find-similar;"
    assert entry["Desktop Action find-similar"]["Exec"] == "vitgallery --find-similar %f"


def test_the_appstream_metadata_validates_and_names_this_release() -> None:
    done = validate("appstreamcli", "validate", "--no-net", str(METAINFO))
    assert done.returncode == 0, done.stdout + done.stderr
    text = METAINFO.read_text()
    assert f"<id>{APP_ID}</id>" in text and f"<launchable type=\"desktop-id\">{APP_ID}.desktop</launchable>" in text
    newest = re.search(r'<release version="([^"]+)"', text)[1]
    assert newest == vitgallery.__version__, "add a <release> for the new version to the metainfo file"


def test_the_icon_comes_in_the_sizes_desktops_use() -> None:
    for size in ICON_SIZES:
        with Image.open(REPO / "resources" / "icons" / f"{size}x{size}" / "vitgallery.png") as icon:
            assert icon.size == (size, size) and icon.mode == "RGBA"


@pytest.fixture
def pipx_like_install(tmp_path: Path) -> Path:
    """A venv's layout as pip lays out the wheel's data files, in a folder whose name needs quoting."""
    prefix = tmp_path / "my apps $HOME" / "venv"
    executable = prefix / "bin" / "vitgallery"
    executable.parent.mkdir(parents=True)
    executable.write_text("#!/bin/sh\n")
    executable.chmod(0o755)
    share = prefix / "share"
    for source, folder in [(DESKTOP_FILE, "applications"), (METAINFO, "metainfo"),
                           (REPO / "resources" / "vitgallery.svg", "icons/hicolor/scalable/apps")] + [
            (REPO / "resources" / "icons" / f"{n}x{n}" / "vitgallery.png", f"icons/hicolor/{n}x{n}/apps")
            for n in ICON_SIZES]:
        (share / folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(source, share / folder)
    return executable


def test_the_install_script_takes_the_checkouts_files_for_an_editable_install(tmp_path: Path) -> None:
    """setup.sh's .venv is an editable install: no share/ beside its vitgallery, the checkout's
    resources/ instead (the script failed for the README's own way to install)."""
    data = tmp_path / "data"
    executable = tmp_path / ".venv" / "bin" / "vitgallery"
    executable.parent.mkdir(parents=True)
    executable.write_text("#!/bin/sh\n")
    executable.chmod(0o755)
    script = REPO / "packaging" / "install-desktop-entry.sh"
    subprocess.run(["sh", str(script), str(executable)], env={**os.environ, "XDG_DATA_HOME": str(data)},
                   check=True, capture_output=True, timeout=60)
    entry = desktop_entry(data / "applications" / f"{APP_ID}.desktop")
    assert entry["Desktop Entry"]["Exec"] == f'"{executable}" %f'
    assert (data / "metainfo" / f"{APP_ID}.metainfo.xml").is_file()
    assert (data / "icons" / "hicolor" / "scalable" / "apps" / "vitgallery.svg").is_file()
    for size in ICON_SIZES:
        assert (data / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "vitgallery.png").is_file()


def test_the_install_script_puts_the_entry_in_the_menu_and_takes_it_out(pipx_like_install: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {**os.environ, "XDG_DATA_HOME": str(data)}
    script = REPO / "packaging" / "install-desktop-entry.sh"
    link = tmp_path / "bin" / "vitgallery"  # pipx's ~/.local/bin entry links into its venv
    link.parent.mkdir()
    link.symlink_to(pipx_like_install)
    subprocess.run(["sh", str(script), str(link)], env=env, check=True, capture_output=True, timeout=60)

    installed = data / "applications" / f"{APP_ID}.desktop"
    entry = desktop_entry(installed)
    # the link itself, so an upgrade that replaces the venv keeps the entry working
    assert entry["Desktop Entry"]["Exec"] == f'"{link}" %f'
    assert entry["Desktop Entry"]["TryExec"] == str(link)
    assert entry["Desktop Action find-similar"]["Exec"] == f'"{link}" --find-similar %f'
    for size in ICON_SIZES:
        assert (data / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "vitgallery.png").is_file()
    if shutil.which("desktop-file-validate"):
        done = subprocess.run(["desktop-file-validate", str(installed)], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout

    quoted_dir = pipx_like_install.parents[1]
    subprocess.run(["sh", str(script), str(pipx_like_install)], env=env, check=True, capture_output=True)
    assert desktop_entry(installed)["Desktop Entry"]["Exec"] == f'"{quoted_dir}/bin/vitgallery" %f'.replace(
        "$", "\\\\$")  # "$" escaped inside the quotes, and that backslash escaped again
    if shutil.which("desktop-file-validate"):
        done = subprocess.run(["desktop-file-validate", str(installed)], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout

    subprocess.run(["sh", str(script), "--uninstall"], env=env, check=True, capture_output=True)
    assert not installed.exists()
    assert not any(data.rglob("vitgallery.png"))


def test_the_command_installs_the_entry_for_the_vitgallery_it_runs_as(pipx_like_install: Path, tmp_path: Path,
                                                                      monkeypatch, capsys) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    monkeypatch.setattr(sys, "argv", [str(pipx_like_install), "desktop-entry"])
    assert install_script() == REPO / "packaging" / SCRIPT, "a checkout runs its own script"
    assert commands.main(["desktop-entry"]) == 0
    installed = data / "applications" / f"{APP_ID}.desktop"
    assert desktop_entry(installed)["Desktop Entry"]["TryExec"] == str(pipx_like_install)
    assert str(installed) in capsys.readouterr().out
    assert commands.main(["desktop-entry", "--uninstall"]) == 0
    assert not installed.exists() and "removed" in capsys.readouterr().out
    assert commands.main(["desktop-entry", "--uninstall"]) == 0
    assert capsys.readouterr().out.strip() == f"no desktop entry of vitgallery in {data}: nothing to remove"


def test_the_command_says_why_when_the_install_has_no_entry(tmp_path: Path, monkeypatch, capsys) -> None:
    bare = tmp_path / "bare" / "bin" / "vitgallery"  # a venv whose share/ is gone
    bare.parent.mkdir(parents=True)
    bare.write_text("#!/bin/sh\n")
    bare.chmod(0o755)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setattr(sys, "argv", [str(bare), "desktop-entry"])
    monkeypatch.setattr(desktop_entry_module, "install_script", lambda: tmp_path / "copied" / SCRIPT)
    (tmp_path / "copied").mkdir()
    shutil.copy(REPO / "packaging" / SCRIPT, tmp_path / "copied")  # without the checkout's resources/ beside it
    assert commands.main(["desktop-entry"]) == 2
    assert capsys.readouterr().err == f"error: {bare} has no share/applications/{APP_ID}.desktop beside it\n"
