#!/usr/bin/env python3
"""The screenshots of the explore tools in docs/: why a result matched, a box drawn on the query,
results marked "more like this" / "not this"; the real window on a real library.

Run under an X server (Xvfb is enough) on a sem folder (../shared/bench/make_corpus.py) indexed by
the real model:

    xvfb-run -s '-screen 0 1280x800x24' python bench/explore_screenshots.py FOLDER --library LIB \\
        --weights dinov2_vits14_pretrain.pth --truth TRUTH.json --query NAME --out docs

NAME is a photo of FOLDER; the truth's `boxes` give the box drawn on it and its `labels` the marks
(the top results of the query's category "more like this", the others "not this"). An edited copy of
it (cropped, smaller, darker; made in a scratch folder) shows the keypoint lines of a verified match. Each state is
saved with ImageMagick's `import -window root`, then as OUT/explore-<state>.png in 256 colours (a
quarter of the bytes; the heat's colour steps stay readable).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from vitgallery.ui.app import apply_color_scheme, create_application
from vitgallery.ui.marks import Mark
from vitgallery.ui.workers import QueryBox

sys.path.insert(0, str(Path(__file__).resolve().parent))
from screenshots import capture, make_window, searched, settle, wait_until  # noqa: E402

MARKED = 10  # results looked at, as in bench/refine.py's simulated user


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--library", type=Path, required=True, help="the folder's library, indexed with real weights")
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--model", default="dinov2-s14")
    parser.add_argument("--truth", type=Path, required=True, help="the sem corpus's truth.json")
    parser.add_argument("--query", required=True, help="a photo of FOLDER (its file name)")
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args()
    truth = json.loads(args.truth.read_text())
    labels = truth["labels"]
    query = args.folder / args.query
    app = create_application()
    apply_color_scheme(app, Qt.ColorScheme.Light)
    work = Path(tempfile.mkdtemp(prefix="vg-explore-screenshots-"))

    window = make_window(args, work, args.library, args.weights)
    window.open_folder(args.folder)
    indexed: list[object] = []
    window.indexing_finished.connect(indexed.append)
    wait_until(app, lambda: bool(indexed))

    # Why it matched: the best result of the query's own category, explained in its preview.
    searched(app, window, query)
    model = window.results_model
    row = next(r for r in range(model.rowCount()) if labels.get(model.path_at(r).name) == labels[args.query])
    preview = window.search_page.open_preview(row)
    assert preview is not None
    preview.setGeometry(40, 30, 1200, 700)
    preview.explain_button.click()
    wait_until(app, lambda: preview.explain_view.outcome is not None)
    capture(app, work, "why")
    preview.explain_view.attention_box.setChecked(True)
    capture(app, work, "why-attention")
    preview.close()

    # A verified match: an edited copy of the query finds it, and the lines join the matched keypoints.
    copy = work / f"edited-{args.query}"
    original = Image.open(query).convert("RGB")
    cropped = original.crop((original.width // 10, 0, original.width, original.height * 9 // 10))
    cropped.resize((cropped.width * 3 // 4, cropped.height * 3 // 4)).point(lambda v: v * 0.85).save(copy, quality=85)
    searched(app, window, copy)
    preview = window.search_page.open_preview(model.row_of(query) or 0)
    assert preview is not None
    preview.setGeometry(40, 30, 1200, 700)
    preview.explain_button.click()
    wait_until(app, lambda: preview.explain_view.outcome is not None)
    capture(app, work, "why-copy")
    preview.close()
    searched(app, window, query)

    # Search by region: the object's box drawn on the query.
    width, height = Image.open(query).size
    x, y, w, h = truth["boxes"][args.query]
    shown: list[int] = []
    window.results_shown.connect(shown.append)
    window.query_panel.set_box(QueryBox(x / width, y / height, w / width, h / height))
    wait_until(app, lambda: bool(shown))
    capture(app, work, "region")

    # Refine: back to the whole photo, then the top results marked by the truth, a tile hovered.
    shown.clear()
    window.query_panel.clear_box()
    wait_until(app, lambda: bool(shown))
    top = [model.path_at(r) for r in range(min(MARKED, model.rowCount()))]
    liked = [p for p in top if labels.get(p.name) == labels[args.query]]
    unliked = [p for p in top if p not in liked]
    shown.clear()
    window.search_page.mark_paths(liked, Mark.LIKE)
    wait_until(app, lambda: bool(shown))
    shown.clear()
    window.search_page.mark_paths(unliked, Mark.UNLIKE)
    wait_until(app, lambda: bool(shown))
    view = window.results_view
    hovered = view.visualRect(model.index(min(3, model.rowCount() - 1))).center()
    QTest.mouseMove(view.viewport(), QPoint(hovered))
    settle(app)
    capture(app, work, "refine")
    window.close()
    for shot in sorted(work.glob("screenshot-*.png")):
        target = args.out / shot.name.replace("screenshot-", "explore-")
        Image.open(shot).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(target, optimize=True)
        print(f"saved {target}", flush=True)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":  # decoding processes start from the forkserver and import this module
    sys.exit(main())
