"""Entry point: `vitgallery [FOLDER | PHOTO]` opens the window; index, search, explain, status and duplicates
work headless.

The one module above both the window (vitgallery.ui) and the subcommands (vitgallery.commands), which
never import each other. Kept free of heavy imports on purpose: decoder worker processes (forkserver)
import the main module again, and the console script's main module imports this one. With torch
imported here every decode worker would spend seconds and hundreds of MiB loading it.
"""

from __future__ import annotations

import argparse
import difflib
import os
import signal
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        return _run(argv)
    except KeyboardInterrupt:  # before a command could say what it keeps (importing, reading its options)
        print("interrupted", file=sys.stderr)
        return 130


def _run(argv: list[str]) -> int:
    from vitgallery import commands  # here, not at the top: see the module's docstring
    from vitgallery.commands import COMMANDS

    first = next((arg for arg in argv if not arg.startswith("-")), None)
    asks = [arg for arg in argv if arg not in ("-v", "--verbose")][:1]  # `vitgallery -v --version` too
    if first in COMMANDS or any(arg in ("-h", "--help", "--version") for arg in asks):
        for stream in (sys.stdout, sys.stderr):
            # A terminal in a locale that cannot write ✓ or … (ISO-8859-1) gets them escaped, not a traceback.
            if hasattr(stream, "reconfigure"):
                stream.reconfigure(errors="backslashreplace")
        try:
            status = commands.main(argv)
            sys.stdout.flush()  # output still buffered meets a closed pipe here, not at exit
            return status
        except BrokenPipeError:
            return _reader_gone()
    return run_window(argv)


def _reader_gone() -> int:
    """`vitgallery duplicates | head -1`: the reader closed the pipe. Stop quietly, as the tools killed by
    SIGPIPE do (their exit status), with stdout pointed at /dev/null: Python's last flush at exit would
    meet the closed pipe again and print an error."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 128 + signal.SIGPIPE


def build_window_parser() -> argparse.ArgumentParser:
    from vitgallery.commands import DESCRIPTION, EPILOG, WINDOW_OPTIONS, weights_file

    parser = argparse.ArgumentParser(prog="vitgallery", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", nargs="?", metavar="FOLDER | PHOTO", help=WINDOW_OPTIONS["FOLDER | PHOTO"])
    parser.add_argument("--weights", type=weights_file, metavar="FILE", help=WINDOW_OPTIONS["--weights FILE"])
    parser.add_argument("--library", metavar="DIR", help=WINDOW_OPTIONS["--library DIR"])
    parser.add_argument("--find-similar", action="store_true", help=WINDOW_OPTIONS["--find-similar"])
    parser.add_argument("-v", "--verbose", action="store_true", help="log details (to the terminal and the log file)")
    return parser


def run_window(argv: list[str]) -> int:
    from vitgallery.core.imageio import SUPPORTED_EXTENSIONS

    parser = build_window_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # `vitgallery serach photo.jpg`: a mistyped command, not a folder to open
        parser.error(_not_a_target(args.target or extra[0], Path(args.target or extra[0])))
    folder, query = None, None
    if args.target is not None:
        target = Path(args.target).expanduser()
        if target.is_dir():
            folder = target
        elif target.is_file() and target.suffix.lower() in SUPPORTED_EXTENSIONS:
            folder, query = target.parent, target
        else:
            parser.error(_not_a_target(args.target, target))
    from vitgallery.ui.platform_check import (  # no Qt yet: Qt aborts where this explains
        binding_problem,
        display_problem,
    )

    problem = display_problem()
    if problem is not None:
        print(f"vitgallery: {problem}", file=sys.stderr)
        return 1
    warning = binding_problem()
    if warning is not None:
        print(f"vitgallery: warning: {warning}", file=sys.stderr)
    from vitgallery.ui.app import run_app  # Qt only loads for the window

    return run_app(folder, Path(args.library) if args.library else None, weights=args.weights, query=query,
                   choose_query=args.find_similar and query is None, verbose=args.verbose)


def _not_a_target(text: str, path: Path) -> str:
    from vitgallery.commands import COMMANDS

    if text in COMMANDS:  # `vitgallery --weights F index …`: the option's value was taken for the command
        return f"the command goes first: `vitgallery {text} …`, then its options (--weights and --library too)"
    close = difflib.get_close_matches(text, COMMANDS, n=1)
    if close:
        return f"unknown command {text!r}: did you mean {close[0]!r}? (commands: {', '.join(COMMANDS)})"
    if path.exists():
        return f"{path} is neither a folder nor a photo"
    return f"{text!r} is not a command ({', '.join(COMMANDS)}) nor an existing folder"


if __name__ == "__main__":
    sys.exit(main())
