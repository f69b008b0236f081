"""The contract between a model backend and a provider SDK: one call in, one completion (or one error) out.

A `ModelCall` says everything a provider needs, in provider-neutral terms: the model, the system
prompt as blocks (the first block is the stable prefix a provider may cache), the conversation,
the output budget and, for structured output, a JSON schema. A provider turns it into its SDK's
request, and the SDK's reply into a `Completion` with normalised usage and stop reason.

Invariants:
- Retries belong to the SDK (`max_retries`, honouring retry-after). A provider adds its own retry only
  for failures the SDK never retries (a malformed or cut-off body), so no failure is retried by two
  layers and the attempts per call never exceed `max_retries + 1`.
- Errors leave a provider as one of three `ProviderError`s, their messages one line with any API key
  removed (`redact`): `AuthError` stops the run, `RejectedError` fails the scene without retrying,
  `TransientError` fails the scene after the retries are spent. The SDK providers share the loop and
  the mapping that make them (`providers.loop`).
- Nothing here reads the environment or opens a connection at import.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from sim.errors import SimError

if TYPE_CHECKING:
    from sim.store.rows import LlmCallRow

Role = Literal["user", "assistant"]
StopReason = Literal["end", "max_tokens", "refusal", "other"]


@dataclass(frozen=True)
class Message:
    """One message of the conversation sent to the model."""

    role: Role
    text: str


@dataclass(frozen=True)
class ModelCall:
    """One request to a model, provider-neutral."""

    model: str
    system: tuple[str, ...]  # system prompt blocks; system[0] is the stable, cacheable prefix
    messages: tuple[Message, ...]
    max_tokens: int
    schema: dict[str, Any] | None = None  # JSON schema of a structured reply (script mode)
    purpose: str = "turn"  # opening | turn | reflection | script | regenerate: for the call table, not hashed
    salt: str = ""  # hashed, not sent: the seed and variation, so each life line gets replies of its own

    def key(self, backend: str) -> str:
        """The request hash: SHA-256 of everything that determines the reply (and the backend's name)."""
        body = {
            "backend": backend,
            "model": self.model,
            "system": self.system,
            "messages": [{"role": m.role, "text": m.text} for m in self.messages],
            "max_tokens": self.max_tokens,
            "schema": self.schema,
            "salt": self.salt,
        }  # every field but `purpose`, as `dataclasses.asdict` gives them (without its deep copy): keys must not change
        canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Completion:
    """What the model answered, with the usage a provider reports."""

    text: str
    input_tokens: int = 0  # uncached input tokens
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    stop_reason: StopReason = "end"
    raw_stop_reason: str = ""  # the provider's own word ("end_turn", "length", ...)
    latency_ms: float = 0.0
    retries: int = 0  # retries the SDK made for this call
    request_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class SceneStopped(SimError):
    """A scene cannot go on; `reason` is one line, safe to store and print (no key).

    `calls` collects the `llm_calls` rows of the scene's unfinished utterance as the error passes
    up, so calls that were paid for are recorded even though the scene is not.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.calls: list[LlmCallRow] = []


class ProviderError(SceneStopped):
    """A call failed."""

    def __init__(self, reason: str, *, status: int | None = None, retries: int = 0) -> None:
        super().__init__(reason)
        self.status = status
        self.retries = retries


class AuthError(ProviderError):
    """The provider refused the credentials (401/403): no scene can succeed, so the run stops."""


class RejectedError(ProviderError):
    """The provider rejected this request (400, 404, 413, 422): retrying cannot help; the scene fails."""


class TransientError(ProviderError):
    """Overload, rate limit, server error, timeout, dropped connection or malformed body, retries spent."""


class Provider(Protocol):
    """An SDK client behind the `ModelCall` contract."""

    name: str  # "anthropic" | "openai-compatible"

    async def complete(self, call: ModelCall) -> Completion:
        """Send `call`; returns the completion or raises a `ProviderError`."""
        ...

    async def aclose(self) -> None:
        """Close the SDK client."""
        ...


def redact(text: str, secrets: Sequence[str | None]) -> str:
    """`text` on one line, with every secret (and anything shaped like an API key) replaced by `[redacted]`."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    text = re.sub(r"\b(sk-[A-Za-z0-9_\-]{8,}|sk-ant-[A-Za-z0-9_\-]{8,})", "[redacted]", text)
    return " ".join(text.split())


DETAIL_CHARS = 300
"""At most this much of a server's or exception's own words goes into a message."""


def usage_tokens(usage: Any, name: str) -> int:
    """A token count from a reply's `usage` object (absent or null counts 0); anything but a count is malformed.

    Raises:
        ValueError: the value is not a whole number of tokens (a bool, a string, a negative number).
    """
    value = usage.get(name)
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"usage.{name} is {value!r}, not a token count")
    return value


def elapsed_ms(started: float) -> float:
    """Milliseconds since `started` (a `time.perf_counter()` reading): the call's wall time, retries included."""
    return round((time.perf_counter() - started) * 1000.0, 3)
