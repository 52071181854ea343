"""Entry point: `vitgallery [FOLDER]` opens the window; index, search, status and duplicates work headless.

The one module above both the window (vitgallery.ui) and the subcommands (vitgallery.commands), which
never import each other. Kept free of heavy imports on purpose: decoder worker processes (forkserver)
import the main module again, and the console script's main module imports this one. With torch
imported here every decode worker would spend seconds and hundreds of MiB loading it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    from vitgallery import commands

    if argv and (argv[0] in commands.COMMANDS or argv[0].startswith("-")):
        return commands.main(argv)
    return run_window(argv)


def run_window(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vitgallery", description="open the vitgallery window")
    parser.add_argument("folder", nargs="?")
    parser.add_argument("--library")
    args = parser.parse_args(argv)
    from vitgallery.ui.app import run_app  # Qt only loads for the window

    return run_app(Path(args.folder) if args.folder else None, Path(args.library) if args.library else None)


if __name__ == "__main__":
    sys.exit(main())
