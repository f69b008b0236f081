"""End-to-end speed and memory of `sim run` on the scripted backend, against a bare LangGraph turn loop.

The headline figure is the whole process: `sim run` of every shipped pack with `--variations 30` as a user
runs it (start-up, world, workers, DuckDB writes and all), its median over `--repeats` runs, in turns per
second and as a ratio to the bare loop timed in the same bench run (issue 15's target: at least 1.0x).

Prints figures and one JSON line per figure.
Usage: python -m bench.bench_run [--scenes N] [--memory] [--repeats N] [--whole-only]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from bench.peak import PRINT_PEAK, peak_mb

REPO = Path(__file__).resolve().parent.parent
PACKS = sorted(p.parent for p in (REPO / "scenarios").glob("*/pack.yaml"))


class LoopState(TypedDict):
    turn: int


@dataclass
class Sink:
    limit: int
    lines: list[str] = field(default_factory=list)


def bare_loop_turns_per_second(turns_per_scene: int, scenes: int) -> float:
    """A director node and a speaker node appending a fixed line, no checkpointer."""

    def director(state: LoopState) -> LoopState:
        return state

    def route(state: LoopState, runtime: Runtime[Sink]) -> str:
        return "speaker" if state["turn"] < runtime.context.limit else END

    def speaker(state: LoopState, runtime: Runtime[Sink]) -> LoopState:
        runtime.context.lines.append("I: That makes sense, Grandpa.")
        return {"turn": state["turn"] + 1}

    graph = StateGraph(LoopState, context_schema=Sink)
    graph.add_node("director", director)
    graph.add_node("speaker", speaker)
    graph.add_edge(START, "director")
    graph.add_conditional_edges("director", route, ["speaker", END])
    graph.add_edge("speaker", "director")
    app = graph.compile()
    started = time.perf_counter()
    for _ in range(scenes):
        app.invoke({"turn": 0}, context=Sink(turns_per_scene), config={"recursion_limit": 10_000})
    return scenes * turns_per_scene / (time.perf_counter() - started)


def sim_run(scenes: int, db: Path, workers: int = 1) -> tuple[float, int, int]:
    """Turns per second of the real run loop (graph, backend, DuckDB writes), excluding start-up."""
    from sim.run.loop import run
    from sim.run.options import RunOptions
    from sim.world.load import WorldPaths, load_world

    world = load_world(WorldPaths(REPO / "personas", REPO / "scenarios"), PACKS)
    per_life = sum(len(p.scenes) for p in world.packs)
    variations = max(1, round(scenes / per_life))
    options = RunOptions(db=db, learner="sam", variations=variations, workers=workers)
    started = time.perf_counter()
    summary = run(world, options)
    seconds = time.perf_counter() - started
    turns = sum(summary.turns.values())
    return turns / seconds, turns, summary.done


def whole_process(variations: int, db: Path) -> tuple[float, int]:
    """Seconds of one `sim run` of every shipped pack in a fresh process (as a user runs it), and its turns."""
    args = [sys.executable, "-m", "sim", "run", *map(str, PACKS), "--variations", str(variations), "--db", str(db)]
    started = time.perf_counter()
    subprocess.run(args, capture_output=True, text=True, check=True, cwd=REPO)
    seconds = time.perf_counter() - started
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        (turns,) = con.execute("SELECT sum(turn_count) FROM scenes").fetchone() or (0,)
    db.unlink()
    return seconds, int(turns)


def whole_process_against_bare_loop(variations: int, repeats: int) -> tuple[float, float, int]:
    """Median turns/s of the whole process and of the bare loop, each timed `repeats` times, interleaved."""
    runs, bare = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):
            runs.append(whole_process(variations, Path(tmp) / f"whole-{i}.duckdb"))
            bare.append(bare_loop_turns_per_second(9, 500))
    turns = runs[0][1]
    return turns / statistics.median(s for s, _ in runs), statistics.median(bare), turns


def peak_rss_mb(scenes: int) -> float:
    """Peak memory of a whole run of `scenes` scenes, in a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        code = (
            f"import sys; sys.path.insert(0, {str(REPO)!r}); from bench.bench_run import sim_run; "
            f"from pathlib import Path; sim_run({scenes}, Path({str(Path(tmp) / 'm.duckdb')!r}), workers=1); "
            f"{PRINT_PEAK}"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    return peak_mb(out.stderr)


def emit(name: str, value: float, unit: str, **extra: object) -> None:
    print(f"{name}: {value:,.2f} {unit}")
    print(json.dumps({"bench": "run", "metric": name, "value": round(value, 3), "unit": unit, **extra}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenes", type=int, default=2000)
    parser.add_argument("--memory", action="store_true", help="also compare peak memory of 1,000 vs 10,000 scenes")
    parser.add_argument("--repeats", type=int, default=5, help="whole-process runs to take the median of")
    parser.add_argument("--whole-only", action="store_true", help="only the whole-process figure")
    args = parser.parse_args()
    whole, bare_now, whole_turns = whole_process_against_bare_loop(30, args.repeats)
    emit("whole_process_turns_per_s", whole, "turns/s", turns=whole_turns, variations=30, repeats=args.repeats)
    emit("bare_langgraph_turns_per_s_same_run", bare_now, "turns/s", turns_per_scene=9)
    emit("ratio_whole_process_to_bare_loop", whole / bare_now, "x", target=1.0)
    if args.whole_only:
        return
    with tempfile.TemporaryDirectory() as tmp:
        rate, turns, done = sim_run(args.scenes, Path(tmp) / "one.duckdb", workers=1)
        rate_auto, _, _ = sim_run(args.scenes, Path(tmp) / "auto.duckdb", workers=0)
    bare = bare_loop_turns_per_second(max(1, turns // max(done, 1)), 500)
    emit("sim_run_turns_per_s", rate_auto, "turns/s", scenes=done, turns=turns, workers="auto", target=2000)
    emit("sim_run_turns_per_s_one_process", rate, "turns/s", workers=1)
    emit("bare_langgraph_turns_per_s", bare, "turns/s", turns_per_scene=turns // max(done, 1))
    emit("ratio_to_bare_loop_one_process", rate / bare, "x", target=0.6)
    if args.memory:
        small, large = peak_rss_mb(1000), peak_rss_mb(10000)
        emit("peak_rss_1000_scenes", small, "MB")
        emit("peak_rss_10000_scenes", large, "MB")
        emit("peak_rss_ratio_10k_to_1k", large / small, "x", target=1.2)


if __name__ == "__main__":
    main()
