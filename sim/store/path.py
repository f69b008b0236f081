"""Where the corpus database is when no `--db` is given: `$SIM_DB`, else `outputs/raising.duckdb`.

Apart from `sim.store.db` so that the CLI can name the default before it imports DuckDB.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_DB = Path("outputs/raising.duckdb")


def default_db() -> Path:
    """The database path: $SIM_DB, else outputs/raising.duckdb."""
    return Path(os.environ.get("SIM_DB") or DEFAULT_DB)
