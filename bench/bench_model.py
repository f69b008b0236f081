"""Model-call throughput of `sim run --concurrency N` against an Anthropic server with fixed latency.

The server runs in its own process and answers every call `--latency` seconds after it arrived, so the
ideal is N / latency calls per second; the target is at least 90% of it. By default it is
`bench.latency_server`, which speaks the Messages wire format at about 0.35 ms of CPU per call: on this
machine client and server share the cores, and a real provider's CPU is not taken from the client. With
`--server fake` it is the test fake (tests/fakes), about 0.8 ms per call. Replies are short in-character
lines, so no line is regenerated. `--workers` is passed on as `sim run` takes it (0 = auto: one process per
32 scenes in flight, up to one per core, for runs of 1,000 scenes or more).

Three rates are printed: over the whole run (worker start-up and the last scenes included); in the
steady state, from the first reply stored to the last (`llm_calls.created_at`); and, to tell the
per-call path from start-up, ramp and tail, between the 10th and the 90th percentile of replies. For
scale, the bare SDK is measured on the same server with the run's layout: as many processes as the run
had, N tasks in all, each awaiting `messages.create`. On Linux the CPU time the host took from this
machine during the run (`steal` in /proc/stat) is printed too: when it is high, so is the spread.
The default run is 256 life lines of the first pack (2,560 scenes, about 25,000 calls): a large run, where
`--concurrency 64` is worth asking for. Usage: python -m bench.bench_model [--concurrency 64] [--latency 0.2]
[--variations 256] [--workers 0] [--server lean|fake]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parent.parent

SERVER = """
import sys, time
sys.path.insert(0, {tests!r})
from fakes import AnthropicFake, in_character
fake = AnthropicFake(reply=in_character, latency={latency}, lifetime=3600).start()
print(fake.base_url, flush=True)
time.sleep(3600)
"""
SERVERS = ("lean", "fake")


def start_server(latency: float, server: str = "lean") -> tuple[subprocess.Popen[str], str]:
    """The server in a child process, and its base URL: `bench.latency_server` (lean) or the test fake."""
    if server == "lean":
        command = [sys.executable, "-m", "bench.latency_server", "--latency", str(latency)]
    else:
        command = [sys.executable, "-c", SERVER.format(tests=str(REPO / "tests"), latency=latency)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def host_steal() -> float | None:
    """CPU seconds the host has taken from this machine since boot (Linux `steal`), or None elsewhere."""
    try:
        with open("/proc/stat") as stat:
            fields = stat.readline().split()
    except OSError:
        return None
    return int(fields[8]) / os.sysconf("SC_CLK_TCK") if len(fields) > 8 and fields[0] == "cpu" else None


@dataclass(frozen=True)
class Measured:
    """One model run: paid calls, the run's seconds, the steady-state span, the span of the middle 80% of
    replies, workers and mean latency."""

    calls: int
    seconds: float
    steady_seconds: float
    middle_seconds: float
    workers: int
    latency_ms: float


def measure(concurrency: int, variations: int, base_url: str, work: Path, workers: int = 0) -> Measured:
    """One model run of the first pack (start-up before the run excluded), as `sim run` would do it."""
    os.environ.update({"ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": base_url})
    sys.path.insert(0, str(REPO))
    from sim.backends import ModelOptions
    from sim.run.loop import run
    from sim.run.options import RunOptions
    from sim.world.load import WorldPaths, load_world

    world = load_world(WorldPaths.from_env(), [REPO / "scenarios" / "first-steps"])
    options = RunOptions(
        db=work / "bench.duckdb",
        learner="sam",
        variations=variations,
        backend="anthropic",
        concurrency=concurrency,
        workers=workers,
        model_options=ModelOptions(model="claude-sonnet-5", max_retries=0),
    )
    summary = run(world, options)
    if summary.calls["cache"] or summary.failed:
        raise SystemExit(f"bench run replayed {summary.calls['cache']} calls and failed {len(summary.failed)} scenes")
    with duckdb.connect(str(options.db), read_only=True) as con:
        ((span, middle, latency),) = con.execute(
            "SELECT epoch(max(created_at)) - epoch(min(created_at)), "
            "quantile_cont(epoch(created_at), 0.9) - quantile_cont(epoch(created_at), 0.1), avg(latency_ms) "
            "FROM llm_calls"
        ).fetchall()
    return Measured(summary.calls["api"], summary.seconds, span, middle, summary.workers, latency)


BARE = """
import asyncio, sys, time
import anthropic
async def main(url, workers, calls):
    client = anthropic.AsyncAnthropic(
        api_key="test-key", base_url=url, max_retries=0, http_client=anthropic.DefaultAioHttpClient())
    async def worker(n):
        for i in range(calls):
            system = [{{"type": "text", "text": "card " * 600, "cache_control": {{"type": "ephemeral"}}}}]
            messages = [{{"role": "user", "content": f"Write I's line now ({{n}}, {{i}})"}}]
            raw = await client.messages.with_raw_response.create(
                model="claude-sonnet-5", max_tokens=400, system=system, messages=messages)
            await raw.parse()
    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(workers)))
    print(workers * calls / (time.perf_counter() - started))
    await client.close()
asyncio.run(main({url!r}, {workers}, {calls}))
"""


def bare_sdk(base_url: str, concurrency: int, calls: int, processes: int = 1) -> float:
    """Calls/s of the bare SDK (with the aiohttp transport sim uses): `concurrency` tasks in all, spread over
    `processes` fresh processes, each task awaiting `messages.create` `calls` times."""
    shares = [concurrency // processes + (i < concurrency % processes) for i in range(processes)]
    children = [
        subprocess.Popen([sys.executable, "-c", BARE.format(url=base_url, workers=share, calls=calls)],
                         stdout=subprocess.PIPE, text=True, cwd=REPO)
        for share in shares
    ]  # fmt: skip
    rates = []
    for child in children:
        out, _ = child.communicate()
        if child.returncode:
            raise SystemExit(f"the bare SDK run failed (exit {child.returncode})")
        rates.append(float(out.strip()))
    return sum(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--variations", type=int, default=256)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--server", choices=SERVERS, default="lean")
    args = parser.parse_args()
    server, base_url = start_server(args.latency, args.server)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            os.chdir(REPO)
            before = host_steal()
            got = measure(args.concurrency, args.variations, base_url, Path(tmp), args.workers)
            after = host_steal()
        bare = bare_sdk(base_url, args.concurrency, 120, got.workers)
    finally:
        server.kill()
    ideal = args.concurrency / args.latency
    rate, steady = got.calls / got.seconds, (got.calls - 1) / got.steady_seconds
    middle = 0.8 * got.calls / got.middle_seconds
    steal = None if before is None or after is None else after - before
    print(f"server: {args.server} ({'bench.latency_server' if args.server == 'lean' else 'the test fake'}), "
          f"{args.latency:g} s per call")  # fmt: skip
    print(f"sim run, {got.workers} worker process(es): {got.calls:,} calls in {got.seconds:.1f}s: {rate:,.1f} calls/s; "
          f"steady state {steady:,.1f} calls/s; mean latency {got.latency_ms:.0f} ms")  # fmt: skip
    print(f"middle 80% of replies (no start-up, ramp or tail): {middle:,.1f} calls/s = {middle / ideal:.2f} of ideal")
    print(f"bare anthropic SDK, {args.concurrency} tasks in {got.workers} process(es) awaiting messages.create: "
          f"{bare:,.1f} calls/s")  # fmt: skip
    if steal is not None:
        print(f"CPU time the host took from this machine during the run (steal): {steal:.1f}s of "
              f"{got.seconds * (os.cpu_count() or 1):.0f} CPU-s")  # fmt: skip
    print(f"ideal N/latency = {args.concurrency}/{args.latency}s = {ideal:,.1f} calls/s; sim run {rate / ideal:.2f} of "
          f"it over the whole run, {steady / ideal:.2f} in the steady state (target >= 0.90); bare SDK "
          f"{bare / ideal:.2f}")  # fmt: skip
    print(json.dumps({"bench": "model", "metric": "calls_per_s", "value": round(rate, 2), "ideal": ideal,
                      "ratio": round(rate / ideal, 3), "steady_calls_per_s": round(steady, 2),
                      "steady_ratio": round(steady / ideal, 3), "middle_ratio": round(middle / ideal, 3),
                      "bare_sdk": round(bare, 2), "bare_sdk_ratio": round(bare / ideal, 3), "server": args.server,
                      "steal_s": None if steal is None else round(steal, 1),
                      "concurrency": args.concurrency, "workers": got.workers, "latency_s": args.latency,
                      "mean_latency_ms": round(got.latency_ms, 1), "calls": got.calls,
                      "target_ratio": 0.9}))  # fmt: skip


if __name__ == "__main__":
    main()
