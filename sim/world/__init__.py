"""The learner's world as authored in YAML: stages, values, personas, the persona graph, packs and scenes.

Invariant: nothing here knows how a scene is lived or stored; a world is loaded and checked whole
(`sim.world.load.load_world`) and is read-only afterwards. This package imports nothing at start-up.
"""
