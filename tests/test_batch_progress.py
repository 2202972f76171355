"""The batch's progress bar (grader/batch/progress.py): one line per submission in a log, one line
redrawn in place on a terminal, nothing when quiet."""

from __future__ import annotations

import io
import re

from grader.batch import progress as batch_progress
from grader.batch.progress import BatchProgress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _clock(monkeypatch, *readings: float) -> None:
    """time.monotonic() as the progress module sees it: these readings, in order."""
    values = iter(readings)
    monkeypatch.setattr(batch_progress.time, "monotonic", lambda: next(values))


def test_a_log_gets_one_line_per_submission_with_rate_and_time_left(monkeypatch):
    # Started at 0 s; the first of four grades ends at 60 s, the second at 90 s.
    _clock(monkeypatch, 0.0, 60.0, 90.0)
    stream = io.StringIO()
    bar = BatchProgress(4, stream=stream)
    bar.finished_one("alice", "graded")
    bar.finished_one("bob", "timeout")
    bar.close()
    # By hand: 1 done in 60 s -> 60 s a grade, 3 left -> 180 s; 2 done in 90 s -> 45 s a grade, 2 left -> 90 s.
    assert stream.getvalue().splitlines() == [
        "dli-grade batch [#######.....................] 1/4 alice: graded  60.00s/grade  about 03:00 left",
        "dli-grade batch [##############..............] 2/4 bob: timeout  45.00s/grade  about 01:30 left",
    ]


def test_the_last_line_shows_a_full_bar():
    stream = io.StringIO()
    bar = BatchProgress(3, stream=stream)
    for student in ("a", "b", "c"):
        bar.finished_one(student, "graded")
    bar.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3 and "\r" not in stream.getvalue()
    assert re.fullmatch(r"dli-grade batch \[#{28}\] 3/3 c: graded  .+  about 00:00 left", lines[-1]), lines[-1]


def test_a_terminal_gets_one_line_redrawn_in_place():
    stream = Terminal()
    bar = BatchProgress(3, stream=stream)
    bar.finished_one("alice", "graded")
    bar.finished_one("bob", "crashed")
    bar.close()
    text = stream.getvalue()
    assert text.endswith("\n") and text.count("\n") == 1  # redrawn with \r; a newline only at the end
    last = text.rstrip("\n").split("\r")[-1]
    assert last.startswith("dli-grade batch [" + "#" * 18 + "." * 10 + "] 2/3 bob: crashed")
    assert "alice: graded" in text


def test_quiet_or_empty_batches_write_nothing():
    for total, enabled in ((3, False), (0, True)):
        for stream in (io.StringIO(), Terminal()):
            bar = BatchProgress(total, enabled=enabled, stream=stream)
            bar.finished_one("alice", "graded")
            bar.close()
            assert stream.getvalue() == ""
