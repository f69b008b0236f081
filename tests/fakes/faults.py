"""Which fault, if any, a fake provider injects into the Nth generation request.

A `Faults` plan is a pure function of (request number, request body): an explicit schedule wins,
then an optional predicate, then a seeded rate. The same plan and seed always give the same
faults for the same request numbers, so a test that fails can be rerun exactly.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Fault(StrEnum):
    """A failure a real provider can produce, as seen on the wire."""

    RATE_LIMIT = "rate_limit"
    """429 with `retry-after` (and the provider's rate-limit headers, remaining 0)."""
    OVERLOADED = "overloaded"
    """Anthropic 529 `overloaded_error`; OpenAI 503 (it has no 529)."""
    SERVER_ERROR = "server_error"
    """500 `api_error` / `server_error`."""
    DROP = "drop"
    """Headers and part of the body are sent, then the socket is closed."""
    HANG = "hang"
    """Nothing is sent for `Faults.hang_seconds` (meant to exceed the client timeout), then close."""
    MALFORMED = "malformed"
    """200 with a JSON content type and a body that is not valid JSON (or a broken SSE data line)."""
    MAX_TOKENS = "max_tokens"
    """The reply is cut off: `stop_reason` `max_tokens` / `finish_reason` `length`."""
    BAD_REQUEST = "bad_request"
    """400 `invalid_request_error`: a client bug; must not be retried."""
    AUTH = "auth"
    """401 `authentication_error`: a bad key; must stop the run."""
    STREAM_ERROR = "stream_error"
    """200, a few stream events, then an error event (Anthropic `event: error`, OpenAI `data: {"error"}`)."""


TRANSIENT: tuple[Fault, ...] = (Fault.RATE_LIMIT, Fault.OVERLOADED, Fault.SERVER_ERROR)


@dataclass
class Faults:
    """A fault plan for one fake server.

    Attributes:
        schedule: 1-based generation-request number -> fault (e.g. `{1: Fault.RATE_LIMIT}`).
        when: Optional predicate on the request body, consulted when the schedule has no entry;
            return a fault to inject (e.g. fail every request whose last user line names Ada).
        rate: Probability in [0, 1] of a fault on any other request, drawn from `kinds`.
        kinds: The faults a rate draw chooses between.
        seed: Seed for the rate draws; the draw for request n depends only on (seed, n).
        retry_after: Seconds sent in `retry-after` on 429s (real servers send whole seconds;
            the SDKs also accept fractions, which keeps tests fast).
        retry_after_on_5xx: Also send `retry-after` on 500/529/503, as proxies sometimes do.
        hang_seconds: How long a HANG fault holds the connection before closing it.
    """

    schedule: Mapping[int, Fault] = field(default_factory=dict)
    when: Callable[[Any], Fault | None] | None = None
    rate: float = 0.0
    kinds: tuple[Fault, ...] = TRANSIENT
    seed: int = 0
    retry_after: float = 1.0
    retry_after_on_5xx: bool = False
    hang_seconds: float = 5.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"Faults.rate must be in [0, 1], got {self.rate}")
        if self.rate and not self.kinds:
            raise ValueError("Faults.rate needs at least one fault in `kinds`")

    @classmethod
    def sequence(cls, *faults: Fault | None, **options: Any) -> Faults:
        """Faults for requests 1, 2, 3... in order; `None` means answer normally."""
        return cls(schedule={n: f for n, f in enumerate(faults, start=1) if f is not None}, **options)

    def retry_after_header(self) -> str:
        """`retry_after` as a header value: whole seconds as an integer, else a decimal."""
        seconds = float(self.retry_after)
        return str(int(seconds)) if seconds.is_integer() else str(seconds)

    def pick(self, number: int, body: Any = None) -> Fault | None:
        """The fault for generation request `number` (1-based) with JSON `body`, or None."""
        if number in self.schedule:
            return self.schedule[number]
        if self.when is not None:
            chosen = self.when(body)
            if chosen is not None:
                return chosen
        if self.rate <= 0.0:
            return None
        draw = random.Random(f"{self.seed}:{number}")
        if draw.random() >= self.rate:
            return None
        return draw.choice(self.kinds)
