"""pin_to_a_free_cpu: each serving process on a CPU of its own, none shared while one is free."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PIN_AND_WAIT = """
import sys
from pathlib import Path
from muster.cpu_affinity import pin_to_a_free_cpu
import os
cpu = pin_to_a_free_cpu(Path(sys.argv[1]))
print(cpu, sorted(os.sched_getaffinity(0)), flush=True)
sys.stdin.read()  # hold the CPU until the test lets go
"""


@pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs Linux and two CPUs",
)
def test_two_processes_take_two_cpus_and_a_third_takes_none_on_two(tmp_path: Path) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", PIN_AND_WAIT, str(tmp_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(len(cpus) + 1)
    ]
    try:
        lines = [process.stdout.readline().split(" ", 1) for process in processes]  # type: ignore[union-attr]
    finally:
        for process in processes:
            process.communicate("", timeout=30)
    pinned = [int(cpu) for cpu, _ in lines if cpu != "None"]
    assert sorted(pinned) == cpus  # every CPU taken once
    assert sum(cpu == "None" for cpu, _ in lines) == 1  # the one too many is left as it was
    for cpu, affinity in lines:
        if cpu != "None":
            assert affinity.strip() == f"[{cpu}]"
