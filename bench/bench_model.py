"""Model-call throughput of `sim run --concurrency N` against a fake Anthropic server with fixed latency.

The fake (tests/fakes) runs in its own process and answers every call after `--latency` seconds, so
the ideal is N / latency calls per second; the target is at least 90% of it. Replies are short in-
character lines so no line is regenerated. Usage: python -m bench.bench_model [--concurrency 64]
[--latency 0.2] [--variations 64]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

SERVER = """
import sys, time
sys.path.insert(0, {tests!r})
from fakes import AnthropicFake, in_character
fake = AnthropicFake(reply=in_character, latency={latency}, lifetime=3600).start()
print(fake.base_url, flush=True)
time.sleep(3600)
"""


def start_server(latency: float) -> tuple[subprocess.Popen[str], str]:
    """The fake Anthropic API in a child process, and its base URL."""
    code = SERVER.format(tests=str(REPO / "tests"), latency=latency)
    server = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert server.stdout is not None
    return server, server.stdout.readline().strip()


def measure(concurrency: int, variations: int, base_url: str, work: Path, workers: int = 0) -> tuple[int, float]:
    """Paid calls made and seconds taken by one model run of the first pack (start-up excluded)."""
    os.environ.update({"ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": base_url})
    sys.path.insert(0, str(REPO))
    from sim.backends import ModelOptions
    from sim.runner import RunOptions, run
    from sim.world import WorldPaths, load_world

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
    return summary.calls["api"], summary.seconds


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


def bare_sdk(base_url: str, concurrency: int, calls: int) -> float:
    """Calls/s of the bare SDK (with the aiohttp transport sim uses): `concurrency` tasks each awaiting
    `messages.create`, in a fresh process."""
    code = BARE.format(url=base_url, workers=concurrency, calls=calls)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    return float(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--variations", type=int, default=64)
    args = parser.parse_args()
    server, base_url = start_server(args.latency)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            os.chdir(REPO)
            started = time.perf_counter()
            calls, seconds = measure(args.concurrency, args.variations, base_url, Path(tmp))
            wall = time.perf_counter() - started
        bare = bare_sdk(base_url, args.concurrency, 40)
    finally:
        server.kill()
    rate, ideal = calls / seconds, args.concurrency / args.latency
    print(f"sim run: {calls:,} calls in {seconds:.1f}s ({wall:.1f}s with start-up): {rate:,.1f} calls/s")
    print(f"bare anthropic SDK, {args.concurrency} tasks awaiting messages.create: {bare:,.1f} calls/s")
    print(f"ideal N/latency = {args.concurrency}/{args.latency}s = {ideal:,.1f} calls/s; sim run {rate / ideal:.2f} of "
          f"it (target >= 0.90), bare SDK {bare / ideal:.2f}; sim run / bare SDK {rate / bare:.2f}")  # fmt: skip
    print(json.dumps({"bench": "model", "metric": "calls_per_s", "value": round(rate, 2), "ideal": ideal,
                      "ratio": round(rate / ideal, 3), "bare_sdk": round(bare, 2), "concurrency": args.concurrency,
                      "latency_s": args.latency, "calls": calls, "target_ratio": 0.9}))  # fmt: skip


if __name__ == "__main__":
    main()
