"""The reply cache keeps every paid reply across restarts and kills; the price table prices usage exactly.

Cache tests use real SQLite files in the test's working directory (and one real child process that
dies without closing its cache). Price tests load real YAML files and assert the exact
`file:line: key.path: message` lines a person would see.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import subprocess
import sys
import textwrap
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from sim.backends.cache import SCHEMA_VERSION, ReplyCache, cache_path
from sim.backends.prices import PriceTable, load_prices
from sim.backends.providers.common import Completion, Message, ModelCall
from sim.errors import ConfigError, StoreError

CACHE = Path("raising.duckdb.replies.sqlite")
FULL = Completion(
    text="Grandpa said: «be kind»\nand then ✓",
    input_tokens=11,
    output_tokens=22,
    cache_read_tokens=33,
    cache_write_tokens=44,
    stop_reason="max_tokens",
    raw_stop_reason="length",
    latency_ms=1234.5,
    retries=2,
    request_id="req_011",
    extra={"thinking": ["a", 1, 2.5], "none": None, "nested": {"k": True}},
)


# ---- reply cache -------------------------------------------------------------------------------


def test_cache_path_sits_beside_the_database() -> None:
    assert cache_path(Path("outputs/raising.duckdb")) == Path("outputs/raising.duckdb.replies.sqlite")


def test_every_completion_field_round_trips() -> None:
    defaults = Completion(text="")
    for f in dataclasses.fields(Completion):  # a field left at its default would not be tested
        assert getattr(FULL, f.name) != getattr(defaults, f.name) or f.name == "text", f.name
    with ReplyCache(CACHE) as cache:
        assert cache.get("k1") is None
        assert cache.put("k1", "anthropic", "claude-sonnet-4-5", FULL) is True
        assert cache.get("k1") == FULL
        assert len(cache) == 1


def test_a_put_is_visible_to_a_new_instance_at_once_and_after_close() -> None:
    first = ReplyCache(CACHE)
    first.put("k1", "anthropic", "m", FULL)
    with ReplyCache(CACHE) as second:  # the first is still open: the put was committed, not merely buffered
        assert second.get("k1") == FULL
    first.close()
    with ReplyCache(CACHE) as third:
        assert third.get("k1") == FULL


def test_a_put_survives_a_process_killed_right_after_it() -> None:
    script = textwrap.dedent(
        """
        import os, sys
        from pathlib import Path
        from sim.backends.cache import ReplyCache
        from sim.backends.providers.common import Completion, Message, ModelCall

        cache = ReplyCache(Path(sys.argv[1]))
        cache.put("k1", "anthropic", "m", Completion("paid for", input_tokens=7, request_id="req_1"))
        os._exit(1)  # no close, no checkpoint, no interpreter shutdown
        """
    )
    done = subprocess.run([sys.executable, "-c", script, str(CACHE)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    wal = CACHE.with_name(CACHE.name + "-wal")
    assert wal.stat().st_size > 0  # the reply lives only in the write-ahead log the dead process left
    with ReplyCache(CACHE) as cache:
        assert cache.get("k1") == Completion("paid for", input_tokens=7, request_id="req_1")


def test_a_duplicate_put_is_ignored_and_the_first_reply_kept() -> None:
    with ReplyCache(CACHE) as cache:
        assert cache.put("k1", "anthropic", "m", FULL) is True
        assert cache.put("k1", "anthropic", "m", Completion("a replay")) is False
        assert cache.put_many([("k1", "anthropic", "m", Completion("again")), ("k2", "anthropic", "m", FULL)]) == 1
        assert cache.get("k1") == FULL
        assert len(cache) == 2


def test_puts_from_many_threads_all_land() -> None:
    with ReplyCache(CACHE) as cache:

        def put_range(start: int) -> None:
            for i in range(start, start + 50):
                cache.put(f"k{i}", "anthropic", "m", Completion(f"reply {i}"))

        threads = [threading.Thread(target=put_range, args=(n * 50,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(cache) == 400
        assert cache.get("k399") == Completion("reply 399")


def test_batch_bookkeeping_survives_a_restart() -> None:
    with ReplyCache(CACHE) as cache:
        cache.add_batch("msgbatch_1", "anthropic", "claude-haiku-4-5", ["k1", "k2"])
        cache.add_batch("msgbatch_2", "anthropic", "claude-haiku-4-5", ["k3"])
        cache.add_batch("other_1", "openai-compatible", "llama", ["k4"])
        cache.add_batch("msgbatch_1", "anthropic", "claude-haiku-4-5", ["ignored"])  # recorded once
        assert cache.open_batches("anthropic") == [("msgbatch_1", ["k1", "k2"]), ("msgbatch_2", ["k3"])]
        cache.mark_collected("msgbatch_1")
    with ReplyCache(CACHE) as cache:
        assert cache.open_batches("anthropic") == [("msgbatch_2", ["k3"])]
        assert cache.open_batches("openai-compatible") == [("other_1", ["k4"])]
        assert cache.open_batches("scripted") == []


def test_schema_is_versioned_and_holds_no_credentials() -> None:
    ReplyCache(CACHE).close()
    con = sqlite3.connect(CACHE)
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 1
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    columns = {name: [row[1] for row in con.execute(f"PRAGMA table_info({name})")] for name in ("replies", "batches")}
    con.close()
    assert columns == {
        "replies": ["key", "backend", "model", "completion", "created_at"],
        "batches": ["batch_id", "backend", "model", "submitted_at", "keys", "status"],
    }
    assert not [f.name for f in dataclasses.fields(Completion) if "key" in f.name or "auth" in f.name]


def test_a_file_that_is_not_sqlite_is_one_clear_error() -> None:
    CACHE.write_bytes(b"these are not the replies you are looking for\n" * 200)
    with pytest.raises(StoreError) as caught:
        ReplyCache(CACHE)
    assert str(caught.value) == (
        "cannot open raising.duckdb.replies.sqlite as the reply cache (file is not a database); move it aside "
        "to start an empty cache (replies in it will be paid for again)"
    )


def test_a_cache_from_a_newer_sim_is_refused() -> None:
    con = sqlite3.connect(CACHE)
    con.execute("PRAGMA user_version = 99")
    con.close()
    with pytest.raises(StoreError) as caught:
        ReplyCache(CACHE)
    assert str(caught.value) == (
        "raising.duckdb.replies.sqlite was written by a newer version of sim (reply cache schema 99; this version "
        "reads up to 1); upgrade sim, or move the file aside to start an empty cache (replies in it will be paid "
        "for again)"
    )


def test_a_cache_locked_by_another_run_beyond_the_timeout_says_so() -> None:
    ReplyCache(CACHE).close()
    other = sqlite3.connect(CACHE, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another run, in the middle of a write
    try:
        with ReplyCache(CACHE, timeout=0.2) as cache:
            assert cache.get("k1") is None  # WAL: reading is never blocked
            with pytest.raises(StoreError) as caught:
                cache.put("k1", "anthropic", "m", FULL)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert str(caught.value) == (
        "the reply cache raising.duckdb.replies.sqlite is locked: another run is using it (waited 0.2 s); wait "
        "for that run to finish, or use --db to work on another database"
    )


def test_a_closed_cache_raises_instead_of_crashing() -> None:
    cache = ReplyCache(CACHE)
    cache.close()
    cache.close()
    with pytest.raises(StoreError, match="is closed"):
        cache.get("k1")


# ---- price table -------------------------------------------------------------------------------

TABLE = """\
currency: USD
batch_discount: 0.5
models:
  - {match: "claude-sonnet-4-5*", input: 3.00, output: 15.00, cache_read: 0.30, cache_write: 3.75}
  - {match: "claude-sonnet-4*", input: 6, output: 30}
  - {match: "claude-3-5-haiku*", input: 0.80, output: 4.00, cache_read: 0.08, cache_write: 1.00}
  - {match: "tiny-*", input: 0.0001, output: 0}
"""


def table(text: str = TABLE) -> PriceTable:
    path = Path("prices.yaml")
    path.write_text(text, encoding="utf-8")
    return load_prices(path)


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        table(text)
    assert caught.value.exit_code == 2
    return caught.value.lines()


@pytest.mark.parametrize(
    ("model", "pattern", "input_price"),
    [
        ("scripted-1", "scripted-*", 0.0),
        ("claude-opus-4-20250514", "claude-opus-4-2025*", 15.0),  # Opus 4: listed above the 4.5+ glob
        ("claude-opus-4-0", "claude-opus-4-0*", 15.0),
        ("claude-opus-4-1-20250805", "claude-opus-4-1*", 15.0),
        ("claude-opus-4-5-20251101", "claude-opus-4-*", 5.0),
        ("claude-opus-4-8", "claude-opus-4-*", 5.0),
        ("claude-opus-5-5", "claude-opus-5-5*", 4.0),
        ("claude-opus-5", "claude-opus-5*", 5.0),
        ("claude-sonnet-4-20250514", "claude-sonnet-4*", 3.0),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4*", 3.0),
        ("claude-sonnet-4-6", "claude-sonnet-4*", 3.0),
        ("claude-haiku-4-5-20251001", "claude-haiku-4-5*", 1.0),
        ("claude-3-5-haiku-20241022", "claude-3-5-haiku*", 0.8),
    ],
)
def test_the_shipped_table_prices_each_family_by_its_first_matching_glob(
    model: str, pattern: str, input_price: float
) -> None:
    price = load_prices().price(model)
    assert price is not None
    assert (price.match, price.input) == (pattern, input_price)


def test_the_shipped_table_names_its_source_and_date() -> None:
    shipped = (Path(__file__).resolve().parent.parent / "sim" / "data" / "prices.yaml").read_text(encoding="utf-8")
    assert "https://platform.claude.com/docs/en/about-claude/pricing" in shipped
    assert "2026-11-22" in shipped
    assert load_prices().batch_discount == 0.5


def test_first_match_wins() -> None:
    prices = table()
    assert prices.price("claude-sonnet-4-5-20250929").input == 3.0  # type: ignore[union-attr]
    assert prices.price("claude-sonnet-4-20250514").input == 6.0  # type: ignore[union-attr]
    assert prices.price("CLAUDE-SONNET-4-5") is None  # globs are case-sensitive on every platform


def test_cost_is_exact_with_and_without_the_batch_discount() -> None:
    prices = table()
    usage = Completion("x", input_tokens=1000, output_tokens=500, cache_read_tokens=2000, cache_write_tokens=400)
    # (1000*3 + 500*15 + 2000*0.30 + 400*3.75) / 1e6 = (3000 + 7500 + 600 + 1500) / 1e6
    assert prices.cost("claude-sonnet-4-5", usage) == 0.0126
    assert prices.cost("claude-sonnet-4-5", usage, batch=True) == 0.0063
    # (7*0.80 + 3*4.00 + 11*0.08 + 13*1.00) / 1e6: float arithmetic would give 3.1480000000000004e-05
    small = Completion("x", input_tokens=7, output_tokens=3, cache_read_tokens=11, cache_write_tokens=13)
    assert (7 * 0.8 + 3 * 4.0 + 11 * 0.08 + 13 * 1.0) / 1e6 != 3.148e-05
    assert prices.cost("claude-3-5-haiku-20241022", small) == 3.148e-05
    assert prices.cost("claude-3-5-haiku-20241022", small, batch=True) == 1.574e-05
    # below a nano-dollar rounds away (to even): 1 token at $0.0001/MTok is 1e-10 USD
    assert prices.cost("tiny-1", Completion("x", input_tokens=1)) == 0.0
    assert prices.cost("tiny-1", Completion("x", input_tokens=10)) == 1e-09


def test_an_unknown_model_has_no_price_and_no_cost() -> None:
    prices = table()
    assert prices.price("llama-3.1-8b") is None
    assert prices.cost("llama-3.1-8b", Completion("x", input_tokens=1000)) is None
    assert load_prices().cost("llama-3.1-8b", Completion("x", input_tokens=1000)) is None
    assert load_prices().cost("scripted-1", Completion("x", input_tokens=10**6, output_tokens=10**6)) == 0.0


def test_a_bad_prices_file_names_file_line_and_key_for_every_problem() -> None:
    text = """\
currency: usd
batch_discount: 1.5
models:
  - {match: "claude-*", input: 3, output: -1, cache_read: 0.3}
  - match: "gpt-*"
    input: 3
    output: 15
    cache_writ: 3.75
  - {input: 1, output: 5}
  - {match: "x*", input: .inf, output: "3"}
"""
    assert problems(text) == [
        "prices.yaml:1: currency: 'usd' is not a currency code (expected three capital letters such as USD)",
        "prices.yaml:2: batch_discount: 1.5 is not a discount (expected the fraction of the price batch calls pay, "
        "above 0 and at most 1, e.g. 0.5 for half price)",
        "prices.yaml:4: models[0].output: -1 is negative (expected a price of 0 or more, in USD per million tokens)",
        "prices.yaml:8: models[1].cache_writ: unknown key 'cache_writ' (did you mean 'cache_write'? allowed here: "
        "match, input, output, cache_read, cache_write)",
        "prices.yaml:9: models[2].match: missing required key (add it)",
        "prices.yaml:10: models[3].input: inf is not a price (expected a number such as 3.00)",
        "prices.yaml:10: models[3].output: '3' is not a number (expected a number such as 0.5)",
    ]


def test_an_entry_an_earlier_glob_always_beats_is_an_error() -> None:
    text = """\
models:
  - {match: "claude-sonnet-4*", input: 3, output: 15}
  - {match: "claude-sonnet-4-5*", input: 3, output: 15}
  - {match: "claude-haiku-*", input: 1, output: 5}
  - {match: "claude-haiku-*", input: 1, output: 5}
"""
    assert problems(text) == [
        "prices.yaml:3: models[1].match: 'claude-sonnet-4-5*' is never used: 'claude-sonnet-4*' in models[0] above "
        "already matches every model it matches (move this entry above that one, or delete it)",
        "prices.yaml:5: models[3].match: 'claude-haiku-*' is never used: 'claude-haiku-*' in models[2] above "
        "already matches every model it matches (move this entry above that one, or delete it)",
    ]


def test_a_missing_prices_file_is_one_line() -> None:
    with pytest.raises(ConfigError) as caught:
        load_prices(Path("nowhere.yaml"))
    assert caught.value.lines() == ["nowhere.yaml: (top level): cannot read file (No such file or directory)"]


def test_request_keys_do_not_change_between_versions() -> None:
    """A changed key would make every reply in a user's cache a miss, to be paid for again."""
    call = ModelCall(
        "claude-sonnet-5",
        ("card: Grandpa \u2014 kind", "life"),
        (Message("user", "Write I's line"), Message("assistant", "Hi"), Message("user", "again")),
        400,
        schema={"type": "object", "properties": {"a": {"type": "string"}}},
        purpose="turn",
        salt="seed=0;variation=3",
    )

    assert call.key("anthropic") == "02cc45e9b4282c9fd68a51bff4ca0ca646448515996652cd2a9fd4abe84c2e7e"
    assert ModelCall("m", (), (Message("user", "x"),), 10).key("openai-compatible") == (
        "2981b5df0358b0072c2f1479d3d372c34be7a8983c78092e7cb70836a8279e9f"
    )
    assert call.key("anthropic") == replace(call, purpose="regenerate").key("anthropic")  # purpose is not hashed
    assert call.key("anthropic") != replace(call, salt="seed=0;variation=4").key("anthropic")
    assert call.key("anthropic") != call.key("openai-compatible")
