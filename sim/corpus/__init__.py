"""The corpus read back: training text rendering, read-only query, reading, export, and quality measures.

Invariant: nothing here lives a scene or writes the database; everything reads what the store holds,
except `rendering`, the line format a scene is rendered with once, when it is stored. Nothing here imports
the run, the engine or a backend.
"""
