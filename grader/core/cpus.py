"""How many CPU cores this process may really use, to size torch's threads (grader and child).

`os.cpu_count()` is the host's count. A process may be pinned to fewer cores (CPU affinity:
`taskset`, a batch scheduler) or get a share of them (a container's cgroup v2 `cpu.max` quota,
e.g. `docker run --cpus 2` on a 64-core host). torch starting one thread per host core in a
2-core quota runs many times slower than with two.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def affinity_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _own_cgroup(proc_cgroup: Path) -> str | None:
    """The cgroup v2 path of this process ("0::/path" in /proc/self/cgroup), or None."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("0::"):
            return line[3:].strip() or "/"
    return None


def quota_cpus(root: Path = CGROUP_ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")) -> float | None:
    """The tightest cgroup v2 `cpu.max` quota (quota / period, in cores) on the way from this
    process's cgroup to the root; None where there is none."""
    own = _own_cgroup(proc_cgroup)
    if own is None:
        return None
    tightest = None
    folder = root / own.lstrip("/")
    while True:
        try:
            quota, period = (folder / "cpu.max").read_text().split()[:2]
            if quota != "max":
                cores = int(quota) / int(period)
                tightest = cores if tightest is None else min(tightest, cores)
        except (OSError, ValueError):  # no cpu controller here, or a line we don't understand
            pass
        if folder == root or root not in folder.parents:
            return tightest
        folder = folder.parent


def usable_cpus(root: Path = CGROUP_ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")) -> int:
    """Cores this process may use: its affinity, capped by a cgroup quota (whole cores, at least 1)."""
    cpus = affinity_cpus()
    quota = quota_cpus(root, proc_cgroup)
    if quota is not None:
        cpus = min(cpus, max(1, math.floor(quota)))
    return max(1, cpus)


def busy_elsewhere(loadavg: Path = Path("/proc/loadavg"), samples: int = 3) -> int:
    """Threads of other processes running right now (the runnable count of /proc/loadavg, less this
    one), the median of a few samples; 0 where it cannot be read."""
    counts = []
    for number in range(samples):
        try:
            running = int(loadavg.read_text().split()[3].split("/")[0])
        except (OSError, ValueError, IndexError):
            return 0
        counts.append(max(0, running - 1))
        if number + 1 < samples:
            time.sleep(0.05)
    return int(statistics.median(counts))


def free_cpus(usable: int, busy: int) -> int:
    """Cores to use beside `busy` threads of other work: more torch threads than free cores make each
    parallel region wait for a descheduled thread (a grade beside one torch job took 3x as long)."""
    return max(1, min(usable, usable - busy))


def size_torch_threads() -> int:
    """Threads for this grade: the operator's OMP_NUM_THREADS when set (the batch sets each grade's
    share), else the usable cores not busy with other work, which the child inherits through the
    same variables."""
    chosen = os.environ.get("OMP_NUM_THREADS", "").strip()
    threads = int(chosen) if chosen.isdigit() and int(chosen) > 0 else free_cpus(usable_cpus(), busy_elsewhere())
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, str(threads))
    import torch

    torch.set_num_threads(threads)
    return threads
