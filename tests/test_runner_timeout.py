"""The notebook client's runner when the grader it started does not finish in time."""

from __future__ import annotations

import sys

import pytest

import dli_grade
from dli_grade import runner


def test_a_hung_grader_shows_the_end_of_its_stderr_as_text(tmp_path):
    # subprocess hands back what it captured before the timeout as bytes, even with text=True.
    script = "import sys, time; sys.stderr.write('boom ' * 1000 + 'end'); sys.stderr.flush(); time.sleep(60)"
    with pytest.raises(dli_grade.GraderFailedError) as raised:
        runner._run([sys.executable, "-c", script], tmp_path, 3)
    message = str(raised.value)
    assert message.startswith("the grader did not finish in 3 s; its stderr ends: ...")
    assert message.endswith(" boom boom end")
    assert "b'" not in message
    assert len(message) < runner.STDERR_TAIL + 100
