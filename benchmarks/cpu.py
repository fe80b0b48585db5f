"""CPU time over a run of benchmarks/web.py, by who spent it: the server, PostgreSQL,
wrk, and the rest of the machine (psutil reads it from the kernel)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import psutil


def process_tree(root: int) -> list[int]:
    """``root`` and its descendants (uvicorn's workers); empty once it has exited."""
    try:
        return [root, *(child.pid for child in psutil.Process(root).children(recursive=True))]
    except psutil.NoSuchProcess:
        return []


def postgres_pids() -> list[int]:
    """The machine's PostgreSQL processes: the postmaster and its backends."""
    return [
        process.pid
        for process in psutil.process_iter(["name"])
        if process.info["name"] == "postgres"
    ]


def cpu_by_pid(pids: Iterable[int]) -> dict[int, float]:
    """Each live process's CPU time so far, its exited children's included:
    PostgreSQL's backends for short-lived connections end up in the postmaster's."""
    times = {}
    for pid in pids:
        try:
            spent = psutil.Process(pid).cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        times[pid] = spent.user + spent.system + spent.children_user + spent.children_system
    return times


def machine_cpu_seconds() -> tuple[float, float]:
    """CPU time so far on the machine (all cores): spent by its processes, and
    stolen by the hypervisor (a virtual CPU ready to run while the host ran others)."""
    spent = psutil.cpu_times()
    return spent.user + spent.nice + spent.system + spent.irq + spent.softirq, spent.steal


@dataclass(frozen=True)
class CpuSnapshot:
    server: dict[int, float]
    postgres: dict[int, float]
    # wrk's time, from this process's waited-for children: taken after waiting for
    # wrk and before waiting for anything else (py-spy).
    wrk: float
    machine: tuple[float, float]

    @classmethod
    def take(cls, server_pids: Iterable[int]) -> CpuSnapshot:
        usage = os.times()
        return cls(
            server=cpu_by_pid(server_pids),
            postgres=cpu_by_pid(postgres_pids()),
            wrk=usage.children_user + usage.children_system,
            machine=machine_cpu_seconds(),
        )

    def shares(self, later: CpuSnapshot, wall: float) -> dict[str, float]:
        """CPU used from this snapshot to ``later``, in cores. A process started in
        between counts whole; one that exited in between loses its last stretch."""

        def used(before: dict[int, float], after: dict[int, float]) -> float:
            return sum(t - before.get(pid, 0.0) for pid, t in after.items())

        shares = {
            "server": used(self.server, later.server) / wall,
            "postgres": used(self.postgres, later.postgres) / wall,
            "wrk": (later.wrk - self.wrk) / wall,
        }
        # Whatever else ran meanwhile: py-spy when profiling, other work on the machine.
        busy = (later.machine[0] - self.machine[0]) / wall
        shares["other"] = max(0.0, busy - sum(shares.values()))
        shares["stolen by the host"] = (later.machine[1] - self.machine[1]) / wall
        return shares

    def per_server_process(self, later: CpuSnapshot, wall: float) -> list[float]:
        """Each server process's share, busiest first (uvicorn's workers)."""
        return sorted(
            ((t - self.server.get(pid, 0.0)) / wall for pid, t in later.server.items()),
            reverse=True,
        )
