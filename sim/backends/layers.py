"""The layers a model call passes through on its way to a provider: reply cache, budget, prices.

`ModelBackend` calls the top of a stack that is built in one place (`sim.backends.builtin.model_backend`):

    Cached(Budgeted(Priced(Sent(provider), prices), budget), cache)

Each layer is a `Caller`: it takes a call with its request hash and returns a `Reply` (the completion,
where it came from, what it cost), doing its one thing on the way.

Invariants:
- The cache is outermost: a reply it holds is returned before the budget is checked or anything is
  paid, and a paid reply is stored before the scene that asked for it sees it (no await in between).
- The budget is checked before every paid call and charged, after it, the cost `Priced` gave it.
- A `ProviderError` (or `BudgetSpent`) passes up through every layer unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, Protocol

from sim.backends.budget import Budget
from sim.backends.cache import ReplyCache
from sim.backends.prices import PriceTable
from sim.backends.providers.common import Completion, ModelCall, Provider

Source = Literal["cache", "api", "batch"]


@dataclass(frozen=True)
class Reply:
    """A completion, where it came from (`llm_calls.source`), and its cost in USD (None: no price known)."""

    completion: Completion
    source: Source
    cost: float | None = None


class Caller(Protocol):
    """A provider with layers around it: one call in (with its request hash), one `Reply` out."""

    @property
    def name(self) -> str:
        """The provider's name, hashed into request keys and stored with every call."""
        ...

    async def call(self, call: ModelCall, key: str) -> Reply:
        """The reply to `call`, whose request hash is `key`; raises a `ProviderError` for a failed call."""
        ...

    async def aclose(self) -> None:
        """Close network clients (inside the event loop that used them)."""
        ...

    def close(self) -> None:
        """Close files."""
        ...


@dataclass
class Sent:
    """The bottom of the stack: every call goes to `provider` (a batch's reply says so in its `extra`)."""

    provider: Provider

    @property
    def name(self) -> str:
        """The provider's name."""
        return self.provider.name

    async def call(self, call: ModelCall, key: str) -> Reply:
        """Send `call`; its cost is left to `Priced`."""
        completion = await self.provider.complete(call)
        return Reply(completion, "batch" if completion.extra.get("batch") else "api")

    async def aclose(self) -> None:
        """Close the provider's client."""
        await self.provider.aclose()

    def close(self) -> None:
        """Nothing to close: the provider holds no file."""


@dataclass
class Layer:
    """A layer that passes everything to `inner`; subclasses change `call` (and `close`, for what they own)."""

    inner: Caller

    @property
    def name(self) -> str:
        """The provider's name."""
        return self.inner.name

    async def call(self, call: ModelCall, key: str) -> Reply:
        """The inner layer's reply."""
        return await self.inner.call(call, key)

    async def aclose(self) -> None:
        """Close the inner layers' clients."""
        await self.inner.aclose()

    def close(self) -> None:
        """Close the inner layers' files."""
        self.inner.close()


@dataclass
class Priced(Layer):
    """Prices every reply from `prices` (a batch's at the batch discount)."""

    prices: PriceTable

    async def call(self, call: ModelCall, key: str) -> Reply:
        """The inner reply, with its cost."""
        reply = await self.inner.call(call, key)
        cost = self.prices.cost(call.model, reply.completion, batch=reply.source == "batch")
        return replace(reply, cost=cost)


@dataclass
class Budgeted(Layer):
    """Refuses a call once `budget` is spent (`BudgetSpent`), and charges it what each reply cost."""

    budget: Budget

    async def call(self, call: ModelCall, key: str) -> Reply:
        """Check the budget, make the call, count its cost."""
        self.budget.check()
        reply = await self.inner.call(call, key)
        self.budget.add(reply.cost)
        return reply


@dataclass
class Cached(Layer):
    """Replays a reply `cache` holds for free; stores every other reply the moment it arrives."""

    cache: ReplyCache

    async def call(self, call: ModelCall, key: str) -> Reply:
        """The cached reply (source `cache`, cost 0), else the inner reply, stored."""
        hit = self.cache.get(key)
        if hit is not None:
            return Reply(hit, "cache", 0.0)
        reply = await self.inner.call(call, key)
        self.cache.put(key, self.name, call.model, reply.completion)
        return reply

    def close(self) -> None:
        """Close the reply cache, then the inner layers."""
        self.cache.close()
        self.inner.close()
