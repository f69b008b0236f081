"""The fake providers speak the real protocols: proven by driving them with the real SDKs.

Every assertion here is about what the SDK sees (parsed objects, its documented error classes and
the bodies they carry) or what the fake recorded (requests, their faults and arrival times), so a
fake that drifts from the wire format fails here before it misleads a backend test. Where a fault
breaks the transport, only that something failed, and where, is asserted: which class the SDK or
its HTTP library raises for a broken connection is theirs to choose.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import openai
import pytest
from fakes import (
    REDACTED,
    AnthropicFake,
    Fault,
    Faults,
    OpenAIFake,
    count_tokens,
    scripted,
    words,
)
from fakes.anthropic_server import API_VERSION

pytest_plugins = ["fakes.plugin"]

MODEL = "claude-fake-1"
LONG_SYSTEM = " ".join(f"rule{i}" for i in range(40))
# A 200 body that is not JSON: json's own error from the SDKs today, their validation error if they ever wrap it.
UNPARSABLE = (ValueError, anthropic.APIResponseValidationError, openai.APIResponseValidationError)


def claude(fake: AnthropicFake, **options: Any) -> anthropic.Anthropic:
    options.setdefault("max_retries", 0)
    return anthropic.Anthropic(base_url=fake.base_url, api_key="test-key", **options)


def gpt(fake: OpenAIFake, **options: Any) -> openai.OpenAI:
    options.setdefault("max_retries", 0)
    return openai.OpenAI(base_url=fake.base_url, api_key="test-key", **options)


def ask(client: anthropic.Anthropic, text: str = "hello there", **params: Any) -> anthropic.types.Message:
    params.setdefault("max_tokens", 100)
    return client.messages.create(model=MODEL, messages=[{"role": "user", "content": text}], **params)


def chat(client: openai.OpenAI, text: str = "hello there", **params: Any) -> Any:
    return client.chat.completions.create(model="gpt-fake", messages=[{"role": "user", "content": text}], **params)


def read_until_it_breaks(texts: Callable[[], Iterator[str]]) -> tuple[list[str], Exception | None]:
    """The pieces of text a stream gave before it failed, and the exception it failed with (None if it did not).

    Any exception counts: a dropped connection surfaces as the SDK's `APIConnectionError` or, unwrapped, as
    its HTTP library's own error, and either is the SDK's choice. The text received tells where it failed.
    """
    received: list[str] = []
    try:
        for text in texts():
            received.append(text)
    except Exception as err:
        return received, err
    return received, None


# ----- Anthropic: messages ------------------------------------------------------------------


def test_anthropic_plain_message_has_the_real_shape_and_the_key_is_redacted(anthropic_fake: AnthropicFake) -> None:
    message = ask(claude(anthropic_fake), "hello there")

    assert message.type == "message" and message.role == "assistant" and message.model == MODEL
    assert message.id.startswith("msg_")
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == "echo: hello there"
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (2, 3)
    assert message.usage.cache_creation_input_tokens == 0 and message.usage.cache_read_input_tokens == 0
    [request] = anthropic_fake.requests
    assert (request.method, request.path, request.body["max_tokens"]) == ("POST", "/v1/messages", 100)
    assert request.headers["anthropic-version"] >= API_VERSION, "the SDK speaks at least the version the fake does"
    assert REDACTED in request.headers.values(), "the key came in a header (x-api-key or authorization)"
    assert "test-key" not in repr(anthropic_fake.requests)
    assert anthropic_fake.sent_expected_key()


def test_anthropic_wrong_key_gets_a_real_401(anthropic_fake: AnthropicFake) -> None:
    client = anthropic.Anthropic(base_url=anthropic_fake.base_url, api_key="wrong-key", max_retries=2)

    with pytest.raises(anthropic.AuthenticationError) as caught:
        ask(client)

    assert caught.value.type == "authentication_error"
    assert caught.value.request_id and caught.value.request_id.startswith("req_")
    assert len(anthropic_fake.requests) == 1, "401 must not be retried"
    assert not anthropic_fake.sent_expected_key()


def test_anthropic_stream_sends_the_real_event_sequence(anthropic_fake: AnthropicFake) -> None:
    client = claude(anthropic_fake)

    events = list(ask(client, "one two three four five six seven", stream=True))
    with client.messages.stream(model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "a b c"}]) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()

    kinds = [e.type for e in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    assert kinds[1:-2] == ["content_block_start", *["content_block_delta"] * 3, "content_block_stop"]
    deltas = [e.delta.text for e in events if e.type == "content_block_delta"]
    assert "".join(deltas) == "echo: one two three four five six seven"
    assert events[-2].delta.stop_reason == "end_turn" and events[-2].usage.output_tokens == 8
    assert text == "echo: a b c" and final.stop_reason == "end_turn" and final.usage.output_tokens == 4


def test_anthropic_prompt_cache_writes_then_reads_the_same_prefix(anthropic_fake: AnthropicFake) -> None:
    client = claude(anthropic_fake)
    system = [{"type": "text", "text": LONG_SYSTEM, "cache_control": {"type": "ephemeral"}}]

    first = ask(client, "first question", system=system)
    second = ask(client, "another question entirely", system=system)
    uncached = ask(client, "first question", system=LONG_SYSTEM)

    assert (first.usage.cache_creation_input_tokens, first.usage.cache_read_input_tokens) == (40, 0)
    assert first.usage.cache_creation.ephemeral_5m_input_tokens == 40
    assert first.usage.input_tokens == 2
    assert (second.usage.cache_creation_input_tokens, second.usage.cache_read_input_tokens) == (0, 40)
    assert second.usage.input_tokens == 3
    assert (uncached.usage.cache_creation_input_tokens, uncached.usage.cache_read_input_tokens) == (0, 0)
    assert uncached.usage.input_tokens == 42


def test_anthropic_automatic_caching_grows_with_the_conversation(anthropic_fake: AnthropicFake) -> None:
    client = claude(anthropic_fake)
    turn1 = [{"role": "user", "content": "tell me a story"}]
    first = client.messages.create(
        model=MODEL, max_tokens=50, messages=turn1, cache_control={"type": "ephemeral"}, system=LONG_SYSTEM
    )
    turn2 = [*turn1, {"role": "assistant", "content": first.content[0].text}, {"role": "user", "content": "more"}]

    with client.messages.stream(
        model=MODEL, max_tokens=50, messages=turn2, cache_control={"type": "ephemeral"}, system=LONG_SYSTEM
    ) as stream:
        second = stream.get_final_message()

    assert first.usage.cache_creation_input_tokens == 44 and first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_read_input_tokens == 44
    assert second.usage.cache_creation_input_tokens == count_tokens("echo: tell me a story") + 1


def test_anthropic_thinking_block_leads_when_thinking_is_on(anthropic_fake: AnthropicFake) -> None:
    client = claude(anthropic_fake)
    thinking = {"type": "enabled", "budget_tokens": 1024}

    message = ask(client, "why", max_tokens=2000, thinking=thinking)
    with client.messages.stream(
        model=MODEL, max_tokens=2000, thinking=thinking, messages=[{"role": "user", "content": "why"}]
    ) as stream:
        event_kinds = {e.type for e in stream}
        streamed = stream.get_final_message()
    omitted = ask(client, "why", max_tokens=2000, thinking={"type": "adaptive", "display": "omitted"})

    assert [b.type for b in message.content] == ["thinking", "text"]
    assert "why" in message.content[0].thinking and message.content[0].signature
    assert message.content[1].text == "echo: why"
    assert message.usage.output_tokens == count_tokens(message.content[0].thinking) + 2
    assert {"thinking", "signature"} <= event_kinds
    assert [b.type for b in streamed.content] == ["thinking", "text"]
    assert streamed.content[0].signature == message.content[0].signature
    assert omitted.content[0].type == "thinking" and omitted.content[0].thinking == ""
    assert omitted.content[0].signature


def test_anthropic_reply_is_cut_off_at_max_tokens(anthropic_fake: AnthropicFake) -> None:
    anthropic_fake.reply = words(50)
    client = claude(anthropic_fake)

    cut = ask(client, max_tokens=5)
    anthropic_fake.faults = Faults(schedule={2: Fault.MAX_TOKENS})
    forced = ask(client, max_tokens=1000)

    assert cut.stop_reason == "max_tokens"
    assert cut.content[0].text == "word1 word2 word3 word4 word5" and cut.usage.output_tokens == 5
    assert forced.stop_reason == "max_tokens" and forced.usage.output_tokens == 25


def test_anthropic_rejects_removed_sampling_parameters(anthropic_fake: AnthropicFake) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        ask(claude(anthropic_fake, max_retries=2), extra_body={"temperature": 0.7})

    assert caught.value.body["error"] == {
        "type": "invalid_request_error",
        "message": "temperature: Extra inputs are not permitted",
    }
    assert len(anthropic_fake.requests) == 1


# ----- Anthropic: faults and the SDK's retries -----------------------------------------------


def test_anthropic_429_is_retried_after_retry_after(anthropic_fake: AnthropicFake) -> None:
    anthropic_fake.faults = Faults(schedule={1: Fault.RATE_LIMIT}, retry_after=1)
    anthropic_fake.reply = scripted(["first line", "second line"])

    message = ask(claude(anthropic_fake, max_retries=2))

    first, retry = anthropic_fake.requests
    assert message.content[0].text == "first line", "a rejected request must not consume a scripted reply"
    assert (first.fault, retry.fault) == (Fault.RATE_LIMIT, None)
    assert first.body == retry.body
    assert retry.received_at - first.received_at >= 1.0, "the retry waits as long as retry-after says"


def test_anthropic_429_carries_retry_after_and_ratelimit_headers(anthropic_fake: AnthropicFake) -> None:
    anthropic_fake.faults = Faults(schedule={1: Fault.RATE_LIMIT}, retry_after=7)

    with pytest.raises(anthropic.RateLimitError) as caught:
        ask(claude(anthropic_fake))

    headers = caught.value.response.headers
    assert headers["retry-after"] == "7"
    assert headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert headers["anthropic-ratelimit-requests-reset"].endswith("Z")
    assert caught.value.body["error"]["type"] == "rate_limit_error"
    assert caught.value.body["type"] == "error"


@pytest.mark.parametrize(
    ("fault", "status", "error_type"),
    [(Fault.OVERLOADED, 529, "overloaded_error"), (Fault.SERVER_ERROR, 500, "api_error")],
)
def test_anthropic_5xx_is_retried(anthropic_fake: AnthropicFake, fault: Fault, status: int, error_type: str) -> None:
    anthropic_fake.faults = Faults(schedule={1: fault, 3: fault})
    client = claude(anthropic_fake, max_retries=1)

    recovered = ask(client)
    with pytest.raises(anthropic.APIStatusError) as caught:
        ask(claude(anthropic_fake, max_retries=0))

    assert recovered.content[0].text == "echo: hello there"
    assert [r.fault for r in anthropic_fake.requests] == [fault, None, fault]
    assert caught.value.status_code == status and caught.value.body["error"]["type"] == error_type


@pytest.mark.parametrize(
    ("fault", "exception"),
    [(Fault.BAD_REQUEST, anthropic.BadRequestError), (Fault.AUTH, anthropic.AuthenticationError)],
)
def test_anthropic_400_and_401_are_not_retried(
    anthropic_fake: AnthropicFake, fault: Fault, exception: type[Exception]
) -> None:
    anthropic_fake.faults = Faults(schedule={1: fault})

    with pytest.raises(exception):
        ask(claude(anthropic_fake, max_retries=3))

    assert len(anthropic_fake.requests) == 1


def test_anthropic_malformed_body_cannot_be_parsed_and_is_not_retried(anthropic_fake: AnthropicFake) -> None:
    anthropic_fake.faults = Faults(schedule={1: Fault.MALFORMED, 2: Fault.MALFORMED})
    client = claude(anthropic_fake, max_retries=2)

    with pytest.raises(UNPARSABLE):
        ask(client)
    with (
        pytest.raises(UNPARSABLE),
        client.messages.stream(
            model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "a b c d e f g h"}]
        ) as stream,
    ):
        list(stream)

    assert len(anthropic_fake.requests) == 2


def test_anthropic_dropped_connection_is_retried_before_the_stream_starts(anthropic_fake: AnthropicFake) -> None:
    anthropic_fake.faults = Faults(schedule={1: Fault.DROP, 3: Fault.DROP})
    client = claude(anthropic_fake, max_retries=1)

    def text_stream() -> Iterator[str]:
        with client.messages.stream(
            model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "a b c d e f g h i j"}]
        ) as stream:
            yield from stream.text_stream

    recovered = ask(client)
    received, failure = read_until_it_breaks(text_stream)

    assert recovered.content[0].text == "echo: hello there"
    assert failure is not None, "a stream cut off halfway must fail, not end as if complete"
    assert isinstance(failure, anthropic.APIConnectionError) or not isinstance(failure, anthropic.AnthropicError)
    assert received and "echo: a b c d e f g h i j".startswith("".join(received))
    assert "".join(received) != "echo: a b c d e f g h i j", "the drop came halfway through the events"
    assert [r.fault for r in anthropic_fake.requests] == [Fault.DROP, None, Fault.DROP], (
        "the SDK retries a dropped reply, but not a stream that has started"
    )


def test_anthropic_error_event_mid_stream_raises_an_api_error(anthropic_fake: AnthropicFake) -> None:
    anthropic_fake.faults = Faults(schedule={1: Fault.STREAM_ERROR})
    received: list[str] = []

    with (
        pytest.raises(anthropic.APIError) as caught,
        claude(anthropic_fake, max_retries=2).messages.stream(
            model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "a b c d e f g"}]
        ) as stream,
    ):
        for text in stream.text_stream:
            received.append(text)

    assert caught.value.body["error"] == {"type": "overloaded_error", "message": "Overloaded"}
    assert "".join(received) == "echo: a b ", "the error event came after the first delta, on a 200"
    assert len(anthropic_fake.requests) == 1


def test_anthropic_hang_hits_the_client_timeout(anthropic_fake: AnthropicFake) -> None:
    anthropic_fake.faults = Faults(schedule={1: Fault.HANG, 2: Fault.HANG}, hang_seconds=5)

    started = time.monotonic()
    with pytest.raises(anthropic.APITimeoutError):
        ask(claude(anthropic_fake, timeout=0.3))
    recovered = ask(claude(anthropic_fake, timeout=0.3, max_retries=1))

    assert time.monotonic() - started < 3
    assert recovered.content[0].text == "echo: hello there"
    assert [r.fault for r in anthropic_fake.requests] == [Fault.HANG, Fault.HANG, None]


# ----- Anthropic: batches -------------------------------------------------------------------


def test_anthropic_batch_is_in_progress_for_the_configured_polls_then_ends(anthropic_fake: AnthropicFake) -> None:
    anthropic_fake.batch_polls = 2
    client = claude(anthropic_fake)
    requests = [
        {
            "custom_id": "ada",
            "params": {"model": MODEL, "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]},
        },
        {
            "custom_id": "bo",
            "params": {"model": MODEL, "max_tokens": 50, "messages": [{"role": "user", "content": "yo"}]},
        },
        {"custom_id": "bad", "params": {"model": MODEL, "messages": [{"role": "user", "content": "no max"}]}},
    ]

    batch = client.messages.batches.create(requests=requests)
    statuses = [client.messages.batches.retrieve(batch.id).processing_status for _ in range(3)]
    ended = client.messages.batches.retrieve(batch.id)
    results = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}

    assert batch.id.startswith("msgbatch_") and batch.processing_status == "in_progress"
    assert batch.request_counts.processing == 3 and batch.results_url is None
    assert statuses == ["in_progress", "in_progress", "ended"]
    assert (ended.request_counts.succeeded, ended.request_counts.errored, ended.request_counts.processing) == (2, 1, 0)
    assert ended.results_url == f"{anthropic_fake.root_url}/v1/messages/batches/{batch.id}/results"
    assert results["ada"].type == "succeeded" and results["ada"].message.content[0].text == "echo: hi"
    assert results["bo"].message.usage.service_tier == "batch"
    assert results["bad"].type == "errored" and results["bad"].error.error.type == "invalid_request_error"


# ----- OpenAI-compatible --------------------------------------------------------------------


def test_openai_plain_completion_has_the_real_shape(openai_fake: OpenAIFake) -> None:
    completion = chat(gpt(openai_fake), "hello there")

    assert completion.object == "chat.completion" and completion.id.startswith("chatcmpl-")
    assert completion.model == "gpt-fake" and completion.created > 0
    [choice] = completion.choices
    assert (choice.index, choice.message.role, choice.message.content) == (0, "assistant", "echo: hello there")
    assert choice.finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens, completion.usage.total_tokens) == (
        2,
        3,
        5,
    )
    assert completion.usage.prompt_tokens_details.cached_tokens == 0
    [request] = openai_fake.requests
    assert request.path == "/v1/chat/completions" and request.headers["authorization"] == REDACTED
    assert openai_fake.sent_expected_key()


def test_openai_repeated_prefix_reports_cached_tokens(openai_fake: OpenAIFake) -> None:
    client = gpt(openai_fake)
    system = {"role": "system", "content": LONG_SYSTEM}

    client.chat.completions.create(model="gpt-fake", messages=[system, {"role": "user", "content": "one"}])
    second = client.chat.completions.create(model="gpt-fake", messages=[system, {"role": "user", "content": "two"}])

    assert second.usage.prompt_tokens == 41
    assert second.usage.prompt_tokens_details.cached_tokens == 40


def test_openai_stream_sends_deltas_usage_and_done(openai_fake: OpenAIFake) -> None:
    chunks = list(chat(gpt(openai_fake), "one two three four", stream=True, stream_options={"include_usage": True}))

    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: one two three four"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 5


def test_openai_reply_is_cut_off_at_max_tokens(openai_fake: OpenAIFake) -> None:
    openai_fake.reply = words(20)
    client = gpt(openai_fake)

    legacy = chat(client, max_tokens=4)
    current = chat(client, max_completion_tokens=6)

    assert (
        legacy.choices[0].finish_reason == "length" and legacy.choices[0].message.content == "word1 word2 word3 word4"
    )
    assert current.choices[0].finish_reason == "length" and current.usage.completion_tokens == 6


def test_openai_429_is_retried_after_retry_after(openai_fake: OpenAIFake) -> None:
    openai_fake.faults = Faults(schedule={1: Fault.RATE_LIMIT}, retry_after=1)

    completion = chat(gpt(openai_fake, max_retries=2))

    first, retry = openai_fake.requests
    assert completion.choices[0].message.content == "echo: hello there"
    assert (first.fault, retry.fault) == (Fault.RATE_LIMIT, None) and first.body == retry.body
    assert retry.received_at - first.received_at >= 1.0, "the retry waits as long as retry-after says"


@pytest.mark.parametrize(
    ("fault", "exception", "code"),
    [
        (Fault.BAD_REQUEST, openai.BadRequestError, "invalid_value"),
        (Fault.AUTH, openai.AuthenticationError, "invalid_api_key"),
    ],
)
def test_openai_400_and_401_are_not_retried(
    openai_fake: OpenAIFake, fault: Fault, exception: type[openai.APIStatusError], code: str
) -> None:
    openai_fake.faults = Faults(schedule={1: fault})

    with pytest.raises(exception) as caught:
        chat(gpt(openai_fake, max_retries=3))

    assert caught.value.code == code
    assert len(openai_fake.requests) == 1


def test_openai_failures_mid_body_and_mid_stream(openai_fake: OpenAIFake) -> None:
    openai_fake.faults = Faults(schedule={1: Fault.MALFORMED, 2: Fault.STREAM_ERROR, 3: Fault.SERVER_ERROR})
    client = gpt(openai_fake, max_retries=1)

    with pytest.raises(UNPARSABLE):
        chat(client)
    with pytest.raises(openai.APIError, match="server had an error"):
        list(chat(client, "a b c d e f g h", stream=True))
    recovered = chat(client)

    assert recovered.choices[0].message.content == "echo: hello there"
    assert [r.fault for r in openai_fake.requests] == [Fault.MALFORMED, Fault.STREAM_ERROR, Fault.SERVER_ERROR, None]


def test_openai_lists_models(openai_fake: OpenAIFake) -> None:
    client = gpt(openai_fake)

    assert [m.id for m in client.models.list()] == ["gpt-fake", "gpt-fake-mini"]
    assert client.models.retrieve("gpt-fake-mini").owned_by == "system"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-nope")


# ----- both: concurrency, fault plans, lifecycle ---------------------------------------------


async def _many_claude(fake: AnthropicFake, n: int) -> list[str]:
    async with anthropic.AsyncAnthropic(base_url=fake.base_url, api_key="test-key", max_retries=0) as client:
        replies = await asyncio.gather(
            *(
                client.messages.create(model=MODEL, max_tokens=20, messages=[{"role": "user", "content": f"n{i}"}])
                for i in range(n)
            )
        )
    return [r.content[0].text for r in replies]


async def _many_gpt(fake: OpenAIFake, n: int) -> list[str]:
    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key="test-key", max_retries=0) as client:
        replies = await asyncio.gather(
            *(
                client.chat.completions.create(model="gpt-fake", messages=[{"role": "user", "content": f"n{i}"}])
                for i in range(n)
            )
        )
    return [r.choices[0].message.content or "" for r in replies]


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_64_concurrent_requests_overlap(anthropic_fake: AnthropicFake, openai_fake: OpenAIFake, provider: str) -> None:
    fake: AnthropicFake | OpenAIFake = anthropic_fake if provider == "anthropic" else openai_fake
    fake.latency = 0.2

    started = time.monotonic()
    replies = asyncio.run(_many_claude(anthropic_fake, 64) if provider == "anthropic" else _many_gpt(openai_fake, 64))
    elapsed = time.monotonic() - started

    assert sorted(replies) == sorted(f"echo: n{i}" for i in range(64))
    assert len(fake.requests) == 64
    assert elapsed < 2.0, f"64 requests at 200 ms took {elapsed:.2f} s: the fake is serialising them"


def test_fault_plans_are_deterministic() -> None:
    plan = Faults(rate=0.25, seed=7)
    picks = [plan.pick(n) for n in range(1, 1001)]

    assert picks == [Faults(rate=0.25, seed=7).pick(n) for n in range(1, 1001)]
    assert picks != [Faults(rate=0.25, seed=8).pick(n) for n in range(1, 1001)]
    assert 200 <= sum(p is not None for p in picks) <= 300
    assert {p for p in picks if p is not None} == {Fault.RATE_LIMIT, Fault.OVERLOADED, Fault.SERVER_ERROR}
    sequence = Faults.sequence(Fault.DROP, None, Fault.AUTH, when=lambda body: Fault.HANG if body == "x" else None)
    assert [sequence.pick(n, "y") for n in (1, 2, 3, 4)] == [Fault.DROP, None, Fault.AUTH, None]
    assert sequence.pick(2, "x") is Fault.HANG
    with pytest.raises(ValueError, match="rate"):
        Faults(rate=1.5)


def test_server_stops_and_frees_its_port() -> None:
    with AnthropicFake(faults=Faults(schedule={1: Fault.HANG}, hang_seconds=30)) as fake:
        url = fake.base_url
        client = anthropic.Anthropic(base_url=url, api_key="test-key", max_retries=0, timeout=0.2)
        with pytest.raises(anthropic.APITimeoutError):
            ask(client)

    started = time.monotonic()
    with pytest.raises(anthropic.APIConnectionError):
        ask(anthropic.Anthropic(base_url=url, api_key="test-key", max_retries=0, timeout=1))
    assert time.monotonic() - started < 1.0

    with AnthropicFake(lifetime=0.1) as short_lived:
        time.sleep(0.3)
        with pytest.raises(anthropic.APIConnectionError):
            ask(claude(short_lived, timeout=1))
