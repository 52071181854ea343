"""The subcommands behind `vitgallery` (see vitgallery.cli): index, search, explain, status, duplicates,
repair; arrange, groups, sort and watch (organising a library)."""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import shlex
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from vitgallery import __version__
from vitgallery.core.duplicates import (
    BACK_BY_HAND,
    BULK_ACTIONS,
    DEFAULT_RULE,
    DEFAULT_THRESHOLD,
    STOPPED_BY_USER,
    ActionError,
    ActionReport,
    BulkAction,
    DuplicateGroup,
    GroupSelection,
    KeepRule,
    ScanError,
    change_since_scan,
    choose_keeper,
    export_target_problem,
    move_target_problem,
)
from vitgallery.core.explain import Explanation
from vitgallery.core.explain_render import render_explanation
from vitgallery.core.fetch import DownloadError, download, is_url
from vitgallery.core.imageio import SUPPORTED_KINDS, DecodeError, read_meta, route_pillow_warnings
from vitgallery.core.library import (
    DB_NAME,
    DiskChanges,
    IndexProgress,
    IndexSummary,
    Library,
    LibraryError,
    MovedLibrary,
    QueryNeedsModel,
    default_library_dir,
    known_photo_folder,
    last_library_dir,
    library_followed_from,
    moved_library,
    remember_last_library,
)
from vitgallery.core.models import (
    DEFAULT_MODEL,
    DEFAULT_RUNTIME,
    DEVICES,
    MODELS,
    PRECISIONS,
    RUNTIMES,
    USER_MODELS,
    Embedder,
    ModelLoadError,
    load_embedder,
)
from vitgallery.core.organise.arrange import arrange_folder
from vitgallery.core.organise.groups import DEFAULT_MIN_GROUP, find_groups
from vitgallery.core.organise.sort import CONFIDENT_FROM, apply_suggestions, suggest_folders
from vitgallery.core.organise.vectors import OrganiseError, OrganiseProgress
from vitgallery.core.organise.watch import FolderWatcher, WatchBatch
from vitgallery.core.partial_files import write_whole
from vitgallery.core.region import Region, RegionError
from vitgallery.core.scan import (
    display_path,
    is_inside,
    json_path,
    missing_file_reason,
    photo_root_path,
    root_is_available,
)
from vitgallery.core.search import SearchHit
from vitgallery.core.store import StoreError
from vitgallery.core.vector_store import VectorStoreError, VectorStoreSetting
from vitgallery.core.words import count_text, size_text
from vitgallery.desktop_entry import DesktopEntryError, run_install_script
from vitgallery.logs import configure_logging

log = logging.getLogger("vitgallery")

COMMANDS = ("index", "search", "explain", "status", "duplicates", "repair", "arrange", "groups", "sort", "watch",
            "desktop-entry")
USER_ERRORS = (LibraryError, ModelLoadError, StoreError, DecodeError, ActionError, ScanError, DownloadError,
               OrganiseError, RegionError, VectorStoreError, DesktopEntryError)
EXPLAIN_PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg")
MAX_RESULTS = 10_000

DESCRIPTION = """\
Find similar photos in your own photo library, offline.

Without a command, vitgallery opens its window on FOLDER (or on the folder opened last);
given a PHOTO, it opens the photo's folder and finds photos like it. The commands below work
without a window: index a folder, search it (with part of a photo, or refined by photos you
like or not), see why two photos match, see what the library holds, find duplicates, arrange a
folder by likeness, group the library, sort photos into folders by example, keep the library
current while its folder changes, and add vitgallery to the desktop's applications menu."""
# The window's own options (vitgallery.cli parses them): said in `vitgallery --help` too.
WINDOW_OPTIONS = {
    "FOLDER | PHOTO": "the folder to open, or a photo: its folder opens and photos like it are found",
    "--weights FILE": "the model's weights file, instead of downloading it (kept for later starts)",
    "--library DIR": "where to keep the library of the folder",
    "--find-similar": "without a PHOTO, ask for one and find photos like it (the desktop entry's action)",
}
EPILOG = ("the window's options (without a command):\n"
          + "".join(f"  {name:<15} {help_text}\n" for name, help_text in WINDOW_OPTIONS.items())
          + "\nRun vitgallery COMMAND --help for the options of a command.")


def open_library_arg(library_dir: str | None) -> Library:
    """--library DIR, or else the library used last (by the window or the CLI)."""
    return Library.open(library_dir=library_dir_arg(library_dir))


def library_dir_arg(library_dir: str | None) -> Path:
    if library_dir is not None:
        given = Path(library_dir).expanduser()
        moved_to = None if (given / DB_NAME).exists() else library_followed_from(given)
        if moved_to is not None:  # named by a command printed before the library followed its photos
            print(f"note: the library that was in {printable_path(given)} followed its photos: it is in "
                  f"{printable_path(moved_to)} now", file=sys.stderr)
            return moved_to
        return given
    last = last_library_dir()
    if last is None:
        raise LibraryError("no library yet: run `vitgallery index FOLDER` first, or pass --library DIR")
    return last


def _json_text(path: Path | str, raw: dict[str, str]) -> str:
    """A path as a plain string of a --json list (as json_path shows it); a name that is not valid
    UTF-8 is also noted in `raw`, shown text -> its bytes in base64 (the document's "path_bytes")."""
    fields = json_path(path)
    if "path_bytes" in fields:
        raw[fields["path"]] = fields["path_bytes"]
    return fields["path"]


def _bytes_of(raw: dict[str, str]) -> dict[str, dict[str, str]]:
    return {"path_bytes": raw} if raw else {}


# Control characters (a newline in a file name, an escape sequence) and the line and paragraph separators,
# written as Python writes them in a string: a name then stays on its one line and cannot drive the terminal.
_CONTROL_ESCAPES = {code: chr(code).encode("unicode_escape").decode("ascii")
                    for code in (*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029)}


def printable_path(path: Path | str) -> str:
    """A path for text output: as display_path shows it, with control characters escaped (`\\n`)."""
    return display_path(path).translate(_CONTROL_ESCAPES)


# -- progress on a terminal ------------------------------------------------------------------------

class TerminalProgress:
    """A one-line bar (count, rate, ETA) on a terminal; a line every few seconds in a log."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr  # looked up now: tests and tools swap sys.stderr
        self.is_tty = self.stream.isatty()
        self.last_line = 0.0

    def __call__(self, p: IndexProgress) -> None:
        if p.phase not in ("embedding", "learning"):
            if p.phase == "waiting":
                self._write("waiting for another run indexing this library to finish…", final=False)
            elif p.phase == "scanning":
                self._write("scanning folder…", final=False)
            elif p.phase == "calibrating" and p.done == 1:
                self._write(f"reading {p.total} photos to fit the int8 model to this library…", final=False)
            elif p.phase == "quantising":
                self._write("fitting the int8 model to this library's photos (done once; it can take a minute)…", final=False)
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


SKIPPED_NAMED = 3  # files named for each reason an index run skipped some
WATCH_CHANGES_NAMED = 5  # changed files and folders named for each batch the watcher applies


def format_summary(s: IndexSummary) -> str:
    """The summary of an index run, a few of the files it skipped named for each reason."""
    if s.offline:
        return "nothing was changed: index it again once the folder is back (its drive plugged in)"
    lines = [f"added {s.added}, updated {s.updated}, moved {s.moved}, removed {s.removed}, "
             f"unchanged {s.unchanged}, skipped {s.skipped}  ({s.seconds:.1f} s)"]
    if s.teaching:
        lines.append(f"learned from {count_text(s.teaching, 'photo')} how this library's photos differ (edited copies of them)")
    if s.missing_kept:
        lines.append(f"{s.missing_kept} photos that are gone stay in the library (an unplugged drive?); if they "
                     "were deleted, run again with --forget-missing to remove them")
    if s.cancelled:
        lines.append("cancelled: what was embedded so far is saved; run index again to continue")
    for reason, count in sorted(s.skipped_reasons.items(), key=lambda kv: -kv[1]):
        names = [printable_path(path) for path, why in s.skipped_files if why == reason]
        lines.append(f"  skipped {count}: {reason} ({', '.join(names[:SKIPPED_NAMED])}"
                     f"{', …' if len(names) > SKIPPED_NAMED else ''})")
    if any(count > SKIPPED_NAMED for count in s.skipped_reasons.values()):
        lines.append("  (`vitgallery status` lists the photos skipped)")
    return "\n".join(lines)


# -- commands --------------------------------------------------------------------------------------

def cmd_index(args: argparse.Namespace) -> int:
    folder = Path(args.folder).expanduser()
    if folder.is_file():
        raise LibraryError(f"{printable_path(folder)} is a file, not a folder: to index the folder it is in, "
                           f"run `vitgallery index {printable_path(folder.parent)}`")
    if args.library is None and folder.is_dir():  # a folder through a link has the library of where it leads
        folder = known_photo_folder(folder)
    # a --library named before its library followed its photos elsewhere is found where it went
    library_dir, repoint = None if args.library is None else library_dir_arg(args.library), args.repoint
    moved = moved_library(folder, own_too=repoint) if library_dir is None and folder.is_dir() else None
    if repoint:
        if not folder.is_dir():
            raise LibraryError(f"{folder} is not a folder: give the photo folder's new place")
        # the default library is keyed by the old folder: the one whose photos are here, else the last one
        library_dir = moved.library_dir if moved is not None else library_dir_arg(library_dir)
    elif moved is not None and _follow_wanted(moved, folder):
        library_dir, repoint = moved.library_dir, True
    elif library_dir is None and not (default_library_dir(folder) / DB_NAME).exists():
        _note_library_above(folder)
    library = Library.open(folder, library_dir, repoint=repoint, vector_store=args.vector_store)
    if library.followed_from is not None:
        print(f"the library of {printable_path(library.followed_from)} follows its photos here: what it holds is "
              "not embedded again, and its undo history comes along", file=sys.stderr)
    try:
        embedder = load_embedder(args.model, weights=args.weights or library.weights_for(args.model),
                                 device=args.device, precision=args.precision, runtime=args.runtime,
                                 trusted_signature=library.model_signature)
        print(f"indexing {printable_path(library.root)} with {embedder.model_id} on {embedder.device} "
              f"(library {printable_path(library.library_dir)})", file=sys.stderr)
        progress = TerminalProgress()
        photos_before = library.photo_count()
        try:
            summary = library.index(embedder, progress=progress, batch_size=args.batch_size,
                                    decode_workers=args.workers, forget_missing=args.forget_missing)
        except KeyboardInterrupt:
            if library.photo_count() == photos_before:  # stopped while the model was fitted, say
                args.interrupted_note = "nothing new was embedded yet; the library is as it was"
            raise
        progress.finish()
        print(format_summary(summary))
        if not summary.offline and library.photo_count() == 0:
            print(f"no photos in {printable_path(library.root)}: vitgallery reads {SUPPORTED_KINDS} files",
                  file=sys.stderr)
        return 3 if summary.offline or summary.missing_kept else 0
    finally:
        _remember_if_it_holds_photos(library)
        library.close()


def _note_library_above(folder: Path) -> None:
    """A first index of a folder inside one that has a library makes a library of its own, which later
    commands then use: said, with where the other one is."""
    above = _first_with_a_library(photo_root_path(folder).parents)
    if above is not None:
        print(f"note: {printable_path(folder)} is inside {printable_path(above)}, which has its own library: this "
              "makes a separate one, which later commands use; "
              f"`--library {shlex.quote(str(default_library_dir(above)))}` searches {printable_path(above)}'s",
              file=sys.stderr)


def _first_with_a_library(folders: Iterable[Path]) -> Path | None:
    """The first of `folders` that has a library in the default place."""
    return next((folder for folder in folders if (default_library_dir(folder) / DB_NAME).exists()), None)


def _follow_wanted(moved: MovedLibrary, folder: Path) -> bool:
    """Whether to follow the library of a gone folder whose photos `folder` holds: asked on a terminal (yes
    by default); without one, said, and the folder is indexed as a new one (a script asked for that)."""
    found = (f"these are the photos of {printable_path(moved.old_root)}, indexed before and no longer there "
             "(renamed or moved?)")
    if not sys.stdin.isatty():
        print(f"note: {found}. To follow its library here instead of embedding its {moved.photos} photos again, "
              f"stop this run and use `vitgallery index {printable_path(folder)} --repoint`", file=sys.stderr)
        return False
    print(f"{found[0].upper()}{found[1:]}. Follow its library here? Its {moved.photos} photos are not embedded "
          "again, and its undo history comes along [Y/n] ", end="", file=sys.stderr, flush=True)
    return input().strip().lower() not in ("n", "no")


def _remember_if_it_holds_photos(library: Library) -> None:
    """Make the library the one later commands use, also after an interrupted run (what it embedded is
    searchable), but not one of a folder that gave no photo: the library used before stays."""
    try:
        if library.photo_count() > 0:
            remember_last_library(library.library_dir)
    except (StoreError, sqlite3.Error) as exc:
        log.warning("not remembered as the library used last: %s", exc)


def cmd_search(args: argparse.Namespace) -> int:
    if (args.box or args.like or args.unlike) and len(args.images) != 1:
        raise LibraryError("--box, --like and --unlike shape one search: give exactly one IMAGE")
    library = open_library_arg(args.library)
    try:
        if args.weights is not None:  # said even when every query is a photo of the library (no model is read)
            library.check_weights(args.weights)
        embedder: Embedder | None = None
        results: dict[str, list[dict]] = {}
        failed = 0
        options = {"k": args.k, "verify": not args.no_verify, "region": args.box, "like": args.like or (),
                   "unlike": args.unlike or ()}
        for query in args.images:
            try:
                image = query_image(query)
                try:
                    hits = _present_hits(library, image, embedder, options)
                except QueryNeedsModel:
                    check_is_image(image)  # before the model loads for seconds
                    embedder = library.load_embedder(device=args.device, weights=args.weights)
                    hits = _present_hits(library, image, embedder, options)
            except (LibraryError, DecodeError, DownloadError, RegionError) as exc:
                if isinstance(exc, LibraryError) and "empty" in str(exc):
                    raise
                # One bad query does not stop the others; it gets an empty list and a message.
                print(f"error: {printable_path(query)}: {exc}", file=sys.stderr)
                failed += 1
                results[display_path(query)] = []  # JSON keeps every query; the text has only the error
                continue
            results[display_path(query)] = [{**json_path(h.path), "score": round(h.score, 6),
                                             "cosine": round(h.cosine, 6), "inliers": h.inliers, "verified": h.verified,
                                             "agreement": None if h.agreement is None else round(h.agreement, 4),
                                             "likeness": None if h.likeness is None else round(h.likeness, 4)}
                                            for h in hits]
            if not args.json:
                print(printable_path(query))
                for rank, h in enumerate(hits, 1):
                    # ✓ and the matching points for a hit verified as the same photo ("look": by its grey levels)
                    why = (" " * 5 if not h.verified else "✓look" if h.likeness is not None else f"✓{h.inliers:4d}")
                    print(f"  {rank:3d}. {h.score:.3f} {why}  {printable_path(h.path)}")
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
        raise LibraryError(missing_file_reason(image) if not image.exists()
                           else "is a directory, not an image" if image.is_dir() else "not a regular file")
    read_meta(image)


def _present_hits(library: Library, image: Path | bytes, embedder: Embedder | None, options: dict) -> list[SearchHit]:
    """The search's k hits whose files are still there: one deleted since the last index is left out,
    with a note, and the next best take its place (the window's folder watcher keeps its library
    current; a command has only the last index). With the photo folder offline (a drive unplugged)
    every hit is kept: the library still knows them."""
    k = asked = options["k"]
    while True:  # each round asks for twice as many, until k are there or the library has no more
        hits = library.search(image, embedder=embedder, **{**options, "k": asked})
        if not root_is_available(library.root):
            return hits[:k]
        present, gone = [], 0  # the first k still there, and those deleted among the hits before them
        for hit in hits:
            if len(present) == k:
                break
            if os.path.lexists(hit.path):
                present.append(hit)
            else:
                gone += 1
        if len(present) == k or len(hits) < asked:
            break
        asked *= 2
    if gone:
        print(f"note: {gone} result(s) left out: deleted since the last index (`vitgallery index "
              f"{printable_path(library.root)}` brings the library up to date; with --forget-missing where "
              "most of it is gone at once)", file=sys.stderr)
    return present


def cmd_explain(args: argparse.Namespace) -> int:
    out = Path(args.out).expanduser()
    if out.suffix.lower() not in EXPLAIN_PICTURE_SUFFIXES:
        raise LibraryError(f"--out {printable_path(out)}: the picture is written as {' or '.join(EXPLAIN_PICTURE_SUFFIXES)}")
    if not out.parent.is_dir():
        raise LibraryError(f"no folder {out.parent} to write {out.name} into")
    photos = [query_image(args.query), query_image(args.result)]
    for query, photo in zip((args.query, args.result), photos, strict=True):
        try:
            check_is_image(photo)  # before the model loads for seconds
        except (LibraryError, DecodeError) as exc:
            raise LibraryError(f"{printable_path(query)}: {exc}") from exc
    library = open_library_arg(args.library)
    try:
        problem = _explain_out_problem(out.absolute(), photos, library.root)
        if problem is not None:
            raise LibraryError(f"--out {printable_path(out)} {problem}")
        embedder = library.load_embedder(device=args.device, weights=args.weights)
        if args.attention and not embedder.spec.has_attention:
            raise LibraryError(f"{embedder.model_id} has no attention to show (a CNN): leave out --attention")
        explanation = library.explain(embedder, *photos, attention=args.attention)
    finally:
        library.close()
    picture = render_explanation(explanation, overlay="attention" if args.attention else "similarity",
                                 opacity=args.opacity, titles=(_shown_name(args.query), _shown_name(args.result)))
    try:
        write_whole(out, lambda temporary: picture.save(temporary))  # a failed save leaves no broken picture
    except OSError as exc:
        raise LibraryError(f"could not write {out}: {exc.strerror or exc}") from exc
    print(f"{printable_path(out)}: vector similarity {explanation.cosine:.3f} (the search's measure before its "
          f"keypoint check, which ranks verified copies by their points), {_explained_verdict(explanation)}")
    return 0


def _explain_out_problem(out: Path, photos: list[Path | bytes], root: Path) -> str | None:
    """Why the explanation may not be written to `out` (None: it may): never over a photo."""
    if any(isinstance(photo, Path) and photo.exists() and out.exists() and out.samefile(photo) for photo in photos):
        return "is one of the photos compared: name a new file"
    if is_inside(out, root):
        return f"is inside the photo folder {printable_path(root)}: vitgallery writes nothing there; name a file elsewhere"
    return None


def _explained_verdict(explanation: Explanation) -> str:
    """The pair as the search marks it: ✓ with its points, how the duplicates check groups it on fewer, or
    the same scene (its points match, its pictures differ once aligned)."""
    if explanation.same_scene:
        return (f"{explanation.inliers} matching keypoints, but the pictures differ once aligned: the same scene, "
                "not the same photo (the search shows it without ✓)")
    if explanation.verified:
        return f"{explanation.inliers} matching keypoints"
    if explanation.grouped.likeness is not None:
        return (f"✓look: too smooth for keypoints ({explanation.inliers} match), but its shapes and shades align "
                f"(likeness {explanation.grouped.likeness:.3f}), as the duplicates check groups such copies")
    if explanation.grouped.agreement is not None:
        return (f"✓: {explanation.inliers} keypoints, too few alone, whose aligned pixels agree "
                f"({explanation.grouped.agreement:.0%} of the overlap), as the duplicates check groups such copies")
    return "keypoints do not match"


def _note_changed_since_index(groups: list[DuplicateGroup], root: Path) -> None:
    """Say which grouped photos changed or went since the last index: an action leaves their groups
    alone, and only an index (the window's folder watcher makes one) lets a scan see the change."""
    if not root_is_available(root):
        return
    changed = [m.path for group in groups for m in group.members if change_since_scan(m) is not None]
    if changed:
        print(f"note: {count_text(len(changed), 'photo')} of these groups changed or vanished since the last index "
              f"({printable_path(changed[0])}{' …' if len(changed) > 1 else ''}): an action leaves their groups "
              f"alone until `vitgallery index {printable_path(root)}` brings the library up to date", file=sys.stderr)


def _shown_name(query: str) -> str:
    return query.strip() if is_url(query) else Path(query).name


def cmd_status(args: argparse.Namespace) -> int:
    library = open_library_arg(args.library)
    try:
        s = library.status()
        offline = "" if s.root_online else "  (OFFLINE: missing or unmounted)"
        print(f"photo folder : {printable_path(s.root)}{offline}")
        print(f"library      : {printable_path(s.library_dir.absolute())}")
        print(f"photos       : {s.photos}" + ("  (being indexed now: more to come)" if s.indexing else ""))
        print(f"skipped      : {s.skipped}")
        print(f"model        : {s.model_signature or '-'}")
        print(f"index size   : {s.index_size}")
        changes = None if s.indexing else library.changes_on_disk()
        if changes is not None:
            print(f"on disk now  : {_changes_text(changes) or 'as indexed'}")
            for path, why in changes.unreadable:
                print(f"  cannot read {printable_path(path)}: {why}")
        skipped = library.skipped()
        for entry in skipped[:20]:
            print(f"  skipped {printable_path(entry.path)}: {entry.reason}")
        if len(skipped) > 20:
            print(f"  … and {len(skipped) - 20} more (the window's Problems tab lists them all)")
        return 0
    finally:
        library.close()


def _changes_text(changes: DiskChanges) -> str:
    """What the folder holds that the library does not know yet ("" for nothing). A photo renamed or moved
    within the folder is said as such: the next index keeps its vector, it is neither new nor gone."""
    new, moved, gone, unreadable = changes.new, changes.moved, changes.gone, len(changes.unreadable)
    said = [text for count, text in ((new, f"{count_text(new, 'photo')} new or changed"),
                                     (moved, f"{count_text(moved, 'photo')} renamed or moved"),
                                     (gone, f"{count_text(gone, 'photo')} gone"),
                                     (unreadable, f"{unreadable:,} {'entry' if unreadable == 1 else 'entries'} "
                                                  "that cannot be read")) if count]
    if not said:
        return ""
    listed = said[0] if len(said) == 1 else f"{', '.join(said[:-1])} and {said[-1]}"
    return f"{listed} since the last index"


def _note_library_out_of_date(library: Library) -> None:
    """Said before a list made of what the library holds, where that is not what the folder holds now."""
    changes = library.changes_on_disk()
    if changes is None:
        print(f"note: the photo folder {printable_path(library.root)} is not there now (moved, or a drive not "
              "mounted?): these are the photos the library held", file=sys.stderr)
    elif any(changes):
        print(f"note: {_changes_text(changes)}: `vitgallery index {printable_path(library.root)}` brings the library up to date",
              file=sys.stderr)


def _sort_undo_hint(library: Library, report: ActionReport) -> str:
    """The command that puts a sort's moves back. An undo puts files back only into the photo folder
    and into folders its user names (never ones read from the log): photos sorted in from elsewhere
    need their folders named with --into."""
    if report.action_id is None or not report.done:
        return ""
    outside = sorted({source.parent for source, _ in report.done if library.relative_path(source) is None})
    into = "".join(f" --into {shlex.quote(str(folder))}" for folder in outside)
    return f" (action {report.action_id}; `{_undo_command(library.library_dir, report.action_id)}{into}` puts them back)"


def _undo_command(library_dir: Path, action_id: int) -> str:
    """The command that undoes an action. It names the library: action numbers are each library's own, and
    the library later commands default to is the last one the window or a command used, which may be
    another by then."""
    return f"vitgallery duplicates --undo {action_id} --library {shlex.quote(str(library_dir.absolute()))}"


def cmd_duplicates(args: argparse.Namespace) -> int:
    chosen = [(action, getattr(args, action.name)) for action in BULK_ACTIONS.values()
              if getattr(args, action.name) not in (None, False)]
    moving = [action.name for action, _ in chosen if action.moves_files]
    if len(moving) > 1:
        raise ActionError(f"choose one of {', '.join('--' + name for name in moving)}")
    if args.into and args.undo is None:
        raise ActionError("--into goes with --undo: the folders an undo may put photos back into")
    if (args.history or args.undo is not None) and chosen:
        raise ActionError(f"--{'history' if args.history else 'undo'} goes alone: not with "
                          f"{', '.join('--' + action.name for action, _ in chosen)}")
    library = open_library_arg(args.library)
    try:
        if args.history:
            return _print_history(library, args.json)
        if args.undo is not None:
            with _ctrl_c_stops_after_the_file() as stop:
                report = library.undo(args.undo, [Path(folder).expanduser().absolute() for folder in args.into], stop)
            if args.json:
                print(json.dumps({"actions": [_json_report(report)]}, indent=1))
            elif not report.done and not report.problems and not report.back_by_hand:
                print(report.summary())
            else:
                _print_report(report, sys.stdout, library)
            if stop.is_set():
                return 130  # as any command Ctrl+C stops; its report said what was put back
            if _ended_by_error(report):
                return 2  # as an action's: its report said what was put back before it
            return 0 if report.done or report.back_by_hand else 1  # nothing back: failed, or nothing left to put back
        rule = KeepRule(args.keep)
        if rule is KeepRule.PREFERRED_FOLDER and not args.prefer:
            raise LibraryError("--keep folder needs --prefer FOLDER")
        # the targets are checked before the scan and the question, not after the answer
        for problem in (None if args.move is None else move_target_problem(Path(args.move), library.root,
                                                                            library.library_dir),
                        None if args.export is None else export_target_problem(Path(args.export), library.library_dir)):
            if problem is not None:
                raise ActionError(problem)
        prefer = Path(args.prefer).expanduser().absolute() if args.prefer else None
        is_tty = sys.stderr.isatty()

        def progress(p) -> None:
            if is_tty and p.total:
                sys.stderr.write(f"\r\033[K{p.phase} {p.done}/{p.total}")
                sys.stderr.flush()

        if library.index_running():
            print("note: the library is being indexed now: photos not yet indexed are not in these groups",
                  file=sys.stderr)
        scan = library.last_duplicate_scan()
        if scan is None or not scan.up_to_date:
            scan = library.duplicate_scan(progress=progress)  # verifies only what no scan verified before
        if is_tty:
            sys.stderr.write("\r\033[K")
        groups, hidden = scan.groups_and_hidden(args.threshold, include_decided=args.all)
        hidden = 0 if args.all else hidden
        decided = {g.key: row.decision for g in groups
                   if (row := scan.is_decided(m.fingerprint for m in g.members)) is not None}  # shown by --all
        choices = _kept(groups, rule, prefer, library.chosen_keeps(groups), decided)
        if not args.json:
            _print_groups(groups, choices, args.threshold, rule, hidden, scan.age_text)
        for path, reason in scan.problems:
            print(f"not checked: {printable_path(path)}: {reason}", file=sys.stderr)
        _note_changed_since_index(groups, library.root)
        selections = [GroupSelection(g.members, keep) for g, (keep, _) in zip(groups, choices, strict=True)]
        # With --json the reports go to stderr as the actions run, and into the document printed after them.
        out = sys.stderr if args.json else sys.stdout
        reports: list[ActionReport] = []
        answered_no = False
        for action, target in sorted(chosen, key=lambda pair: pair[0].moves_files):  # lists before moves
            target = None if action.target is None else Path(target)
            if action.moves_files and not _confirmed(action, selections, target, args.yes):
                print("nothing was moved", file=out)
                answered_no = True
                break
            with _ctrl_c_stops_after_the_file() as stop:
                reports.append(library.act(action.name, selections, target, stop))
            _print_report(reports[-1], out, library)
            if stop.is_set():
                break
        if args.json:
            print(json.dumps({
                "threshold": args.threshold, "keep_rule": rule.value, "hidden_by_decisions": hidden,
                "scanned_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(scan.scanned_at)),
                "groups": [{"key": g.key, "keep_reason": reason, "decision": decided.get(g.key), "members": [
                    {**json_path(m.path), "keep": m.path in keep, "size": m.size,
                     "width": m.width, "height": m.height,
                     "date": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(m.date)),
                     "sharpness": round(m.sharpness, 2), "similarity": round(m.similarity, 4),
                     "agreeing": m.agreeing, "why": m.reason}  # agreeing: a script need not parse `why`
                    for m in g.members]} for g, (keep, reason) in zip(groups, choices, strict=True)],
                "problems": [{**json_path(path), "reason": reason} for path, reason in scan.problems],
                "actions": [_json_report(r) for r in reports],
            }, indent=1))
        if any(r.stopped == STOPPED_BY_USER for r in reports):
            return 130  # as any command Ctrl+C stops; the report said what moved and how to undo it
        if any(_ended_by_error(r) for r in reports):
            return 2  # the report said what was done before it
        return 1 if answered_no or any(_failed_entirely(r) for r in reports) else 0
    finally:
        library.close()


def _kept(groups: list[DuplicateGroup], rule: KeepRule, prefer: Path | None, chosen: dict[str, frozenset[Path]],
          decided: dict[str, str]) -> list[tuple[frozenset[Path], str]]:
    """What is kept of each group, and why: every photo of a group the user marked "keep all" or "not
    duplicates" (`decided`, group key -> decision: --all lists such groups, and no action may touch them);
    the photos the user chose in the window where they did (a rule given here does not undo a choice made
    photo by photo); else the rule's."""
    kept = []
    for group in groups:
        if group.key in decided:
            said = "keep all" if decided[group.key] == "keep_all" else "not duplicates"
            kept.append((frozenset(m.path for m in group.members), f"all: you marked them '{said}'"))
        elif group.key in chosen:
            kept.append((chosen[group.key], "your choice (made in the window)"))
        else:
            choice = choose_keeper(group.members, rule, prefer)
            kept.append((frozenset(m.path for m in (choice.member, *choice.same_file)), choice.reason))
    return kept


def _print_groups(groups, choices, threshold: float, rule: KeepRule, hidden: int, scanned: str) -> None:
    photos = sum(len(g.members) for g in groups)
    print(f"{len(groups)} group{'s' if len(groups) != 1 else ''} of near-duplicates, {photos} photos "
          f"(threshold {threshold:.2f}, keeping the {rule.label}; scanned {scanned})")
    if groups:  # not a quality score: QA read a kept photo's 0.99 beside another's 1.00 as the wrong one kept
        print("match: how surely a photo is the same shot as the one it was matched to (1.00: the group's first)")
    if any(m.agreeing for g in groups for m in g.members):
        print("match*: in the group as it matches several of its photos, none surely enough alone")
    for number, (group, (keep, reason)) in enumerate(zip(groups, choices, strict=True), 1):
        print(f"\ngroup {number}: {len(group.members)} photos, {size_text(group.total_size)}; keep: {reason}")
        largest = max(m.size for m in group.members)
        for m in sorted(group.members, key=lambda m: m.path not in keep):  # the kept photo first, as in the window
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(m.date))
            size = f"{m.width}x{m.height}"
            print(f"  {'keep' if m.path in keep else '    '}  {size:<10} {size_text(m.size, like=largest):>8}  "
                  f"{when}  sharpness {m.sharpness:8.1f}  match {m.similarity:.2f}{'*' if m.agreeing else ' '} "
                  f"{printable_path(m.path)}")
    if hidden:
        print(f"\n{hidden} group{'s' if hidden != 1 else ''} hidden by earlier decisions (--all shows them)")


def _confirmed(action: BulkAction, selections: list[GroupSelection], target: Path | None, assume_yes: bool) -> bool:
    """Ask before files move (the answer defaults to no); --yes answers for scripts."""
    if assume_yes:
        return True
    question = action.confirmation(selections, target)
    if not sys.stdin.isatty():
        raise ActionError(f"{question.splitlines()[0]} Add --yes to answer yes without a terminal.")
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)  # stdout may be --json's document
    try:
        return input().strip().lower() in ("y", "yes")
    except (KeyboardInterrupt, EOFError):  # Ctrl+C or Ctrl+D at the question: no, and nothing has moved yet
        print(file=sys.stderr)
        return False


def _failed_entirely(report: ActionReport) -> bool:
    """An action (or an undo) that did no file and met problems: its command exits 1. One that did some
    files but not all exits 0, its summary saying how many were left as they were."""
    return not report.done and bool(report.problems)


def _ended_by_error(report: ActionReport) -> bool:
    """An action or undo that a full disk stopped part-way, or kept the library from noting: an error (exit 2),
    as a full disk is elsewhere."""
    return report.stopped is not None or report.unnoted is not None


def _json_moves(done: list[tuple[Path, Path | None]]) -> list[dict[str, str | None]]:
    """An action's (from, to) pairs for --json; `to` is null where a file went to no path."""
    return [{**json_path(source, "from"), **(json_path(target, "to") if target is not None else {"to": None})}
            for source, target in done]


def _json_report(report: ActionReport) -> dict:
    problems = [*report.problems, *((path, BACK_BY_HAND) for path in report.back_by_hand)]
    return {"kind": report.kind, "action_id": report.action_id, "done": _json_moves(report.done),
            "problems": [{**json_path(path), "reason": why} for path, why in problems],
            "stopped": report.stopped,  # why it ended before its last file (a full disk), or null
            # why the library could not note the files moved (they moved, undo puts them back), or null
            "library_not_updated": report.unnoted,
            # put back, but not searchable until the next index (changed while away)
            "to_index": [json_path(path) for path in report.to_index]}


def _print_report(report: ActionReport, out, library: Library) -> None:
    text = report.summary()
    undoable = report.kind in BULK_ACTIONS and BULK_ACTIONS[report.kind].undoable
    if undoable and report.done:
        them = "it" if len(report.done) == 1 else "them"
        text += f" (action {report.action_id}; `{_undo_command(library.library_dir, report.action_id)}` puts {them} back)"
    print(text, file=out)
    if report.to_index:
        print(f"`vitgallery index {printable_path(library.root)}` makes {count_text(len(report.to_index), 'photo')} "
              "searchable again", file=out)
    for path, problem in report.problems:
        print(f"  {printable_path(path)}: {problem}", file=out)


def _print_history(library: Library, as_json: bool = False) -> int:
    entries = library.action_history()
    if as_json:
        print(json.dumps({"actions": [{"action_id": e.action_id, "kind": e.kind, "text": e.text,
                                       "undoable": e.undoable} for e in entries]}, indent=1))
        return 0
    if not entries:
        print("no action yet")
    for entry in entries:
        print(f"{entry.action_id:>5}  {entry.text}{'  (--undo ' + str(entry.action_id) + ')' if entry.undoable else ''}")
    return 0


def cmd_repair(args: argparse.Namespace) -> int:
    from vitgallery.core.repair import repair_library  # only this command needs it

    report = repair_library(library_dir_arg(args.library))
    print("\n".join(report.done) if report.done else "nothing to repair")
    return 0


# -- organising: arrange, groups, sort, watch ------------------------------------------------------

def library_of(folders: list[Path], library_dir: str | None) -> Library:
    """--library DIR; else the library of the first of these folders (or of a folder above one) that has
    one; else the library used last, where one of the folders is in its photo folder (one that holds
    none of them would embed them all again with another library's model, and its log could not put
    them back)."""
    if library_dir is not None:
        return open_library_arg(library_dir)
    for folder in folders:
        real = Path(os.path.realpath(folder))  # a folder through a link: the library of where it leads
        found = _first_with_a_library((folder, *folder.parents)) or _first_with_a_library((real, *real.parents))
        if found is not None:
            return Library.open(library_dir=default_library_dir(found))
    library = open_library_arg(None)
    if folders and not any(library.relative_path(folder) is not None for folder in folders):
        root = library.root
        library.close()
        raise LibraryError(f"{' and '.join(printable_path(f) for f in folders)} not in a library: the one used last is "
                           f"for {printable_path(root)}. Run `vitgallery index FOLDER` first, or pass --library DIR")
    return library


def cmd_arrange(args: argparse.Namespace) -> int:
    folder = Path(args.folder).expanduser().absolute()
    if not folder.is_dir():  # said first: which library it would be in matters once it is a folder
        raise OrganiseError(f"{printable_path(folder)} is {'a file' if folder.exists() else 'not there'}: "
                            "arrange takes a folder of the library")
    library = library_of([folder], args.library)
    try:
        order = arrange_folder(library, folder)
        if args.json:
            raw: dict[str, str] = {}
            print(json.dumps({"order": [_json_text(p, raw) for p in order], **_bytes_of(raw)}, indent=1))
        elif order:
            print("\n".join(printable_path(p) for p in order))
        else:  # said on stderr: the output is a list of paths, one per line, that scripts read
            print(f"no photos in {printable_path(folder)}", file=sys.stderr)
        return 0
    finally:
        library.close()


def cmd_groups(args: argparse.Namespace) -> int:
    library = open_library_arg(args.library)
    try:
        _note_library_out_of_date(library)
        grouping = find_groups(library, min_size=args.min_size)
        if args.json:
            raw: dict[str, str] = {}
            print(json.dumps({
                "groups": [{"members": [_json_text(p, raw) for p in g.members],
                            "representative": _json_text(g.representative, raw), "name": g.name}
                           for g in grouping.groups],
                "ungrouped": [_json_text(p, raw) for p in grouping.ungrouped], **_bytes_of(raw)}, indent=1))
            return 0
        grouped = sum(len(g.members) for g in grouping.groups)
        print(f"{count_text(len(grouping.groups), 'group')} of at least {args.min_size} photos ({count_text(grouped, 'photo')}; "
              f"{len(grouping.ungrouped)} in no group)")
        for number, group in enumerate(grouping.groups, 1):
            title = f"group {number}" + (f" “{group.name}”" if group.name else "")
            print(f"\n{title}: {len(group.members)} photos, the most typical first")
            for path in group.members:
                print(f"  {printable_path(path)}")
        if grouping.ungrouped:
            print(f"\nin no group: {count_text(len(grouping.ungrouped), 'photo')}")
            for path in grouping.ungrouped:
                print(f"  {printable_path(path)}")
        return 0
    finally:
        library.close()


def cmd_sort(args: argparse.Namespace) -> int:
    unsorted, examples = Path(args.unsorted).expanduser().absolute(), Path(args.examples).expanduser().absolute()
    library = library_of([unsorted, examples], args.library)
    try:
        embedders: list[Embedder] = []  # loaded once, and only when a photo outside the library needs it

        def load() -> Embedder:
            if not embedders:
                embedders.append(library.load_embedder(device=args.device, weights=args.weights))
            return embedders[0]

        plan = suggest_folders(library, unsorted, examples, load, finetune=args.finetune, progress=_organise_progress())
        for path, reason in plan.problems:
            role = "example not used" if Path(path).is_relative_to(examples) else "not sorted"
            print(f"{role}: {printable_path(path)}: {reason}", file=sys.stderr)
        report = None
        if args.apply:
            with _ctrl_c_stops_after_the_file() as stop:
                report = apply_suggestions(library, plan.suggestions, stop)
        if args.json:
            print(json.dumps({
                "method": plan.method, "held_out_accuracy": plan.accuracy, "held_out": plan.held_out,
                "not_sure_below": CONFIDENT_FROM[plan.method],
                # folder: the likeliest one; sure: its confidence reaches the threshold (only those move)
                "suggestions": [{**json_path(s.path), **json_path(s.likeliest, "folder"),
                                 "confidence": round(s.confidence, 4), "sure": s.folder is not None}
                                for s in plan.suggestions],
                "moved": [] if report is None else _json_moves(report.done),
                "action_id": None if report is None else report.action_id,  # what --undo takes back
                # photos that could not be read (not sorted), then the sure ones that could not be moved
                "problems": [{**json_path(path), "reason": why}
                             for path, why in [*plan.problems, *(report.problems if report else [])]],
            }, indent=1))
        else:
            right = ", ".join(f"{method} {plan.right_on_held_out(method)}" for method in sorted(plan.accuracy))
            print(f"sorted by: {plan.method} (examples held out sorted right: {right or 'too few examples to hold any out'})")
            for s in plan.suggestions:
                unlike = "; unlike its examples" if plan.unlike_its_examples(s) else ""
                where = (printable_path(s.folder) if s.folder
                         else f"not sure (perhaps {printable_path(s.likeliest.name)}{unlike})")
                print(f"  {s.shown_confidence:5.2f}  {printable_path(s.path)}  ->  {where}")
            sure = sum(1 for s in plan.suggestions if s.folder is not None)
            print(f"{count_text(len(plan.suggestions), 'photo')}: {sure} sure, {len(plan.suggestions) - sure} not sure "
                  f"(below {CONFIDENT_FROM[plan.method]:.2f}, or unlike the folder's examples); "
                  + ("the sure ones are moved" if args.apply else "nothing moved: --apply moves the sure ones"))
        if report is not None:
            try:
                moved = [p for pair in report.done for p in pair if library.relative_path(p) is not None]
                # the library follows the moves now rather than at its next index: what is new to it (sorted in
                # from elsewhere) is searchable before the summary is said
                if moved and not library.index_paths(load(), moved).cancelled:
                    report.to_index = []
            finally:  # also when that fails: what moved, and how to undo it, is said all the same
                print(report.summary() + _sort_undo_hint(library, report), file=sys.stderr)
                for source, destination in report.done:
                    if destination.name != source.name:
                        print(f"  {printable_path(source.name)} is {printable_path(destination)}: a photo of that name "
                              "was there", file=sys.stderr)
                for path, problem in report.problems:
                    print(f"  {printable_path(path)}: {problem}", file=sys.stderr)
        if report is not None and report.stopped == STOPPED_BY_USER:
            return 130
        return 1 if report is not None and _failed_entirely(report) else 0
    finally:
        library.close()


@contextmanager
def _ctrl_c_stops_after_the_file() -> Iterator[threading.Event]:
    """While files move: the first Ctrl+C ends the action after the file it is moving, so that its report
    says what moved and how to undo it, and the library follows every file (stopped at any point, the
    moved photos stayed in the library and the message named no action); a second one stops at once."""
    pressed = threading.Event()

    def on_ctrl_c(signum, frame) -> None:
        if pressed.is_set():
            raise KeyboardInterrupt
        pressed.set()
        print("\nstopping after this file (Ctrl+C again stops at once)", file=sys.stderr, flush=True)

    with _signal_handled(signal.SIGINT, on_ctrl_c):
        yield pressed


@contextmanager
def _signal_handled(signum: int, handler) -> Iterator[None]:
    """`handler` for `signum` while the block runs, the handler before put back after."""
    try:
        previous = signal.signal(signum, handler)
    except ValueError:  # not the main thread (a test's): no signal to catch
        yield
        return
    try:
        yield
    finally:
        signal.signal(signum, previous)


def _organise_progress():
    is_tty = sys.stderr.isatty()

    def report(p: OrganiseProgress) -> None:
        if is_tty and p.total:
            sys.stderr.write(f"\r\033[K{p.phase} {p.done}/{p.total}")
            if p.done == p.total:
                sys.stderr.write("\r\033[K")
            sys.stderr.flush()
    return report


def cmd_watch(args: argparse.Namespace) -> int:
    folder = Path(args.folder).expanduser().absolute() if args.folder else None
    if folder is not None and not folder.is_dir():
        raise LibraryError(f"{printable_path(folder)} is not a folder")
    if folder is not None and args.library is None:  # a folder through a link: its target's library, as index
        folder = known_photo_folder(folder)
    library = library_of([folder] if folder else [], args.library)
    try:
        if folder is not None and library.root != folder:
            raise LibraryError(f"{folder} has no library yet ({library.library_dir} is the library of "
                               f"{library.root}): run `vitgallery index {folder}` first")
        embedder = library.load_embedder(device=args.device, weights=args.weights)

        def on_batch(batch: WatchBatch) -> None:
            more = len(batch.changed) - WATCH_CHANGES_NAMED
            named = (", ".join(printable_path(path) for path in batch.changed[:WATCH_CHANGES_NAMED])
                     + (f" and {more} more" if more > 0 else ""))
            if batch.summary is None:
                print(f"error: {batch.paths} changes not applied ({named}): {batch.error}", file=sys.stderr, flush=True)
            else:
                print(f"{time.strftime('%H:%M:%S')} changed: {named}\n{format_summary(batch.summary)}", flush=True)

        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with FolderWatcher(library, embedder, on_batch=on_batch, decode_workers=args.workers):
            # Watching first, then catching up with what changed while nobody watched: a change made
            # meanwhile waits for the catch-up (one indexing run at a time) and follows it.
            print(f"watching {printable_path(library.root)} (Ctrl+C stops); catching up first…", file=sys.stderr,
                  flush=True)
            progress = TerminalProgress()
            summary = library.index(embedder, progress=progress, decode_workers=args.workers)
            progress.finish()
            print(format_summary(summary), flush=True)
            stop.wait()  # Ctrl+C ends it as it ends every command: said, exit status 130 (main)
        print("stopped watching (asked to end)", file=sys.stderr)  # a service manager's stop, say
        return 0
    finally:
        library.close()


def cmd_desktop_entry(args: argparse.Namespace) -> int:
    print(run_install_script(uninstall=args.uninstall))
    return 0


def vector_store(text: str) -> VectorStoreSetting:
    try:
        return VectorStoreSetting.parse(text)
    except VectorStoreError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def positive_int(text: str) -> int:
    value = whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is less than 1")
    return value


def result_count(text: str) -> int:
    value = positive_int(text)
    if value > MAX_RESULTS:
        raise argparse.ArgumentTypeError(f"{value} is more than {MAX_RESULTS:,}")
    return value


def worker_count(text: str) -> int:
    value = whole_number(text)
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


def duplicate_threshold(text: str) -> float:
    value = unit_interval(text)
    if value == 0:  # a score of 0 is no match at all: every photo would be one group
        raise argparse.ArgumentTypeError("0 groups photos that do not match at all: give a threshold above 0 "
                                         "(the window's lowest is 0.01)")
    return value


def group_size(text: str) -> int:
    value = whole_number(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"{value} is less than 2: a group has at least 2 photos")
    return value


def region_box(text: str) -> Region:
    try:
        return Region.parse(text)
    except RegionError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def model_name(text: str) -> str:
    # Any registered model is accepted (the test suite indexes with its tiny test model); help and
    # errors name only the ones meant for users.
    if text not in MODELS:
        raise argparse.ArgumentTypeError(f"unknown model {text!r}: choose one of {', '.join(USER_MODELS)}")
    return text


def weights_file(text: str) -> Path:
    path = Path(text).expanduser()
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is a folder: give the weights file in it (a .pth or .safetensors)")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no weights file at {path}")
    return path


def add_library_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--library", metavar="DIR",
                        help="the library folder to use (default: the library used last, by the window or a command)")


class _CommandParser(argparse.ArgumentParser):
    """A command's parser: an option it does not know is said with the command's own usage (argparse
    hands such leftovers to the top parser, whose usage lists the commands, not the command's options)."""

    def parse_known_args(self, args=None, namespace=None):
        namespace, extra = super().parse_known_args(args, namespace)
        if extra:
            self.error(f"unrecognized arguments: {' '.join(extra)}")
        return namespace, extra


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vitgallery",
        usage="vitgallery [-v] [--weights FILE] [--library DIR] [--find-similar] [FOLDER | PHOTO]\n"
              "       vitgallery [-v] {index,search,explain,status,duplicates,repair,arrange,groups,sort,watch,desktop-entry} ...",
        description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"vitgallery {__version__}",
                        help="print the version and exit")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log details of what a command does (to the terminal and the log file)")
    # -v after the command too; SUPPRESS keeps a command's default from undoing a -v given before it
    verbose = argparse.ArgumentParser(add_help=False)
    verbose.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                         help="log details of what the command does (to the terminal and the log file)")
    sub = parser.add_subparsers(dest="command", required=True, title="commands", metavar="COMMAND", prog="vitgallery",
                                parser_class=_CommandParser)

    p = sub.add_parser("index", parents=[verbose], help="add a folder's photos to its library (later runs add only new or changed ones)",
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
                   help="auto: with torch bf16 on GPUs and on CPUs with native bf16, else fp32 (torch's int8 is "
                        "faster on CPU but loses about 1 mAP point); int8 with OpenVINO (bf16 on CPUs with AMX), or the "
                        "precision the library was indexed at")
    p.add_argument("--runtime", default=DEFAULT_RUNTIME, choices=RUNTIMES,
                   help="auto (default): openvino on a CPU where it is installed (pip install 'vitgallery[openvino]'), "
                        "torch on a GPU or without it, or the runtime the library was indexed with; openvino runs "
                        "int8 calibrated on the library's own photos at its first index, about twice as fast")
    p.add_argument("--workers", type=worker_count, default=None, metavar="N",
                   help="processes that decode photos (default: adapts to the machine)")
    p.add_argument("--vector-store", type=vector_store, metavar="hnswlib|qdrant[:URL]",
                   help="where the library searches its vectors: an hnswlib file in the library (default), "
                        "Qdrant in the library folder, or a Qdrant server at URL; remembered by the library")
    p.add_argument("--forget-missing", action="store_true",
                   help="remove photos that are gone even when most of the library went at once, or a drive "
                        "mounted inside the folder disappeared (kept by default: an unplugged drive looks the same)")
    p.add_argument("--repoint", action="store_true",
                   help="the library's photo folder was renamed or moved to FOLDER: follow it (the library of "
                        "--library DIR; else the one of a folder gone whose photos are in FOLDER, or the one "
                        "used last)")
    p.set_defaults(run=cmd_index)

    p = sub.add_parser("search", parents=[verbose], help="the photos of the library most like one or more images",
                       description="Print the photos of the library most like each IMAGE, best first. "
                                   "✓ marks a photo whose keypoints match the query's and whose picture agrees with it "
                                   "once aligned: the same photo, also where the duplicates check groups it on fewer "
                                   "keypoints whose aligned pixels agree; ✓look one too smooth for keypoints whose "
                                   "shapes and shades align with the query's, as the duplicates check groups such "
                                   "copies. --json gives each hit's \"verified\" (and \"agreement\", the aligned "
                                   "overlap's share that agrees, or \"likeness\", the grey levels' correlation, where "
                                   "the duplicates check verified it).")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="an image file, a photo of the library, or an http(s) address")
    add_library_option(p)
    p.add_argument("--k", type=result_count, default=20, metavar="N", help="how many photos to list (default 20)")
    p.add_argument("--json", action="store_true",
                   help="one JSON object: query -> [{path, score, cosine, inliers, verified, agreement, likeness}], best first")
    p.add_argument("--no-verify", action="store_true",
                   help="rank by the vectors alone, without checking the top 50 with keypoints (faster)")
    p.add_argument("--box", type=region_box, metavar="X,Y,W,H",
                   help="search with this part of IMAGE alone: pixels of the photo as a viewer shows it "
                        "(EXIF orientation applied), at its full size")
    p.add_argument("--like", action="append", metavar="PATH",
                   help="a photo of the library like what you look for: the search moves towards it (repeatable)")
    p.add_argument("--unlike", action="append", metavar="PATH",
                   help="a photo of the library unlike it: the search moves away from it and leaves it out "
                        "(repeatable)")
    p.add_argument("--weights", type=weights_file, metavar="FILE",
                   help="the weights file, if the library was indexed from one now at another path")
    p.add_argument("--device", default="auto", choices=DEVICES, help="where the model runs (default: auto)")
    p.set_defaults(run=cmd_search)

    p = sub.add_parser("explain", parents=[verbose], help="a picture of why two photos match",
                       description="Draw QUERY and RESULT side by side: a heat map over both of the patches most "
                                   "alike across the two, and lines between the keypoints that one geometric "
                                   "map carries across when they show the same scene. It prints the pair's "
                                   "vector similarity and its verdict as the search marks it: ✓ with the matching "
                                   "keypoints, ✓look for a copy too smooth for keypoints, or the same scene, not "
                                   "the same photo.")
    p.add_argument("query", metavar="QUERY", help="an image file, a photo of the library, or an http(s) address")
    p.add_argument("result", metavar="RESULT", help="the photo it matched")
    p.add_argument("--out", required=True, metavar="FILE.png", help="the picture to write (.png or .jpg), outside the photo folder")
    add_library_option(p)
    p.add_argument("--attention", action="store_true",
                   help="show where the model itself looks in each photo (its CLS attention, ViT models) "
                        "instead of the patches most alike across the two")
    p.add_argument("--opacity", type=unit_interval, default=0.55, metavar="X",
                   help="of the heat map over the photos, 0..1 (default 0.55)")
    p.add_argument("--weights", type=weights_file, metavar="FILE",
                   help="the weights file, if the library was indexed from one now at another path")
    p.add_argument("--device", default="auto", choices=DEVICES, help="where the model runs (default: auto)")
    p.set_defaults(run=cmd_explain)

    p = sub.add_parser("status", parents=[verbose], help="what the library holds", description="What the library holds: its "
                       "folder, how many photos, which files were skipped and why.")
    add_library_option(p)
    p.set_defaults(run=cmd_status)

    p = sub.add_parser("duplicates", parents=[verbose], help="groups of near-duplicate photos (bursts, re-saves, edits, crops)",
                       description="List groups of near-duplicate photos and which one of each to keep.",
                       epilog="Exit status: 0 when done, also when an action or --undo left some files as they "
                              "were (its summary says how many); 1 when one did no file at all because each "
                              "failed, when --undo found nothing left to put back, or when the question was "
                              "answered no; 2 on an error, also when one stopped part-way or could not note in "
                              "the library what moved (a full disk: its summary says what was done before it); "
                              "130 when Ctrl+C stopped it (once: after the file it was moving, its summary saying "
                              "what moved and how to undo it).")
    add_library_option(p)
    p.add_argument("--threshold", type=duplicate_threshold, default=DEFAULT_THRESHOLD, metavar="T",
                   help=f"above 0 and up to 1, higher groups fewer photos (default {DEFAULT_THRESHOLD})")
    p.add_argument("--keep", default=DEFAULT_RULE.value, choices=[r.value for r in KeepRule],
                   help="which photo of a group to mark as kept, where you did not choose in the window (best: "
                        "the copy no edit touched, by a quality score; the others by one property)")
    p.add_argument("--prefer", metavar="FOLDER", help="the preferred folder for --keep folder")
    p.add_argument("--all", action="store_true", help="also show groups you marked 'not duplicates' or 'keep all' (every photo of "
                        "them kept: no action touches them)")
    p.add_argument("--json", action="store_true",
                   help='print the groups as JSON, and what each action did: "actions": [{"kind", "action_id", '
                        '"done": [{"from", "to"}], "problems": [{"path", "reason"}], "stopped", '
                        '"library_not_updated", "to_index"}] (--undo: that document '
                        'with its one action; --history: "actions": [{"action_id", "kind", "text", "undoable"}])')
    acting = p.add_argument_group("acting on the photos not kept (one bulk action each)")
    for action in BULK_ACTIONS.values():
        if action.target is None:
            acting.add_argument(f"--{action.name}", action="store_true", help=action.help)
        else:
            acting.add_argument(f"--{action.name}", metavar=action.target.upper(), help=action.help)
    acting.add_argument("--yes", action="store_true", help="move files without asking first")
    acting.add_argument("--history", action="store_true", help="list the actions done, newest first")
    acting.add_argument("--undo", type=positive_int, metavar="ACTION", help="put back what action ACTION moved")
    acting.add_argument("--into", action="append", default=[], metavar="FOLDER",
                        help="with --undo: a folder outside the photo folder that the action moved photos from "
                             "(`sort` does), to put them back into; repeat for several. Without it an undo puts "
                             "files back only into the photo folder")
    p.set_defaults(run=cmd_duplicates)

    p = sub.add_parser("repair", parents=[verbose], help="mend a damaged library: re-check it, drop what cannot be read, rebuild the index",
                       description="Re-check every row of the library, drop what cannot be read (those photos are "
                                   "embedded again by the next index), rebuild the index file, and say what was done.")
    add_library_option(p)
    p.set_defaults(run=cmd_repair)

    p = sub.add_parser("arrange", parents=[verbose], help="a folder's photos in an order where similar ones sit side by side",
                       description="Print the photos under FOLDER (a folder of the library) in an order where "
                                   "similar photos, copies and edits sit side by side. Files with no vector (not indexed yet, or unreadable: `status` lists those) come last, by name.")
    p.add_argument("folder", metavar="FOLDER", help="the folder to arrange (the library's folder or one inside it)")
    add_library_option(p)
    p.add_argument("--json", action="store_true",
                   help='print {"order": [path, ...]}: each photo as its path (a name that is not UTF-8 also as '
                        'bytes in the top-level "path_bytes")')
    p.set_defaults(run=cmd_arrange)

    p = sub.add_parser("groups", parents=[verbose], help="the library's photos in visual groups (subjects, places, events)",
                       description="Cluster the library's photos into visual groups, each listed with its most "
                                   "typical photo first; photos that fit no group are listed apart.")
    add_library_option(p)
    p.add_argument("--min-size", type=group_size, default=DEFAULT_MIN_GROUP, metavar="N",
                   help=f"the smallest group (default {DEFAULT_MIN_GROUP}); larger leaves the smaller groups out; 2 "
                        "looks for pairs too, so the photos fall into finer groups")
    p.add_argument("--json", action="store_true",
                   help='print {"groups": [{"members", "representative", "name"}], "ungrouped": [...]}, each '
                        'photo as its path (a name that is not UTF-8 also as bytes in the top-level "path_bytes"); '
                        '"name" is the one given to the group on the window\'s Groups page, else null')
    p.set_defaults(run=cmd_groups)

    p = sub.add_parser("sort", parents=[verbose], help="suggest a folder for each unsorted photo, learned from folders already sorted",
                       description="Learn from the photos in the subfolders of DIR (Pets/, Receipts/, …) and "
                                   "suggest one of those subfolders for each photo under UNSORTED, with a "
                                   "confidence; below a threshold the suggestion is not sure.")
    p.add_argument("unsorted", metavar="UNSORTED",
                   help="a folder of photos to sort (photos already in a subfolder of DIR are left out)")
    p.add_argument("--examples", required=True, metavar="DIR",
                   help="a folder whose subfolders are the folders to sort into; their photos are the examples")
    add_library_option(p)
    p.add_argument("--weights", type=weights_file, metavar="FILE",
                   help="the weights file, if the library was indexed from one now at another path")
    p.add_argument("--device", default="auto", choices=DEVICES, help="where the model runs (default: auto)")
    p.add_argument("--finetune", action="store_true",
                   help="also fine-tune the model's last block on the examples, and sort with it where it beats "
                        "the head and the vote on the examples held out (seconds on a GPU, minutes on a CPU)")
    p.add_argument("--apply", action="store_true", help="move the photos whose suggestion is sure (one undoable action)")
    p.add_argument("--json", action="store_true",
                   help='print {"suggestions": [{"path", "folder", "confidence", "sure"}], "moved": [{"from", '
                        '"to"}], "action_id" (of the moves, for duplicates --undo), "problems": [{"path", "reason"}], '
                        '...}')
    p.set_defaults(run=cmd_sort)

    p = sub.add_parser("watch", parents=[verbose], help="keep the library current while its folder changes (until Ctrl+C)",
                       description="Catch up with FOLDER, then index new, changed, moved and deleted photos "
                                   "within seconds of each change, in batches, until Ctrl+C.")
    p.add_argument("folder", nargs="?", metavar="FOLDER", help="the photo folder (default: the library used last)")
    add_library_option(p)
    p.add_argument("--weights", type=weights_file, metavar="FILE",
                   help="the weights file, if the library was indexed from one now at another path")
    p.add_argument("--device", default="auto", choices=DEVICES, help="where the model runs (default: auto)")
    p.add_argument("--workers", type=worker_count, default=None, metavar="N",
                   help="processes that decode photos (default: adapts to the machine)")
    p.set_defaults(run=cmd_watch)

    p = sub.add_parser("desktop-entry", parents=[verbose],
                       help="put vitgallery in the applications menu and in \"Open with\" for photos (Linux)",
                       description="Install the desktop entry and icons under ~/.local/share (XDG_DATA_HOME), "
                                   "pointing at this vitgallery: what pipx, a venv or the bundle do not do.")
    p.add_argument("--uninstall", action="store_true", help="take the entry and icons out again")
    p.set_defaults(run=cmd_desktop_entry)
    return parser


# What is kept when Ctrl+C stops a command, by command; the others change nothing that needs saying.
EMBEDDED_KEPT = "what was embedded so far is saved; run it again to continue"
MOVES_LOGGED = "any files it had moved are in `vitgallery duplicates --history`, and --undo N puts them back"
INTERRUPTED = {"index": EMBEDDED_KEPT,
               "watch": "stopped watching; what was embedded is saved, and the next run catches up with what "
                        "changes meanwhile", "duplicates": MOVES_LOGGED, "sort": MOVES_LOGGED}


def _stop_as_on_ctrl_c(signum, frame) -> None:
    """SIGTERM (`kill`, a session or service ending) stops a command as Ctrl+C does, saying what it keeps
    and ending its workers, where it killed it at once."""
    raise KeyboardInterrupt


def _end_child_processes() -> None:
    """Kill what a command stopped by Ctrl+C still runs (decode workers): Python's exit waits for every child
    process, and a worker that a second Ctrl+C left waiting for work would hold it forever."""
    for child in multiprocessing.active_children():
        child.kill()


def main(argv: list[str]) -> int:
    """Run one subcommand (argv[0] is its name, or an option such as --help)."""
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    route_pillow_warnings()
    log.info("vitgallery %s: %s", __version__, " ".join(argv))
    try:
        with _signal_handled(signal.SIGTERM, _stop_as_on_ctrl_c):
            return args.run(args)
    except USER_ERRORS as exc:
        log.info("%s stopped: %s", args.command, exc)  # the file keeps it; the user reads the line below
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except sqlite3.DatabaseError as exc:  # a read the store did not expect to fail
        library = f" --library {args.library}" if getattr(args, "library", None) else ""
        print(f"error: the library database cannot be read ({exc}): run `vitgallery repair{library}`", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        _end_child_processes()
        said = getattr(args, "interrupted_note", None) or INTERRUPTED.get(args.command)
        print("interrupted" + (f": {said}" if said else ""), file=sys.stderr)
        return 130
