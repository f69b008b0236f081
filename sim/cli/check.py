"""`sim check`: measure the corpus's quality, store it beside the text, and fail (exit 1) when a gate fails."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table
from rich.text import Text

from sim.cli.options import console, db_option, json_option, print_json, world_options
from sim.world.paths import WorldPaths

if TYPE_CHECKING:
    from sim.corpus.quality.check import CheckReport
    from sim.corpus.quality.gates import Verdict


@click.command()
@db_option
@click.option("--gates", "gates_file", type=click.Path(path_type=Path, dir_okay=False),
              help="Gates file (default: the shipped sim/data/gates.yaml).")  # fmt: skip
@world_options
@json_option
def check(db: Path, gates_file: Path | None, paths: WorldPaths, as_json: bool) -> None:
    """Measure every scene not measured yet and the corpus, print each measure per stage, exit 1 if a gate fails.

    The measures are stored in the scene_quality and corpus_quality tables; a second check of an unchanged
    corpus measures nothing. --stages names the stage targets the corpus was made with.
    """
    from sim.corpus.quality.check import check as run_check
    from sim.corpus.quality.gates import load_gates
    from sim.corpus.quality.scene import StageTargets
    from sim.world.stages import load_stages

    gates = load_gates(gates_file)
    stages = load_stages(paths.stages).stages
    targets = {s.id: StageTargets(s.language.max_words_per_turn, _band(s.language.reading_grade)) for s in stages}
    report = run_check(db, targets, gates)
    if as_json:
        print_json(_json(report))
    else:
        _print(report)
    if report.failed:
        raise SystemExit(1)


def _band(band: Sequence[float]) -> tuple[float, float]:
    return float(band[0]), float(band[1])


def _json(report: CheckReport) -> dict[str, Any]:
    return {
        "scenes": report.scenes,
        "measured": report.measured,
        "measures": [{"name": v.measure, "stage": v.stage or None, "value": v.value,
                      "threshold": None if v.gate is None else v.gate.model_dump(exclude_none=True),
                      "pass": v.passed, **({"detail": v.detail} if v.detail else {})} for v in report.verdicts],
    }  # fmt: skip


def _print(report: CheckReport) -> None:
    from sim.corpus.quality.gates import MEASURES

    out = console()
    again = "; the corpus measured again" if report.corpus_measured else "; nothing changed since the last check"
    out.print(f"{report.scenes} scenes, {report.measured} measured now{again}", markup=False)
    columns = [*report.stages, ""]
    out.print("stages: " + " · ".join(f"{i} {stage.replace('_', ' ')}" for i, stage in enumerate(report.stages, 1)),
              markup=False)  # fmt: skip
    table = Table(show_edge=False, pad_edge=False, box=None)
    table.add_column("measure", no_wrap=True, min_width=max(map(len, MEASURES)))
    table.add_column("gate", no_wrap=True, min_width=7)
    for i, stage in enumerate(columns, 1):
        table.add_column(str(i) if stage else "all", justify="right", no_wrap=True, min_width=5)
    for name in dict.fromkeys(v.measure for v in report.verdicts):
        cells = {v.stage: v for v in report.verdicts if v.measure == name}
        gate = next((str(v.gate) for v in cells.values() if v.gate is not None), "")
        table.add_row(name, gate, *(_cell(cells.get(stage)) for stage in columns))
    out.print(table, width=max(out.width, 36 + 6 * len(columns)))  # a pipe's 80 columns would cut figures
    failed = report.failed
    if failed:
        out.print(f"{len(failed)} gate(s) failed: " + "; ".join(
            f"{v.measure} in {v.stage or 'the corpus'} is {_value(v)}, gate {v.gate}" for v in failed[:8])
            + ("; …" if len(failed) > 8 else ""), markup=False)  # fmt: skip
    else:
        out.print("every gate passed", markup=False)


def _value(verdict: Verdict) -> str:
    value = verdict.value
    if value is None:
        return "-"
    return f"{value:.0f}" if verdict.measure == "values_covered" else f"{value:.2f}"


def _cell(verdict: Verdict | None) -> Text:
    if verdict is None:
        return Text("")
    if verdict.passed is False:
        return Text(_value(verdict) + "✗", style="bold red")
    return Text(_value(verdict), style="green" if verdict.passed else "")
