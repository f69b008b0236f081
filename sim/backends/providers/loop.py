"""The call loop and error mapping every SDK provider shares; a provider says only how it sends and reads.

`SdkProvider.complete` sends one attempt through the SDK, reads the body, retries a malformed body
within the same retry budget, and turns every SDK exception into one `ProviderError`: an HTTP
status by `status_error`, a timeout, a dropped connection, anything else. A subclass supplies the
request (`_send`), the reading of a reply (`_read`) and the words of a status error (`_status`,
`_auth_reason`); both official SDKs (anthropic, openai) share the exception classes this maps.

Invariants:
- Retries belong to the SDK (`max_retries`, honouring retry-after). The loop retries only a 200 whose
  body cannot be read, which the SDK hands back without retrying, and only within what is left of the
  same budget: a call never makes more than `max_retries + 1` attempts.
- Nothing but a `ProviderError` leaves `complete()`, its message one line passed through `redact`
  (the API key never appears), and the same failure gives the same words through either provider.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from sim.backends.providers.common import (
    DETAIL_CHARS,
    AuthError,
    Completion,
    ModelCall,
    ProviderError,
    RejectedError,
    TransientError,
    elapsed_ms,
    redact,
)

MALFORMED = (ValueError, TypeError, AttributeError, KeyError)
"""What reading a 200 body that is not a reply raises (a provider adds its SDK's validation error)."""


@dataclass(frozen=True)
class Attempt:
    """One attempt's raw reply, as the loop needs it from an SDK's raw response."""

    body: bytes | str
    status: int
    retries: int  # retries the SDK took for this attempt
    request_id: str | None


@dataclass(frozen=True)
class SdkErrors:
    """An SDK's exception classes (the official SDKs share their shape): what the loop maps to `ProviderError`s."""

    base: type[Exception]
    status: type[Exception]  # has `status_code`
    timeout: type[Exception]  # a subclass of `connection`: checked first
    connection: type[Exception]
    malformed: tuple[type[Exception], ...] = MALFORMED


class SdkProvider(ABC):
    """A `Provider` over an official SDK: the shared loop, with the request and reply left to a subclass."""

    name: str  # the backend's name, as the subclass sets it
    reply_kind: ClassVar[str]  # what a body should be, in a message: "a message"
    failed: ClassVar[str]  # "{api} call failed ({detail})": an SDK error of no known kind
    errors: ClassVar[SdkErrors]

    def __init__(self, *, api: str, api_key: str | None, timeout: float, max_retries: int) -> None:
        """Keep what the loop and its messages need.

        Args:
            api: How messages name the API ("the Anthropic API").
            api_key: The key sent, redacted from every message.
            timeout: Seconds allowed for each attempt (named in a timeout's message).
            max_retries: Retries per call, shared between the SDK and the malformed-body retry.
        """
        self.api = api
        self._api_key = api_key
        self._timeout = timeout
        self._max_retries = max_retries

    async def complete(self, call: ModelCall) -> Completion:
        """Send `call`; returns the completion or raises a `ProviderError` (never anything else)."""
        started = time.perf_counter()
        retries = 0
        while True:
            try:
                raw = await self._send(call, retries)
            except self.errors.base as err:
                raise self._sdk_error(err, retries) from err
            retries += raw.retries
            try:
                completion = self._read(json.loads(raw.body), retries=retries, request_id=raw.request_id)
            except self.errors.malformed as err:
                if retries >= self._max_retries:
                    reason = f"{self.api} sent a malformed reply ({malformed_detail(err, self.reply_kind)})"
                    raise self._error(TransientError, reason, raw.status, retries) from err
                retries += 1
                continue
            return replace(completion, latency_ms=elapsed_ms(started))

    @abstractmethod
    async def _send(self, call: ModelCall, retries: int) -> Attempt:
        """One attempt at `call`, `retries` of the budget spent already (the SDK may use what is left)."""

    @abstractmethod
    def _read(self, body: Any, *, retries: int, request_id: str | None) -> Completion:
        """The completion for a reply's JSON body; raises one of `errors.malformed` for a body that is not one."""

    @abstractmethod
    def _status(self, err: Any) -> tuple[int, str, str]:
        """A status error's status, kind ("529 overloaded_error") and the kind with the server's words."""

    @abstractmethod
    def _auth_reason(self, said: str) -> str:
        """The reason for a 401 or 403: which key to fix."""

    def error_for(self, err: Exception) -> ProviderError:
        """The `ProviderError` for an exception the SDK raised on any endpoint, mapped as `complete` maps it."""
        return self._sdk_error(err, 0)

    def failure(self, cls: type[ProviderError], reason: str) -> ProviderError:
        """A `cls` with `reason` on one line and the key redacted, no retries counted (a batch's results)."""
        return self._error(cls, reason, None, 0, count=False)

    def connection_error(self, err: BaseException, retries: int = 0) -> ProviderError:
        """The `TransientError` for a connection that broke, named by the root of `err`'s cause chain.

        The same line whether the SDK wrapped the transport's error in `APIConnectionError` or let it through.
        """
        reason = f"the connection to {self.api} failed ({connection_detail(err)})"
        return self._error(TransientError, reason, None, retries)

    def _sdk_error(self, err: Exception, retries_before: int) -> ProviderError:
        """The `ProviderError` for an exception the SDK raised after its own retries."""
        retries = retries_before + sdk_retries(err)
        if isinstance(err, self.errors.status):
            status, kind, said = self._status(err)
            auth = self._auth_reason(said)
            return status_error(self.api, status, kind, said, auth=auth, retries=retries, secret=self._api_key)
        if isinstance(err, self.errors.timeout):
            reason = f"{self.api} timed out (no reply within {self._timeout:g}s)"
            return self._error(TransientError, reason, None, retries)
        if isinstance(err, self.errors.connection):
            return self.connection_error(err, retries)
        detail = f"{type(err).__name__}: {err}"[:DETAIL_CHARS]
        return self._error(TransientError, self.failed.format(api=self.api, detail=detail), None, retries)

    def _error(
        self, cls: type[ProviderError], reason: str, status: int | None, retries: int, *, count: bool = True
    ) -> ProviderError:
        return provider_error(cls, reason, status, retries, self._api_key, count=count)


def retry_phrase(retries: int) -> str:
    """` after 2 retries`, ` after 1 retry`, or ` (not retried)`."""
    if retries == 0:
        return " (not retried)"
    return f" after {retries} {'retry' if retries == 1 else 'retries'}"


def sdk_retries(err: Exception) -> int:
    """The retries an SDK (anthropic or openai) made before raising: the retry count header of its last attempt.

    `x-stainless-retry-count` is the SDKs' own header, not the API's, and the only count an error carries; the
    tests assert what it feeds (the "after N retries" of a message), so an SDK that stops sending it shows there.
    """
    request = getattr(err, "request", None)
    value = request.headers.get("x-stainless-retry-count", "") if request is not None else ""
    return int(value) if value.isdigit() else 0


def malformed_detail(err: Exception, expected: str) -> str:
    """Why a 200 body could not be read as `expected` ("a message"), in a few words."""
    if isinstance(err, json.JSONDecodeError):
        return "the body is not valid JSON"
    return f"the body is not {expected}: {type(err).__name__}: {err}"[:DETAIL_CHARS]


def connection_detail(err: BaseException) -> str:
    """What broke a connection, in the words of the deepest exception in `err`'s chain that has any.

    An SDK may wrap a transport error once, twice or not at all (`APIConnectionError` from httpx2's
    `ReadError` from aiohttp's `ClientPayloadError` ...), with `raise ... from` or implicitly. The chain is
    walked by `__cause__`, else `__context__`, whatever its classes, so the root shown ("ContentLengthError:
    Not enough data to satisfy content length header (received 69 of 138 bytes).") is the same however
    the SDK wraps it.
    """
    root = err
    for link in _error_chain(err):
        if _words(link):
            root = link
    return f"{type(root).__name__}: {_words(root)}"[:DETAIL_CHARS]


def _error_chain(err: BaseException) -> list[BaseException]:
    """`err`, then what caused it (`__cause__`, else an unsuppressed `__context__`), down to the root."""
    chain: list[BaseException] = []
    link: BaseException | None = err
    while link is not None and all(link is not seen for seen in chain):
        chain.append(link)
        link = link.__cause__ or (None if link.__suppress_context__ else link.__context__)
    return chain


def _words(err: BaseException) -> str:
    """An exception's own words: its `message` attribute when it has a non-empty one (aiohttp's), else `str`."""
    message = getattr(err, "message", None)
    return message if isinstance(message, str) and message else str(err)


def provider_error(
    cls: type[ProviderError], reason: str, status: int | None, retries: int, secret: str | None, *, count: bool = True
) -> ProviderError:
    """A `cls` whose one-line message has `secret` redacted and says how many retries were spent (when `count`)."""
    text = reason + (retry_phrase(retries) if count else "")
    return cls(redact(text, [secret]), status=status, retries=retries)


def status_error(
    api: str, status: int, kind: str, said: str, *, auth: str, retries: int, secret: str | None
) -> ProviderError:
    """The error for an HTTP status the SDK gave up on: `auth` is the provider's own 401/403 reason.

    Args:
        api: how the provider is named in messages ("the Anthropic API").
        status: the HTTP status.
        kind: the status with the provider's error type ("529 overloaded_error").
        said: `kind` with the server's own words.
        auth: the reason for a 401 or 403 (which key to fix).
        retries: retries spent.
        secret: the API key, redacted from the message.
    """
    cls: type[ProviderError] = TransientError
    count = True
    if status in (401, 403):
        cls, reason, count = AuthError, auth, False
    elif status == 402:
        cls, count = AuthError, False
        reason = f"{api} refused the request for billing reasons ({said}); check your plan and credits"
    elif status == 429:
        reason = f"{api} rate-limited the request ({said})"
    elif status in (503, 529):
        reason = f"{api} is overloaded ({kind})"
    elif status >= 500:
        reason = f"{api} had a server error ({kind})"
    elif status in (408, 409):
        reason = f"{api} could not finish the request ({said})"
    else:
        cls, reason, count = RejectedError, f"{api} rejected the request ({said})", False
    return provider_error(cls, reason, status, retries, secret, count=count)
