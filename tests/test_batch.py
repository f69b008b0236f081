"""`--batch`: Message Batches in lock-step rounds, against the fake Anthropic API on 127.0.0.1.

What is asserted is what a run sees and pays: how many batches the fake received and what was in
them, each call's reply or exact one-line error, what the reply cache holds afterwards (replies and
open batches), and, through `sim run`, the `llm_calls` rows and their half-price costs.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import duckdb
import pytest
from conftest import run_cli
from fakes import AnthropicFake, Fault, Faults, in_character
from fakes.http11 import Response
from fakes.server import RecordedRequest

from sim.backends.cache import ReplyCache, cache_path
from sim.backends.prices import load_prices
from sim.backends.providers.anthropic import AnthropicProvider
from sim.backends.providers.batch import BatchProvider
from sim.backends.providers.common import (
    AuthError,
    Completion,
    Message,
    ModelCall,
    ProviderError,
    RejectedError,
    TransientError,
)
from sim.errors import UsageError

pytest_plugins = ["fakes.plugin"]

MODEL = "claude-sonnet-5"
SYSTEM = ("You are Grandpa, patient and kind.", "Scene: the porch at dusk.")
BATCHES = "/v1/messages/batches"
FAST = {"window": 0.05, "poll": 0.02}


def ask(text: str, max_tokens: int = 50) -> ModelCall:
    return ModelCall(MODEL, SYSTEM, (Message("user", text),), max_tokens)


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[ReplyCache]:
    with ReplyCache(tmp_path / "c.replies.sqlite") as opened:
        yield opened


def batching(fake: AnthropicFake, cache: ReplyCache, *, api_key: str = "test-key") -> BatchProvider:
    return BatchProvider(AnthropicProvider(api_key=api_key, base_url=fake.base_url), cache, **FAST)


def run(provider: BatchProvider, use: Callable[[BatchProvider], Awaitable[Any]]) -> Any:
    """Run `use(provider)` on a fresh event loop, closing the provider after it."""

    async def main() -> Any:
        try:
            return await use(provider)
        finally:
            await provider.aclose()

    return asyncio.run(main())


def together(*calls: ModelCall) -> Callable[[BatchProvider], Awaitable[list[Any]]]:
    """Every call at once, as concurrent scenes would make them; errors are returned, not raised."""
    return lambda provider: asyncio.gather(*(provider.complete(c) for c in calls), return_exceptions=True)


def created(fake: AnthropicFake) -> list[RecordedRequest]:
    return fake.requests_to(BATCHES)


def custom_ids(request: RecordedRequest) -> list[str]:
    return [item["custom_id"] for item in request.body["requests"]]


class OutcomeFake(AnthropicFake):
    """The fake, answering chosen batch entries (by custom id) with another result: errored, canceled, expired."""

    def __init__(self, outcomes: dict[str, dict[str, Any]], **options: Any) -> None:
        super().__init__(**options)
        self.outcomes = outcomes

    def _create_batch(self, request: RecordedRequest) -> Response:
        response = super()._create_batch(request)
        for batch in self._batches.values():
            for line in batch.results:
                line["result"] = self.outcomes.get(line["custom_id"], line["result"])
        return response


def errored(kind: str, message: str) -> dict[str, Any]:
    return {"type": "errored", "error": {"type": "error", "error": {"type": kind, "message": message}}}


# ----- rounds -----------------------------------------------------------------------------------


def test_concurrent_calls_go_into_one_batch_and_each_gets_its_own_reply(
    anthropic_fake: AnthropicFake, cache: ReplyCache
) -> None:
    calls = [ask(f"line {i}") for i in range(5)]

    replies = run(batching(anthropic_fake, cache), together(*calls, calls[2]))  # the same call twice: one entry

    [submitted] = created(anthropic_fake)
    assert custom_ids(submitted) == [c.key("anthropic") for c in calls]
    assert [item["params"]["messages"] for item in submitted.body["requests"]][0] == [
        {"role": "user", "content": "line 0"}
    ]
    assert [r.text for r in replies] == [*(f"echo: line {i}" for i in range(5)), "echo: line 2"]
    assert anthropic_fake.requests_to("/v1/messages") == []  # nothing went through the per-call endpoint
    assert len(cache) == 5 and cache.open_batches("anthropic") == []
    assert cache.get(calls[4].key("anthropic")) == replies[4]


def test_a_call_made_after_a_round_is_submitted_goes_into_the_next_round(
    anthropic_fake: AnthropicFake, cache: ReplyCache
) -> None:
    async def two_rounds(provider: BatchProvider) -> list[str]:
        first = asyncio.ensure_future(together(ask("a"), ask("b"))(provider))
        await asyncio.sleep(0.2)  # past the window: the first round has gone
        late = await provider.complete(ask("c"))
        return [r.text for r in await first] + [late.text]

    assert run(batching(anthropic_fake, cache), two_rounds) == ["echo: a", "echo: b", "echo: c"]
    assert [len(custom_ids(r)) for r in created(anthropic_fake)] == [2, 1]


def test_a_batch_reply_is_marked_and_priced_at_half(anthropic_fake: AnthropicFake, cache: ReplyCache) -> None:
    [reply] = run(batching(anthropic_fake, cache), together(ask("hello there")))

    [submitted] = created(anthropic_fake)
    assert reply.extra["batch"] is True and reply.extra["batch_id"].startswith("msgbatch_")
    assert (reply.input_tokens, reply.output_tokens, reply.cache_write_tokens) == (7, 3, 6)
    prices = load_prices()
    full = prices.cost(MODEL, reply)
    assert full is not None and full > 0
    assert prices.cost(MODEL, reply, batch=True) == pytest.approx(full / 2, abs=1e-12)
    assert cache.get(ask("hello there").key("anthropic")) == reply  # the cache keeps the batch mark
    assert len(custom_ids(submitted)) == 1


# ----- resuming ---------------------------------------------------------------------------------


def kill_after_submitting(fake: AnthropicFake, cache: ReplyCache, *calls: ModelCall) -> str:
    """A run that submits `calls` as one batch and is stopped while the batch is still processing."""
    fake.batch_polls = 10_000

    async def killed(provider: BatchProvider) -> None:
        task = asyncio.ensure_future(together(*calls)(provider))
        while not created(fake):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # polling: the batch is in progress
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    run(batching(fake, cache), killed)
    [(batch_id, keys)] = cache.open_batches("anthropic")
    assert keys == [c.key("anthropic") for c in calls]
    assert len(cache) == 0
    return batch_id


def test_a_killed_run_s_batch_is_collected_by_the_next_run_instead_of_paid_again(
    anthropic_fake: AnthropicFake, tmp_path: Path
) -> None:
    calls = [ask(f"line {i}") for i in range(3)]
    with ReplyCache(tmp_path / "c.replies.sqlite") as first:
        batch_id = kill_after_submitting(anthropic_fake, first, *calls)

    anthropic_fake.batch_polls = 0  # it has ended by the time the next run looks
    with ReplyCache(tmp_path / "c.replies.sqlite") as second:
        replies = run(batching(anthropic_fake, second), together(*calls))

        assert [r.text for r in replies] == ["echo: line 0", "echo: line 1", "echo: line 2"]
        assert {r.extra["batch_id"] for r in replies} == {batch_id}
        assert len(created(anthropic_fake)) == 1  # no new batch for the same calls
        assert len(second) == 3 and second.open_batches("anthropic") == []


def test_a_killed_run_s_batch_still_processing_is_polled_and_new_calls_go_into_a_new_batch(
    anthropic_fake: AnthropicFake, tmp_path: Path
) -> None:
    with ReplyCache(tmp_path / "c.replies.sqlite") as first:
        batch_id = kill_after_submitting(anthropic_fake, first, ask("old"))

    looks = len(anthropic_fake.requests_to(f"{BATCHES}/{batch_id}", "GET"))
    anthropic_fake.batch_polls = looks + 3  # it ends after a few more looks
    with ReplyCache(tmp_path / "c.replies.sqlite") as second:
        old, new = run(batching(anthropic_fake, second), together(ask("old"), ask("new")))

        assert (old.text, old.extra["batch_id"]) == ("echo: old", batch_id)
        assert new.text == "echo: new"
        assert [custom_ids(r) for r in created(anthropic_fake)] == [[ask("old").key("anthropic")],
                                                                   [ask("new").key("anthropic")]]  # fmt: skip
        assert second.open_batches("anthropic") == []


def test_what_a_killed_run_s_batch_did_not_answer_is_submitted_anew(tmp_path: Path) -> None:
    lost = ask("lost").key("anthropic")
    with OutcomeFake({lost: {"type": "expired"}}) as fake, ReplyCache(tmp_path / "c.replies.sqlite") as cache:
        kill_after_submitting(fake, cache, ask("kept"), ask("lost"))
        fake.batch_polls = 0
        fake.outcomes = {}

        replies = run(batching(fake, cache), together(ask("kept"), ask("lost")))

        assert [r.text for r in replies] == ["echo: kept", "echo: lost"]
        assert [custom_ids(r) for r in created(fake)] == [[ask("kept").key("anthropic"), lost], [lost]]


def test_a_batch_the_api_no_longer_knows_is_given_up_and_its_calls_submitted_anew(
    anthropic_fake: AnthropicFake, cache: ReplyCache
) -> None:
    cache.add_batch("msgbatch_gone", "anthropic", MODEL, [ask("a").key("anthropic")])

    [reply] = run(batching(anthropic_fake, cache), together(ask("a")))

    assert reply.text == "echo: a" and reply.extra["batch_id"] != "msgbatch_gone"
    assert len(created(anthropic_fake)) == 1 and cache.open_batches("anthropic") == []


# ----- errors -----------------------------------------------------------------------------------


def test_an_invalid_entry_fails_only_its_own_call_with_the_api_s_reason(
    anthropic_fake: AnthropicFake, cache: ReplyCache
) -> None:
    good, bad = run(batching(anthropic_fake, cache), together(ask("fine"), ask("too short", max_tokens=0)))

    assert isinstance(good, Completion) and good.text == "echo: fine"
    assert isinstance(bad, RejectedError)
    batch_id = good.extra["batch_id"]
    assert bad.reason == (
        f"the Anthropic API rejected the request in batch {batch_id} "
        "(invalid_request_error: max_tokens: Input should be greater than or equal to 1)"
    )
    assert len(cache) == 1 and cache.open_batches("anthropic") == []


@pytest.mark.parametrize(
    ("result", "error", "reason"),
    [
        (errored("overloaded_error", "Overloaded"), TransientError, "failed the request in batch {id} "
         "(overloaded_error: Overloaded)"),
        (errored("authentication_error", "invalid x-api-key"), AuthError, "refused the request in batch {id} "
         "(authentication_error: invalid x-api-key); check ANTHROPIC_API_KEY and your plan"),
        ({"type": "canceled"}, TransientError, "canceled the request in batch {id} before it ran"),
        ({"type": "expired"}, TransientError, "let the request in batch {id} expire "
         "(a batch must end within 24 hours)"),
    ],
)  # fmt: skip
def test_each_kind_of_failed_entry_maps_to_the_per_call_error(
    result: dict[str, Any], error: type[ProviderError], reason: str, cache: ReplyCache
) -> None:
    with OutcomeFake({ask("b").key("anthropic"): result}) as fake:
        good, bad = run(batching(fake, cache), together(ask("a"), ask("b")))

    assert type(bad) is error
    assert bad.reason == "the Anthropic API " + reason.format(id=good.extra["batch_id"])


class CutResultsFake(AnthropicFake):
    """The fake, injecting its faults into results downloads (not messages): a DROP cuts the file halfway."""

    def is_generation(self, method: str, path: str) -> bool:
        return method == "GET" and path.endswith("/results")


CONNECTION_FAILED = r"the connection to the Anthropic API failed \((\w+): (.+)\) \((not retried|after \d retr\w+)\)"


def test_a_cut_off_results_download_fails_the_round_and_the_next_run_collects_the_batch(cache: ReplyCache) -> None:
    with CutResultsFake(faults=Faults(rate=1.0, kinds=(Fault.DROP,))) as fake:
        failures = run(batching(fake, cache), together(ask("a"), ask("b")))
        [(batch_id, _)] = cache.open_batches("anthropic")  # submitted and paid for: kept for the next run
        fake.faults = Faults()
        replies = run(batching(fake, cache), together(ask("a"), ask("b")))

    assert [type(f) for f in failures] == [TransientError, TransientError]
    assert re.fullmatch(CONNECTION_FAILED, failures[0].reason) and failures[1].reason == failures[0].reason
    assert fake.requests_to(f"{BATCHES}/{batch_id}/results", "GET")[0].fault is Fault.DROP
    assert [r.text for r in replies] == ["echo: a", "echo: b"] and {r.extra["batch_id"] for r in replies} == {batch_id}
    assert len(created(fake)) == 1 and cache.open_batches("anthropic") == []


class PeerClosed(Exception):
    """An HTTP library's own error for a cut-off body: a class sim has never heard of."""


def cut_off_results(*, wrapped: bool) -> Callable[..., Awaitable[Any]]:
    """A stand-in for the SDK's `batches.results` whose download breaks, the error wrapped by the SDK or not."""

    async def results(batch_id: str, **_: Any) -> Any:
        async def lines() -> Any:
            cut = PeerClosed("peer closed connection without sending complete message body")
            if wrapped:
                raise anthropic.APIConnectionError(request=None) from cut
            raise cut
            yield  # an async generator, as the SDK's decoder is

        return lines()

    return results


@pytest.mark.parametrize("wrapped", [True, False], ids=["wrapped", "bare"])
def test_a_cut_off_results_download_reads_the_same_whether_or_not_the_sdk_wraps_the_error(
    anthropic_fake: AnthropicFake, cache: ReplyCache, monkeypatch: pytest.MonkeyPatch, wrapped: bool
) -> None:
    inner = AnthropicProvider(api_key="test-key", base_url=anthropic_fake.base_url)
    monkeypatch.setattr(inner.client.messages.batches, "results", cut_off_results(wrapped=wrapped))

    [failure] = run(BatchProvider(inner, cache, **FAST), together(ask("a")))

    assert isinstance(failure, TransientError)
    assert failure.reason == (
        "the connection to the Anthropic API failed "
        "(PeerClosed: peer closed connection without sending complete message body) (not retried)"
    )
    assert len(cache.open_batches("anthropic")) == 1  # the batch stays recorded for the next run


def test_a_refused_key_fails_the_round_and_records_no_batch(anthropic_fake: AnthropicFake, cache: ReplyCache) -> None:
    failures = run(batching(anthropic_fake, cache, api_key="sk-ant-WRONG-123456789"), together(ask("a"), ask("b")))

    assert [type(f) for f in failures] == [AuthError, AuthError]
    assert failures[0].reason == (
        "the Anthropic API refused the key in ANTHROPIC_API_KEY (401 authentication_error: invalid x-api-key); "
        "set a valid key and run again"
    )
    assert "WRONG" not in failures[0].reason
    assert cache.open_batches("anthropic") == [] and len(cache) == 0


@pytest.mark.parametrize("value", ["0", "-1", "soon", "nan"])
def test_a_bad_batch_timing_variable_is_one_clear_line(value: str, cache: ReplyCache) -> None:
    inner = AnthropicProvider(api_key="test-key")
    with pytest.raises(UsageError) as caught:
        BatchProvider.from_env(inner, cache, {"SIM_BATCH_POLL_S": value})
    assert str(caught.value) == (
        f"SIM_BATCH_POLL_S must be a number of seconds above 0 (got {value!r}); unset it to use the default"
    )


# ----- sim run --batch --------------------------------------------------------------------------



def test_sim_run_batch_sends_rounds_of_scenes_and_pays_half(
    shipped_world: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with AnthropicFake(reply=in_character) as fake:
        for name, value in {"ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": fake.base_url,
                            "SIM_BATCH_WINDOW_S": "0.05", "SIM_BATCH_POLL_S": "0.02"}.items():  # fmt: skip
            monkeypatch.setenv(name, value)
        result = run_cli("run", "scenarios/first-steps", "--backend", "anthropic", "--model", MODEL, "--batch",
                         "--db", "out.duckdb")  # fmt: skip

        assert result.exit_code == 0, result.output
        assert re.search(r"run \w+: 10 scenes lived", result.output)
        with duckdb.connect("out.duckdb", read_only=True) as con:
            calls = con.execute(
                "SELECT source, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd "
                "FROM llm_calls"
            ).fetchall()
        sizes = [len(custom_ids(r)) for r in created(fake)]
        assert fake.requests_to("/v1/messages") == []
        assert {c[0] for c in calls} == {"batch"} and len(calls) == sum(sizes)
        prices = load_prices()
        for _, *usage, cost in calls:
            full = prices.cost(MODEL, Completion("", *usage))
            assert full is not None and cost == pytest.approx(full / 2, abs=1e-12)
        assert sizes[0] > 1 and len(sizes) < len(calls) / 2, sizes  # a stage's scenes in flight share each round
        with ReplyCache(cache_path(Path("out.duckdb"))) as cache:
            assert cache.open_batches("anthropic") == [] and len(cache) == len(calls)
