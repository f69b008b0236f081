"""The throughput bench's fixed-latency server (`bench.latency_server`), as the run's provider reads it.

The bench's figure is only as good as its server: it must speak the Messages wire format the SDK and
`AnthropicProvider` read, reply `latency` after each request arrived, and serve requests concurrently.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from conftest import REPO

from sim.backends.providers.anthropic import AnthropicProvider
from sim.backends.providers.common import Completion, Message, ModelCall

LATENCY = 0.3


@pytest.fixture
def server() -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.latency_server", "--latency", str(LATENCY), "--lifetime", "60"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert process.stdout is not None
    try:
        yield process.stdout.readline().strip()
    finally:
        process.kill()
        process.wait()


def line_call(n: int) -> ModelCall:
    prompt = f"The scene so far:\n(nothing yet)\n\nWrite I's line now, at most 6 words. ({n})"
    return ModelCall("claude-sonnet-5", ("You are me, aged four.", "My life so far."), (Message("user", prompt),), 400)


def test_calls_are_answered_in_the_messages_format_concurrently_after_the_latency(server: str) -> None:
    provider = AnthropicProvider(api_key="test-key", base_url=server, max_retries=0)

    async def ask_eight() -> tuple[list[Completion], float]:
        started = time.perf_counter()
        try:
            return list(await asyncio.gather(*(provider.complete(line_call(n)) for n in range(8)))), (
                time.perf_counter() - started
            )
        finally:
            await provider.aclose()

    completions, seconds = asyncio.run(ask_eight())
    assert [(c.text, c.stop_reason, c.raw_stop_reason, c.output_tokens) for c in completions] == [
        ("Okay, I will.", "end", "end_turn", 3)
    ] * 8
    assert all(c.input_tokens > 10 and c.request_id and c.request_id.startswith("req_") for c in completions)
    assert all(c.latency_ms >= LATENCY * 1000 for c in completions)
    assert seconds < 2 * LATENCY  # served side by side, not one after another (8 x 0.3 s)


def test_anything_but_a_messages_post_gets_an_anthropic_error(server: str) -> None:
    def status_and_error(path: str, body: bytes | None) -> tuple[int, dict[str, object]]:
        request = urllib.request.Request(server + path, data=body, headers={"content-type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=10)
        return caught.value.code, json.loads(caught.value.read())

    assert status_and_error("/v1/models", None) == (
        404,
        {"type": "error", "error": {"type": "not_found_error", "message": "Not found: GET /v1/models"}},
    )
    assert status_and_error("/v1/messages", b"not json") == (
        400,
        {"type": "error", "error": {"type": "invalid_request_error", "message": "the body is not a Messages request"}},
    )
