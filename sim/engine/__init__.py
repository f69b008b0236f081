"""The scene engine: one scene lived as a LangGraph graph, turn by turn.

Invariant: the only package that imports LangGraph.
"""
