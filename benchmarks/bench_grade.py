"""Time a full grade of the bundled example, phase by phase: `python benchmarks/bench_grade.py`.

Prints each run's phases and the median total. `--tasks unit` (default) times the eight unit
tasks (target: <= 20 s on the 2-core CPU); `--tasks all` adds the generation task (target:
<= 5 min on the 2-core CPU, <= 10 s on one H100). `--course-flow` also times the course's own
flow in the same process for comparison: 5 epochs of eager training plus 50 guided samples
(about an hour on a 2-core CPU; meant for a GPU machine).
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from pathlib import Path

import click
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.grading.runner import grade  # noqa: E402
from tasks import TASK_IDS, UNIT_TASK_IDS  # noqa: E402


def time_course_flow(device: str) -> dict:
    """The course's flow with the reference code: 2,730 eager steps, then 5 samples of each digit."""
    import torch.nn.functional as F

    from reference import mnist
    from reference.sampling import sample_w
    from reference.schedule import make_schedule
    from reference.training import train
    from reference.unet import course_unet

    images, labels = mnist.load("all")
    schedule = make_schedule(device=device)
    model = course_unet().to(device)
    started = time.perf_counter()
    train(model, images, labels, schedule, steps=2730)
    trained = time.perf_counter()
    sample_w(model, F.one_hot(torch.arange(10).repeat_interleave(5), 10).float(), 1.0, schedule)
    if device == "cuda":
        torch.cuda.synchronize()
    return {"course_training_s": trained - started, "course_sampling_s": time.perf_counter() - trained}


@click.command(help=__doc__.split("\n\n")[0])
@click.option("--runs", type=int, default=3, show_default=True)
@click.option("--tasks", type=click.Choice(["unit", "all"]), default="unit", show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option(
    "--submission", default=str(ROOT / "examples" / "submission.ipynb"), show_default="examples/submission.ipynb"
)
@click.option("--course-flow", is_flag=True, help="Also time the course's own flow (meant for a GPU machine).")
@click.option("--seed", type=int, default=None, help="seed of the first run, the next runs +1 each (default: drawn)")
def main(runs: int, tasks: str, device: str, submission: str, course_flow: bool, seed: int | None) -> None:
    task_ids = UNIT_TASK_IDS if tasks == "unit" else TASK_IDS
    machine = f"{platform.machine()}, {torch.get_num_threads()} torch threads, " + (
        torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA"
    )
    print(f"machine: {machine}; torch {torch.__version__}")
    totals = []
    for run in range(1, runs + 1):
        result = grade(submission, task_ids, device=device, seed=None if seed is None else seed + run - 1)
        totals.append(result.duration_s)
        phases = "  ".join(f"{phase} {seconds:.1f}" for phase, seconds in result.timings.items())
        score = f"{result.score}/{result.max_score}"
        print(f"run {run} (seed {result.seed}): total {result.duration_s:.1f} s, score {score} | {phases}")
        generation = next((task for task in result.tasks if task.id == "generation"), None)
        if generation is not None and generation.details.get("timings"):
            inside = "  ".join(f"{phase} {seconds:.1f}" for phase, seconds in generation.details["timings"].items())
            official = generation.details.get("official_accuracy")
            larger = (generation.details.get("larger_sample") or {}).get("state")
            print(f"       generation: {inside} | samples {generation.details.get('samples')}")
            if official is not None:
                print(f"       official draw: {round(official * 50)} of 50; larger sample {larger}")
    summary = {"tasks": tasks, "runs": runs, "median_total_s": round(statistics.median(totals), 2), "machine": machine}
    if course_flow:
        summary.update({k: round(v, 1) for k, v in time_course_flow(result.device).items()})
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
