"""Time `dli_grade.check("q")` in a live Jupyter kernel against the CLI grading the same cells.

    python benchmarks/bench_notebook_check.py --runs 5

A kernel runs the example's schedule and `q` (examples/submission.py); then, alternating, the
kernel checks `q` and `python -m grader` grades the same cells written as a notebook. The
difference is the client's own cost: writing the cells, and rendering the text report in a
second, torch-free process (plus, on the first check only, asking the grader for its task ids).
"""

from __future__ import annotations

import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
from jupyter_client.manager import start_new_kernel

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "submission.py"


def example_cell(marker: str) -> str:
    """The body of the one `# %%` cell of the example that contains `marker`."""
    found = [cell.split("\n", 1)[1] for cell in EXAMPLE.read_text().split("# %%") if marker in cell]
    if len(found) != 1:
        raise SystemExit(f"expected one example cell holding {marker!r}, found {len(found)}")
    return found[0]


CELLS = [
    "import torch\ndevice = torch.device('cpu')",
    example_cell("a_bar = torch.cumprod(a, dim=0)"),
    example_cell("def q(x_0, t):"),
]


def run_in_kernel(client, code: str) -> tuple[float, str]:
    """Seconds the kernel took to run `code`, and what it printed or displayed as text."""
    shown = []

    def keep(message):
        content = message["content"]
        shown.append(content.get("text") or content.get("data", {}).get("text/plain", ""))

    start = time.perf_counter()
    reply = client.execute_interactive(code, timeout=600, output_hook=keep)
    seconds = time.perf_counter() - start
    if reply["content"]["status"] != "ok":
        raise SystemExit(f"the kernel failed on {code!r}: {reply['content'].get('evalue')}")
    return seconds, "".join(shown)


def time_cli(folder: Path) -> float:
    from dli_grade.history import notebook_json

    notebook = folder / "cells.ipynb"
    notebook.write_text(notebook_json(CELLS), encoding="utf-8")
    start = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "grader",
            str(notebook),
            "--tasks",
            "q",
            "--format",
            "json",
            "--quiet",
            "--output",
            str(folder / "result.json"),
        ],
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"the CLI did not pass q (exit {done.returncode}): {done.stderr[-500:]}")
    return seconds


@click.command()
@click.option("--runs", type=click.IntRange(min=1), default=5, show_default=True)
def main(runs):
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, python {platform.python_version()}")
    manager, client = start_new_kernel(kernel_name="python3")
    try:
        for cell in CELLS:
            run_in_kernel(client, cell)
        first, _ = run_in_kernel(client, "import dli_grade\ndli_grade.check('q')")
        print(f"first check in the kernel (lists the task ids too): {first:.2f} s")
        checks, clis = [], []
        with tempfile.TemporaryDirectory() as folder:
            for run in range(runs):
                seconds, text = run_in_kernel(client, "dli_grade.check('q')")
                if "Score 2/2: PASSED" not in text:
                    raise SystemExit(f"the check did not pass q:\n{text}")
                checks.append(seconds)
                clis.append(time_cli(Path(folder)))
                print(f"run {run + 1}: check in the kernel {checks[-1]:.2f} s, CLI {clis[-1]:.2f} s")
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    print(
        f"median over {runs} runs: check {statistics.median(checks):.2f} s "
        f"({min(checks):.2f}-{max(checks):.2f}), CLI {statistics.median(clis):.2f} s "
        f"({min(clis):.2f}-{max(clis):.2f}), "
        f"client overhead {statistics.median(checks) - statistics.median(clis):+.2f} s"
    )


if __name__ == "__main__":
    main()
