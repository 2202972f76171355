"""Time `dli-grade batch` on copies of the example: `python benchmarks/bench_batch.py`.

Grades N copies of the bundled example (each in its own student folder), on the eight unit
tasks or with `--tasks all` on every task (generation included), once per backend, --jobs value
and run, alternating them so that drift in the machine's load falls on all. Prints each run's
wall time and the throughput in submissions an hour; with two --jobs values, the ratio of their
throughputs; with `--backends local,ray`, Ray's overhead against the local pool at the same
--jobs, whole and without Ray's fixed cost of starting (which a large batch spreads over many
submissions). Every run writes a fresh gradebook (no --resume) and must grade every copy with
every unit task passed, or the benchmark stops: a fast wrong batch is no figure.
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

from tasks import TASK_IDS, UNIT_TASK_IDS  # noqa: E402


def run_batch(inputs: Path, out: Path, backend: str, jobs: int, task_ids: list[str]) -> float:
    """Wall seconds of one whole batch command (Ray's start and shutdown included)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    command = [
        sys.executable,
        "-m",
        "grader",
        "batch",
        str(inputs),
        "--out",
        str(out),
        "--jobs",
        str(jobs),
        "--tasks",
        ",".join(task_ids),
        "--device",
        "cpu",
        "--backend",
        backend,
        "-q",
    ]
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


def check_gradebook(out: Path, count: int) -> str:
    """Every copy graded with its unit tasks passed (else stop); how generation went, if it ran."""
    with open(out / "grades.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    bad = [
        row["student"]
        for row in rows
        if row["status"] != "graded" or any(row[task] != "passed" for task in UNIT_TASK_IDS)
    ]
    if len(rows) != count or bad:
        raise click.ClickException(f"{out}: {len(rows)} rows for {count} submissions; not all passed: {bad}")
    if not rows or "generation" not in rows[0] or not rows[0]["generation"]:
        return ""
    # The example's reference weights pass the official check nearly always, not always: report it.
    return f"generation passed {sum(row['generation'] == 'passed' for row in rows)}/{count}"


@click.command(help=__doc__.split("\n\n")[0])
@click.option(
    "--submissions",
    "count",
    type=click.IntRange(min=1),
    default=12,
    show_default=True,
    help="copies of the example in the batch",
)
@click.option(
    "--jobs",
    "jobs_values",
    type=click.IntRange(min=1),
    multiple=True,
    default=(2,),
    show_default=True,
    help="parallel grades; give it twice (--jobs 1 --jobs 2) to compare",
)
@click.option("--runs", type=click.IntRange(min=1), default=2, show_default=True, help="runs per configuration")
@click.option("--backends", default="local,ray", show_default=True, help="comma-separated: local, ray")
@click.option(
    "--tasks",
    "which",
    type=click.Choice(["unit", "all"]),
    default="unit",
    show_default=True,
    help="the eight unit tasks, or every task (generation samples and trains: about a minute a grade)",
)
@click.option(
    "--submission", default=str(ROOT / "examples" / "submission.ipynb"), show_default="examples/submission.ipynb"
)
def main(count: int, jobs_values: tuple[int, ...], runs: int, backends: str, which: str, submission: str) -> None:
    chosen = [name.strip() for name in backends.split(",") if name.strip()]
    if not chosen or set(chosen) - {"local", "ray"}:
        raise click.BadParameter("local and/or ray", param_hint="--backends")
    task_ids = list(UNIT_TASK_IDS if which == "unit" else TASK_IDS)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"{count} copies of {Path(submission).name}, {len(task_ids)} tasks, --jobs {'/'.join(map(str, jobs_values))}"
    )
    configurations = [(backend, jobs) for jobs in dict.fromkeys(jobs_values) for backend in chosen]
    times: dict[tuple[str, int], list[float]] = {configuration: [] for configuration in configurations}
    with tempfile.TemporaryDirectory(prefix="dli-bench-batch-") as scratch:
        inputs = Path(scratch) / "class"
        for index in range(count):
            folder = inputs / f"student{index:03d}"
            folder.mkdir(parents=True)
            shutil.copy(submission, folder / Path(submission).name)
        for run in range(runs):
            for backend, jobs in configurations:
                out = Path(scratch) / f"out-{backend}-{jobs}-{run}"
                seconds = run_batch(inputs, out, backend, jobs, task_ids)
                generation = check_gradebook(out, count)
                times[backend, jobs].append(seconds)
                print(
                    f"run {run + 1} {backend:5} --jobs {jobs}: {seconds:6.1f} s, "
                    f"{count / seconds * 3600:6.0f} submissions/hour" + (f", {generation}" if generation else "")
                )
                shutil.rmtree(out)
    medians = {configuration: statistics.median(values) for configuration, values in times.items()}
    for (backend, jobs), median in medians.items():
        spread = times[backend, jobs]
        print(
            f"{backend:5} --jobs {jobs} median {median:.1f} s ({min(spread):.1f}-{max(spread):.1f}): "
            f"{count / median * 3600:.0f} submissions/hour, {median / count:.2f} s a submission"
        )
    for backend in chosen:
        jobs_here = sorted(jobs for name, jobs in medians if name == backend)
        if len(jobs_here) > 1:
            low, high = jobs_here[0], jobs_here[-1]
            print(
                f"{backend}: throughput at --jobs {high} over --jobs {low}: "
                f"{medians[backend, low] / medians[backend, high]:.2f}x"
            )
    for jobs in dict.fromkeys(jobs_values):
        if ("local", jobs) in medians and ("ray", jobs) in medians:
            local, ray = medians["local", jobs], medians["ray", jobs]
            print(f"ray overhead against local at --jobs {jobs}: {(ray / local - 1) * 100:+.1f}%")
            fixed = statistics.median(ray_fixed_cost(jobs) for _ in range(runs))
            print(
                f"of which Ray's fixed cost (import, start, one empty task, stop): {fixed:.1f} s; "
                f"without it: {((ray - fixed) / local - 1) * 100:+.1f}%"
            )


if __name__ == "__main__":
    main()
