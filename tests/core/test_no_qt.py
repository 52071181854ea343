"""The core must run without Qt: napari-style, every core module is imported with PySide6 made unimportable
(tests/core/test_layers.py checks the same statically), and commands that embed nothing never load torch."""

from __future__ import annotations

import subprocess
import sys


def test_core_and_cli_import_with_qt_blocked():
    code = (
        "import sys, importlib, pkgutil\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('PySide6', 'shiboken6'):\n"
        "            raise ImportError('Qt is blocked in this test')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import vitgallery.core as core\n"
        "for m in pkgutil.walk_packages(core.__path__, 'vitgallery.core.'):\n"
        "    importlib.import_module(m.name)\n"
        "import vitgallery.cli, vitgallery.commands\n"
        "assert not any(k.startswith('PySide6') for k in sys.modules)\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def loads_torch(*modules: str) -> bool:
    """Whether importing these modules, in a fresh interpreter, imports torch."""
    code = f"import sys, {', '.join(modules)}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() in ("True", "False"), out.stderr
    return out.stdout.strip() == "True"


def test_entry_module_does_not_load_torch():
    """Decode workers re-import the console script's module: it must stay light."""
    assert not loads_torch("vitgallery.cli")


def test_decode_worker_modules_do_not_load_torch():
    """A decode worker runs pipeline.decode_one, which needs only these: importing torch would cost
    every worker seconds and hundreds of MB."""
    assert not loads_torch("vitgallery.core.pipeline", "vitgallery.core.imageio", "vitgallery.core.preprocess",
                           "vitgallery.core.keypoints")


def test_commands_that_need_no_model_do_not_load_torch():
    """status, duplicates and searching with a library photo never embed: torch (2 s, 0.5 GB) is
    imported only when a model is loaded."""
    assert not loads_torch("vitgallery.commands", "vitgallery.core.library", "vitgallery.core.duplicates")
    assert loads_torch("bench.lab.pooling"), "the check sees torch where it is imported"
