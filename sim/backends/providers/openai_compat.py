"""The OpenAI-compatible provider: a `ModelCall` as a chat completion on any server that speaks the API.

Aimed at local servers (vLLM, Ollama, llama.cpp) as much as at OpenAI itself: the base URL is
required, the key is optional (a placeholder is sent when none is set), the system blocks become one
system message, and a schema becomes a strict `json_schema` response format. No sampling parameters
are sent. Cached prompt tokens (`prompt_tokens_details.cached_tokens`) are reported as cache reads.

Invariants:
- This module builds the request and reads the reply, nothing more: the call loop, its retries (the
  SDK's, plus a malformed body's within the same `max_retries`) and the mapping of every failure to a
  `ProviderError` are `providers.loop`'s, shared with the Anthropic provider.
- The API key is never logged or put in a message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import openai
from openai.types.chat import ChatCompletionMessageParam

from sim.backends.providers.common import DETAIL_CHARS, Completion, Message, ModelCall, StopReason, usage_tokens
from sim.backends.providers.loop import MALFORMED, Attempt, SdkErrors, SdkProvider
from sim.errors import UsageError

NO_KEY = "not-needed"  # sent when OPENAI_API_KEY is unset: local servers ignore the key
MISSING_URL = "--base-url is required for --backend openai-compatible (the server's URL, e.g. http://localhost:8000/v1)"
_FINISH_REASONS: dict[str, StopReason] = {"stop": "end", "length": "max_tokens", "content_filter": "refusal"}


class OpenAICompatibleProvider(SdkProvider):
    """`Provider` over `openai.AsyncOpenAI` chat completions (non-streaming)."""

    name = "openai-compatible"
    reply_kind = "a chat completion"
    failed = "the call to {api} failed ({detail})"
    errors = SdkErrors(
        base=openai.OpenAIError,
        status=openai.APIStatusError,
        timeout=openai.APITimeoutError,
        connection=openai.APIConnectionError,
        # a 200 whose body is not a readable chat completion (the SDK's validation error included)
        malformed=(*MALFORMED, openai.APIResponseValidationError),
    )

    def __init__(self, *, base_url: str, api_key: str | None, timeout: float = 60.0, max_retries: int = 2) -> None:
        """Create the SDK client; nothing is sent until `complete`.

        Args:
            base_url: The server's API root, e.g. `http://localhost:8000/v1`.
            api_key: The key to send, or None for a server that needs none; kept out of every message.
            timeout: Seconds allowed for each attempt.
            max_retries: Retries per call, shared between the SDK and the malformed-body retry.
        """
        api = f"the OpenAI-compatible server at {base_url.rstrip('/')}"
        super().__init__(api=api, api_key=api_key, timeout=timeout, max_retries=max_retries)
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

    async def aclose(self) -> None:
        """Close the SDK client and its connections."""
        await self._client.close()

    async def _send(self, call: ModelCall, retries: int) -> Attempt:
        client = self._client.with_options(max_retries=self._max_retries - retries) if retries else self._client
        raw = await client.chat.completions.with_raw_response.create(**request_params(call))
        content = raw.content  # read by the SDK already (a non-streamed reply)
        return Attempt(content, raw.status_code, raw.retries_taken, raw.request_id)

    def _read(self, body: Any, *, retries: int, request_id: str | None) -> Completion:
        return to_completion(body, retries=retries, request_id=request_id)

    def _status(self, err: openai.APIStatusError) -> tuple[int, str, str]:
        word = err.code or err.type
        kind = f"{err.status_code} {word}" if word else str(err.status_code)
        message = _error_message(err.body)
        return err.status_code, kind, f"{kind}: {message}" if message else kind

    def _auth_reason(self, said: str) -> str:
        if self._api_key is None:
            return f"{self.api} needs an API key ({said}); set OPENAI_API_KEY and run again"
        return f"{self.api} refused the key in OPENAI_API_KEY ({said}); set a valid key and run again"


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
