"""Every GPU figure the project needs, in one run: `python benchmarks/gpu_check.py`.

Meant for a machine with one CUDA device and about 8 minutes: the train profile's official
accuracy on the example at several guidance weights, seeds and step budgets (to set
GPU_TRAIN_STEPS), the wall time of one full grade, the course flow beside ours, and several
grades sharing the GPU. Prints one table at the end. `--smoke` runs the same code paths on a
CPU at a size a test affords (the figures then mean nothing).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "submission.py"
sys.path.insert(0, str(ROOT))

from grader.grading.runner import grade  # noqa: E402


def with_w(folder: Path, w: float) -> Path:
    """A copy of the example whose guidance weight is `w`."""
    text, count = re.subn(r"^w = 1\.0 .*$", f"w = {w!r}", EXAMPLE.read_text(encoding="utf-8"), flags=re.M)
    assert count == 1, "the example's `w = 1.0` line moved"
    path = folder / f"example_w{w:g}.py"
    path.write_text(text, encoding="utf-8")
    return path


def official(path: Path, device: str, seed: int, generation: dict) -> tuple[float | None, float, str]:
    """(official accuracy, seconds, status) of the generation task alone."""
    started = time.perf_counter()
    (task,) = grade(path, ["generation"], device=device, seed=seed, generation=generation).tasks
    return task.details.get("official_accuracy"), time.perf_counter() - started, task.status


def concurrent_grades(path: Path, device: str, count: int, steps: int, env: dict | None = None) -> float:
    """Seconds for `count` whole-command grades started at once (they share the device)."""
    command = [
        sys.executable,
        "-m",
        "grader",
        str(path),
        "--device",
        device,
        "--format",
        "json",
        "-q",
        "--tasks",
        "generation",
        "--profile",
        "train",
        "--train-steps",
        str(steps),
        "--gpu-memory-fraction",
        f"{0.9 / count:.4g}",
    ]  # grades sharing one GPU share its memory
    started = time.perf_counter()
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env) for _ in range(count)]
    for run in runs:
        run.communicate()
    return time.perf_counter() - started


@click.command(help=__doc__.split("\n\n")[0])
@click.option("--smoke", is_flag=True, help="run every step on a CPU at a tiny size (the figures mean nothing)")
@click.option("--json-out", type=click.Path(dir_okay=False), default=None, help="also write the rows as JSON")
def main(smoke: bool, json_out: str | None) -> None:
    device = "cpu" if smoke else "cuda"
    weights, seeds = ((1.0,), (0,)) if smoke else ((0.0, 0.5, 1.0, 2.0), (0, 1, 2))
    budgets = (2,) if smoke else (500, 1000, 2000)
    small = {"down_chs": (32, 32, 64)} if smoke else {}
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for steps in budgets:
            for w in weights:
                for seed in seeds:
                    accuracy, seconds, status = official(
                        with_w(Path(folder), w), device, seed, {"profile": "train", "train_steps": steps, **small}
                    )
                    rows.append(
                        {
                            "what": "train profile",
                            "steps": steps,
                            "w": w,
                            "seed": seed,
                            "official_accuracy": accuracy,
                            "status": status,
                            "seconds": round(seconds, 1),
                        }
                    )
                    print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
        started = time.perf_counter()
        whole = grade(
            EXAMPLE, None, device=device, seed=0, generation={"profile": "train", "train_steps": budgets[-1], **small}
        )
        rows.append(
            {
                "what": "one full grade",
                "steps": budgets[-1],
                "score": whole.score,
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
        if not smoke:  # the course flow trains as the notebook does: minutes on a GPU, hours on a CPU
            accuracy, seconds, status = official(EXAMPLE, device, 0, {"profile": "course"})
            rows.append(
                {"what": "course flow", "official_accuracy": accuracy, "status": status, "seconds": round(seconds, 1)}
            )
        # On a CPU, processes sharing it get a thread each (two grades with every core each thrash).
        env = {**os.environ, "OMP_NUM_THREADS": "1"} if smoke else None
        for count in (2,) if smoke else (1, 4, 8):
            seconds = concurrent_grades(EXAMPLE, device, count, budgets[0], env)
            rows.append(
                {
                    "what": f"{count} grades sharing the device",
                    "steps": budgets[0],
                    "seconds": round(seconds, 1),
                    "grades_per_hour": round(3600 * count / seconds),
                }
            )
    if json_out:
        Path(json_out).write_text(json.dumps(rows, indent=2), encoding="utf-8")
    print(f"\n{'what':<32} {'steps':>6} {'w':>5} {'seed':>5} {'official':>9} {'seconds':>8}")
    for row in rows:
        accuracy = row.get("official_accuracy")
        print(
            f"{row['what']:<32} {row.get('steps', ''):>6} {row.get('w', ''):>5} {row.get('seed', ''):>5} "
            f"{'' if accuracy is None else f'{accuracy:.0%}':>9} {row['seconds']:>8}"
        )


if __name__ == "__main__":
    main()
