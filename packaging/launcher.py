"""The bundle's entry point: `vitgallery` frozen by PyInstaller, the same as `python -m vitgallery`."""

import multiprocessing
import sys

if __name__ == "__main__":
    # Indexing decodes in worker processes, which a frozen app starts by running this binary again.
    multiprocessing.freeze_support()
    from vitgallery.cli import main

    sys.exit(main())
