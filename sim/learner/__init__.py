"""The persistent "I": its state, its pure updates, and the life line each variation lives through.

Invariant: a learner's state changes only by applying a scene's effect, and a scene sees only the life it
may remember (`sim.learner.lifeline.LifeLine.view`).
"""
