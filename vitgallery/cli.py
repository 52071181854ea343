"""Entry point: `vitgallery [FOLDER]` opens the window; index, search, explain, status and duplicates work
headless.

Kept free of heavy imports on purpose: decoder worker processes (forkserver) import the main module
again, and the console script's main module imports this one. With torch imported here every decode
worker would spend seconds and hundreds of MiB loading it.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from vitgallery.commands import main as run_command

    return run_command(argv)


if __name__ == "__main__":
    sys.exit(main())
