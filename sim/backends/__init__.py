"""Backends that write what people say: the offline `scripted` one, and models behind provider SDKs.

Invariant: `create(...)` is the only way the run loop gets a backend, so the wrappers around a model
(reply cache, stage targets, prices, budget) are applied in one place; provider SDKs are imported
only when a model backend is created, and the environment is read only then.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sim.backends.base import Backend, Line, Request, Utterance
from sim.backends.providers.common import Provider

if TYPE_CHECKING:
    from sim.backends.cache import ReplyCache
    from sim.backends.model import Budget
from sim.errors import UsageError

NAMES = ("scripted", "anthropic", "openai-compatible")
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
    """
    if name == "scripted":
        from sim.backends.scripted import ScriptedBackend

        return ScriptedBackend()
    if name not in NAMES:
        raise UsageError(f"unknown backend {name!r} (expected one of: {', '.join(NAMES)})")
    options = options or ModelOptions()
    if not options.model:
        raise UsageError(f"--backend {name} needs --model (the model id, e.g. claude-sonnet-5)")
    if db is None:
        raise ValueError("a model backend needs the database path, to keep its reply cache beside it")
    return _model_backend(name, options, db, os.environ if environ is None else environ, budget)


def _model_backend(
    name: str, options: ModelOptions, db: Path, environ: Mapping[str, str], budget: Budget | None
) -> Backend:
    from sim.backends.cache import ReplyCache, cache_path
    from sim.backends.model import Budget, ModelBackend
    from sim.backends.prices import load_prices

    prices = load_prices(options.prices)
    provider = _provider(name, options, environ)
    db.parent.mkdir(parents=True, exist_ok=True)
    cache = ReplyCache(cache_path(db))
    if options.batch:
        provider = _batched(provider, cache, environ)
    backend = ModelBackend(provider, options.model or "", cache, prices, budget or Budget(options.max_cost))
    if options.mode == "script":
        from sim.backends.script_mode import ScriptModeBackend

        return ScriptModeBackend(backend)
    return backend


def _provider(name: str, options: ModelOptions, environ: Mapping[str, str]) -> Provider:
    if name == "anthropic":
        from sim.backends.providers.anthropic import AnthropicProvider

        return AnthropicProvider.from_env(environ, timeout=options.timeout, max_retries=options.max_retries)
    if options.batch:
        raise UsageError("--batch needs --backend anthropic (Message Batches are an Anthropic API)")
    from sim.backends.providers.openai_compat import OpenAICompatibleProvider

    return OpenAICompatibleProvider.from_env(
        environ, base_url=options.base_url, timeout=options.timeout, max_retries=options.max_retries
    )


def _batched(provider: Provider, cache: ReplyCache, environ: Mapping[str, str]) -> Provider:
    """`provider` sending its calls through Message Batches (`providers.batch`), with the same reply cache."""
    from sim.backends.providers.anthropic import AnthropicProvider
    from sim.backends.providers.batch import BatchProvider

    if not isinstance(provider, AnthropicProvider):
        raise UsageError("--batch needs --backend anthropic (Message Batches are an Anthropic API)")
    try:
        return BatchProvider.from_env(provider, cache, environ)
    except UsageError:
        cache.close()
        raise


__all__ = ["MODES", "NAMES", "Backend", "Line", "ModelOptions", "Request", "Utterance", "create"]
