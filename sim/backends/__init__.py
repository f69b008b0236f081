"""Backends that write what people say: the offline `scripted` one, models behind provider SDKs, and plugins.

Invariant: `create(...)` is the only way the run loop gets a backend. It looks the name up in the
registry (`sim.backends.registry`: the built-ins, then the `raising_sim.backends` entry points) and
calls that backend's factory, so the layers around a model (reply cache, budget, prices) are stacked
in one place (`sim.backends.builtin.model_backend`); provider SDKs are imported only when a model
backend is created, and the environment is read only then.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from sim.backends.base import Backend, Line, Request, Utterance
from sim.backends.options import MODES, ModelOptions, Setup
from sim.backends.registry import BUILTIN_NAMES, BackendPluginError, get

if TYPE_CHECKING:
    from sim.backends.budget import Budget

NAMES = BUILTIN_NAMES
"""The built-in backends' names; `sim.backends.registry.names()` adds the third-party ones."""


def create(
    name: str,
    *,
    options: ModelOptions | None = None,
    db: Path | None = None,
    environ: Mapping[str, str] | None = None,
    budget: Budget | None = None,
) -> Backend:
    """The backend called `name`; a model backend caches its replies beside `db` and spends from `budget`.

    `budget` defaults to one of `options.max_cost` for this backend alone; worker processes pass one
    sharing a ledger, so the limit holds for the whole run.

    Raises:
        UsageError: an unknown backend, a missing model name, key or URL.
        BackendPluginError: a third-party backend that cannot be loaded, or makes a backend unlike its entry.
    """
    info = get(name)
    setup = Setup(options or ModelOptions(), db, os.environ if environ is None else environ, budget)
    backend = info.factory(setup)
    if backend.name != info.name or backend.concurrent != info.concurrent:
        backend.close()
        raise BackendPluginError(
            f"backend {info.name!r} ({info.origin}) made a backend named {backend.name!r} with concurrent="
            f"{backend.concurrent}, but registered concurrent={info.concurrent}; the two must agree"
        )
    return backend


__all__ = ["MODES", "NAMES", "Backend", "Line", "ModelOptions", "Request", "Utterance", "create"]
