"""The corpus read back: training text rendering, read-only query, export, and quality measures.

Invariant: nothing here lives a scene; everything reads what the store holds.
"""
