"""Torch's threads sized from the cores the process may use: affinity and a cgroup v2 quota."""

from __future__ import annotations

import os

import pytest

from grader.core import cpus


def _cgroup(tmp_path, limits: dict[str, str]) -> tuple:
    """A fake /sys/fs/cgroup with `cpu.max` files at the given paths, and /proc/self/cgroup naming a/b."""
    root = tmp_path / "cgroup"
    for folder, line in limits.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / "cpu.max").write_text(line + "\n")
    (root / "a" / "b").mkdir(parents=True, exist_ok=True)
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text("0::/a/b\n")
    return root, proc


@pytest.fixture
def eight_cores(monkeypatch):
    monkeypatch.setattr(cpus.os, "sched_getaffinity", lambda pid: set(range(8)))


@pytest.mark.parametrize(
    "limits, expected",
    [
        ({}, 8),  # no quota: the affinity
        ({"a/b": "max 100000"}, 8),  # a cpu controller without a limit
        ({"a/b": "200000 100000"}, 2),  # docker --cpus 2
        ({"a/b": "150000 100000"}, 1),  # 1.5 cores: one whole core
        ({"a/b": "5000 100000"}, 1),  # a sliver: still one thread
        ({"a/b": "max 100000", "a": "300000 100000"}, 3),  # the parent's limit applies too
        ({"a/b": "400000 100000", "": "200000 100000"}, 2),  # the tightest on the way up wins
        ({"a/b": "1600000 100000"}, 8),  # a quota above the affinity
    ],
)
def test_usable_cpus(tmp_path, eight_cores, limits, expected):
    root, proc = _cgroup(tmp_path, limits)
    assert cpus.usable_cpus(root, proc) == expected


def test_a_pinned_process_uses_its_affinity(tmp_path, monkeypatch):
    monkeypatch.setattr(cpus.os, "sched_getaffinity", lambda pid: {3})
    monkeypatch.setattr(cpus.os, "cpu_count", lambda: 64)
    root, proc = _cgroup(tmp_path, {})
    assert cpus.usable_cpus(root, proc) == 1


def test_cgroup_v1_only_means_no_quota(tmp_path, eight_cores):
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text("4:memory:/x\n1:cpu:/\n")
    assert cpus.usable_cpus(tmp_path, proc) == 8


@pytest.mark.parametrize("usable, busy, expected", [(2, 0, 2), (2, 1, 1), (2, 2, 1), (2, 7, 1), (8, 3, 5)])
def test_threads_beside_other_work(usable, busy, expected):
    assert cpus.free_cpus(usable, busy) == expected


def test_busy_elsewhere_reads_the_runnable_count_without_this_process(tmp_path):
    loadavg = tmp_path / "loadavg"
    loadavg.write_text("1.90 1.20 0.80 3/412 12345\n")  # this process and two threads of another job
    assert cpus.busy_elsewhere(loadavg, samples=1) == 2
    loadavg.write_text("garbage\n")
    assert cpus.busy_elsewhere(loadavg, samples=1) == 0


def test_the_command_sizes_threads_for_itself_and_the_child(monkeypatch, tmp_path):
    """dli-grade sets torch's threads and OMP_NUM_THREADS (which the child inherits) to the usable cores."""
    import torch
    from click.testing import CliRunner

    from grader.cli import main
    from grader.core.errors import UnusableInput
    from grader.grading import runner

    seen = {}

    def fake_grade(*args, **kwargs):
        seen.update(threads=torch.get_num_threads(), env=os.environ.get("OMP_NUM_THREADS"))
        raise UnusableInput("stop here")

    previous = torch.get_num_threads()
    for name in cpus.THREAD_VARIABLES:
        monkeypatch.setenv(name, "")  # recorded, so the value the command sets is undone afterwards
        monkeypatch.delenv(name)
    monkeypatch.setattr(cpus, "usable_cpus", lambda: 1)
    monkeypatch.setattr(cpus, "busy_elsewhere", lambda: 0)
    monkeypatch.setattr(runner, "grade", fake_grade)
    try:
        result = CliRunner().invoke(main, ["grade", str(tmp_path / "x.py"), "--allow-uncontained", "-q"])
    finally:
        torch.set_num_threads(previous)
    assert result.exit_code == 2, result.output
    assert seen == {"threads": 1, "env": "1"}
