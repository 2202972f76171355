"""Time a full grade of the bundled example, phase by phase: `python benchmarks/bench_grade.py`.

Prints each run's phases and the median total. `--tasks unit` (default) times the eight unit
tasks (target: <= 20 s on the 2-core CPU); `--tasks all` adds the generation task (target:
<= 5 min on the 2-core CPU, <= 10 s on one H100). `--course-flow` also times the course's own
flow in the same process for comparison: 5 epochs of eager training plus 50 guided samples
(about an hour on a 2-core CPU; meant for a GPU machine).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.runner import grade  # noqa: E402
from tasks import TASK_IDS, UNIT_TASK_IDS  # noqa: E402


def course_flow(device: str) -> dict:
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tasks", choices=["unit", "all"], default="unit")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--submission", default=str(ROOT / "examples" / "submission.ipynb"))
    parser.add_argument("--course-flow", action="store_true")
    args = parser.parse_args()

    task_ids = UNIT_TASK_IDS if args.tasks == "unit" else TASK_IDS
    machine = (f"{platform.machine()}, {torch.get_num_threads()} torch threads, "
               + (torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA"))
    print(f"machine: {machine}; torch {torch.__version__}")
    totals = []
    for run in range(1, args.runs + 1):
        result = grade(args.submission, task_ids, device=args.device)
        totals.append(result.duration_s)
        phases = "  ".join(f"{phase} {seconds:.1f}" for phase, seconds in result.timings.items())
        print(f"run {run}: total {result.duration_s:.1f} s, score {result.score}/{result.max_score} | {phases}")
    summary = {"tasks": args.tasks, "runs": args.runs, "median_total_s": round(statistics.median(totals), 2),
               "machine": machine}
    if args.course_flow:
        summary.update({k: round(v, 1) for k, v in course_flow(result.device).items()})
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
