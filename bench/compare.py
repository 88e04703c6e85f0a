"""Side-by-side comparison of skipnet with its peers and ceilings (the same as `skipnet bench`).

    python bench/compare.py [--quick] [--json FILE] [--workloads W0,W1] [--threads N]

The implementation lives in skipnet/_bench/, so the installed command works without this
checkout; see bench/README.md for the protocol and the measured numbers."""

import sys

from skipnet.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
