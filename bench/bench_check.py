"""Time and peak memory of `sim check` as the corpus grows: near-duplicate search must not be quadratic.

Builds corpora by replicating the shipped packs' scenes and their turns (new keys and variations) to N
scenes, then runs `sim check` twice in fresh processes: the first measures every scene and the corpus, the
second finds nothing new and measures nothing. Every copy of a scene has the same text, so each scene's
near-duplicate cluster holds N / 74 scenes: the worst case for the search, not a typical corpus.
Usage: python -m bench.bench_check [--sizes 10000,100000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from bench.bench_export import MEASURE, grow, seed_corpus
from bench.peak import peak_mb

REPO = Path(__file__).resolve().parent.parent
SIZES = (10_000, 100_000)


def grow_with_turns(seed: Path, target: Path, scenes: int) -> None:
    """`grow`, and each copied scene's turns under its new key."""
    grow(seed, target, scenes)
    with duckdb.connect(str(target)) as con:
        con.execute("""
            INSERT INTO turns BY NAME
            SELECT t.* EXCLUDE (scene_key), s.scene_key
            FROM scenes s JOIN turns t ON t.scene_key = split_part(s.scene_key, '-', 1)
            WHERE s.scene_key LIKE '%-%'""")


def check_once(db: Path) -> tuple[float, float]:
    """Peak RSS (MB) and wall seconds of one `sim check` process (a failing gate is expected, not an error)."""
    code = MEASURE.replace("assert not exit.code, exit.code", "assert exit.code in (0, 1, None), exit.code")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, "check", "--db", str(db)],
                          cwd=REPO, check=True, capture_output=True, text=True)  # fmt: skip
    return peak_mb(done.stderr), time.perf_counter() - started


def emit(metric: str, value: float, **extra: object) -> None:
    print(json.dumps({"bench": "check", "metric": metric, "value": round(value, 3), **extra}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES), help="corpus sizes, in scenes")
    sizes = sorted(int(s) for s in parser.parse_args().sizes.split(","))
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        seed = seed_corpus(Path(tmp))
        for size in sizes:
            db = Path(tmp) / f"c{size}.duckdb"
            grow_with_turns(seed, db, size)
            (peak, seconds), (_, again) = check_once(db), check_once(db)
            figures.append((size, peak, seconds))
            print(f"check {size:,} scenes: {seconds:.1f}s, peak {peak:,.0f} MB; a second check {again:.1f}s")
            emit("seconds", seconds, scenes=size, peak_rss_mb=round(peak, 1), second_check_seconds=round(again, 2))
            db.unlink()
    for (small, low_mb, low_s), (large, high_mb, high_s) in zip(figures, figures[1:], strict=False):
        print(f"{large:,} vs {small:,} scenes ({large / small:.0f}x): time {high_s / low_s:.1f}x, "
              f"peak memory {high_mb / low_mb:.2f}x")  # fmt: skip
        emit("time_ratio", high_s / low_s, scenes=[small, large])
        emit("peak_rss_ratio", high_mb / low_mb, scenes=[small, large])


if __name__ == "__main__":
    main()
