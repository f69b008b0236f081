"""The Anthropic and OpenAI-compatible providers against the fake servers: wire requests, usage, retries, errors.

Every fault is produced on the wire by a fake on 127.0.0.1 and driven through the real SDK, so what is
asserted is what a run would see: the `Completion`, or the exact one-line error, and the requests the
server received (how many, with which fault), never which exception class or header an SDK chose.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import pytest
from fakes import REDACTED, AnthropicFake, FakeServer, Fault, Faults, OpenAIFake, RecordedRequest, scripted, words
from fakes.anthropic_server import error as anthropic_error
from fakes.http11 import Response
from fakes.openai_server import error as openai_error

from sim.backends.providers.anthropic import AnthropicProvider
from sim.backends.providers.anthropic import to_completion as anthropic_completion
from sim.backends.providers.common import (
    AuthError,
    Completion,
    Message,
    ModelCall,
    Provider,
    ProviderError,
    RejectedError,
    TransientError,
)
from sim.backends.providers.openai_compat import NO_KEY, OpenAICompatibleProvider
from sim.backends.providers.openai_compat import to_completion as openai_completion
from sim.errors import UsageError

pytest_plugins = ["fakes.plugin"]

SECRET = "sk-ant-SECRET-123456789"
SYSTEM = ("You are Grandpa, patient and kind.", "Scene: the porch at dusk.")  # 6 + 5 fake tokens
CALL = ModelCall(model="claude-fake-1", system=SYSTEM, messages=(Message("user", "hello there"),), max_tokens=50)
SCHEMA = {
    "type": "object",
    "properties": {"line": {"type": "string"}},
    "required": ["line"],
    "additionalProperties": False,
}


def ask(text: str, **changes: Any) -> ModelCall:
    """CALL with another user message (and any other field changed)."""
    fields: dict[str, Any] = {"model": CALL.model, "system": SYSTEM, "max_tokens": CALL.max_tokens, **changes}
    return ModelCall(messages=(Message("user", text),), **fields)


def claude(fake: FakeServer, **options: Any) -> AnthropicProvider:
    options.setdefault("api_key", "test-key")
    return AnthropicProvider(base_url=fake.base_url, **options)


def gpt(fake: FakeServer, **options: Any) -> OpenAICompatibleProvider:
    options.setdefault("api_key", "test-key")
    return OpenAICompatibleProvider(base_url=fake.base_url, **options)


def complete(provider: Provider, *calls: ModelCall) -> list[Completion]:
    """Send `calls` in order on one event loop, then close the provider."""

    async def run() -> list[Completion]:
        try:
            return [await provider.complete(call) for call in calls]
        finally:
            await provider.aclose()

    return asyncio.run(run())


def causes(err: BaseException) -> list[BaseException]:
    """`err` and every exception below it, by `__cause__` or `__context__`."""
    chain = [err]
    while (below := chain[-1].__cause__ or chain[-1].__context__) is not None and below not in chain:
        chain.append(below)
    return chain


def failure(provider: Provider, call: ModelCall = CALL) -> ProviderError:
    """The `ProviderError` that `call` ends in."""
    with pytest.raises(ProviderError) as caught:
        complete(provider, call)
    return caught.value


@dataclass
class Api:
    """One provider under test, with the fake it talks to."""

    kind: str
    fake: AnthropicFake | OpenAIFake
    make: Callable[..., Provider]
    label: str  # how its error messages name the server

    @property
    def generations(self) -> list[RecordedRequest]:
        path = "/v1/messages" if self.kind == "anthropic" else "/v1/chat/completions"
        return self.fake.requests_to(path)


@pytest.fixture(params=["anthropic", "openai"])
def api(request: pytest.FixtureRequest) -> Iterator[Api]:
    """Each provider in turn, against its own fake."""
    if request.param == "anthropic":
        with AnthropicFake() as anthropic_fake:
            yield Api("anthropic", anthropic_fake, lambda **o: claude(anthropic_fake, **o), "the Anthropic API")
    else:
        with OpenAIFake() as openai_fake:
            label = f"the OpenAI-compatible server at {openai_fake.base_url}"
            yield Api("openai", openai_fake, lambda **o: gpt(openai_fake, **o), label)


# ----- Anthropic: the request and the reply ----------------------------------------------------


def test_anthropic_plain_reply_and_exact_usage(anthropic_fake: AnthropicFake) -> None:
    anthropic_fake.latency = 0.1
    provider = claude(anthropic_fake)

    [reply] = complete(provider, CALL)

    assert provider.name == "anthropic"
    assert reply.text == "echo: hello there"
    # 13 prompt tokens: the 6 of the cached first block are written to the cache, the other 7 are uncached
    assert (reply.input_tokens, reply.output_tokens, reply.cache_read_tokens, reply.cache_write_tokens) == (7, 3, 0, 6)
    assert (reply.stop_reason, reply.raw_stop_reason, reply.retries) == ("end", "end_turn", 0)
    assert reply.request_id is not None and reply.request_id.startswith("req_") and len(reply.request_id) == 28
    assert reply.latency_ms >= 100.0


def test_anthropic_wire_request_caches_the_first_block_and_sends_no_sampling(anthropic_fake: AnthropicFake) -> None:
    complete(claude(anthropic_fake), CALL)

    [request] = anthropic_fake.requests
    assert (request.method, request.path) == ("POST", "/v1/messages")
    assert request.body == {
        "model": "claude-fake-1",
        "max_tokens": 50,
        "system": [
            {"type": "text", "text": SYSTEM[0], "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": SYSTEM[1]},
        ],
        "messages": [{"role": "user", "content": "hello there"}],
    }
    assert REDACTED in request.headers.values(), "the key came in a header (x-api-key or authorization)"
    assert anthropic_fake.sent_expected_key()


def test_anthropic_schema_becomes_output_config(anthropic_fake: AnthropicFake) -> None:
    anthropic_fake.reply = scripted(['{"line": "Hello, kiddo."}'])

    [reply] = complete(claude(anthropic_fake), ask("say hi", schema=SCHEMA, purpose="script"))

    [request] = anthropic_fake.requests
    assert request.body["output_config"] == {"format": {"type": "json_schema", "schema": SCHEMA}}
    assert "purpose" not in request.body
    assert reply.text == '{"line": "Hello, kiddo."}'


def test_anthropic_repeated_prefix_reads_the_cache(anthropic_fake: AnthropicFake) -> None:
    first, second = complete(claude(anthropic_fake), ask("hello there"), ask("how are you"))

    assert (first.cache_write_tokens, first.cache_read_tokens, first.input_tokens) == (6, 0, 7)
    assert (second.cache_write_tokens, second.cache_read_tokens, second.input_tokens) == (0, 6, 8)
    assert second.text == "echo: how are you" and second.output_tokens == 4


def test_anthropic_thinking_block_is_skipped(anthropic_fake: AnthropicFake) -> None:
    anthropic_fake.thinking = lambda _body: "I should greet him warmly"

    [reply] = complete(claude(anthropic_fake), CALL)

    assert reply.text == "echo: hello there"
    assert reply.output_tokens == 5 + 3, "thinking tokens are billed as output"


@pytest.mark.parametrize(
    ("raw", "stop"),
    [
        ("end_turn", "end"),
        ("stop_sequence", "end"),
        ("max_tokens", "max_tokens"),
        ("refusal", "refusal"),
        ("pause_turn", "other"),
        ("tool_use", "other"),
    ],
)
def test_anthropic_stop_reasons_are_normalised(raw: str, stop: str) -> None:
    message = {  # the reply body, as the wire gives it
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-fake-1",
        "content": [
            {"type": "redacted_thinking", "data": "opaque"},
            {"type": "text", "text": "Well, "},
            {"type": "text", "text": "hello."},
        ],
        "stop_reason": raw,
        "stop_sequence": None,
        "usage": {"input_tokens": 4, "output_tokens": 2, "cache_read_input_tokens": None},
    }

    reply = anthropic_completion(message, retries=1, request_id="req_x")

    assert (reply.stop_reason, reply.raw_stop_reason) == (stop, raw)
    assert reply.text == "Well, hello."
    assert (reply.input_tokens, reply.output_tokens, reply.cache_read_tokens, reply.cache_write_tokens) == (4, 2, 0, 0)
    assert (reply.retries, reply.request_id) == (1, "req_x")


# ----- OpenAI-compatible: the request and the reply --------------------------------------------


def test_openai_plain_reply_and_exact_usage(openai_fake: OpenAIFake) -> None:
    openai_fake.latency = 0.1
    provider = gpt(openai_fake)

    [reply] = complete(provider, CALL)

    assert provider.name == "openai-compatible"
    assert reply.text == "echo: hello there"
    assert (reply.input_tokens, reply.output_tokens, reply.cache_read_tokens, reply.cache_write_tokens) == (13, 3, 0, 0)
    assert (reply.stop_reason, reply.raw_stop_reason, reply.retries) == ("end", "stop", 0)
    assert reply.request_id is not None and reply.request_id.startswith("req_") and len(reply.request_id) == 36
    assert reply.latency_ms >= 100.0


def test_openai_wire_request_joins_the_system_blocks_and_sends_no_sampling(openai_fake: OpenAIFake) -> None:
    complete(gpt(openai_fake), CALL)

    [request] = openai_fake.requests
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.body == {
        "model": "claude-fake-1",
        "max_tokens": 50,
        "messages": [
            {"role": "system", "content": "You are Grandpa, patient and kind.\n\nScene: the porch at dusk."},
            {"role": "user", "content": "hello there"},
        ],
    }
    assert request.headers["authorization"] == REDACTED
    assert openai_fake.sent_expected_key()


def test_no_system_blocks_send_no_system_prompt(anthropic_fake: AnthropicFake, openai_fake: OpenAIFake) -> None:
    call = ask("hello there", system=())

    complete(claude(anthropic_fake), call)
    complete(gpt(openai_fake), call)

    assert sorted(anthropic_fake.requests[0].body) == ["max_tokens", "messages", "model"]
    assert openai_fake.requests[0].body["messages"] == [{"role": "user", "content": "hello there"}]


def test_openai_schema_becomes_a_strict_json_schema_response_format(openai_fake: OpenAIFake) -> None:
    openai_fake.reply = scripted(['{"line": "Hello, kiddo."}'])

    [reply] = complete(gpt(openai_fake), ask("say hi", schema=SCHEMA))

    [request] = openai_fake.requests
    assert request.body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "reply", "schema": SCHEMA, "strict": True},
    }
    assert reply.text == '{"line": "Hello, kiddo."}'


def test_openai_repeated_prefix_reports_cached_tokens_as_cache_reads(openai_fake: OpenAIFake) -> None:
    first, second = complete(gpt(openai_fake), ask("hello there"), ask("how are you"))

    assert (first.input_tokens, first.cache_read_tokens, first.cache_write_tokens) == (13, 0, 0)
    # 14 prompt tokens, of which the 11 of the system message were cached
    assert (second.input_tokens, second.cache_read_tokens, second.cache_write_tokens) == (3, 11, 0)


@pytest.mark.parametrize(
    ("finish", "content", "refusal", "stop"),
    [
        ("stop", "Hello.", None, "end"),
        ("length", "Hel", None, "max_tokens"),
        ("content_filter", None, None, "refusal"),
        ("tool_calls", None, None, "other"),
        ("stop", None, "I can't help with that.", "refusal"),
    ],
)
def test_openai_finish_reasons_are_normalised(finish: str, content: str | None, refusal: str | None, stop: str) -> None:
    reply = {  # the reply body, as the wire gives it
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-fake",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
                "finish_reason": finish,
            }
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
    }

    completion = openai_completion(reply, retries=0, request_id=None)

    assert (completion.stop_reason, completion.raw_stop_reason) == (stop, finish)
    assert completion.text == (content or "")
    assert (completion.input_tokens, completion.cache_read_tokens, completion.output_tokens) == (9, 0, 2)


# ----- Both: retries the SDK makes -------------------------------------------------------------


def test_429_is_retried_after_the_servers_retry_after(api: Api) -> None:
    api.fake.faults = Faults.sequence(Fault.RATE_LIMIT, retry_after=1)

    [reply] = complete(api.make(max_retries=2), CALL)

    first, retry = api.generations
    assert reply.text == "echo: hello there" and reply.retries == 1
    assert (first.fault, retry.fault) == (Fault.RATE_LIMIT, None) and first.body == retry.body
    assert retry.received_at - first.received_at >= 1.0, "never sooner than the server's retry-after"


def test_429_after_the_retries_are_spent_is_transient(api: Api) -> None:
    api.fake.faults = Faults.sequence(Fault.RATE_LIMIT, Fault.RATE_LIMIT, retry_after=0.01)

    error = failure(api.make(max_retries=1))

    said = {
        "anthropic": "429 rate_limit_error: This request would exceed your organization's rate limit of 50 requests "
        "per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits.",
        "openai": "429 rate_limit_exceeded: Rate limit reached for requests per min (RPM): Limit 60, Used 60, "
        "Requested 1. Please try again in 1s.",
    }[api.kind]
    assert isinstance(error, TransientError)
    assert str(error) == f"{api.label} rate-limited the request ({said}) after 1 retry"
    assert (error.status, error.retries, len(api.generations)) == (429, 1, 2)


def test_overloaded_after_the_retries_are_spent_is_transient(api: Api) -> None:
    api.fake.faults = Faults.sequence(*[Fault.OVERLOADED] * 3, retry_after=0.01, retry_after_on_5xx=True)

    error = failure(api.make(max_retries=2))

    kind, status = {"anthropic": ("529 overloaded_error", 529), "openai": ("503 server_is_overloaded", 503)}[api.kind]
    assert isinstance(error, TransientError)
    assert str(error) == f"{api.label} is overloaded ({kind}) after 2 retries"
    assert (error.status, error.retries, len(api.generations)) == (status, 2, 3)


def test_server_error_is_retried_then_succeeds(api: Api) -> None:
    api.fake.faults = Faults.sequence(Fault.SERVER_ERROR, retry_after=0.01, retry_after_on_5xx=True)

    [reply] = complete(api.make(max_retries=2), CALL)

    assert (reply.text, reply.retries, len(api.generations)) == ("echo: hello there", 1, 2)


def test_server_error_after_the_retries_are_spent_is_transient(api: Api) -> None:
    api.fake.faults = Faults.sequence(Fault.SERVER_ERROR, Fault.SERVER_ERROR, retry_after=0.01, retry_after_on_5xx=True)

    error = failure(api.make(max_retries=1))

    kind = {"anthropic": "500 api_error", "openai": "500 server_error"}[api.kind]
    assert isinstance(error, TransientError)
    assert str(error) == f"{api.label} had a server error ({kind}) after 1 retry"
    assert (error.status, error.retries, len(api.generations)) == (500, 1, 2)


def test_timeout_is_retried_then_transient(api: Api) -> None:
    api.fake.faults = Faults.sequence(Fault.HANG, Fault.HANG, hang_seconds=1.0)

    error = failure(api.make(max_retries=1, timeout=0.2))

    assert isinstance(error, TransientError)
    assert str(error) == f"{api.label} timed out (no reply within 0.2s) after 1 retry"
    assert (error.status, error.retries) == (None, 1)
    assert [r.fault for r in api.generations] == [Fault.HANG, Fault.HANG]


def test_dropped_connection_is_retried_by_the_sdk(api: Api) -> None:
    api.fake.faults = Faults.sequence(Fault.DROP)

    [reply] = complete(api.make(max_retries=1), CALL)

    assert (reply.text, reply.retries) == ("echo: hello there", 1)
    assert [r.fault for r in api.generations] == [Fault.DROP, None]


def test_dropped_connection_without_retries_is_transient(api: Api) -> None:
    api.fake.faults = Faults.sequence(Fault.DROP)

    error = failure(api.make(max_retries=0))

    assert isinstance(error, TransientError)
    said = re.fullmatch(rf"the connection to {re.escape(api.label)} failed \((\w+): .+\) \(not retried\)", str(error))
    # in the words of an exception below the SDK's wrapper (error -> the SDK's error -> its causes), whatever its class
    assert said and said[1] in {type(link).__name__ for link in causes(error)[2:]}
    assert (error.status, error.retries, len(api.generations)) == (None, 0, 1)


class PeerClosed(Exception):
    """An HTTP library's own error for a cut-off body: a class sim has never heard of."""


def wrapped(outer: BaseException, inner: BaseException, *, implicit: bool = False) -> BaseException:
    """`outer` as raised from `inner` (`raise outer from inner`), or while handling it (`implicit`)."""
    if implicit:
        outer.__context__ = inner
    else:
        outer.__cause__ = inner
    return outer


def sdk_error(message: str = "Connection error.") -> anthropic.APIConnectionError:
    return anthropic.APIConnectionError(message=message, request=None)


@pytest.mark.parametrize(
    "build",
    [
        lambda root: root,  # not wrapped at all
        lambda root: wrapped(sdk_error(), root),
        lambda root: wrapped(sdk_error("Connection to h failed: x"), wrapped(RuntimeError(""), root)),
        lambda root: wrapped(sdk_error(), wrapped(OSError("read failed"), root), implicit=True),
    ],
    ids=["bare", "wrapped-once", "wrapped-twice", "implicit"],
)
def test_a_dropped_connection_reads_the_same_however_the_sdk_wraps_it(build: Callable[..., BaseException]) -> None:
    provider = AnthropicProvider(api_key="test-key")
    err = build(PeerClosed("peer closed connection without sending complete message body"))

    error = provider.error_for(err) if isinstance(err, anthropic.AnthropicError) else provider.connection_error(err)

    assert isinstance(error, TransientError)
    assert str(error) == (
        "the connection to the Anthropic API failed "
        "(PeerClosed: peer closed connection without sending complete message body) (not retried)"
    )


# ----- Both: the provider's own retry of a malformed body ---------------------------------------


def test_malformed_body_is_retried_by_the_provider(api: Api) -> None:
    api.fake.faults = Faults.sequence(Fault.MALFORMED)

    [reply] = complete(api.make(max_retries=2), CALL)

    assert (reply.text, reply.retries) == ("echo: hello there", 1)
    assert [r.fault for r in api.generations] == [Fault.MALFORMED, None]


def test_malformed_body_after_the_retries_are_spent_is_transient(api: Api) -> None:
    api.fake.faults = Faults.sequence(*[Fault.MALFORMED] * 3)

    error = failure(api.make(max_retries=2))

    assert isinstance(error, TransientError)
    assert str(error) == f"{api.label} sent a malformed reply (the body is not valid JSON) after 2 retries"
    assert (error.status, error.retries, len(api.generations)) == (200, 2, 3)


def test_sdk_and_provider_retries_share_one_budget(api: Api) -> None:
    api.fake.faults = Faults.sequence(Fault.RATE_LIMIT, Fault.MALFORMED, Fault.MALFORMED, retry_after=0.01)

    error = failure(api.make(max_retries=2))

    assert str(error) == f"{api.label} sent a malformed reply (the body is not valid JSON) after 2 retries"
    assert error.retries == 2
    assert [r.fault for r in api.generations] == [Fault.RATE_LIMIT, Fault.MALFORMED, Fault.MALFORMED], (
        "max_retries + 1 attempts, no more"
    )


def test_after_a_malformed_body_the_sdk_gets_only_the_retries_left(api: Api) -> None:
    api.fake.faults = Faults.sequence(Fault.MALFORMED, *[Fault.RATE_LIMIT] * 3, retry_after=0.01)

    error = failure(api.make(max_retries=2))

    assert isinstance(error, TransientError)
    assert str(error).startswith(f"{api.label} rate-limited the request (429 ")
    assert str(error).endswith(") after 2 retries")
    assert (error.status, error.retries) == (429, 2)
    assert [r.fault for r in api.generations] == [Fault.MALFORMED, Fault.RATE_LIMIT, Fault.RATE_LIMIT], (
        "max_retries + 1 attempts, no more"
    )


class NotAMessageFake(AnthropicFake):
    """Answers every generation with 200 and the JSON `body`, which is not a readable Message."""

    body: Any = None

    async def route(self, request: RecordedRequest, fault: Fault | None) -> Response:
        return Response.json(200, self.body)


GOOD = {"type": "message", "content": [{"type": "text", "text": "Hi."}], "usage": {"input_tokens": 3}}


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"hello": "world"}, "TypeError: expected a message object, got None"),
        ([GOOD], "TypeError: expected a message object, got list"),
        ({**GOOD, "content": None}, "TypeError: 'NoneType' object is not iterable"),
        ({**GOOD, "content": [{"type": "text"}]}, "KeyError: 'text'"),
        ({**GOOD, "content": [{"type": "text", "text": 7}]}, "TypeError: a text block's text is int, not a string"),
        ({**GOOD, "usage": {"input_tokens": "3"}}, "ValueError: usage.input_tokens is '3', not a token count"),
        ({**GOOD, "usage": {"output_tokens": -1}}, "ValueError: usage.output_tokens is -1, not a token count"),
        ({key: v for key, v in GOOD.items() if key != "usage"}, "KeyError: 'usage'"),
    ],
)
def test_json_that_is_not_a_message_is_malformed(body: Any, detail: str) -> None:
    with NotAMessageFake() as fake:
        fake.body = body
        error = failure(claude(fake, max_retries=1))

        assert isinstance(error, TransientError)
        said = f"the Anthropic API sent a malformed reply (the body is not a message: {detail}) after 1 retry"
        assert str(error) == said
        assert (error.status, error.retries, len(fake.requests)) == (200, 1, 2)


def test_a_message_with_unknown_blocks_and_fields_is_read() -> None:
    body = {**GOOD, "content": [{"type": "some_future_block", "x": 1}, *GOOD["content"]], "new_field": {"a": 1}}
    with NotAMessageFake() as fake:
        fake.body = body
        [reply] = complete(claude(fake), CALL)

    assert (reply.text, reply.input_tokens, reply.output_tokens, reply.stop_reason) == ("Hi.", 3, 0, "other")


# ----- Both: replies cut short, requests rejected, keys refused ---------------------------------


def test_reply_cut_at_max_tokens(api: Api) -> None:
    api.fake.reply = words(40)

    [reply] = complete(api.make(), ask("talk", max_tokens=10))

    assert reply.text == "word1 word2 word3 word4 word5 word6 word7 word8 word9 word10"
    assert (reply.output_tokens, reply.stop_reason) == (10, "max_tokens")
    assert reply.raw_stop_reason == {"anthropic": "max_tokens", "openai": "length"}[api.kind]


def test_bad_request_is_rejected_after_exactly_one_request(api: Api) -> None:
    api.fake.faults = Faults.sequence(Fault.BAD_REQUEST)

    error = failure(api.make(max_retries=2))

    said = {
        "anthropic": "400 invalid_request_error: messages.0.content: Input should be a valid list",
        "openai": "400 invalid_value: Invalid value for 'messages'.",
    }[api.kind]
    assert isinstance(error, RejectedError)
    assert str(error) == f"{api.label} rejected the request ({said})"
    assert (error.status, error.retries, len(api.generations)) == (400, 0, 1)


def test_wrong_key_is_an_auth_error_that_never_shows_the_key(api: Api) -> None:
    error = failure(api.make(api_key=SECRET, max_retries=2))

    said = {
        "anthropic": "401 authentication_error: invalid x-api-key); set a valid key and run again",
        "openai": "401 invalid_api_key: Incorrect API key provided. You can find your API key at "
        "https://platform.openai.com/account/api-keys.); set a valid key and run again",
    }[api.kind]
    key_name = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}[api.kind]
    assert isinstance(error, AuthError)
    assert str(error) == f"{api.label} refused the key in {key_name} ({said}"
    assert (error.status, error.retries, len(api.generations)) == (401, 0, 1)
    assert SECRET not in str(error) and SECRET not in repr(error)


class EchoKeyAnthropicFake(AnthropicFake):
    """A server whose 401 repeats the key it was sent, as some proxies do."""

    def error_response(self, kind: Fault, *, request: RecordedRequest | None = None) -> Response:
        return anthropic_error(401, "authentication_error", f"invalid x-api-key {SECRET}")


class EchoKeyOpenAIFake(OpenAIFake):
    """A server whose 401 repeats the key it was sent, as some proxies do."""

    def error_response(self, kind: Fault, *, request: RecordedRequest | None = None) -> Response:
        return openai_error(401, f"Incorrect API key provided: {SECRET}.", "invalid_request_error")


def test_a_key_the_server_echoes_is_redacted() -> None:
    with EchoKeyAnthropicFake() as anthropic_fake, EchoKeyOpenAIFake() as openai_fake:
        from_anthropic = failure(claude(anthropic_fake, api_key=SECRET))
        from_openai = failure(gpt(openai_fake, api_key=SECRET))

    assert str(from_anthropic) == (
        "the Anthropic API refused the key in ANTHROPIC_API_KEY "
        "(401 authentication_error: invalid x-api-key [redacted]); set a valid key and run again"
    )
    assert str(from_openai) == (
        f"the OpenAI-compatible server at {openai_fake.base_url} refused the key in OPENAI_API_KEY "
        "(401 invalid_request_error: Incorrect API key provided: [redacted].); set a valid key and run again"
    )


# ----- Configuration from the environment -------------------------------------------------------

ANTHROPIC_MISSING = (
    "ANTHROPIC_API_KEY is not set: export your Anthropic API key (or use --backend scripted, which needs none)"
)
OPENAI_MISSING = (
    "--base-url is required for --backend openai-compatible (the server's URL, e.g. http://localhost:8000/v1)"
)


@pytest.mark.parametrize("environ", [{}, {"ANTHROPIC_API_KEY": ""}, {"ANTHROPIC_API_KEY": "  "}])
def test_anthropic_without_a_key_is_a_usage_error(environ: dict[str, str]) -> None:
    with pytest.raises(UsageError) as caught:
        AnthropicProvider.from_env(environ)

    assert str(caught.value) == ANTHROPIC_MISSING


def test_anthropic_from_env_uses_the_key_and_base_url(anthropic_fake: AnthropicFake) -> None:
    environ = {"ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": anthropic_fake.base_url}

    [reply] = complete(AnthropicProvider.from_env(environ, max_retries=0), CALL)

    assert reply.text == "echo: hello there"
    assert anthropic_fake.sent_expected_key() and len(anthropic_fake.requests) == 1


@pytest.mark.parametrize("environ", [{}, {"OPENAI_BASE_URL": ""}, {"OPENAI_API_KEY": "test-key"}])
def test_openai_without_a_base_url_is_a_usage_error(environ: dict[str, str]) -> None:
    with pytest.raises(UsageError) as caught:
        OpenAICompatibleProvider.from_env(environ, base_url=None)

    assert str(caught.value) == OPENAI_MISSING


def test_openai_base_url_argument_wins_over_the_environment(openai_fake: OpenAIFake) -> None:
    environ = {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "OPENAI_API_KEY": "test-key"}

    [reply] = complete(OpenAICompatibleProvider.from_env(environ, base_url=openai_fake.base_url), CALL)

    assert reply.text == "echo: hello there" and len(openai_fake.requests) == 1


def test_openai_base_url_from_the_environment(openai_fake: OpenAIFake) -> None:
    environ = {"OPENAI_BASE_URL": openai_fake.base_url, "OPENAI_API_KEY": "test-key"}

    [reply] = complete(OpenAICompatibleProvider.from_env(environ, base_url=None), CALL)

    assert reply.text == "echo: hello there" and openai_fake.sent_expected_key()


def test_openai_without_a_key_sends_a_placeholder_a_local_server_accepts() -> None:
    with OpenAIFake(api_key=NO_KEY) as fake:
        [reply] = complete(OpenAICompatibleProvider.from_env({}, base_url=fake.base_url), CALL)

        assert reply.text == "echo: hello there" and fake.sent_expected_key()


def test_openai_without_a_key_says_to_set_one_when_the_server_wants_one(openai_fake: OpenAIFake) -> None:
    error = failure(OpenAICompatibleProvider.from_env({}, base_url=openai_fake.base_url))

    assert isinstance(error, AuthError)
    assert str(error) == (
        f"the OpenAI-compatible server at {openai_fake.base_url} needs an API key (401 invalid_api_key: "
        "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.); "
        "set OPENAI_API_KEY and run again"
    )
