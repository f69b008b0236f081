"""Peak memory and time of `sim export` as the corpus grows: memory should stay flat.

Builds synthetic corpora by replicating the shipped packs' scenes (new keys and variations) to N scenes,
exports each to Parquet in a fresh process, and prints peak RSS. DuckDB works within `EXPORT_MEMORY` and
spills the rest, so the peak rises until that cap is filled (a small corpus never fills it) and then stays
flat: the figure to watch is the ratio between the two largest corpora.
Usage: python -m bench.bench_export [--sizes 20000,200000,1000000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from bench.peak import PRINT_PEAK, peak_mb

REPO = Path(__file__).resolve().parent.parent
SIZES = (20_000, 200_000, 1_000_000)


def seed_corpus(work: Path) -> Path:
    db = work / "seed.duckdb"
    packs = [str(p.parent) for p in sorted((REPO / "scenarios").glob("*/pack.yaml"))]
    subprocess.run([sys.executable, "-m", "sim", "run", *packs, "--variations", "2", "--db", str(db)],
                   cwd=REPO, check=True, capture_output=True)
    return db


def grow(seed: Path, target: Path, scenes: int) -> None:
    shutil.copy(seed, target)
    con = duckdb.connect(str(target))
    have = con.execute("SELECT count(*) FROM scenes").fetchone()[0]
    copies = scenes // have
    con.execute(f"""
        INSERT INTO scenes BY NAME
        SELECT * EXCLUDE (scene_key, variation, c), scene_key || '-' || c AS scene_key,
               variation + 1000 * c AS variation
        FROM scenes, range(1, {copies}) AS r(c)""")
    con.close()


MEASURE = (
    "import runpy, sys\n"
    "sys.argv = ['sim', *sys.argv[1:]]\n"
    "try:\n    runpy.run_module('sim', run_name='__main__')\n"
    "except SystemExit as exit:\n    assert not exit.code, exit.code\n"
    f"{PRINT_PEAK}\n"
)


def export_peak_mb(db: Path, out: Path) -> tuple[float, float]:
    """Peak RSS (MB) of one `sim export` process, and its wall time."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, "export", "--db", str(db), "--out", str(out), "--format", "parquet"],
        cwd=REPO, check=True, capture_output=True, text=True)
    return peak_mb(done.stderr), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES), help="corpus sizes, in scenes")
    sizes = sorted(int(s) for s in parser.parse_args().sizes.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        seed = seed_corpus(work)
        peaks = []
        for size in sizes:
            db = work / f"c{size}.duckdb"
            grow(seed, db, size)
            peak, seconds = export_peak_mb(db, work / f"out{size}")
            peaks.append(peak)
            print(f"export {size:,} scenes: peak {peak:,.0f} MB, {seconds:.1f}s")
            print(json.dumps({"bench": "export", "metric": "peak_rss_mb", "scenes": size, "value": round(peak, 1),
                              "seconds": round(seconds, 2)}))
            db.unlink()
            shutil.rmtree(work / f"out{size}")
        for small, large, low, high in zip(sizes, sizes[1:], peaks, peaks[1:], strict=False):
            ratio = high / low
            print(f"peak ratio {large:,} vs {small:,} scenes: {ratio:.2f}x")
            print(json.dumps({"bench": "export", "metric": "peak_rss_ratio", "scenes": [small, large],
                              "value": round(ratio, 3)}))


if __name__ == "__main__":
    main()
