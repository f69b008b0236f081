"""The corpus database: typed rows (one per table), named migrations, opening and locking it, generated docs.

Invariant: the DuckDB schema lives only in `sim.store.migrations`, applied by name on every open
(`sim.store.schema`); every other module reads or writes tables the migrations made, and only the holder
of the run lock writes (`sim.store.lock`: a `sim run`, or a reader bringing an older schema up to date).
"""
