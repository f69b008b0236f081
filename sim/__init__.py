"""raising-sim: a persistent first-person learner lives scripted social scenes, logged as training text."""

__version__ = "0.1.0"
INTERRUPTED = "interrupted: finished work is kept; run the same command again to continue"
"""What `sim` says on a Ctrl-C (status 130), whenever it comes."""


def exit_interrupted() -> None:
    """Say the one line a Ctrl-C gets, and exit with status 130 (for an interrupt before the CLI is running)."""
    import sys

    sys.stderr.write(INTERRUPTED + "\n")
    keep_status()
    sys.exit(130)


def keep_status() -> None:
    """Make sure the process ends with the status it exits with after an interrupt (130, or 143 for SIGTERM).

    An interrupt that meets Python inside `exec` of a string (a dataclass being made, as a module is
    imported) is taken as unhandled however it was handled, and Python would then end the process by
    SIGINT instead of with its status (CPython's `exit_sigint`). With SIGINT held from here, that last
    kill stays pending and the status stands.
    """
    import signal

    if hasattr(signal, "pthread_sigmask"):  # POSIX; Windows has no such exit
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
