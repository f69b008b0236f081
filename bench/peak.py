"""Peak memory of a child process, measured from inside it.

`resource.getrusage(RUSAGE_SELF).ru_maxrss` is no good here: Linux keeps it across fork and exec, so a
child reports its parent's peak when that was higher. `VmHWM` in /proc/self/status belongs to the
process's own address space, which exec replaces, so it is the child's peak alone.
"""

from __future__ import annotations

PRINT_PEAK = (
    "print(next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:')), "
    "file=__import__('sys').stderr)"
)
"""Python code printing this process's peak resident memory, in kB, as the last line of stderr."""


def peak_mb(stderr: str) -> float:
    """The peak printed by `PRINT_PEAK`, in MB."""
    return int(stderr.strip().splitlines()[-1]) / 1024
