"""raising-sim: a persistent first-person learner lives scripted social scenes, logged as training text."""

__version__ = "0.1.0"
INTERRUPTED = "interrupted: finished work is kept; run the same command again to continue"
"""What `sim` says on a Ctrl-C (status 130), whenever it comes."""
