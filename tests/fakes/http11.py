"""Just enough HTTP/1.1 for the fakes: read a request, write a response or an SSE stream.

Responses are written the way the real APIs send them (JSON with content-length; SSE as
chunked transfer encoding, keep-alive), and can be broken on purpose: cut off mid-body
(`drop`) or with invalid JSON (`malformed`). Reads are bounded by an idle timeout.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

IDLE_SECONDS = 10.0
_REASONS = {529: "Overloaded"}


@dataclass
class Response:
    """A complete (non-streaming) HTTP response."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
        """A JSON response with the right content type."""
        return cls(status, json.dumps(payload).encode(), {"content-type": "application/json", **(headers or {})})


@dataclass
class StreamResponse:
    """A 200 `text/event-stream` response, written as one HTTP chunk per SSE event."""

    events: list[bytes]
    headers: dict[str, str] = field(default_factory=dict)


async def write_stream(
    writer: asyncio.StreamWriter, response: StreamResponse, common: Mapping[str, str], *, drop: bool, delay: float
) -> None:
    """Write a 200 SSE response, one chunk per event; with `drop`, abort halfway through."""
    headers = {
        **common,
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache",
        "transfer-encoding": "chunked",
        **response.headers,
    }
    writer.write(head(200, headers))
    events = response.events[: max(1, len(response.events) // 2)] if drop else response.events
    for event in events:
        writer.write(b"%x\r\n%s\r\n" % (len(event), event))
        await writer.drain()
        if delay > 0:
            await asyncio.sleep(delay)
    if drop:
        writer.transport.abort()
        return
    writer.write(b"0\r\n\r\n")
    await writer.drain()


def head(status: int, headers: Mapping[str, str]) -> bytes:
    """The status line and headers of a response."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = _REASONS.get(status, "Unknown")
    lines = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    return "\r\n".join(lines).encode("latin-1")


async def write_response(
    writer: asyncio.StreamWriter, response: Response, common: Mapping[str, str], *, drop: bool
) -> None:
    """Write a complete response; with `drop`, send the head and half the body, then abort."""
    headers = {**common, **response.headers, "content-length": str(len(response.body))}
    writer.write(head(response.status, headers))
    if drop:
        writer.write(response.body[: len(response.body) // 2])
        await writer.drain()
        writer.transport.abort()
        return
    writer.write(response.body)
    await writer.drain()


def malformed(response: Response | StreamResponse) -> Response | StreamResponse:
    """Break the JSON: cut a body in half, or the data of the second JSON stream event (pings skipped)."""
    if isinstance(response, Response):
        return Response(200, response.body[: max(1, len(response.body) // 2)], dict(response.headers))
    events = list(response.events)
    parsed = [i for i, e in enumerate(events) if b"data: {" in e and not e.startswith(b"event: ping")]
    target = parsed[min(1, len(parsed) - 1)]
    before, sep, data = events[target].partition(b"data: ")
    events[target] = before + sep + data[: max(1, len(data) // 2)].rstrip(b"\n") + b"\n\n"
    return StreamResponse(events, dict(response.headers))


async def read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes] | None:
    """Read one request (head and body); None when the client closed an idle connection."""
    try:
        raw_head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=IDLE_SECONDS)
    except (asyncio.IncompleteReadError, TimeoutError):
        return None
    request_line, *header_lines = raw_head.decode("latin-1").split("\r\n")
    method, target, _version = request_line.split(" ", 2)
    headers: dict[str, str] = {}
    for line in header_lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = await read_chunked(reader)
    else:
        body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
    return method, target, headers, body


async def read_chunked(reader: asyncio.StreamReader) -> bytes:
    """Read a chunked request body (bounded to 65536 chunks)."""
    parts: list[bytes] = []
    for _ in range(1 << 16):
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            break
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
    return b"".join(parts)
