"""What a run may spend on paid model calls, as one ledger shared by every process of the run.

Invariant: `check` is called before every paid call and `add` after it, so spending passes the
limit by at most the calls already in flight when it was reached (one per scene); a reply replayed
from the cache is never checked or counted.
"""

from __future__ import annotations

from multiprocessing.sharedctypes import Synchronized

from sim.backends.providers.common import SceneStopped


class BudgetSpent(SceneStopped):
    """`--max-cost` is reached: no more paid calls."""


class Budget:
    """What a run may spend: `limit` USD (None = no limit), and what it has spent so far.

    With `shared` (a `multiprocessing` double, e.g. `ctx.Value("d", 0.0)`) the spending is one
    ledger across the worker processes of a run, updated under its lock, so `--max-cost` holds for
    the run as a whole.
    """

    def __init__(self, limit: float | None = None, shared: Synchronized[float] | None = None) -> None:
        self.limit = limit
        self._shared = shared
        self._spent = 0.0

    @property
    def spent(self) -> float:
        """USD spent so far (by every process sharing the ledger)."""
        return self._shared.value if self._shared is not None else self._spent

    def check(self) -> None:
        """Raise `BudgetSpent` once the limit is reached."""
        if self.limit is not None and (spent := self.spent) >= self.limit:
            raise BudgetSpent(f"--max-cost {self.limit:g} USD reached (spent {spent:.4f} USD)")

    def add(self, cost: float | None) -> None:
        """Count a paid call (one whose model has no price, `cost` None, spends nothing known)."""
        if cost is None:
            return
        if self._shared is not None:
            with self._shared.get_lock():
                self._shared.value += cost
        else:
            self._spent += cost
