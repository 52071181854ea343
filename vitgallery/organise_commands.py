"""The organising commands of `vitgallery` (see vitgallery.commands): arrange, groups, sort, watch."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from functools import cache
from pathlib import Path

from vitgallery.commands import TerminalProgress, embedder_for, format_summary, last_library_file
from vitgallery.core.library import DB_NAME, Library, LibraryError, default_library_dir
from vitgallery.core.organise.arrange import arrange_folder
from vitgallery.core.organise.groups import DEFAULT_MIN_GROUP, find_groups
from vitgallery.core.organise.sort import CONFIDENT_FROM, apply_suggestions, suggest_folders
from vitgallery.core.organise.watch import FolderWatcher, WatchBatch


def library_for(folders: list[Path], library_dir: str | None) -> Library:
    """--library DIR; else the library of the first of these folders (or a folder above them) that has
    one; else the library indexed last."""
    if library_dir is None:
        for folder in folders:
            folder = folder.expanduser().absolute()
            for candidate in (folder, *folder.parents):
                if (default_library_dir(candidate) / DB_NAME).exists():
                    return Library.open(library_dir=default_library_dir(candidate))
        remembered = last_library_file()
        if not remembered.exists():
            raise LibraryError("no library yet: run `vitgallery index FOLDER` first, or pass --library DIR")
        library_dir = remembered.read_text().strip()
    return Library.open(library_dir=library_dir)


def cmd_arrange(args: argparse.Namespace) -> int:
    folder = Path(args.folder).expanduser().absolute()
    library = library_for([folder], args.library)
    try:
        order = arrange_folder(library, folder)
        if args.json:
            print(json.dumps({"order": [str(p) for p in order]}, indent=1))
        else:
            print("\n".join(str(p) for p in order))
        return 0
    finally:
        library.close()


def cmd_groups(args: argparse.Namespace) -> int:
    library = library_for([], args.library)
    try:
        grouping = find_groups(library, min_size=args.min_size)
        if args.json:
            print(json.dumps({
                "groups": [{"members": [str(p) for p in g.members], "representative": str(g.representative),
                            "name": g.name} for g in grouping.groups],
                "ungrouped": [str(p) for p in grouping.ungrouped]}, indent=1))
            return 0
        grouped = sum(len(g.members) for g in grouping.groups)
        print(f"{len(grouping.groups)} groups of at least {args.min_size} photos ({grouped} photos; "
              f"{len(grouping.ungrouped)} in no group)")
        for number, group in enumerate(grouping.groups, 1):
            title = f"group {number}" + (f" “{group.name}”" if group.name else "")
            print(f"\n{title}: {len(group.members)} photos, most typical first")
            for path in group.members:
                print(f"  {path}")
        return 0
    finally:
        library.close()


def cmd_sort(args: argparse.Namespace) -> int:
    unsorted, examples = Path(args.unsorted).expanduser().absolute(), Path(args.examples).expanduser().absolute()
    library = library_for([unsorted, examples], args.library)
    try:
        load_embedder = cache(lambda: embedder_for(library, args.device, args.weights))
        plan = suggest_folders(library, unsorted, examples, load_embedder, progress=_sort_progress())
        for path, reason in plan.problems:
            print(f"not sorted: {path}: {reason}", file=sys.stderr)
        report = apply_suggestions(library, plan.suggestions) if args.apply else None
        if args.json:
            print(json.dumps({
                "method": plan.method, "held_out_accuracy": plan.accuracy, "held_out": plan.held_out,
                "not_sure_below": CONFIDENT_FROM[plan.method],
                # folder: the likeliest one; sure: its confidence reaches the threshold (only those move)
                "suggestions": [{"path": str(s.path), "folder": str(s.likeliest), "confidence": round(s.confidence, 4),
                                 "sure": s.folder is not None} for s in plan.suggestions],
                "moved": [] if report is None else [{"from": str(a), "to": str(b)} for a, b in report.done],
            }, indent=1))
        else:
            accuracy = ", ".join(f"{method} {100 * value:.0f} %" for method, value in sorted(plan.accuracy.items()))
            print(f"classifier: {plan.method} (held-out accuracy on {plan.held_out} examples: {accuracy or 'too few'})")
            for s in plan.suggestions:
                where = str(s.folder) if s.folder else f"not sure (perhaps {s.likeliest.name})"
                print(f"  {s.confidence:5.2f}  {s.path}  ->  {where}")
        if report is not None:
            print(f"{report.summary()} (action {report.action_id})", file=sys.stderr)
            for path, problem in report.problems:
                print(f"  {path}: {problem}", file=sys.stderr)
            moved = [p for pair in report.done for p in pair if library.relative_path(p) is not None]
            if moved:  # the library follows the moves now rather than at its next index
                library.index_paths(load_embedder(), moved)
        return 0
    finally:
        library.close()


def _sort_progress():
    is_tty = sys.stderr.isatty()

    def report(p) -> None:
        if is_tty and p.total:
            sys.stderr.write(f"\r\033[K{p.phase} {p.done}/{p.total}")
            sys.stderr.flush()
            if p.done == p.total:
                sys.stderr.write("\r\033[K")
    return report


def cmd_watch(args: argparse.Namespace) -> int:
    folder = Path(args.folder).expanduser().absolute() if args.folder else None
    library = library_for([folder] if folder else [], args.library)
    try:
        if folder is not None and library.root != folder:
            raise LibraryError(f"{folder} has no library of its own yet ({library.library_dir} is the library of "
                               f"{library.root}): run `vitgallery index {folder}` first")
        embedder = embedder_for(library, args.device, args.weights)

        def on_batch(batch: WatchBatch) -> None:
            if batch.summary is None:
                print(f"error: {batch.paths} changes not applied: {batch.error}", file=sys.stderr, flush=True)
            else:
                print(format_summary(batch.summary).splitlines()[0], flush=True)

        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with FolderWatcher(library, embedder, on_batch=on_batch, decode_workers=args.workers) as watcher:
            # Watching first, then catching up with what changed while nobody watched: a change made
            # meanwhile waits for the catch-up and is applied after it, none falls between the two.
            print(f"watching {library.root} (Ctrl+C stops); catching up first…", file=sys.stderr, flush=True)
            with watcher.apply_lock:
                progress = TerminalProgress()
                summary = library.index(embedder, progress=progress, decode_workers=args.workers)
                progress.finish()
            print(format_summary(summary), flush=True)
            try:
                stop.wait()
            except KeyboardInterrupt:
                pass
        return 0
    finally:
        library.close()


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("arrange", help="the photos of a folder in an order where similar ones sit side by side")
    p.add_argument("folder")
    p.add_argument("--library")
    p.add_argument("--json", action="store_true", help='print {"order": [path, ...]}')
    p.set_defaults(run=cmd_arrange)

    p = sub.add_parser("groups", help="the library's photos in visual groups (subjects, places, events)")
    p.add_argument("--library")
    p.add_argument("--min-size", type=int, default=DEFAULT_MIN_GROUP,
                   help=f"the smallest group (default {DEFAULT_MIN_GROUP}); larger gives fewer, bigger groups")
    p.add_argument("--json", action="store_true",
                   help='print {"groups": [{"members", "representative", "name"}], "ungrouped": [...]}')
    p.set_defaults(run=cmd_groups)

    p = sub.add_parser("sort", help="suggest a folder for each unsorted photo, learned from folders already sorted")
    p.add_argument("unsorted", help="the photos to sort (a folder; photos already in an example folder are left out)")
    p.add_argument("--examples", required=True, metavar="DIR",
                   help="a folder whose subfolders are the folders to sort into; their photos are the examples")
    p.add_argument("--library")
    p.add_argument("--weights", help="weights file, if the library was indexed from one at another path")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--apply", action="store_true", help="move the photos whose suggestion is sure (logged, undoable)")
    p.add_argument("--json", action="store_true",
                   help='print {"suggestions": [{"path", "folder", "confidence", "sure"}], ...}')
    p.set_defaults(run=cmd_sort)

    p = sub.add_parser("watch", help="keep the library current while its folder changes (until Ctrl+C)")
    p.add_argument("folder", nargs="?", help="the photo folder (default: the library indexed last)")
    p.add_argument("--library")
    p.add_argument("--weights", help="weights file, if the library was indexed from one at another path")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--workers", type=int, default=None, help="decoder processes (default: adapts to the machine)")
    p.set_defaults(run=cmd_watch)
