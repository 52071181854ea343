"""Screenshots of the Groups and Sort pages, taken of the real window under a display; how the
docs/organise-*.png pictures are made.

    xvfb-run -s "-screen 0 1280x800x24" python bench/organise_screenshots.py FOLDER \\
        --library LIBRARY --weights dinov2_vits14_pretrain.pth --examples FOLDER/Sorted \\
        --unsorted FOLDER/Inbox --out docs

FOLDER is indexed into LIBRARY first if it is not yet. Nothing is moved: the pages only show
what they found. Writes, each once its thumbnails are painted:

- organise-groups.png: the library's groups as strips, the first one selected with its photos below;
- organise-sort.png: the suggestions for the unsorted photos after training on the examples (with
  --finetune, the page's "Fine-tune the model" box ticked first).

The screen is saved with ImageMagick's `import -window root`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from duplicates_screenshots import grab, indexed_window, settle, wait_until

from vitgallery.ui.app import create_application


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="the photo folder")
    parser.add_argument("--library", type=Path, required=True, help="its library folder")
    parser.add_argument("--examples", type=Path, required=True, help="the folder of sorted subfolders")
    parser.add_argument("--unsorted", type=Path, required=True, help="the photos to sort")
    parser.add_argument("--model", default="dinov2-s14")
    parser.add_argument("--weights", type=Path, help="a local weights file (default: the official download)")
    parser.add_argument("--finetune", action="store_true", help="tick the Sort page's Fine-tune the model box")
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait for indexing")
    args = parser.parse_args()

    app = create_application()
    window = indexed_window(app, args, "vg-organise-shots-")
    if window is None:
        print("indexing did not finish in time", file=sys.stderr)
        return 1

    groups = window.groups_page
    window.tabs.setCurrentWidget(groups)
    grouped: list[int] = []
    groups.grouped.connect(grouped.append)
    groups.find()
    if not wait_until(app, lambda: bool(grouped), 600) or not grouped[0]:
        print("no groups found", file=sys.stderr)
        return 1
    groups.strip_list.setCurrentRow(0)
    wait_until(app, lambda: groups.thumbnails.pending_count() == 0, 120)
    settle(app, 1.5)
    grab(args.out / "organise-groups.png")

    page = window.sort_page
    window.tabs.setCurrentWidget(page)
    page.set_folders(args.examples.expanduser().absolute(), args.unsorted.expanduser().absolute())
    page.finetune_box.setChecked(args.finetune)
    suggested: list[int] = []
    page.suggested.connect(suggested.append)
    page.suggest()
    if not wait_until(app, lambda: bool(suggested), 600):
        print(f"no suggestions: {page.status_label.text()}", file=sys.stderr)
        return 1
    wait_until(app, lambda: page.thumbnails.pending_count() == 0, 120)
    settle(app, 1.5)
    grab(args.out / "organise-sort.png")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
