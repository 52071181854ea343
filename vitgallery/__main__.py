import sys

from vitgallery.cli import main

sys.exit(main())
