"""Start-up time of the light `sim` commands, against a bare `import click, rich, duckdb` in the same run.

Each command is a fresh process, timed from start to exit. The commands take turns, round after round (one
warm-up round first), so a slow moment of the machine falls on all of them alike; each figure is the median
of the rounds, with the fastest and slowest, and its ratio to the baseline's median (target: at most 3x).
`sim query` reads a small corpus the bench makes first with `sim run scenarios/first-steps`. The commands run
with bytecode writing on (PYTHONDONTWRITEBYTECODE dropped from their environment), so after the warm-up round
they start as they would for a user, not recompiling sim's modules at every start.
Usage: python -m bench.bench_cli [--runs 9]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET = 3.0
BASELINE = "bare import"
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def commands(db: Path) -> dict[str, list[str]]:
    """What is timed, by name; the baseline first."""
    sim = [sys.executable, "-m", "sim"]
    return {
        BASELINE: [sys.executable, "-c", "import click, rich, duckdb"],
        "sim --help": [*sim, "--help"],
        "sim --version": [*sim, "--version"],
        "sim query": [*sim, "query", "select count(*) from scenes", "--db", str(db)],
    }


def make_corpus(db: Path) -> None:
    subprocess.run([sys.executable, "-m", "sim", "run", "scenarios/first-steps", "--db", str(db)],
                   cwd=REPO, check=True, capture_output=True)  # fmt: skip


def seconds(argv: list[str]) -> float:
    """Wall time of one process, start to exit."""
    started = time.perf_counter()
    subprocess.run(argv, cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    return time.perf_counter() - started


def time_rounds(argvs: dict[str, list[str]], runs: int) -> dict[str, list[float]]:
    """`runs` rounds of every command in turn, after one warm-up round that is not kept."""
    for argv in argvs.values():
        seconds(argv)
    times: dict[str, list[float]] = {name: [] for name in argvs}
    for _ in range(runs):
        for name, argv in argvs.items():
            times[name].append(seconds(argv))
    return times


def emit(name: str, samples: list[float], base: float) -> None:
    median = statistics.median(samples)
    ratio = median / base
    against = "" if name == BASELINE else f"  {ratio:.2f}x the bare import (target <= {TARGET:g}x)"
    print(f"{name}: median {median:.3f} s (min {min(samples):.3f}, max {max(samples):.3f}){against}")
    extra = {} if name == BASELINE else {"ratio_to_bare": round(ratio, 2), "target": TARGET}
    print(json.dumps({"bench": "cli", "metric": name, "value": round(median, 4), "unit": "s",
                      "min": round(min(samples), 4), "max": round(max(samples), 4), "runs": len(samples),
                      **extra}))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=9, help="timed rounds of every command")
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "small.duckdb"
        make_corpus(db)
        times = time_rounds(commands(db), runs)
    base = statistics.median(times[BASELINE])
    for name, samples in times.items():
        emit(name, samples, base)


if __name__ == "__main__":
    main()
