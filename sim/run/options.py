"""What a run is asked to do (`RunOptions`) and what it did (`RunSummary`).

Invariant: plain values only, importing nothing that runs a scene, so the CLI, the executors and the
worker processes can all hold them; the summary is changed only by the run loop's own process.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sim.backends.options import ModelOptions
from sim.store.rows import LlmCallRow


@dataclass(frozen=True)
class RunOptions:
    """What `sim run` was asked to do."""

    db: Path
    learner: str
    seed: int = 0
    variations: int = 1
    backend: str = "scripted"
    stages: tuple[str, ...] = ()
    workers: int = 1  # 0 = auto (`sim.run.executor.worker_count`)
    command: str = "sim run"
    concurrency: int = 8  # scenes in flight at once with a model backend
    model_options: ModelOptions = field(default_factory=ModelOptions)


@dataclass
class RunSummary:
    """What a run did, for the closing summary."""

    run_id: str
    db: Path
    planned: int
    skipped: int
    scenes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    turns: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    repairs: int = 0
    seconds: float = 0.0
    status: str = "running"  # then done, partial, stopped, failed or interrupted (as `runs` records it)
    failed: dict[str, str] = field(default_factory=dict)  # "pack/scene#variation" -> reason
    cost: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # stage -> USD paid
    tokens: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # stage -> tokens paid for
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # source (api, cache) -> calls
    stopped: str | None = None  # why the run stopped early (budget, authentication)
    workers: int = 1  # processes that lived the scenes

    def count_calls(self, calls: Sequence[LlmCallRow]) -> None:
        """Add a scene's model calls to the totals."""
        for call in calls:
            self.calls[call.source] += 1
            if call.source != "cache":
                self.cost[call.stage] += call.cost_usd or 0.0
                self.tokens[call.stage] += call.tokens

    @property
    def done(self) -> int:
        """Scenes lived in this run."""
        return sum(self.scenes.values())


Progress = Callable[[str, str], None]
"""Told (stage, "pack/scene") of each scene stored, and (stage, "pack/scene failed") of each that failed."""
