"""Time `dli-grade batch` on copies of the example: `python benchmarks/bench_batch.py`.

Grades N copies of the bundled example (each in its own student folder) on the eight unit
tasks, once per backend and run, alternating backends so that drift in the machine's load
falls on both, and prints each run's wall time, the throughput in submissions an hour and,
with `--backends local,ray`, Ray's overhead against the local pool at the same --jobs, whole
and without Ray's fixed cost of starting (which a large batch spreads over many submissions).
Every run writes a fresh gradebook (no --resume) and must grade every copy to 8/8 tasks
passed, or the benchmark stops: a fast wrong batch is no figure.
"""

from __future__ import annotations

import csv
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tasks import UNIT_TASK_IDS  # noqa: E402


def run_batch(inputs: Path, out: Path, backend: str, jobs: int) -> float:
    """Wall seconds of one whole batch command (Ray's start and shutdown included)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "grader", "batch", str(inputs), "--out", str(out), "--jobs", str(jobs),
               "--tasks", ",".join(UNIT_TASK_IDS), "--device", "cpu", "--backend", backend, "-q"]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise click.ClickException(f"{backend} batch exited {done.returncode}: {done.stderr[-2000:]}")
    return seconds


RAY_START = """
import time
started = time.perf_counter()
import ray
ray.init(num_cpus={jobs}, include_dashboard=False, log_to_driver=False)
ray.get(ray.remote(num_cpus=1)(lambda: None).remote())
ray.shutdown()
print(time.perf_counter() - started)
"""


def ray_fixed_cost(jobs: int) -> float:
    """Seconds to import Ray, start a local instance as the batch does, run one empty task and stop it."""
    done = subprocess.run([sys.executable, "-c", RAY_START.format(jobs=jobs)], capture_output=True, text=True)
    if done.returncode != 0:
        raise click.ClickException(f"starting Ray failed: {done.stderr[-2000:]}")
    return float(done.stdout.split()[-1])


def check_gradebook(out: Path, count: int) -> None:
    with open(out / "grades.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    bad = [row["student"] for row in rows if row["status"] != "graded"
           or any(row[task] != "passed" for task in UNIT_TASK_IDS)]
    if len(rows) != count or bad:
        raise click.ClickException(f"{out}: {len(rows)} rows for {count} submissions; not all passed: {bad}")


@click.command(help=__doc__.split("\n\n")[0])
@click.option("--submissions", "count", type=click.IntRange(min=1), default=12, show_default=True,
              help="copies of the example in the batch")
@click.option("--jobs", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--runs", type=click.IntRange(min=1), default=2, show_default=True, help="runs per backend")
@click.option("--backends", default="local,ray", show_default=True, help="comma-separated: local, ray")
@click.option("--submission", default=str(ROOT / "examples" / "submission.ipynb"),
              show_default="examples/submission.ipynb")
def main(count: int, jobs: int, runs: int, backends: str, submission: str) -> None:
    chosen = [name.strip() for name in backends.split(",") if name.strip()]
    if not chosen or set(chosen) - {"local", "ray"}:
        raise click.BadParameter("local and/or ray", param_hint="--backends")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
          f"{count} copies of {Path(submission).name}, {len(UNIT_TASK_IDS)} unit tasks, --jobs {jobs}")
    times: dict[str, list[float]] = {name: [] for name in chosen}
    with tempfile.TemporaryDirectory(prefix="dli-bench-batch-") as scratch:
        inputs = Path(scratch) / "class"
        for index in range(count):
            folder = inputs / f"student{index:03d}"
            folder.mkdir(parents=True)
            shutil.copy(submission, folder / Path(submission).name)
        for run in range(runs):
            for backend in chosen:
                out = Path(scratch) / f"out-{backend}-{run}"
                seconds = run_batch(inputs, out, backend, jobs)
                check_gradebook(out, count)
                times[backend].append(seconds)
                print(f"run {run + 1} {backend:5}: {seconds:6.1f} s, {count / seconds * 3600:6.0f} submissions/hour")
                shutil.rmtree(out)
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, median in medians.items():
        print(f"{name:5} median {median:.1f} s ({min(times[name]):.1f}-{max(times[name]):.1f}): "
              f"{count / median * 3600:.0f} submissions/hour, {median / count:.2f} s a submission")
    if "local" in medians and "ray" in medians:
        print(f"ray overhead against local at --jobs {jobs}: {(medians['ray'] / medians['local'] - 1) * 100:+.1f}%")
        fixed = statistics.median(ray_fixed_cost(jobs) for _ in range(runs))
        print(f"of which Ray's fixed cost (import, start, one empty task, stop): {fixed:.1f} s; "
              f"without it: {((medians['ray'] - fixed) / medians['local'] - 1) * 100:+.1f}%")


if __name__ == "__main__":
    main()
