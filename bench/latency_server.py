"""A fixed-latency Anthropic Messages API on 127.0.0.1, for the throughput bench (`bench_model`).

Each reply is written `latency` seconds after the first byte of its request arrived, and serving it costs
as little CPU as Python allows. The bench's client and server share this machine's cores, so whatever CPU
the server spends is taken from the client being measured; a real provider's is not. The test fake
(tests/fakes) spends about 0.8 ms of CPU per call on fidelity the bench does not use (a request log,
prompt-cache accounting, fault injection, an event loop); this server spends about 0.35 ms.

What a client sees is the real wire format: HTTP/1.1 with keep-alive, a Messages reply whose text is the
fake's `in_character` line for the prompt (so a scene takes the same path as against the fake), a
`request-id` header, and an Anthropic error body for anything but `POST /v1/messages` with a JSON body.
Usage is one token per space-separated word of the request and of the reply; there is no prompt caching.

One thread per connection, with blocking I/O: in CPython that costs less per request than an event loop.
The server exits by itself after `--lifetime` seconds, so a forgotten one does not linger.

Usage: python -m bench.latency_server [--latency 0.2] [--lifetime 3600]; prints its base URL, then serves.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from fakes.replies import in_character  # noqa: E402

MAX_HEAD = 1 << 16
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 411: "Length Required"}


class Closed(Exception):
    """The client closed the connection (or sent what cannot be read as HTTP/1.1); stop serving it."""


def main() -> None:
    """Serve until killed or `--lifetime` seconds have passed."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds from a request's arrival to its reply")
    parser.add_argument("--lifetime", type=float, default=3600.0, help="seconds before the server exits by itself")
    args = parser.parse_args()
    listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
    threading.Timer(args.lifetime, os._exit, (0,)).start()
    print(f"http://127.0.0.1:{listener.getsockname()[1]}", flush=True)
    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve, args=(conn, args.latency), daemon=True).start()


def serve(conn: socket.socket, latency: float) -> None:
    """Answer the requests of one connection in order, each `latency` seconds after it arrived."""
    reader = Reader(conn)
    with conn:
        try:
            while True:
                arrived, method, path, headers, body = reader.request()
                status, payload = answer(method, path, body)
                wait = arrived + latency - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                conn.sendall(response(status, payload))
                if headers.get("connection", "").lower() == "close" or status == 411:
                    return
        except (Closed, OSError):
            return


class Reader:
    """Reads HTTP/1.1 requests with a `content-length` body from a socket."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.buffer = b""

    def request(self) -> tuple[float, str, str, dict[str, str], bytes | None]:
        """The next request: when its first byte arrived, method, path, headers and body (None without a length)."""
        if not self.buffer:
            self._more()
        arrived = time.monotonic()
        while b"\r\n\r\n" not in self.buffer:
            if len(self.buffer) > MAX_HEAD:
                raise Closed
            self._more()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, _ = lines[0].split(" ", 2)
        except ValueError:
            raise Closed from None
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if not headers.get("content-length", "").isdigit():
            return arrived, method, target.partition("?")[0], headers, None
        size = int(headers["content-length"])
        while len(self.buffer) < size:
            self._more()
        body, self.buffer = self.buffer[:size], self.buffer[size:]
        return arrived, method, target.partition("?")[0], headers, body

    def _more(self) -> None:
        data = self.conn.recv(1 << 16)
        if not data:
            raise Closed
        self.buffer += data


def answer(method: str, path: str, body: bytes | None) -> tuple[int, dict[str, Any]]:
    """The status and JSON payload for one request."""
    if method != "POST" or path != "/v1/messages":
        return 404, error("not_found_error", f"Not found: {method} {path}")
    if body is None:
        return 411, error("invalid_request_error", "a request body needs a content-length header")
    try:
        request = json.loads(body)
        text = in_character(request)
        model = str(request["model"])
    except (ValueError, TypeError, KeyError, AttributeError):
        return 400, error("invalid_request_error", "the body is not a Messages request")
    return 200, {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text, "citations": None}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": body.count(b" ") + 1,
            "output_tokens": len(text.split()),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


def error(kind: str, message: str) -> dict[str, Any]:
    """An Anthropic error body."""
    return {"type": "error", "error": {"type": kind, "message": message}}


def response(status: int, payload: dict[str, Any]) -> bytes:
    """The HTTP/1.1 response bytes for a JSON payload."""
    body = json.dumps(payload).encode()
    head = (
        f"HTTP/1.1 {status} {REASONS[status]}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nrequest-id: req_{uuid.uuid4().hex[:24]}\r\n\r\n"
    )
    return head.encode() + body


if __name__ == "__main__":
    main()
