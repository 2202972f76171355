"""Time `dli-grade SUBMISSION` as a user runs it, quiet or beside a competing torch process.

Prints, per run: the command's wall time, the grade's own duration (`duration_s` of the JSON
result), what lies outside it (interpreter start, imports, the report), the slowest phases, and
the torch threads the command chose. `--competitor` starts one torch process multiplying
matrices on every core for the length of the run (what another engineer's test or grade does on
a shared machine) and stops it afterwards.

    python benchmarks/bench_command.py                       # full grade of the bundled example
    python benchmarks/bench_command.py --competitor          # the same beside one torch process
    python benchmarks/bench_command.py --tasks schedule,q    # a subset

On a shared machine take the CPU lock around it: flock /tmp/dli-cpu.lock python benchmarks/...
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMPETITOR = "import torch\na = torch.randn(1024, 1024)\nwhile True:\n    a @ a\n"


def import_seconds(module: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True)
    return time.perf_counter() - started


def run_once(submission: str, tasks: str | None, competitor: bool) -> dict:
    command = [
        shutil.which("dli-grade") or str(Path(sys.executable).parent / "dli-grade"),
        submission,
        "--format",
        "json",
        "-q",
        "--device",
        "cpu",
        "--seed",
        "1",
        "--debug",
    ]
    if tasks:
        command += ["--tasks", tasks]
    rival = subprocess.Popen([sys.executable, "-c", COMPETITOR]) if competitor else None
    try:
        with tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, cwd=folder)
            wall = time.perf_counter() - started
    finally:
        if rival is not None:
            rival.kill()
            rival.wait()
    document = json.loads(done.stdout)
    threads = [line for line in done.stderr.splitlines() if "torch threads" in line]
    return {
        "wall_s": wall,
        "grade_s": document["duration_s"],
        "timings": document.get("timings", {}),
        "score": f"{document['score']}/{document['max_score']}",
        "threads": threads[-1] if threads else "?",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("submission", nargs="?", default=str(ROOT / "examples" / "submission.ipynb"))
    parser.add_argument("--tasks", default=None, help="comma-separated task ids (default: all)")
    parser.add_argument("--competitor", action="store_true", help="beside one torch matmul process")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    print(
        f"import grader.cli: {import_seconds('grader.cli'):.2f} s; "
        f"import grader.grading.runner (torch, tasks): {import_seconds('grader.grading.runner'):.2f} s"
    )
    for number in range(args.runs):
        result = run_once(args.submission, args.tasks, args.competitor)
        slowest = sorted(result["timings"].items(), key=lambda item: -item[1])[:4]
        print(
            f"run {number + 1}{' (beside a competitor)' if args.competitor else ''}: "
            f"wall {result['wall_s']:.1f} s, grade {result['grade_s']:.1f} s, "
            f"outside the grade {result['wall_s'] - result['grade_s']:.1f} s, score {result['score']}; "
            f"slowest: {', '.join(f'{name} {seconds:.1f} s' for name, seconds in slowest)}; {result['threads']}"
        )


if __name__ == "__main__":
    main()
