"""pin_to_a_free_cpu(): give this serving process one CPU of its own, if one is free.

A worker process runs Python on one thread at a time (the GIL), yet its event loop and its
database threads (web/blocking.py) hand the GIL back and forth at every database call. When
the kernel runs those threads on two cores at once, each hand-over crosses cores: measured
here, that doubled the CPU of a SCIM request (0.34 -> 0.81 ms for a lookup at 8 concurrent
connections). On one core the threads take turns as the GIL wants them to, and `muster serve`
runs one process per core anyway, so each takes a core: the first one no other Muster process
on this machine holds (a lock file per CPU, held for the process's life).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from pathlib import Path

_held: list[int] = []  # the lock files' descriptors: the lock lasts as long as the process


def pin_to_a_free_cpu(lock_dir: Path | None = None) -> int | None:
    """Pin every thread of this process to a CPU no other Muster process holds; return it.

    None when there is nothing to choose (one CPU) or every CPU is taken: then nothing changes.
    """
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return None
    if len(cpus) < 2:
        return None
    folder = lock_dir or Path(tempfile.gettempdir())
    start = os.getpid() % len(cpus)
    for step in range(len(cpus)):
        cpu = cpus[(start + step) % len(cpus)]
        descriptor = os.open(folder / f"muster-cpu-{cpu}.lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(descriptor)
            continue
        _held.append(descriptor)
        _pin_every_thread(cpu)
        return cpu
    return None


def _pin_every_thread(cpu: int) -> None:
    # sched_setaffinity(0) pins the calling thread only; threads made later inherit it.
    for task in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            os.sched_setaffinity(int(task), {cpu})
