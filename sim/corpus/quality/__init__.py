"""Quality measures of the corpus, and `sim check`'s work with them (`check`).

Per scene: a stored scene is read back whole (`load`: its text, turns, cast and the personas, the scenes it
recalls) and measured by pure functions (`measures`, `voice`, `readability`). Per stage and corpus:
`diversity` counts in DuckDB SQL, and `twins` finds near duplicates by MinHash LSH. `gates` names every
measure and judges it; `selection` is what an export keeps by quality.

Invariants: measuring only reads the corpus (scenes, turns, people); `check` alone writes, and only the
quality tables (`scene_quality`, `corpus_quality`); nothing here is imported by `sim --help`, and heavy
libraries (datasketch, numpy, pyphen, pyarrow) are imported inside the functions that need them.
"""
