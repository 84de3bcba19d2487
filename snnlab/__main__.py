"""``python -m snnlab`` is the ``snnlab`` command line."""
import sys

from .cli import main

sys.exit(main())
