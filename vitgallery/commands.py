"""The commands behind `vitgallery` (see vitgallery.cli): index, search, status, duplicates, and the window."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from platformdirs import user_data_dir

from vitgallery.core.actions import ActionError, GroupSelection, export_list
from vitgallery.core.duplicates import (
    DEFAULT_RULE,
    DEFAULT_THRESHOLD,
    KeepRule,
    ScanError,
    choose_keeper,
    load_scan,
    match_reason,
    scan_duplicates,
)
from vitgallery.core.imageio import DecodeError
from vitgallery.core.keypoints import VERIFIED_INLIERS
from vitgallery.core.library import IndexProgress, IndexSummary, Library, LibraryError, QueryNeedsModel
from vitgallery.core.models import DEFAULT_MODEL, MODELS, Embedder, ModelLoadError, load_embedder
from vitgallery.core.store import StoreError

log = logging.getLogger("vitgallery")

COMMANDS = ("index", "search", "status", "duplicates")
USER_ERRORS = (LibraryError, ModelLoadError, StoreError, DecodeError, ActionError, ScanError)


def last_library_file() -> Path:
    return Path(user_data_dir("vitgallery", appauthor=False)) / "last_library"


def remember_library(library: Library) -> None:
    path = last_library_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(str(library.library_dir))
    except OSError as exc:  # the index itself succeeded; only the shortcut for later commands is lost
        log.warning("could not remember the library in %s (%s); pass --library next time", path, exc)


def open_library_arg(library_dir: str | None) -> Library:
    """--library DIR, or else the library indexed last."""
    if library_dir is None:
        remembered = last_library_file()
        if not remembered.exists():
            raise LibraryError("no library yet: run `vitgallery index FOLDER` first, or pass --library DIR")
        library_dir = remembered.read_text().strip()
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
        if args.weights:
            library.store.set_meta("weights_path", str(Path(args.weights).absolute()))
        print(f"indexing {library.root} with {embedder.model_id} on {embedder.device} "
              f"(library {library.library_dir})", file=sys.stderr)
        progress = TerminalProgress()
        summary = library.index(embedder, progress=progress, batch_size=args.batch_size,
                                decode_workers=args.workers)
        progress.finish()
        print(format_summary(summary))
        remember_library(library)
        return 3 if summary.offline else 0
    finally:
        library.close()


def embedder_for(library: Library, device: str, weights: str | None) -> Embedder:
    """The model the library was indexed with, with the weights it was indexed with."""
    signature = library.model_signature
    if signature is None:
        raise LibraryError("the library is empty: index a folder first")
    parts = signature.split("|")
    precision = next((p.removeprefix("prec:") for p in parts if p.startswith("prec:")), "auto")
    weights = weights or library.store.get_meta("weights_path")
    embedder = load_embedder(parts[0], weights=weights, device=device, precision=precision)
    if embedder.signature != signature:
        raise LibraryError(f"these weights differ from the ones the library was indexed with ({signature})")
    return embedder


def cmd_search(args: argparse.Namespace) -> int:
    library = open_library_arg(args.library)
    try:
        embedder: Embedder | None = None
        results: dict[str, list[dict]] = {}
        failed = 0
        for query in args.images:
            try:
                try:
                    hits = library.search(Path(query), k=args.k, embedder=embedder, verify=not args.no_verify)
                except QueryNeedsModel:
                    embedder = embedder_for(library, args.device, args.weights)
                    hits = library.search(Path(query), k=args.k, embedder=embedder, verify=not args.no_verify)
            except (LibraryError, DecodeError) as exc:
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
                    # ✓ and the matching points for a hit verified as the same scene
                    verified = h.inliers is not None and h.inliers >= VERIFIED_INLIERS
                    why = f"✓{h.inliers:4d}" if verified else " " * 5
                    print(f"  {rank:3d}. {h.score:.3f} {why}  {h.path}")
        if args.json:
            print(json.dumps(results, indent=1))
        return 2 if failed else 0
    finally:
        library.close()


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

        scan = load_scan(library)
        if scan is None or not scan.up_to_date or args.rescan:
            scan = scan_duplicates(library, progress=progress)  # verifies only what no scan verified before
        if is_tty:
            sys.stderr.write("\r\033[K")
        groups = scan.groups(args.threshold, include_decided=args.all)
        choices = [choose_keeper(g.members, rule, prefer) for g in groups]
        hidden = 0 if args.all else scan.hidden_count(args.threshold)
        if args.export:
            selections = [GroupSelection(g.members, frozenset(m.path for m in (c.member, *c.same_file)))
                          for g, c in zip(groups, choices, strict=True)]
            export_list(library.store, selections, Path(args.export))
        if args.json:
            print(json.dumps({
                "threshold": args.threshold, "keep_rule": rule.value, "hidden_by_decisions": hidden,
                "scanned_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(scan.scanned_at)),
                "groups": [{"key": g.key, "keep_reason": c.reason, "members": [
                    {"path": str(m.path), "keep": m is c.member or m in c.same_file, "size": m.size,
                     "width": m.width, "height": m.height,
                     "date": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(m.date)),
                     "sharpness": round(m.sharpness, 2), "similarity": round(m.similarity, 4),
                     "why": match_reason(m.match)}
                    for m in g.members]} for g, c in zip(groups, choices, strict=True)],
                "problems": [{"path": str(path), "reason": reason} for path, reason in scan.problems],
            }, indent=1))
            return 0
        photos = sum(len(g.members) for g in groups)
        print(f"{len(groups)} group{'s' if len(groups) != 1 else ''} of near-duplicates, {photos} photos "
              f"(threshold {args.threshold:.2f}, keeping the {rule.label}; scanned {_age(scan.age_s)})")
        for number, (group, choice) in enumerate(zip(groups, choices, strict=True), 1):
            print(f"\ngroup {number}: {len(group.members)} photos, {_megabytes(group.total_size)}; "
                  f"keep: {choice.reason}")
            for m in group.members:
                when = time.strftime("%Y-%m-%d %H:%M", time.localtime(m.date))
                size = f"{m.width}x{m.height}"
                kept = m is choice.member or m in choice.same_file
                print(f"  {'keep' if kept else '    '}  {size:<10} {_megabytes(m.size):>8}  "
                      f"{when}  sharpness {m.sharpness:8.1f}  score {m.similarity:.2f}  {m.path}")
        if hidden:
            print(f"\n{hidden} group{'s' if hidden != 1 else ''} hidden by earlier decisions (--all shows them)")
        for path, reason in scan.problems:
            print(f"not checked: {path}: {reason}", file=sys.stderr)
        return 0
    finally:
        library.close()


def _age(seconds: float) -> str:
    for unit, length in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= length:
            count = int(seconds // length)
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vitgallery", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log details")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("index", help="embed the photos of a folder (only new or changed ones on later runs)")
    p.add_argument("folder")
    p.add_argument("--library", help="library folder (default: in the user data folder, keyed by FOLDER)")
    p.add_argument("--model", default=DEFAULT_MODEL, choices=list(MODELS))
    p.add_argument("--weights", help="local weights file in the official layout (no download)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--batch-size", type=int, default=None, help="photos per model call (default: adapts to the device)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16", "int8"],
                   help="auto: bf16 on GPUs and on CPUs with native bf16, else fp32; int8 is faster on CPU "
                        "but loses about 1 mAP point")
    p.add_argument("--workers", type=int, default=None, help="decoder processes (default: adapts to the machine)")
    p.set_defaults(run=cmd_index)

    p = sub.add_parser("search", help="the most similar photos of the library for one or more images")
    p.add_argument("images", nargs="+")
    p.add_argument("--library")
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--json", action="store_true",
                   help="one JSON object: query -> [{path, score, cosine, inliers}], best first")
    p.add_argument("--no-verify", action="store_true",
                   help="rank by the vectors alone, without checking the top 50 with SIFT keypoints (faster)")
    p.add_argument("--weights", help="weights file, if the library was indexed from one at another path")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.set_defaults(run=cmd_search)

    p = sub.add_parser("status", help="what the library holds")
    p.add_argument("--library")
    p.set_defaults(run=cmd_status)

    p = sub.add_parser("duplicates", help="groups of near-duplicate photos (bursts, re-saves, edits, crops)")
    p.add_argument("--library")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help=f"0..1, higher groups fewer photos (default {DEFAULT_THRESHOLD})")
    p.add_argument("--keep", default=DEFAULT_RULE.value, choices=[r.value for r in KeepRule],
                   help="which photo of a group to mark as kept (best: the copy no edit touched, by a quality "
                        "score; the others by one property)")
    p.add_argument("--prefer", metavar="FOLDER", help="the preferred folder for --keep folder")
    p.add_argument("--all", action="store_true", help="also show groups you marked 'not duplicates' or 'keep all'")
    p.add_argument("--rescan", action="store_true",
                   help="scan even when the library has not changed since the last scan (it is kept in the library)")
    p.add_argument("--export", metavar="FILE", help="also write the groups to FILE (.csv or .json)")
    p.add_argument("--json", action="store_true", help="print the groups as JSON")
    p.set_defaults(run=cmd_duplicates)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or (argv[0] not in COMMANDS and not argv[0].startswith("-")):
        return run_gui(argv)
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


def run_gui(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vitgallery", description="open the vitgallery window")
    parser.add_argument("folder", nargs="?")
    parser.add_argument("--library")
    args = parser.parse_args(argv)
    from vitgallery.ui.app import run_app  # Qt only loads for the window

    return run_app(Path(args.folder) if args.folder else None, Path(args.library) if args.library else None)


if __name__ == "__main__":
    sys.exit(main())
