"""Where a world's files are: the paths every command that reads the world is given.

Invariant: a plain value read from defaults, then the environment, then the command line; loading and
checking what is there is `sim.world.load`'s job, so naming the paths costs a command nothing at start-up.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class WorldPaths:
    """Where a world's files are; `None` stages/values mean the shipped defaults."""

    personas: Path = Path("personas")
    scenarios: Path = Path("scenarios")
    stages: Path | None = None
    values: Path | None = None

    @classmethod
    def from_env(cls, **overrides: Path | None) -> WorldPaths:
        """Defaults, then SIM_PERSONAS / SIM_SCENARIOS / SIM_STAGES / SIM_VALUES, then explicit overrides."""
        env = {
            k: Path(os.environ[f"SIM_{k.upper()}"])
            for k in ("personas", "scenarios", "stages", "values")
            if os.environ.get(f"SIM_{k.upper()}")
        }
        env.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**env)
