"""Time the AST analysis of a notebook with many code cells (grader/submission/analysis.py).

Builds an N-cell notebook in memory (one training function among N-1 one-line cells), then
times `analyse` and `executable_code` for every cell, as a grade does. No torch is imported.

    python benchmarks/bench_analysis.py --cells 20000 --runs 3
    git show main:grader/submission/analysis.py > /tmp/old_analysis.py   # compare an earlier version
    python benchmarks/bench_analysis.py --cells 5000 --analysis-file /tmp/old_analysis.py
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

from grader.submission import analysis as current
from grader.submission.cells import Cell, Submission


def notebook(cells: int) -> Submission:
    code = [f"x{n} = {n}\n" for n in range(cells - 1)]
    code.append("def train():\n    for batch in data:\n        loss.backward()\n")
    return Submission(Path("big.ipynb"), "notebook", "0" * 64, tuple(Cell(n + 1, c, c) for n, c in enumerate(code)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--analysis-file", help="time this copy of grader/submission/analysis.py instead of the installed one"
    )
    args = parser.parse_args()
    module = current
    if args.analysis_file:
        spec = importlib.util.spec_from_file_location("analysis_under_test", args.analysis_file)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
    submission = notebook(args.cells)
    times = []
    for run in range(args.runs):
        started = time.perf_counter()
        analysis = module.analyse(submission)
        for facts in analysis.cells:
            analysis.executable_code(facts)
        times.append(time.perf_counter() - started)
        print(f"run {run + 1}: {args.cells} cells analysed in {times[-1]:.2f} s")
    print(f"median {statistics.median(times):.2f} s for {args.cells} cells")


if __name__ == "__main__":
    main()
