"""benchmarks/gpu_check.py, the one script a GPU session runs, works before a GPU is lent.

Slow (a few minutes on 2 cores): `python -m pytest -m slow tests/test_gpu_check.py`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_the_gpu_check_script_runs_end_to_end_in_smoke_mode(tmp_path):
    """benchmarks/gpu_check.py is meant for a GPU; --smoke runs its every step on the CPU so the
    script is known to work before a GPU session spends its minutes on it."""
    import json
    import subprocess

    root = Path(__file__).resolve().parent.parent
    out = tmp_path / "rows.json"
    run = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "gpu_check.py"), "--smoke", "--json-out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=root,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    rows = json.loads(out.read_text())
    assert [row["what"] for row in rows] == ["train profile", "one full grade", "2 grades sharing the device"]
    assert rows[0]["status"] in ("passed", "failed") and rows[0]["official_accuracy"] is not None
    assert rows[1]["score"] >= 22  # the eight unit tasks pass; generation after 2 steps does not matter
    assert "one full grade" in run.stdout
