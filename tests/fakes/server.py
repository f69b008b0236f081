"""The asyncio HTTP/1.1 server on 127.0.0.1 that both provider fakes are built on.

One event loop in one daemon thread serves every connection, so N concurrent requests with
latency L finish in about L, not N*L. Invariants: every request is recorded (API key redacted)
before it is answered; connection loops, hangs and the server's own life are bounded, so a
forgotten fake stops by itself; nothing but 127.0.0.1 is ever bound.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from .faults import Fault, Faults
from .http11 import Response, StreamResponse, malformed, read_request, write_response, write_stream
from .replies import Reply, echo

REDACTED = "[REDACTED]"
_SECRET_HEADERS = frozenset({"x-api-key", "authorization", "api-key"})
_REQUESTS_PER_CONNECTION = 1000
_READ_LIMIT = 1 << 22
_ERROR_FAULTS = (Fault.RATE_LIMIT, Fault.OVERLOADED, Fault.SERVER_ERROR, Fault.BAD_REQUEST, Fault.AUTH)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it.

    Attributes:
        index: 1-based arrival order across the whole server.
        headers: Lower-cased names; `x-api-key` and `authorization` values are `[REDACTED]`.
        body: The parsed JSON body, or None if there was none or it was not JSON.
        sent_expected_key: Whether the request carried the fake's expected API key
            (`x-api-key: K` or `Authorization: Bearer K`): the only trace of the key kept.
        received_at: `time.monotonic()` on arrival, for asserting retry delays.
        fault: The fault injected into this request, if any: with the request count, what tells a retry
            from a first attempt (the SDKs' own retry headers are theirs to change).
    """

    index: int
    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: Any
    sent_expected_key: bool
    received_at: float
    fault: Fault | None = None


def new_id(prefix: str, length: int = 24) -> str:
    """A provider-looking id such as `msg_0f3a...`."""
    return prefix + uuid.uuid4().hex[:length]


class FakeServer:
    """Base class: HTTP plumbing, request log, API-key check, latency and fault injection.

    Subclasses implement `route`, `is_generation` and `error_response`. Behaviour attributes
    (`reply`, `latency`, `faults`, ...) may be reassigned while the server runs; each request
    reads them when it arrives.
    """

    def __init__(
        self,
        *,
        reply: Reply = echo,
        latency: float = 0.0,
        faults: Faults | None = None,
        api_key: str = "test-key",
        stream_chunk_delay: float = 0.0,
        lifetime: float = 120.0,
    ) -> None:
        self.reply = reply
        self.latency = latency
        self.faults = faults or Faults()
        self.api_key = api_key
        self.stream_chunk_delay = stream_chunk_delay
        self.lifetime = lifetime
        self._log: list[RecordedRequest] = []
        self._log_lock = threading.Lock()
        self._generation_count = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._expiry: asyncio.Task[None] | None = None
        self.port = 0

    # ----- subclass hooks -------------------------------------------------------------------

    def is_generation(self, method: str, path: str) -> bool:
        """Whether this endpoint is one that faults are injected into."""
        raise NotImplementedError

    async def route(self, request: RecordedRequest, fault: Fault | None) -> Response | StreamResponse:
        """Answer a request whose key was accepted and that no error fault replaced."""
        raise NotImplementedError

    def error_response(self, kind: Fault, *, request: RecordedRequest | None = None) -> Response:
        """The provider's real error response for an error-status fault (429, 5xx, 400, 401)."""
        raise NotImplementedError

    def common_headers(self) -> dict[str, str]:
        """Headers the provider sends on every response (request id, rate-limit state)."""
        return {}

    # ----- lifecycle ------------------------------------------------------------------------

    @property
    def root_url(self) -> str:
        """`http://127.0.0.1:PORT`, without any API prefix."""
        if not self.port:
            raise RuntimeError("the fake server is not running; use it as a context manager")
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """What to pass as the SDK's `base_url`."""
        return self.root_url

    def start(self) -> Self:
        """Bind an ephemeral port on 127.0.0.1 and serve from a daemon thread."""
        if self._thread is not None:
            raise RuntimeError("fake server already started")
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=_run_loop, args=(loop,), name=type(self).__name__, daemon=True)
        self._thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._open(), loop).result(timeout=5)
        return self

    def stop(self) -> None:
        """Close the listener and every connection, then end the loop thread. Idempotent."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if loop.is_closed():  # lifetime expired and the loop already shut itself down
            thread.join(timeout=5)
            self._loop = self._thread = None
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=5)
            loop.call_soon_threadsafe(loop.stop)
        except (RuntimeError, TimeoutError, asyncio.CancelledError):
            pass  # the loop already stopped itself (lifetime expired)
        thread.join(timeout=5)
        self._loop = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def _open(self) -> int:
        self._server = await asyncio.start_server(
            self._serve_connection, "127.0.0.1", 0, backlog=1024, limit=_READ_LIMIT
        )
        self._expiry = asyncio.get_running_loop().create_task(self._expire())
        return int(self._server.sockets[0].getsockname()[1])

    async def _expire(self) -> None:
        """Stop serving after `lifetime` seconds even if nobody calls `stop()`."""
        await asyncio.sleep(self.lifetime)
        await self._shutdown()
        asyncio.get_running_loop().stop()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._expiry is not None and self._expiry is not asyncio.current_task():
            self._expiry.cancel()

    # ----- request log ----------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, in arrival order."""
        with self._log_lock:
            return list(self._log)

    def requests_to(self, path: str, method: str = "POST") -> list[RecordedRequest]:
        """The recorded requests for one endpoint."""
        return [r for r in self.requests if r.path == path and r.method == method]

    def sent_expected_key(self) -> bool:
        """Whether every request so far carried the expected API key (and there was one)."""
        log = self.requests
        return bool(log) and all(r.sent_expected_key for r in log)

    def _key_ok(self, headers: Mapping[str, str]) -> bool:
        return headers.get("x-api-key") == self.api_key or headers.get("authorization") == f"Bearer {self.api_key}"

    def _record(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> RecordedRequest:
        path, _, query = target.partition("?")
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        fault = None
        if self.is_generation(method, path):
            self._generation_count += 1
            fault = self.faults.pick(self._generation_count, body)
        redacted = {k: (REDACTED if k in _SECRET_HEADERS else v) for k, v in headers.items()}
        with self._log_lock:
            record = RecordedRequest(
                index=len(self._log) + 1,
                method=method,
                path=path,
                query=query,
                headers=redacted,
                body=body,
                sent_expected_key=self._key_ok(headers),
                received_at=time.monotonic(),
                fault=fault,
            )
            self._log.append(record)
        return record

    # ----- HTTP -----------------------------------------------------------------------------

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            for _ in range(_REQUESTS_PER_CONNECTION):
                parsed = await read_request(reader)
                if parsed is None:
                    break
                method, target, headers, raw = parsed
                keep_alive = await self._answer(writer, self._record(method, target, headers, raw))
                if not keep_alive or headers.get("connection", "").lower() == "close":
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass
        except asyncio.CancelledError:
            # Only `_shutdown` cancels us. End quietly instead of re-raising: Python 3.11's
            # start_server logs a cancelled connection task as an "Exception in callback".
            writer.transport.abort()
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()

    async def _answer(self, writer: asyncio.StreamWriter, request: RecordedRequest) -> bool:
        """Write the response for one request; return whether the connection stays usable."""
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        fault = request.fault
        if not request.sent_expected_key:
            response: Response | StreamResponse = self.error_response(Fault.AUTH, request=request)
        elif fault in _ERROR_FAULTS:
            response = self.error_response(fault, request=request)
        elif fault is Fault.HANG:
            await asyncio.sleep(self.faults.hang_seconds)
            writer.transport.abort()
            return False
        else:
            response = await self.route(request, fault)
        if fault is Fault.MALFORMED:
            response = malformed(response)
        drop = fault is Fault.DROP
        if isinstance(response, StreamResponse):
            await write_stream(writer, response, self.common_headers(), drop=drop, delay=self.stream_chunk_delay)
        else:
            await write_response(writer, response, self.common_headers(), drop=drop)
        return not drop


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        loop.close()
