"""`python -m dagster_rs.bench runs [--n N] [--json PATH] [--dir PATH] [--ops ...] [--quick]`."""

from __future__ import annotations

import sys

from dagster_rs.bench import main

if __name__ == "__main__":
    sys.exit(main())
