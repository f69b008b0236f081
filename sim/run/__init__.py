"""A run: plan the curriculum, hand life lines to an executor, write what comes back.

Invariant: the database is written by the run's own process only, in batches (`sim.run.writer`).
"""
