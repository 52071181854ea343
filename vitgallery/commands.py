"""The subcommands behind `vitgallery` (see vitgallery.cli): index, search, status, duplicates."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from vitgallery import __version__
from vitgallery.core.actions import ActionError, GroupSelection, export_list
from vitgallery.core.duplicates import (
    DEFAULT_THRESHOLD,
    KeepRule,
    ScanError,
    choose_keeper,
    match_reason,
    scan_duplicates,
)
from vitgallery.core.fetch import DownloadError, download, is_url
from vitgallery.core.imageio import DecodeError, read_meta
from vitgallery.core.library import (
    IndexProgress,
    IndexSummary,
    Library,
    LibraryError,
    QueryNeedsModel,
    last_library_dir,
    remember_last_library,
)
from vitgallery.core.models import (
    DEFAULT_MODEL,
    DEVICES,
    MODELS,
    PRECISIONS,
    USER_MODELS,
    Embedder,
    ModelLoadError,
    load_embedder,
)
from vitgallery.core.store import StoreError

log = logging.getLogger("vitgallery")

COMMANDS = ("index", "search", "status", "duplicates")
USER_ERRORS = (LibraryError, ModelLoadError, StoreError, DecodeError, ActionError, ScanError, DownloadError)
MAX_RESULTS = 10_000

DESCRIPTION = """\
Find similar photos in your own photo library, offline.

Without a command, vitgallery opens its window on FOLDER (or on the folder opened last);
given a PHOTO, it opens the photo's folder and finds photos like it. The commands below work
without a window: index a folder, search it, see what the library holds, find duplicates."""
EPILOG = "Run vitgallery COMMAND --help for the options of a command."


def open_library_arg(library_dir: str | None) -> Library:
    """--library DIR, or else the library used last (by the window or the CLI)."""
    if library_dir is None:
        library_dir = last_library_dir()
        if library_dir is None:
            raise LibraryError("no library yet: run `vitgallery index FOLDER` first, or pass --library DIR")
    return Library.open(library_dir=library_dir)


# -- progress on a terminal ------------------------------------------------------------------------

class TerminalProgress:
    """A one-line bar (count, rate, ETA) on a terminal; a line every few seconds in a log."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr  # looked up now: tests and tools swap sys.stderr
        self.is_tty = self.stream.isatty()
        self.last_line = 0.0

    def __call__(self, p: IndexProgress) -> None:
        if p.phase not in ("embedding", "learning"):
            if p.phase == "scanning":
                self._write("scanning folder…", final=False)
            elif p.phase == "fitting":
                self._write("learning what tells this library's photos apart…", final=False)
            return
        now = time.monotonic()
        if not self.is_tty and now - self.last_line < 5 and p.done != p.total:
            return
        self.last_line = now
        width = 30
        filled = int(width * p.done / p.total) if p.total else width
        eta = _duration(p.eta_s) if p.eta_s is not None else "?"
        what = "" if p.phase == "embedding" else "learning from "
        self._write(f"{what}[{'#' * filled}{'.' * (width - filled)}] {p.done}/{p.total} "
                    f"{p.rate:5.1f} photos/s  ETA {eta}", final=p.done == p.total)

    def _write(self, text: str, final: bool) -> None:
        if self.is_tty:
            self.stream.write("\r\033[K" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.is_tty:
            self.stream.write("\r\033[K")
            self.stream.flush()


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


def format_summary(s: IndexSummary) -> str:
    if s.offline:
        return "the photo folder is missing or unmounted: nothing was changed"
    lines = [f"added {s.added}, updated {s.updated}, moved {s.moved}, removed {s.removed}, "
             f"unchanged {s.unchanged}, skipped {s.skipped}  ({s.seconds:.1f} s)"]
    if s.teaching:
        lines.append(f"learned from {s.teaching} photos how this library's photos differ (mirrored and edited copies)")
    if s.cancelled:
        lines.append("cancelled: what was embedded so far is saved; run index again to continue")
    for reason, count in sorted(s.skipped_reasons.items(), key=lambda kv: -kv[1]):
        lines.append(f"  skipped {count}: {reason}")
    return "\n".join(lines)


# -- commands --------------------------------------------------------------------------------------

def cmd_index(args: argparse.Namespace) -> int:
    folder = Path(args.folder).expanduser()
    library = Library.open(folder, args.library)
    try:
        embedder = load_embedder(args.model, weights=args.weights, device=args.device, precision=args.precision)
        print(f"indexing {library.root} with {embedder.model_id} on {embedder.device} "
              f"(library {library.library_dir})", file=sys.stderr)
        progress = TerminalProgress()
        summary = library.index(embedder, progress=progress, batch_size=args.batch_size,
                                decode_workers=args.workers)
        progress.finish()
        print(format_summary(summary))
        remember_last_library(library.library_dir)
        return 3 if summary.offline else 0
    finally:
        library.close()


def cmd_search(args: argparse.Namespace) -> int:
    library = open_library_arg(args.library)
    try:
        embedder: Embedder | None = None
        results: dict[str, list[dict]] = {}
        failed = 0
        for query in args.images:
            try:
                image = query_image(query)
                try:
                    hits = library.search(image, k=args.k, embedder=embedder, verify=not args.no_verify)
                except QueryNeedsModel:
                    check_is_image(image)  # before the model loads for seconds
                    embedder = library.load_embedder(device=args.device, weights=args.weights)
                    hits = library.search(image, k=args.k, embedder=embedder, verify=not args.no_verify)
            except (LibraryError, DecodeError, DownloadError) as exc:
                if isinstance(exc, LibraryError) and "empty" in str(exc):
                    raise
                # One bad query does not stop the others; it gets an empty list and a message.
                print(f"error: {query}: {exc}", file=sys.stderr)
                failed += 1
                hits = []
            results[query] = [{"path": str(h.path), "score": round(h.score, 6), "cosine": round(h.cosine, 6),
                               "inliers": h.inliers} for h in hits]
            if not args.json:
                print(query)
                for rank, h in enumerate(hits, 1):
                    # ✓ and the matching points for a hit verified as the same photo
                    why = f"✓{h.inliers:4d}" if h.verified else " " * 5
                    print(f"  {rank:3d}. {h.score:.3f} {why}  {h.path}")
        if args.json:
            print(json.dumps(results, indent=1))
        return 2 if failed else 0
    finally:
        library.close()


def query_image(query: str) -> Path | bytes:
    """A query as given: an http(s) address is downloaded (never read as a path), anything else is a file."""
    if is_url(query):
        return download(query.strip())
    return Path(query).expanduser()


def check_is_image(image: Path | bytes) -> None:
    """Refuse a missing file or one that is not an image, by reading its header only."""
    if isinstance(image, Path) and not image.is_file():
        # the caller prints the query's path before this reason
        raise LibraryError("no such file" if not image.exists()
                           else "is a directory, not an image" if image.is_dir() else "not a regular file")
    read_meta(image)


def cmd_status(args: argparse.Namespace) -> int:
    library = open_library_arg(args.library)
    try:
        s = library.status()
        print(f"photo folder : {s.root}{'' if s.root_online else '  (OFFLINE: missing or unmounted)'}")
        print(f"library      : {s.library_dir}")
        print(f"photos       : {s.photos}")
        print(f"skipped      : {s.skipped}")
        print(f"model        : {s.model_signature or '-'}")
        print(f"index size   : {s.index_size}")
        skipped = library.skipped()
        for entry in skipped[:20]:
            print(f"  skipped {entry.path}: {entry.reason}")
        if len(skipped) > 20:
            print(f"  … and {len(skipped) - 20} more (the window's Problems tab lists them all)")
        return 0
    finally:
        library.close()


def cmd_duplicates(args: argparse.Namespace) -> int:
    library = open_library_arg(args.library)
    try:
        rule = KeepRule(args.keep)
        if rule is KeepRule.PREFERRED_FOLDER and not args.prefer:
            raise LibraryError("--keep folder needs --prefer FOLDER")
        prefer = Path(args.prefer).expanduser().absolute() if args.prefer else None
        is_tty = sys.stderr.isatty()

        def progress(p) -> None:
            if is_tty and p.total:
                sys.stderr.write(f"\r\033[K{p.phase} {p.done}/{p.total}")
                sys.stderr.flush()

        scan = scan_duplicates(library, progress=progress)
        if is_tty:
            sys.stderr.write("\r\033[K")
        groups = scan.groups(args.threshold, include_decided=args.all)
        keepers = [choose_keeper(g.members, rule, prefer) for g in groups]
        hidden = 0 if args.all else scan.hidden_count(args.threshold)
        if args.export:
            selections = [GroupSelection(g.members, frozenset({k.path})) for g, k in zip(groups, keepers, strict=True)]
            export_list(library.store, selections, Path(args.export))
        if args.json:
            print(json.dumps({
                "threshold": args.threshold, "keep_rule": rule.value, "hidden_by_decisions": hidden,
                "groups": [{"key": g.key, "members": [
                    {"path": str(m.path), "keep": m is k, "size": m.size, "width": m.width, "height": m.height,
                     "date": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(m.date)),
                     "sharpness": round(m.sharpness, 2), "similarity": round(m.similarity, 4),
                     "why": match_reason(m.match)}
                    for m in g.members]} for g, k in zip(groups, keepers, strict=True)],
                "problems": [{"path": str(path), "reason": reason} for path, reason in scan.problems],
            }, indent=1))
            return 0
        photos = sum(len(g.members) for g in groups)
        print(f"{len(groups)} group{'s' if len(groups) != 1 else ''} of near-duplicates, {photos} photos "
              f"(threshold {args.threshold:.2f}, keeping the {rule.label})")
        for number, (group, keeper) in enumerate(zip(groups, keepers, strict=True), 1):
            print(f"\ngroup {number}: {len(group.members)} photos, {_megabytes(group.total_size)}")
            for m in group.members:
                when = time.strftime("%Y-%m-%d %H:%M", time.localtime(m.date))
                size = f"{m.width}x{m.height}"
                print(f"  {'keep' if m is keeper else '    '}  {size:<10} {_megabytes(m.size):>8}  "
                      f"{when}  sharpness {m.sharpness:8.1f}  score {m.similarity:.2f}  {m.path}")
        if hidden:
            print(f"\n{hidden} group{'s' if hidden != 1 else ''} hidden by earlier decisions (--all shows them)")
        for path, reason in scan.problems:
            print(f"not checked: {path}: {reason}", file=sys.stderr)
        return 0
    finally:
        library.close()


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is less than 1")
    return value


def result_count(text: str) -> int:
    value = positive_int(text)
    if value > MAX_RESULTS:
        raise argparse.ArgumentTypeError(f"{value} is more than {MAX_RESULTS:,}")
    return value


def worker_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative (0 decodes in the main process)")
    return value


def unit_interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value:g} is not between 0 and 1")
    return value


def model_name(text: str) -> str:
    # Any registered model is accepted (the test suite indexes with its tiny test model); help and
    # errors name only the ones meant for users.
    if text not in MODELS:
        raise argparse.ArgumentTypeError(f"unknown model {text!r}: choose one of {', '.join(USER_MODELS)}")
    return text


def weights_file(text: str) -> Path:
    path = Path(text).expanduser()
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no weights file at {path}")
    return path


def add_library_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--library", metavar="DIR",
                        help="the library folder to use (default: the library used last, by the window or a command)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vitgallery",
        usage="vitgallery [--weights FILE] [--library DIR] [FOLDER | PHOTO]\n"
              "       vitgallery [-v] {index,search,status,duplicates} ...",
        description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"vitgallery {__version__}",
                        help="print the version and exit")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details of what a command does")
    sub = parser.add_subparsers(dest="command", required=True, title="commands", metavar="COMMAND", prog="vitgallery")

    p = sub.add_parser("index", help="add a folder's photos to its library (later runs add only new or changed ones)",
                       description="Embed the photos of FOLDER, so they can be searched. A later run embeds "
                                   "only new and changed photos, follows moved ones and drops deleted ones.")
    p.add_argument("folder", metavar="FOLDER", help="the photo folder (it is only read, never written)")
    p.add_argument("--library", metavar="DIR",
                   help="where to keep the library (default: in your user data folder, one per photo folder)")
    p.add_argument("--model", default=DEFAULT_MODEL, type=model_name, metavar="MODEL",
                   help=f"one of {', '.join(USER_MODELS)} (default {DEFAULT_MODEL})")
    p.add_argument("--weights", type=weights_file, metavar="FILE",
                   help="the model's weights file in the official layout, instead of downloading it")
    p.add_argument("--device", default="auto", choices=DEVICES, help="where the model runs (default: auto)")
    p.add_argument("--batch-size", type=positive_int, default=None, metavar="N",
                   help="photos per model call (default: adapts to the device)")
    p.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="auto: bf16 on GPUs and on CPUs with native bf16, else fp32; int8 is faster on CPU "
                        "but loses about 1 mAP point")
    p.add_argument("--workers", type=worker_count, default=None, metavar="N",
                   help="processes that decode photos (default: adapts to the machine)")
    p.set_defaults(run=cmd_index)

    p = sub.add_parser("search", help="the photos of the library most like one or more images",
                       description="Print the photos of the library most like each IMAGE, best first. "
                                   "✓ marks a photo whose keypoints match the query's: the same photo.")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="an image file, a photo of the library, or an http(s) address")
    add_library_option(p)
    p.add_argument("--k", type=result_count, default=20, metavar="N", help="how many photos to list (default 20)")
    p.add_argument("--json", action="store_true",
                   help="one JSON object: query -> [{path, score, cosine, inliers}], best first")
    p.add_argument("--no-verify", action="store_true",
                   help="rank by the vectors alone, without checking the top 50 with keypoints (faster)")
    p.add_argument("--weights", type=weights_file, metavar="FILE",
                   help="the weights file, if the library was indexed from one now at another path")
    p.add_argument("--device", default="auto", choices=DEVICES, help="where the model runs (default: auto)")
    p.set_defaults(run=cmd_search)

    p = sub.add_parser("status", help="what the library holds", description="What the library holds: its "
                       "folder, how many photos, which files were skipped and why.")
    add_library_option(p)
    p.set_defaults(run=cmd_status)

    p = sub.add_parser("duplicates", help="groups of near-duplicate photos (bursts, re-saves, edits, crops)",
                       description="List groups of near-duplicate photos and which one of each to keep.")
    add_library_option(p)
    p.add_argument("--threshold", type=unit_interval, default=DEFAULT_THRESHOLD, metavar="T",
                   help=f"0..1, higher groups fewer photos (default {DEFAULT_THRESHOLD})")
    p.add_argument("--keep", default=KeepRule.RESOLUTION.value, choices=[r.value for r in KeepRule],
                   help="which photo of a group to mark as kept")
    p.add_argument("--prefer", metavar="FOLDER", help="the preferred folder for --keep folder")
    p.add_argument("--all", action="store_true", help="also show groups you marked 'not duplicates' or 'keep all'")
    p.add_argument("--export", metavar="FILE", help="also write the groups to FILE (.csv or .json)")
    p.add_argument("--json", action="store_true", help="print the groups as JSON")
    p.set_defaults(run=cmd_duplicates)
    return parser


def main(argv: list[str]) -> int:
    """Run one subcommand (argv[0] is its name, or an option such as --help)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.run(args)
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: what was embedded so far is saved", file=sys.stderr)
        return 130
