"""A fake Anthropic API speaking the real Messages and Message Batches wire format.

Shapes follow anthropic-sdk-python 2.12 (API version 2026-10-21): `Message` with typed content
blocks (an optional leading `thinking` block, then `text`), `usage` with the cache counters,
the six SSE event types plus `ping`, error bodies `{"type": "error", "error": {...},
"request_id"}` with a `request-id` header, and batches that stay `in_progress` for a set number
of polls. Invariant: the prompt cache only changes on a successful generation.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from .anthropic_batches import Batch, batch_result, batch_results_body, rfc3339
from .caching import PromptCache
from .faults import Fault
from .http11 import Response, StreamResponse
from .replies import count_tokens, first_tokens, last_user_text
from .server import FakeServer, RecordedRequest, new_id

API_VERSION = "2026-10-21"
_REMOVED_SAMPLING = ("temperature", "top_p", "top_k")
_ERRORS: dict[Fault, tuple[int, str, str]] = {
    Fault.RATE_LIMIT: (
        429,
        "rate_limit_error",
        "This request would exceed your organization's rate limit of 50 requests per minute. "
        "For details, refer to: https://docs.claude.com/en/api/rate-limits.",
    ),
    Fault.OVERLOADED: (529, "overloaded_error", "Overloaded"),
    Fault.SERVER_ERROR: (500, "api_error", "Internal server error"),
    Fault.BAD_REQUEST: (400, "invalid_request_error", "messages.0.content: Input should be a valid list"),
    Fault.AUTH: (401, "authentication_error", "invalid x-api-key"),
}


def default_thinking(request: dict[str, Any]) -> str | None:
    """Thinking text when the request turned thinking on (enabled/adaptive), else None.

    With `display: "omitted"` the real API returns the block with empty text and a signature.
    """
    config = request.get("thinking") or {}
    if config.get("type") not in ("enabled", "adaptive"):
        return None
    if config.get("display") == "omitted":
        return ""
    return f"The user said {last_user_text(request)!r}; answer plainly."


class AnthropicFake(FakeServer):
    """Fake `https://api.anthropic.com`: pass `base_url` to `anthropic.Anthropic(base_url=...)`.

    Extra options: `thinking(request) -> text | None` decides the leading thinking block;
    `batch_polls` is how many batch retrieves report `in_progress` before `ended`;
    `min_cache_tokens` is the smallest prefix the cache will store (real models: 512-4096).
    """

    def __init__(
        self,
        *,
        thinking: Any = default_thinking,
        batch_polls: int = 1,
        min_cache_tokens: int = 0,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.thinking = thinking
        self.batch_polls = batch_polls
        self.cache = PromptCache(min_tokens=min_cache_tokens)
        self._batches: dict[str, Batch] = {}

    def is_generation(self, method: str, path: str) -> bool:
        return method == "POST" and path == "/v1/messages"

    def common_headers(self) -> dict[str, str]:
        return {"request-id": new_id("req_"), **_ratelimit_headers(remaining=49)}

    def error_response(self, kind: Fault, *, request: RecordedRequest | None = None) -> Response:
        status, error_type, message = _ERRORS[kind]
        headers: dict[str, str] = {}
        if kind is Fault.RATE_LIMIT or (status >= 500 and self.faults.retry_after_on_5xx):
            headers["retry-after"] = self.faults.retry_after_header()
        if kind is Fault.RATE_LIMIT:
            headers.update(_ratelimit_headers(remaining=0))
        return error(status, error_type, message, headers)

    async def route(self, request: RecordedRequest, fault: Fault | None) -> Response | StreamResponse:
        method, path = request.method, request.path
        if method == "POST" and path == "/v1/messages":
            return self._messages(request, fault)
        if path == "/v1/messages/batches" and method == "POST":
            return self._create_batch(request)
        parts = path.removeprefix("/v1/messages/batches/").split("/")
        if path.startswith("/v1/messages/batches/") and method == "GET":
            batch = self._batches.get(parts[0])
            if batch is None:
                return error(404, "not_found_error", f"No message batch found with id {parts[0]!r}")
            if parts[1:] == ["results"]:
                return self._batch_results(batch)
            if not parts[1:]:
                batch.polls += 1
                return Response.json(200, batch.view(self.root_url, ended=batch.polls > self.batch_polls))
        return error(404, "not_found_error", f"Not found: {method} {path}")

    # ----- messages -------------------------------------------------------------------------

    def _messages(self, request: RecordedRequest, fault: Fault | None) -> Response | StreamResponse:
        problem = validate(request.body, request.headers)
        if problem:
            return error(400, "invalid_request_error", problem)
        message = self.build_message(request.body, cut=fault is Fault.MAX_TOKENS)
        if request.body.get("stream"):
            return StreamResponse(stream_events(message, fail=fault is Fault.STREAM_ERROR))
        return Response.json(200, message)

    def build_message(self, body: dict[str, Any], *, cut: bool = False) -> dict[str, Any]:
        """The `Message` the real API would return for `body` (also used for batch results)."""
        text = self.reply(body)
        thought = self.thinking(body) if self.thinking else None
        content: list[dict[str, Any]] = []
        used = 0
        if thought is not None:
            signature = base64.b64encode(hashlib.sha256(thought.encode()).digest()).decode()
            content.append({"type": "thinking", "thinking": thought, "signature": signature})
            used = count_tokens(thought)
        budget = max(int(body["max_tokens"]) - used, 0)
        if cut:
            budget = min(budget, count_tokens(text) // 2)
        stop_reason = "end_turn"
        if count_tokens(text) > budget:
            text, stop_reason = first_tokens(text, budget), "max_tokens"
        content.append({"type": "text", "text": text, "citations": None})
        cache = self.cache.account(body)
        usage = {
            "input_tokens": cache["input_tokens"],
            "output_tokens": used + count_tokens(text),
            "cache_creation_input_tokens": cache["cache_creation_input_tokens"],
            "cache_read_input_tokens": cache["cache_read_input_tokens"],
            "cache_creation": {
                "ephemeral_5m_input_tokens": cache["ephemeral_5m_input_tokens"],
                "ephemeral_1h_input_tokens": cache["ephemeral_1h_input_tokens"],
            },
            "server_tool_use": None,
            "service_tier": "standard",
        }
        return {
            "id": new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": usage,
        }

    # ----- batches --------------------------------------------------------------------------

    def _create_batch(self, request: RecordedRequest) -> Response:
        items = (request.body or {}).get("requests")
        if not isinstance(items, list) or not items:
            return error(400, "invalid_request_error", "requests: Field required")
        ids = [item.get("custom_id") for item in items]
        if len(set(ids)) != len(ids):
            return error(400, "invalid_request_error", "requests: custom_id values must be unique")
        version = {"anthropic-version": API_VERSION}
        results = [batch_result(item, lambda p: validate(p, version), self.build_message) for item in items]
        batch = Batch(id=new_id("msgbatch_"), results=results)
        self._batches[batch.id] = batch
        return Response.json(200, batch.view(self.root_url, ended=False))

    def _batch_results(self, batch: Batch) -> Response:
        if batch.polls <= self.batch_polls:
            return error(404, "not_found_error", f"Batch {batch.id} has not finished processing")
        return Response(200, batch_results_body(batch), {"content-type": "application/binary"})


def validate(body: Any, headers: Any) -> str | None:
    """The real API's 400 message for a request the fake can see is invalid, or None."""
    if not headers.get("anthropic-version"):
        return "anthropic-version: header is required"
    if not isinstance(body, dict):
        return "There was an issue with the request body: expected a JSON object"
    for name in ("model", "max_tokens", "messages"):
        if name not in body:
            return f"{name}: Field required"
    if not isinstance(body["max_tokens"], int) or body["max_tokens"] < 1:
        return "max_tokens: Input should be greater than or equal to 1"
    if headers.get("anthropic-version") >= API_VERSION:
        for name in _REMOVED_SAMPLING:
            if name in body:
                return f"{name}: Extra inputs are not permitted"
    return None


def error(status: int, error_type: str, message: str, headers: dict[str, str] | None = None) -> Response:
    """A real Anthropic error response."""
    request_id = new_id("req_")
    payload = {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}
    return Response.json(status, payload, {"request-id": request_id, **(headers or {})})


def stream_events(message: dict[str, Any], *, fail: bool = False) -> list[bytes]:
    """The SSE events that stream `message`, in the order the real API sends them."""
    usage = message["usage"]
    start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
    events = [_sse("message_start", {"type": "message_start", "message": start}), _sse("ping", {"type": "ping"})]
    for index, block in enumerate(message["content"]):
        if block["type"] == "thinking":
            empty: dict[str, Any] = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [{"type": "thinking_delta", "thinking": p} for p in _pieces(block["thinking"])]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        else:
            empty = {"type": "text", "text": "", "citations": None}
            deltas = [{"type": "text_delta", "text": p} for p in _pieces(block["text"])]
        events.append(
            _sse("content_block_start", {"type": "content_block_start", "index": index, "content_block": empty})
        )
        for delta in deltas:
            events.append(_sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}))
            if fail:
                overloaded = {
                    "type": "error",
                    "error": {"type": "overloaded_error", "message": "Overloaded"},
                    "request_id": new_id("req_"),
                }
                return [*events, _sse("error", overloaded)]
        events.append(_sse("content_block_stop", {"type": "content_block_stop", "index": index}))
    delta_usage = {
        k: usage[k]
        for k in (
            "input_tokens",
            "output_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
            "server_tool_use",
        )
    }
    events.append(
        _sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                "usage": delta_usage,
            },
        )
    )
    events.append(_sse("message_stop", {"type": "message_stop"}))
    return events


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def _pieces(text: str, size: int = 3) -> list[str]:
    """Split text into deltas of about `size` words (at least one delta, possibly empty)."""
    words = text.split(" ")
    chunks = [" ".join(words[i : i + size]) for i in range(0, len(words), size)]
    return [c + (" " if i < len(chunks) - 1 else "") for i, c in enumerate(chunks)] or [""]


def _ratelimit_headers(*, remaining: int) -> dict[str, str]:
    reset = rfc3339(datetime.now(UTC) + timedelta(seconds=60))
    headers = {}
    for kind, limit in (("requests", 50), ("tokens", 50_000), ("input-tokens", 40_000), ("output-tokens", 10_000)):
        headers[f"anthropic-ratelimit-{kind}-limit"] = str(limit)
        headers[f"anthropic-ratelimit-{kind}-remaining"] = str(remaining if kind == "requests" else limit)
        headers[f"anthropic-ratelimit-{kind}-reset"] = reset
    return headers
