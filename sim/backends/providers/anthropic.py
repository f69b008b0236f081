"""The Anthropic provider: a `ModelCall` through the official SDK's async client, a `Completion` back.

The request caches the stable prefix (`cache_control` on the first system block), sends no sampling
parameters (current models reject them) and asks for structured output with `output_config` when the
call has a schema. The reply is read by block type, so thinking blocks never leak into the text.

Invariants:
- This module builds the request and reads the reply, nothing more: the call loop, its retries (the
  SDK's, plus a malformed body's within the same `max_retries`) and the mapping of every failure to a
  `ProviderError` are `providers.loop`'s, shared with the OpenAI-compatible provider.
- The API key is never logged or put in a message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anthropic
from anthropic import types as api

from sim.backends.providers.common import DETAIL_CHARS, Completion, Message, ModelCall, StopReason, usage_tokens
from sim.backends.providers.loop import MALFORMED, Attempt, SdkErrors, SdkProvider
from sim.errors import UsageError

DEFAULT_BASE_URL = "https://api.anthropic.com"
API = "the Anthropic API"
MISSING_KEY = (
    "ANTHROPIC_API_KEY is not set: export your Anthropic API key (or use --backend scripted, which needs none)"
)
_STOP_REASONS: dict[str, StopReason] = {
    "end_turn": "end",
    "stop_sequence": "end",
    "max_tokens": "max_tokens",
    "refusal": "refusal",
}


class AnthropicProvider(SdkProvider):
    """`Provider` over `anthropic.AsyncAnthropic` (Messages API, non-streaming)."""

    name = "anthropic"
    reply_kind = "a message"
    failed = "{api} call failed ({detail})"
    errors = SdkErrors(
        base=anthropic.AnthropicError,
        status=anthropic.APIStatusError,
        timeout=anthropic.APITimeoutError,
        connection=anthropic.APIConnectionError,
        # a 200 whose body is not a readable Message (the SDK's validation error included)
        malformed=(*MALFORMED, anthropic.APIResponseValidationError),
    )

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 2,
        tracing: bool = False,
    ) -> None:
        """Create the SDK client; nothing is sent until `complete`.

        Args:
            api_key: The Anthropic API key; kept out of every message.
            base_url: The API's URL; None means the public API (the environment is not consulted here).
            timeout: Seconds allowed for each attempt.
            max_retries: Retries per call, shared between the SDK and the malformed-body retry.
            tracing: Let the SDK make its OpenTelemetry spans (configured by its environment variables).
                Off, the SDK skips them: starting even a span nobody records costs CPU on every call.
        """
        super().__init__(api=API, api_key=api_key, timeout=timeout, max_retries=max_retries)
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=base_url or DEFAULT_BASE_URL,
            timeout=timeout,
            max_retries=max_retries,
            http_client=anthropic.DefaultAioHttpClient(),  # the SDK's aiohttp transport: less CPU per call
            open_telemetry=None if tracing else False,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str], *, timeout: float = 60.0, max_retries: int = 2) -> AnthropicProvider:
        """The provider for `ANTHROPIC_API_KEY` (required) and `ANTHROPIC_BASE_URL` (optional) in `environ`.

        The SDK's OpenTelemetry spans are made when `environ` configures them or OpenTelemetry
        (an `ANTHROPIC_OPEN_TELEMETRY*` or `OTEL_*` variable), and skipped otherwise.

        Raises:
            UsageError: `ANTHROPIC_API_KEY` is missing or empty.
        """
        api_key = environ.get("ANTHROPIC_API_KEY", "").strip()
        if not api_key:
            raise UsageError(MISSING_KEY)
        base_url = environ.get("ANTHROPIC_BASE_URL", "").strip() or None
        tracing = any(name.startswith(("ANTHROPIC_OPEN_TELEMETRY", "OTEL_")) for name in environ)
        return cls(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries, tracing=tracing)

    async def aclose(self) -> None:
        """Close the SDK client and its connections."""
        await self._client.close()

    @property
    def client(self) -> anthropic.AsyncAnthropic:
        """The SDK client, for the Message Batches endpoints (`sim.backends.providers.batch`)."""
        return self._client

    async def _send(self, call: ModelCall, retries: int) -> Attempt:
        client = self._client.with_options(max_retries=self._max_retries - retries) if retries else self._client
        raw = await client.messages.with_raw_response.create(**request_params(call))
        content = await raw.read()  # read by the SDK already (a non-streamed reply)
        return Attempt(content, raw.status_code, raw.retries_taken, raw.request_id)

    def _read(self, body: Any, *, retries: int, request_id: str | None) -> Completion:
        return to_completion(body, retries=retries, request_id=request_id)

    def _status(self, err: anthropic.APIStatusError) -> tuple[int, str, str]:
        kind = f"{err.status_code} {err.type}" if err.type else str(err.status_code)
        message = err.api_message or _body_text(err.body)
        return err.status_code, kind, f"{kind}: {message}" if message else kind

    def _auth_reason(self, said: str) -> str:
        return f"{API} refused the key in ANTHROPIC_API_KEY ({said}); set a valid key and run again"


def request_params(call: ModelCall) -> dict[str, Any]:
    """The Messages API parameters for `call`: cached first system block, no sampling parameters."""
    system: list[api.TextBlockParam] = [{"type": "text", "text": text} for text in call.system]
    if system:
        system[0]["cache_control"] = {"type": "ephemeral"}
    messages = [message_param(m) for m in call.messages]
    params: dict[str, Any] = {"model": call.model, "max_tokens": call.max_tokens, "messages": messages}
    if system:
        params["system"] = system
    if call.schema is not None:
        params["output_config"] = {"format": {"type": "json_schema", "schema": call.schema}}
    return params


def message_param(message: Message) -> api.MessageParam:
    """One conversation message in the Messages API's shape."""
    if message.role == "user":
        return {"role": "user", "content": message.text}
    return {"role": "assistant", "content": message.text}


def to_completion(message: Any, *, retries: int, request_id: str | None) -> Completion:
    """The `Completion` for a Messages API reply, given as its JSON body (a dict).

    Only what a completion needs is read: text blocks by type (thinking and any block type this
    code does not know are skipped), usage and stop reason. The SDK's `parse()` would build typed
    models of the whole body first, about a tenth of a run's CPU per call against a fast server.

    Raises:
        TypeError, KeyError, ValueError: the body is not a message.
    """
    if not isinstance(message, dict) or message.get("type") != "message":
        got = repr(message.get("type")) if isinstance(message, dict) else type(message).__name__
        raise TypeError(f"expected a message object, got {got}")
    text = "".join(_text(block) for block in message["content"] if block.get("type") == "text")
    usage = message["usage"]
    raw_stop = message.get("stop_reason") or ""
    return Completion(
        text=text,
        input_tokens=usage_tokens(usage, "input_tokens"),
        output_tokens=usage_tokens(usage, "output_tokens"),
        cache_read_tokens=usage_tokens(usage, "cache_read_input_tokens"),
        cache_write_tokens=usage_tokens(usage, "cache_creation_input_tokens"),
        stop_reason=_STOP_REASONS.get(str(raw_stop), "other"),
        raw_stop_reason=str(raw_stop),
        retries=retries,
        request_id=request_id,
    )


def _text(block: dict[str, Any]) -> str:
    text = block["text"]
    if not isinstance(text, str):
        raise TypeError(f"a text block's text is {type(text).__name__}, not a string")
    return text


def _body_text(body: object) -> str:
    """A non-JSON error body, shortened, for a message (JSON bodies give `api_message` instead)."""
    return body[:DETAIL_CHARS] if isinstance(body, str) else ""
