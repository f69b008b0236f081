"""A fake OpenAI-compatible API: chat completions (JSON and SSE) and the model list.

Shapes follow openai-python 3.54: `chat.completion` objects with `choices[].message` and
`finish_reason` "stop"/"length", `usage` with `prompt_tokens_details.cached_tokens` from an
automatic prefix cache, `chat.completion.chunk` deltas ending in `data: [DONE]`, and error
bodies `{"error": {"message", "type", "param", "code"}}` with an `x-request-id` header.
"""

from __future__ import annotations

import json
import time
from typing import Any

from .caching import PrefixCache
from .faults import Fault
from .http11 import Response, StreamResponse
from .replies import count_tokens, first_tokens
from .server import FakeServer, RecordedRequest, new_id

_ERRORS: dict[Fault, tuple[int, str, str | None, str | None, str]] = {
    Fault.RATE_LIMIT: (
        429,
        "requests",
        None,
        "rate_limit_exceeded",
        "Rate limit reached for requests per min (RPM): Limit 60, Used 60, Requested 1. Please try again in 1s.",
    ),
    Fault.OVERLOADED: (503, "server_error", None, "server_is_overloaded", "The server is overloaded or not ready yet."),
    Fault.SERVER_ERROR: (
        500,
        "server_error",
        None,
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    Fault.BAD_REQUEST: (400, "invalid_request_error", "messages", "invalid_value", "Invalid value for 'messages'."),
    Fault.AUTH: (
        401,
        "invalid_request_error",
        None,
        "invalid_api_key",
        "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
    ),
}


class OpenAIFake(FakeServer):
    """Fake `https://api.openai.com/v1`: pass `base_url` (it ends in `/v1`) to `openai.OpenAI`."""

    def __init__(
        self, *, models: tuple[str, ...] = ("gpt-fake", "gpt-fake-mini"), min_cache_tokens: int = 0, **options: Any
    ) -> None:
        super().__init__(**options)
        self.models = models
        self.cache = PrefixCache(min_tokens=min_cache_tokens)

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    def is_generation(self, method: str, path: str) -> bool:
        return method == "POST" and path == "/v1/chat/completions"

    def common_headers(self) -> dict[str, str]:
        return {"x-request-id": new_id("req_", 32), "openai-processing-ms": "1", **_ratelimit_headers(remaining=59)}

    def error_response(self, kind: Fault, *, request: RecordedRequest | None = None) -> Response:
        status, error_type, param, code, message = _ERRORS[kind]
        headers: dict[str, str] = {}
        if kind is Fault.RATE_LIMIT or (status >= 500 and self.faults.retry_after_on_5xx):
            headers["retry-after"] = self.faults.retry_after_header()
        if kind is Fault.RATE_LIMIT:
            headers.update(_ratelimit_headers(remaining=0))
        return error(status, message, error_type, param=param, code=code, headers=headers)

    async def route(self, request: RecordedRequest, fault: Fault | None) -> Response | StreamResponse:
        if request.method == "POST" and request.path == "/v1/chat/completions":
            return self._chat(request, fault)
        if request.method == "GET" and request.path == "/v1/models":
            return Response.json(200, {"object": "list", "data": [_model(m) for m in self.models]})
        model = request.path.removeprefix("/v1/models/")
        if request.method == "GET" and model in self.models:
            return Response.json(200, _model(model))
        return error(404, f"Invalid URL ({request.method} {request.path})", "invalid_request_error")

    def _chat(self, request: RecordedRequest, fault: Fault | None) -> Response | StreamResponse:
        body = request.body
        if not isinstance(body, dict) or not body.get("model"):
            return error(400, "you must provide a model parameter", "invalid_request_error")
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            return error(
                400,
                "Missing required parameter: 'messages'.",
                "invalid_request_error",
                param="messages",
                code="missing_required_parameter",
            )
        completion = self.build_completion(body, cut=fault is Fault.MAX_TOKENS)
        if body.get("stream"):
            usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamResponse(stream_events(completion, include_usage=usage, fail=fault is Fault.STREAM_ERROR))
        return Response.json(200, completion)

    def build_completion(self, body: dict[str, Any], *, cut: bool = False) -> dict[str, Any]:
        """The `chat.completion` object the real API would return for `body`."""
        text = self.reply(body)
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        budget = count_tokens(text) // 2 if cut else count_tokens(text)
        if limit is not None:
            budget = min(budget, int(limit))
        finish = "stop"
        if count_tokens(text) > budget:
            text, finish = first_tokens(text, budget), "length"
        prompt_tokens, cached = self.cache.account(body["messages"])
        completion_tokens = count_tokens(text)
        return {
            "id": new_id("chatcmpl-", 29),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None, "annotations": []},
                    "logprobs": None,
                    "finish_reason": finish,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
        }


def stream_events(completion: dict[str, Any], *, include_usage: bool, fail: bool = False) -> list[bytes]:
    """The `data: {chunk}` events that stream `completion`, ending with `data: [DONE]`."""
    choice = completion["choices"][0]
    text = choice["message"]["content"]
    base = {k: completion[k] for k in ("id", "created", "model", "service_tier", "system_fingerprint")}
    base["object"] = "chat.completion.chunk"

    def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
        payload: dict[str, Any] = {
            **base,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            payload["usage"] = None
        return _data(payload)

    events = [chunk({"role": "assistant", "content": "", "refusal": None}, None)]
    words = text.split(" ")
    for i in range(0, len(words), 3):
        piece = " ".join(words[i : i + 3]) + (" " if i + 3 < len(words) else "")
        events.append(chunk({"content": piece}, None))
        if fail:
            failure = {
                "message": "The server had an error while processing your request.",
                "type": "server_error",
                "param": None,
                "code": None,
            }
            return [*events, _data({"error": failure})]
    events.append(chunk({}, choice["finish_reason"]))
    if include_usage:
        events.append(_data({**base, "choices": [], "usage": completion["usage"]}))
    events.append(b"data: [DONE]\n\n")
    return events


def error(
    status: int,
    message: str,
    error_type: str,
    *,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """A real OpenAI error response."""
    payload = {"error": {"message": message, "type": error_type, "param": param, "code": code}}
    return Response.json(status, payload, headers)


def _data(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload)}\n\n".encode()


def _model(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 1_700_000_000, "owned_by": "system"}


def _ratelimit_headers(*, remaining: int) -> dict[str, str]:
    return {
        "x-ratelimit-limit-requests": "60",
        "x-ratelimit-remaining-requests": str(remaining),
        "x-ratelimit-reset-requests": "1s",
        "x-ratelimit-limit-tokens": "150000",
        "x-ratelimit-remaining-tokens": "150000",
        "x-ratelimit-reset-tokens": "0s",
    }
