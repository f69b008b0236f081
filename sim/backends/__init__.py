"""Backends that write what people say: the offline `scripted` one here; real models in later modules.

Invariant: `create(name)` is the only way the engine gets a backend, so options and wrappers
(retries, caches, cost) are applied in one place.
"""

from __future__ import annotations

from sim.backends.base import Backend, Line, Request, Utterance
from sim.errors import UsageError

NAMES = ("scripted",)


def create(name: str, *, model: str | None = None) -> Backend:
    """The backend called `name`."""
    if name == "scripted":
        from sim.backends.scripted import ScriptedBackend

        return ScriptedBackend()
    raise UsageError(f"unknown backend {name!r} (expected one of: {', '.join(NAMES)})")


__all__ = ["NAMES", "Backend", "Line", "Request", "Utterance", "create"]
