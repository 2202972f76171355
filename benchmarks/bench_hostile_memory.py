"""The grader's peak memory on a hostile reply: `python benchmarks/bench_hostile_memory.py`.

A variant of the bundled example whose q returns two 200M-element bool tensors (400 MB on the
pipe, under the 512 MiB frame cap). Tasks q and context_mask are graded in a fresh Python
process; the script prints that process's resident memory after its imports, its peak
(`resource.getrusage(RUSAGE_SELF).ru_maxrss`) and the growth, with each task's status.

`--checkout DIR` grades with another copy of the package (e.g. an older commit unpacked with
`git archive`), to compare before and after on the same machine.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parent.parent
Q_BODY = "def q(x_0, t):\n    t = t.int()\n"
HOSTILE_Q = "def q(x_0, t):\n    return torch.zeros({n}, dtype=torch.bool), torch.zeros({n}, dtype=torch.bool)\n"
MEASURE = """
import json, resource, sys, time
from grader.grading.runner import grade
import grader
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.monotonic()
result = grade(sys.argv[1], ["q", "context_mask"], device="cpu", seed=1, timeout=120, total_timeout=600)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"package": grader.__file__, "after_imports_mb": before / 1024, "peak_mb": peak / 1024,
                  "growth_mb": (peak - before) / 1024, "seconds": time.monotonic() - started,
                  "tasks": {t.id: [t.status, t.message[:160]] for t in result.tasks}}))
"""


@click.command()
@click.option("--elements", default=200_000_000, show_default=True, help="elements of each bool tensor q returns")
@click.option(
    "--checkout",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=ROOT,
    show_default=True,
    help="the copy of the package to grade with",
)
def main(elements: int, checkout: Path):
    text = (ROOT / "examples" / "submission.py").read_text(encoding="utf-8")
    assert text.count(Q_BODY) == 1
    text = text.replace(Q_BODY, HOSTILE_Q.format(n=elements) + "\n\ndef _unused(x_0, t):\n    t = t.int()\n")
    with tempfile.TemporaryDirectory(prefix="dli-bench-memory-") as folder:
        path = Path(folder) / "submission.py"
        path.write_text(text, encoding="utf-8")
        run = subprocess.run(
            [sys.executable, "-c", MEASURE, str(path)],
            capture_output=True,
            text=True,
            cwd=folder,
            env={**os.environ, "PYTHONPATH": str(checkout.resolve())},
        )
    if run.returncode != 0:
        sys.exit(f"the grade failed:\n{run.stderr[-3000:]}")
    found = json.loads(run.stdout.splitlines()[-1])
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"package: {found['package']}")
    print(f"q returns two bool tensors of {elements:,} elements ({2 * elements / 1e6:.0f} MB on the pipe)")
    print(
        f"grading process: {found['after_imports_mb']:.0f} MB after imports, peak {found['peak_mb']:.0f} MB, "
        f"growth {found['growth_mb']:.0f} MB, {found['seconds']:.1f} s"
    )
    for task, (status, message) in found["tasks"].items():
        print(f"  {task}: {status}: {message}")


if __name__ == "__main__":
    main()
