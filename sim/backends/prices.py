"""The price table: what a model's tokens cost, read from a YAML file a person can update.

Prices are USD per million tokens, one entry per model family; an entry's `match` is a glob on the
model id (`fnmatch.fnmatchcase`: case-sensitive on every platform) and the first entry that matches
wins, so specific patterns go above general ones. An entry that an earlier one always beats is
reported as an error rather than silently ignored.

Invariants:
- A model no entry matches has no price: `cost` returns None (shown as "unknown"), never a guess.
- Costs are computed in decimal from the prices as written and rounded to the nearest 1e-9 USD
  (a nano-dollar) before becoming a float, so the same usage always gives the same, tidy figure
  (3 tokens at $0.08/MTok are 2.4e-07, not 2.4000000000000003e-07). The cheapest token priced
  today, a half-price cache read at $0.01/MTok, costs 5e-09 USD, so the rounding loses nothing
  a person could see; only the sum of many calls is rounded again by whoever adds them up.
"""

from __future__ import annotations

import fnmatch
import math
import re
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field, PrivateAttr, field_validator

from sim.backends.providers.common import Completion
from sim.errors import Problem
from sim.world.yamlio import Document, Spec, load_data_file

DEFAULT_PRICES = "prices.yaml"
TOKENS_PER_PRICE = Decimal(1_000_000)
COST_QUANTUM = Decimal("1e-9")  # USD; see the module docstring
_WILDCARDS = re.compile(r"[*?\[]")


def _price(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError(f"{value} is not a price (expected a number such as 3.00)")
    if value < 0:
        raise ValueError(f"{value:g} is negative (expected a price of 0 or more, in USD per million tokens)")
    return value


def _discount(value: float) -> float:
    if not (math.isfinite(value) and 0 < value <= 1):
        raise ValueError(
            f"{value:g} is not a discount (expected the fraction of the price batch calls pay, above 0 and at "
            "most 1, e.g. 0.5 for half price)"
        )
    return value


# USD per million tokens. Strict: `true` or "3" in a price is a mistake, not 1.0 or 3.0.
Price = Annotated[float, Field(strict=True), AfterValidator(_price)]


class ModelPrice(Spec):
    """The prices of one model family, USD per million tokens."""

    match: str = Field(min_length=1, description="fnmatch glob on the model id, e.g. claude-sonnet-4-5*")
    input: Price  # uncached input tokens
    output: Price
    cache_read: Price = 0.0  # cache hits; 0 for servers that do not cache
    cache_write: Price = 0.0  # 5-minute cache writes

    def matches(self, model: str) -> bool:
        """Whether this entry prices `model`."""
        return fnmatch.fnmatchcase(model, self.match)

    def usage_cost(self, completion: Completion) -> Decimal:
        """The exact cost of `completion`'s usage in USD, before any discount or rounding."""
        pairs = (
            (completion.input_tokens, self.input),
            (completion.output_tokens, self.output),
            (completion.cache_read_tokens, self.cache_read),
            (completion.cache_write_tokens, self.cache_write),
        )
        return sum((Decimal(tokens) * _decimal(rate) for tokens, rate in pairs), Decimal(0)) / TOKENS_PER_PRICE


class PriceTable(Spec):
    """The prices file: a currency, the Message Batches discount and the model entries in match order."""

    currency: str = "USD"
    batch_discount: Annotated[float, Field(strict=True), AfterValidator(_discount)] = 0.5  # what batch calls pay
    models: list[ModelPrice]
    _matched: dict[str, ModelPrice | None] = PrivateAttr(default_factory=dict)  # model id -> its entry

    @field_validator("currency")
    @classmethod
    def _currency_code(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Z]{3}", value):
            raise ValueError(f"{value!r} is not a currency code (expected three capital letters such as USD)")
        return value

    def price(self, model: str) -> ModelPrice | None:
        """The first entry whose glob matches `model`, or None when the model has no price (matched once per model)."""
        if model not in self._matched:
            self._matched[model] = next((entry for entry in self.models if entry.matches(model)), None)
        return self._matched[model]

    def cost(self, model: str, completion: Completion, *, batch: bool = False) -> float | None:
        """What `completion` cost in `currency`, rounded to 1e-9; None when `model` has no price.

        Args:
            model: The model id the call used.
            completion: The reply whose usage is priced.
            batch: The call went through Message Batches, so every token kind (cache reads and
                writes included: the discounts stack) is charged at `batch_discount` times the price.
        """
        entry = self.price(model)
        if entry is None:
            return None
        total = entry.usage_cost(completion)
        if batch:
            total *= _decimal(self.batch_discount)
        return float(total.quantize(COST_QUANTUM, rounding=ROUND_HALF_EVEN))


def _decimal(value: float) -> Decimal:
    """The decimal a person wrote: the shortest repr round-trips, so 3.75 stays 3.75 exactly."""
    return Decimal(repr(float(value)))


def check_prices(doc: Document[PriceTable]) -> list[Problem]:
    """Cross-entry checks: no entry may be unreachable because an earlier one matches all it would."""
    problems = []
    entries = doc.model.models
    for i, entry in enumerate(entries):
        earlier = next((j for j in range(i) if _shadows(entries[j].match, entry.match)), None)
        if earlier is not None:
            message = (
                f"{entry.match!r} is never used: {entries[earlier].match!r} in models[{earlier}] above already "
                "matches every model it matches (move this entry above that one, or delete it)"
            )
            problems.append(doc.problem(("models", i, "match"), message))
    return problems


def _shadows(first: str, later: str) -> bool:
    """Whether glob `first` matches every id glob `later` matches (decided only where that is certain).

    Certain cases: the same pattern, or `first` is a literal prefix followed by one `*` and `later`'s
    literal start (everything before its first wildcard) begins with that prefix.
    """
    if first == later:
        return True
    prefix = first[:-1]
    if not first.endswith("*") or _WILDCARDS.search(prefix):
        return False
    return _WILDCARDS.split(later, 1)[0].startswith(prefix)


def load_prices(path: Path | None = None) -> PriceTable:
    """Load a prices file, or the shipped one when `path` is None.

    Raises:
        ConfigError: the file cannot be read or does not validate; every problem names file, line and key.
    """
    return load_data_file(PriceTable, path, DEFAULT_PRICES, check_prices)
