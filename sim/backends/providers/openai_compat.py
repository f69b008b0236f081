"""The OpenAI-compatible provider: a `ModelCall` as a chat completion on any server that speaks the API.

Aimed at local servers (vLLM, Ollama, llama.cpp) as much as at OpenAI itself: the base URL is
required, the key is optional (a placeholder is sent when none is set), the system blocks become one
system message, and a schema becomes a strict `json_schema` response format. No sampling parameters
are sent. Cached prompt tokens (`prompt_tokens_details.cached_tokens`) are reported as cache reads.

Invariants:
- The SDK retries what it knows to be transient (429, 5xx, timeouts, connections dropped before the
  body was read), honouring retry-after. This module retries only a 200 whose body cannot be read as
  a chat completion, which the SDK hands back without retrying, and only within what is left of the
  same `max_retries` budget: a call never makes more than `max_retries + 1` attempts.
- Nothing but a `ProviderError` leaves `complete()`, its message one line passed through `redact`;
  the API key is never logged or put in a message.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import openai
from openai.types.chat import ChatCompletionMessageParam

from sim.backends.providers.common import (
    DETAIL_CHARS,
    Completion,
    Message,
    ModelCall,
    ProviderError,
    StopReason,
    TransientError,
    connection_detail,
    elapsed_ms,
    malformed_detail,
    provider_error,
    sdk_retries,
    status_error,
    usage_tokens,
)
from sim.errors import UsageError

NO_KEY = "not-needed"  # sent when OPENAI_API_KEY is unset: local servers ignore the key
MISSING_URL = "--base-url is required for --backend openai-compatible (the server's URL, e.g. http://localhost:8000/v1)"
_FINISH_REASONS: dict[str, StopReason] = {"stop": "end", "length": "max_tokens", "content_filter": "refusal"}
# a 200 whose body is not a readable chat completion (the SDK's validation error included)
_MALFORMED = (ValueError, TypeError, AttributeError, KeyError, openai.APIResponseValidationError)


class OpenAICompatibleProvider:
    """`Provider` over `openai.AsyncOpenAI` chat completions (non-streaming)."""

    name = "openai-compatible"

    def __init__(self, *, base_url: str, api_key: str | None, timeout: float = 60.0, max_retries: int = 2) -> None:
        """Create the SDK client; nothing is sent until `complete`.

        Args:
            base_url: The server's API root, e.g. `http://localhost:8000/v1`.
            api_key: The key to send, or None for a server that needs none; kept out of every message.
            timeout: Seconds allowed for each attempt.
            max_retries: Retries per call, shared between the SDK and the malformed-body retry.
        """
        self._api_key = api_key
        self._timeout = timeout
        self._max_retries = max_retries
        self._api = f"the OpenAI-compatible server at {base_url.rstrip('/')}"
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or NO_KEY,
            timeout=timeout,
            max_retries=max_retries,
            http_client=openai.DefaultAioHttpClient(),  # the SDK's aiohttp transport: less CPU per call
        )

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str], *, base_url: str | None, timeout: float = 60.0, max_retries: int = 2
    ) -> OpenAICompatibleProvider:
        """The provider for `base_url` (else `OPENAI_BASE_URL`) and `OPENAI_API_KEY` (optional) in `environ`.

        Raises:
            UsageError: Neither `base_url` nor `OPENAI_BASE_URL` gives a URL.
        """
        url = (base_url or "").strip() or environ.get("OPENAI_BASE_URL", "").strip()
        if not url:
            raise UsageError(MISSING_URL)
        api_key = environ.get("OPENAI_API_KEY", "").strip() or None
        return cls(base_url=url, api_key=api_key, timeout=timeout, max_retries=max_retries)

    async def complete(self, call: ModelCall) -> Completion:
        """Send `call`; returns the completion or raises a `ProviderError` (never anything else)."""
        started = time.perf_counter()
        retries = 0
        while True:
            client = self._client.with_options(max_retries=self._max_retries - retries) if retries else self._client
            try:
                raw = await client.chat.completions.with_raw_response.create(**request_params(call))
            except openai.OpenAIError as err:
                raise self._sdk_error(err, retries) from err
            retries += raw.retries_taken
            content = raw.content  # read by the SDK already (a non-streamed reply)
            try:
                completion = to_completion(json.loads(content), retries=retries, request_id=raw.request_id)
            except _MALFORMED as err:
                if retries >= self._max_retries:
                    reason = f"{self._api} sent a malformed reply ({malformed_detail(err, 'a chat completion')})"
                    raise self._error(TransientError, reason, raw.status_code, retries) from err
                retries += 1
                continue
            return replace(completion, latency_ms=elapsed_ms(started))

    async def aclose(self) -> None:
        """Close the SDK client and its connections."""
        await self._client.close()

    def _sdk_error(self, err: openai.OpenAIError, retries_before: int) -> ProviderError:
        """The `ProviderError` for an exception the SDK raised after its own retries."""
        retries = retries_before + sdk_retries(err)
        if isinstance(err, openai.APIStatusError):
            return self._status_error(err, retries)
        if isinstance(err, openai.APITimeoutError):
            reason = f"{self._api} timed out (no reply within {self._timeout:g}s)"
            return self._error(TransientError, reason, None, retries)
        if isinstance(err, openai.APIConnectionError):
            detail = connection_detail(err)
            return self._error(TransientError, f"the connection to {self._api} failed ({detail})", None, retries)
        detail = f"{type(err).__name__}: {err}"[:DETAIL_CHARS]
        return self._error(TransientError, f"the call to {self._api} failed ({detail})", None, retries)

    def _status_error(self, err: openai.APIStatusError, retries: int) -> ProviderError:
        status = err.status_code
        word = err.code or err.type
        kind = f"{status} {word}" if word else str(status)
        message = _error_message(err.body)
        said = f"{kind}: {message}" if message else kind
        if self._api_key is None:
            auth = f"{self._api} needs an API key ({said}); set OPENAI_API_KEY and run again"
        else:
            auth = f"{self._api} refused the key in OPENAI_API_KEY ({said}); set a valid key and run again"
        return status_error(self._api, status, kind, said, auth=auth, retries=retries, secret=self._api_key)

    def _error(
        self, cls: type[ProviderError], reason: str, status: int | None, retries: int, *, count: bool = True
    ) -> ProviderError:
        return provider_error(cls, reason, status, retries, self._api_key, count=count)


def request_params(call: ModelCall) -> dict[str, Any]:
    """The chat completion parameters for `call`: one system message, no sampling parameters."""
    messages: list[ChatCompletionMessageParam] = []
    if call.system:
        messages.append({"role": "system", "content": "\n\n".join(call.system)})
    messages.extend(message_param(m) for m in call.messages)
    params: dict[str, Any] = {"model": call.model, "max_tokens": call.max_tokens, "messages": messages}
    if call.schema is not None:
        params["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "reply", "schema": call.schema, "strict": True},
        }
    return params


def message_param(message: Message) -> ChatCompletionMessageParam:
    """One conversation message in the chat completions shape."""
    if message.role == "user":
        return {"role": "user", "content": message.text}
    return {"role": "assistant", "content": message.text}


def to_completion(reply: Any, *, retries: int, request_id: str | None) -> Completion:
    """The `Completion` for a chat completion, given as its JSON body (a dict).

    Only what a completion needs is read (the first choice's text, refusal and finish reason, and
    usage); the SDK's `parse()` would build typed models of the whole body first, CPU a run against a
    fast local server needs for its calls.

    Raises:
        TypeError, KeyError, ValueError: the body is not a chat completion.
    """
    if not isinstance(reply, dict) or "choices" not in reply:
        got = "an object without choices" if isinstance(reply, dict) else type(reply).__name__
        raise TypeError(f"expected a chat completion, got {got}")
    if not reply["choices"]:
        raise ValueError("the reply has no choices")
    choice = reply["choices"][0]
    message = choice["message"]
    content, refusal = message.get("content"), message.get("refusal")
    if content is not None and not isinstance(content, str):
        raise TypeError(f"the message content is {type(content).__name__}, not a string")
    raw_stop = str(choice.get("finish_reason") or "")
    stop = _FINISH_REASONS.get(raw_stop, "other")
    if refusal and not content:
        stop = "refusal"  # structured output refuses with finish_reason "stop" and a `refusal` text
    usage = reply.get("usage") or {}
    prompt = usage_tokens(usage, "prompt_tokens")
    cached = usage_tokens(usage.get("prompt_tokens_details") or {}, "cached_tokens")
    return Completion(
        text=content or "",
        input_tokens=prompt - cached,
        output_tokens=usage_tokens(usage, "completion_tokens"),
        cache_read_tokens=cached,
        cache_write_tokens=0,
        stop_reason=stop,
        raw_stop_reason=raw_stop,
        retries=retries,
        request_id=request_id,
    )


def _error_message(body: object) -> str:
    """The server's own words from an error body: `{"message": ...}` (the SDK unwraps `error`), or raw text."""
    if isinstance(body, dict):
        message = body.get("message")
        return str(message)[:DETAIL_CHARS] if message else ""
    return body[:DETAIL_CHARS] if isinstance(body, str) else ""
