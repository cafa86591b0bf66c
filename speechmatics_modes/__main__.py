"""``python -m speechmatics_modes``: the same command line as ``speechmatics-modes``."""

from __future__ import annotations

import sys

from speechmatics_modes._cli import main

if __name__ == "__main__":
    sys.exit(main())
