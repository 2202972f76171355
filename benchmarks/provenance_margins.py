"""How far a correct sampler sits from the provenance check's limits, and what the check costs.

Grades the generation task of a submission (the example by default) for a few seeds and prints,
per grade, the traced draw's findings (calls per digit, the last step's largest gap, the drift
along the model's correction; tasks/generation/provenance.py) and the time each phase took.

    python benchmarks/provenance_margins.py --seeds 1,2
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import click
import torch

from grader.grading.runner import grade
from tasks.generation.provenance import FINAL_TOLERANCE, FOLLOW_RANGE

ROOT = Path(__file__).resolve().parent.parent


@click.command()
@click.option("--seeds", default="1,2", show_default=True, help="Comma-separated grade seeds.")
@click.option("--profile", default="transplant", show_default=True)
@click.option("--submission", default=str(ROOT / "examples" / "submission.py"), show_default="examples/submission.py")
def main(seeds: str, profile: str, submission: str) -> None:
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads; torch {torch.__version__}")
    print(f"limits: last-step gap <= {FINAL_TOLERANCE}, drift along the model in {list(FOLLOW_RANGE)}")
    for seed in (int(s) for s in seeds.split(",")):
        result = grade(submission, ["generation"], device="cpu", seed=seed, generation={"profile": profile})
        (task,) = result.tasks
        timings = {k: round(v, 1) for k, v in task.details.get("timings", {}).items()}
        print(
            json.dumps(
                {
                    "seed": seed,
                    "status": task.status,
                    "provenance": task.details.get("provenance"),
                    "timings_s": timings,
                    "total_s": round(result.duration_s, 1),
                }
            )
        )


if __name__ == "__main__":
    main()
