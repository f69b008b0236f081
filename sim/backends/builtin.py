"""The built-in backends' factories, and `model_backend`, which stacks the layers around any provider.

Every factory takes the `Setup` that `sim.backends.create` was given and returns a ready backend.
A third-party model backend may build its provider and hand it to `model_backend`, so it gets the
reply cache, the budget, the prices, script mode and `--batch`'s refusal exactly as the built-ins do.

Invariants:
- The layers around a provider are stacked here and nowhere else (`model_backend`), in the one order
  `sim.backends.layers` describes.
- Provider SDKs are imported only when a model backend is created, and the environment is read then,
  from `Setup.environ` only.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sim.backends.base import Backend
from sim.backends.providers.common import Provider
from sim.errors import UsageError

if TYPE_CHECKING:
    from sim.backends.cache import ReplyCache
    from sim.backends.layers import Caller
    from sim.backends.options import Setup
    from sim.backends.prices import PriceTable

NO_BATCH = "--batch needs --backend anthropic (Message Batches are an Anthropic API)"


def scripted(setup: Setup) -> Backend:
    """The offline scripted backend (it reads nothing from `setup`)."""
    from sim.backends.scripted import ScriptedBackend

    return ScriptedBackend()


def anthropic(setup: Setup) -> Backend:
    """Claude through the `anthropic` SDK: `ANTHROPIC_API_KEY`, `ANTHROPIC_BASE_URL` (optional), `--batch`."""

    def provider() -> Provider:
        from sim.backends.providers.anthropic import AnthropicProvider

        options = setup.options
        return AnthropicProvider.from_env(setup.environ, timeout=options.timeout, max_retries=options.max_retries)

    return model_backend(setup, "anthropic", provider, batched=_batched)


def openai_compatible(setup: Setup) -> Backend:
    """A chat-completions server through the `openai` SDK: `--base-url`/`OPENAI_BASE_URL`, `OPENAI_API_KEY`."""

    def provider() -> Provider:
        from sim.backends.providers.openai_compat import OpenAICompatibleProvider

        options = setup.options
        return OpenAICompatibleProvider.from_env(
            setup.environ, base_url=options.base_url, timeout=options.timeout, max_retries=options.max_retries
        )

    return model_backend(setup, "openai-compatible", provider)


Batching = Callable[[Provider, "ReplyCache", "Setup"], Provider]
"""Turns a provider into one that sends its calls in batches (`--batch`), given the reply cache."""


def model_backend(
    setup: Setup, name: str, provider: Callable[[], Provider], *, batched: Batching | None = None
) -> Backend:
    """A model backend: `provider()` with the reply cache, budget and prices around it, in `--mode`.

    Args:
        setup: What `create` was given: the options (model, prices, mode, budget), the database, the environment.
        name: The backend's name, for messages.
        provider: Makes the provider, reading `setup.environ` (a missing key is reported before any file is opened).
        batched: How the provider sends `--batch` calls; None refuses `--batch`.

    Raises:
        UsageError: no `--model`, `--batch` without `batched`, or the provider's own complaint (a missing key or URL).
    """
    from sim.backends.model import ModelBackend
    from sim.backends.prices import load_prices

    options, db = setup.options, _db(setup.db, name, setup.options.model)
    prices = load_prices(options.prices)
    if options.batch and batched is None:
        raise UsageError(NO_BATCH)
    backend = ModelBackend(_layers(setup, provider(), db, prices, batched), options.model or "")
    if options.mode == "script":
        from sim.backends.script_mode import ScriptModeBackend

        return ScriptModeBackend(backend)
    return backend


def _layers(setup: Setup, provider: Provider, db: Path, prices: PriceTable, batched: Batching | None) -> Caller:
    """`provider` (batched with `--batch`) with the reply cache beside `db`, the budget and `prices` around it."""
    from sim.backends.budget import Budget
    from sim.backends.cache import ReplyCache, cache_path
    from sim.backends.layers import Budgeted, Cached, Priced, Sent

    db.parent.mkdir(parents=True, exist_ok=True)
    cache = ReplyCache(cache_path(db))
    if batched is not None and setup.options.batch:
        try:
            provider = batched(provider, cache, setup)
        except UsageError:
            cache.close()
            raise
    budget = setup.budget or Budget(setup.options.max_cost)
    return Cached(Budgeted(Priced(Sent(provider), prices), budget), cache)


def _db(db: Path | None, name: str, model: str | None) -> Path:
    """The database a model backend keeps its reply cache beside, once `--model` is known to be given."""
    if not model:
        raise UsageError(f"--backend {name} needs --model (the model id, e.g. claude-sonnet-5)")
    if db is None:
        raise ValueError("a model backend needs the database path, to keep its reply cache beside it")
    return db


def _batched(provider: Provider, cache: ReplyCache, setup: Setup) -> Provider:
    """`provider` sending its calls through Message Batches (`providers.batch`), with the same reply cache."""
    from sim.backends.providers.anthropic import AnthropicProvider
    from sim.backends.providers.batch import BatchProvider

    if not isinstance(provider, AnthropicProvider):
        raise UsageError(NO_BATCH)
    return BatchProvider.from_env(provider, cache, setup.environ)
