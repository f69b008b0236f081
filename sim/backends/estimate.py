"""What a model run will cost, before it runs (`sim run --dry-run`).

The estimate counts calls exactly (one per opening, turn and reflection, or one per scene with
`--mode script`) and tokens from measured averages of the shipped prompts: the system prefix, the
scene so far growing by one line per turn, and the line lengths each stage asks for. It ignores
the provider's prompt cache (cached prefix tokens cost a tenth), regenerations and cache replays,
so for a fresh run it errs high, which is the side a budget should err on.

Invariant: nothing here calls a model or reads a key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sim.backends.prices import PriceTable
from sim.backends.providers.common import Completion
from sim.world.curriculum import SceneJob
from sim.world.schedule import schedule
from sim.world.stages import StageList

PREFIX_TOKENS = 900
"""System prompt per call: the speaker's card, the scene, the stage targets and the learner's life."""
LINE_TOKENS = 30
"""One line of the scene so far, as the next call sees it."""
NARRATION_TOKENS = 80
"""An opening or a reflection, as written."""
TOKENS_PER_WORD = 1.4


@dataclass
class StageEstimate:
    """Calls, tokens and cost for one stage's pending scenes."""

    scenes: int = 0
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float | None = 0.0


def estimate(
    jobs: Sequence[SceneJob], stages: StageList, model: str, prices: PriceTable, *, mode: str, batch: bool
) -> dict[str, StageEstimate]:
    """The estimate for `jobs`, by stage id."""
    out: dict[str, StageEstimate] = {}
    for job in jobs:
        stage = stages.by_id[job.scene.stage]
        turns = len(schedule(job.scene))
        learner_out = int(stage.language.max_words_per_turn * TOKENS_PER_WORD)
        output = turns * (learner_out + LINE_TOKENS) // 2 + 2 * NARRATION_TOKENS
        if mode == "script":
            calls, input_tokens = 1, PREFIX_TOKENS + turns * LINE_TOKENS
        else:
            calls = turns + 2
            input_tokens = calls * PREFIX_TOKENS + LINE_TOKENS * turns * (turns + 1) // 2
        row = out.setdefault(stage.id, StageEstimate())
        row.scenes += 1
        row.calls += calls
        row.input_tokens += input_tokens
        row.output_tokens += output
    for row in out.values():
        usage = Completion("", input_tokens=row.input_tokens, output_tokens=row.output_tokens)
        row.cost = prices.cost(model, usage, batch=batch)
    return out
