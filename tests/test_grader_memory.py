"""grader/core/memory.py: the operator's bound on the grader's memory (no torch: runs in a plain Python)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import grader

CHECKOUT = Path(grader.__file__).resolve().parent.parent
SCRIPT = """
import json, resource, subprocess, sys
from grader.core.memory import child_preexec, limit_grader_memory
limit_grader_memory(int(sys.argv[1]))
try:
    hoard = bytearray(200 * 1024**2)
    refused = False
except MemoryError:
    refused = True
show = "import resource, json; print(json.dumps(resource.getrlimit(resource.RLIMIT_DATA)))"
child = subprocess.run([sys.executable, "-c", show], capture_output=True, text=True, preexec_fn=child_preexec())
print(json.dumps({"refused": refused, "own": resource.getrlimit(resource.RLIMIT_DATA),
                  "child": json.loads(child.stdout)}))
"""


def run(megabytes: int, env: dict | None = None) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(megabytes)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(CHECKOUT), **(env or {})},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_bound_refuses_a_large_allocation_and_the_sandbox_gets_the_previous_limit():
    found = run(100)
    assert found["refused"], found  # 200 MB past a 100 MB bound
    assert found["own"][0] == 100 * 1024**2
    # The launcher (and the student's child under it) is not held to the grader's bound.
    assert found["child"] == [-1, -1] or found["child"][0] != 100 * 1024**2, found


def test_a_grade_started_by_a_bounded_batch_gives_its_sandbox_the_operators_limit():
    # The batch bound 100 MB itself and says what the limit was before (unlimited here).
    found = run(150, {"DLI_GRADE_DATA_LIMIT_BEFORE": "-1"})
    assert found["own"][0] == 150 * 1024**2 and found["child"][0] == -1, found


def test_without_a_bound_nothing_changes():
    found = run(0)
    assert not found["refused"] and found["own"] == found["child"], found
