"""``python -m interstable``: the command line (see :mod:`interstable.cli`)."""

from __future__ import annotations

import sys

from interstable.cli import main

if __name__ == "__main__":
    sys.exit(main())
