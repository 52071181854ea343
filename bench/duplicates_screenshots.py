"""Screenshots of the Duplicates review, taken of the real window under a display; how the
docs/duplicates-*.png pictures are made.

    xvfb-run -s "-screen 0 1280x800x24" python bench/duplicates_screenshots.py FOLDER \\
        --library LIBRARY --weights dinov2_vits14_pretrain.pth --out docs

FOLDER is indexed into LIBRARY first if it is not yet (a copy of photos: nothing is moved, but the
page's decisions are not made either). Writes, each once its thumbnails are painted:

- duplicates-review.png: the group with the most photos, its kept photo first with the KEEP badge
  and the reason, the next photo selected;
- duplicates-compare.png: that photo beside the kept one, at 1:1, with what differs marked;
- duplicates-resolve-all.png: the question before every group is resolved, with the counts and
  Cancel as the default answer (the part of the screen from the question to its button).

The screen is saved with Qt's grab of the root window (a question box open beside the window too).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QPoint, QRect
from PySide6.QtWidgets import QApplication, QWidget

from vitgallery.ui import settings as opt
from vitgallery.ui.app import create_application
from vitgallery.ui.main_window import MainWindow
from vitgallery.ui.settings import Settings


def wait_until(app: QApplication, condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        app.processEvents()
        time.sleep(0.005)
    return True


def settle(app: QApplication, seconds: float) -> None:
    """Let what was just shown paint (thumbnails, layouts)."""
    wait_until(app, lambda: False, seconds)


def grab(path: Path, region: QRect | None = None) -> None:
    """Save the screen, or the region of it (global coordinates)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    screen = QApplication.primaryScreen()
    region = screen.geometry() if region is None else region
    if not screen.grabWindow(0, region.x(), region.y(), region.width(), region.height()).save(str(path)):
        raise OSError(f"{path} could not be written")
    print(f"wrote {path}")


def on_screen(widget: QWidget) -> QRect:
    return QRect(widget.mapToGlobal(QPoint(0, 0)), widget.size())


def indexed_window(app: QApplication, args: argparse.Namespace, prefix: str) -> MainWindow | None:
    """The real window, 1280x800, on `args.folder` with `args.library`, once its index run has
    finished (None when it did not within `args.timeout`). Settings and thumbnails go to a scratch
    folder named by `prefix`."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    settings = Settings.from_file(work / "settings.ini")
    settings.set(opt.MODEL, args.model)
    settings.set(opt.WEIGHTS, str(args.weights) if args.weights else "")
    settings.set(opt.DEVICE, "cpu")
    window = MainWindow(settings, library_dir=args.library, thumbnail_cache_dir=work / "thumbs")
    window.setGeometry(0, 0, 1280, 800)
    window.show()
    indexed: list[object] = []
    window.indexing_finished.connect(indexed.append)
    window.open_folder(args.folder.expanduser().absolute())
    return window if wait_until(app, lambda: bool(indexed), args.timeout) else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="the photo folder (a copy: the page only looks)")
    parser.add_argument("--library", type=Path, required=True, help="its library folder")
    parser.add_argument("--model", default="dinov2-s14")
    parser.add_argument("--weights", type=Path, help="a local weights file (default: the official download)")
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait for indexing and the scan")
    args = parser.parse_args()

    app = create_application()
    window = indexed_window(app, args, "vg-duplicates-shots-")
    if window is None:
        print("indexing did not finish in time", file=sys.stderr)
        return 1

    view = window.duplicates_view
    window.tabs.setCurrentWidget(view)
    view.confirm = lambda question: False  # whatever is clicked, nothing moves
    scanned: list[int] = []
    view.scan_finished.connect(scanned.append)
    view.start_scan()
    if not wait_until(app, lambda: bool(scanned), args.timeout):
        print("the scan did not finish in time", file=sys.stderr)
        return 1
    if not view.groups:
        print("no duplicate groups in this folder", file=sys.stderr)
        return 1
    view.group_list.setCurrentRow(0)
    view.member_list.setFocus()
    wait_until(app, lambda: view.thumbnails.pending_count() == 0, 120)
    settle(app, 1.5)
    grab(args.out / "duplicates-review.png")

    dialog = view.compare_selected()
    dialog.setGeometry(40, 20, 1200, 760)
    if not wait_until(app, dialog.is_loaded, 120):
        print("the compared photos did not load", file=sys.stderr)
        return 1
    dialog.actual_size()
    settle(app, 1.5)
    grab(args.out / "duplicates-compare.png")
    dialog.close()

    selections = [s for s in view.selections() if s.to_remove]
    box = view.confirmation_box(view.current_action.confirmation(selections))
    box.open()  # not exec: the screen is saved while it asks
    settle(app, 1.5)
    # the question and the button that asked it
    grab(args.out / "duplicates-resolve-all.png",
         on_screen(box).united(on_screen(view.resolve_all_button)).adjusted(-24, -24, 24, 24))
    box.close()
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
