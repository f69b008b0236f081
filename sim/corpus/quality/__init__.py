"""Quality measures of the corpus: where a measure of the training text goes, one module per measure.

A measure is a function over the `training_text` view (one row per scene, in curriculum order, with its
metadata), given a read-only connection from `sim.store.db.connect(db, read_only=True)`; it returns figures
(per scene, per stage, or for the whole corpus) for a person or a gate to judge.

Invariant: a measure only reads. It queries `training_text` (or `training_text_styled(style)`) and no other
table, so it measures exactly the text an export would write, and it imports nothing heavy at module level,
so `sim --help` stays fast.
"""
