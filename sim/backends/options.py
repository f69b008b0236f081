"""How a run asks for its backend: the model options, and the `Setup` `create` hands a backend's factory.

Invariant: plain frozen values; the model options are read by the model backends' factories only (the
offline ones ignore them), and nothing here reads the environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sim.backends.budget import Budget

MODES = ("turn", "script")


@dataclass(frozen=True)
class ModelOptions:
    """How to reach and pay for a model (ignored by the scripted backend)."""

    model: str | None = None
    base_url: str | None = None
    mode: str = "turn"
    max_cost: float | None = None
    prices: Path | None = None
    timeout: float = 60.0
    max_retries: int = 2
    batch: bool = False


@dataclass(frozen=True)
class Setup:
    """What `sim.backends.create` hands a backend's factory."""

    options: ModelOptions
    db: Path | None  # the corpus database: a model backend keeps its reply cache beside it
    environ: Mapping[str, str]  # the environment to read keys and URLs from (never `os.environ` directly)
    budget: Budget | None  # the run's shared ledger; None: one of `options.max_cost` for this backend alone
