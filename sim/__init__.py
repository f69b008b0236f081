"""raising-sim: a persistent first-person learner lives scripted social scenes, logged as training text."""

__version__ = "0.1.0"
