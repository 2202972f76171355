"""grader.report.progress: messages, sparse log lines off a terminal, a redrawing bar on one."""

from __future__ import annotations

import io
import re

import pytest

import grader.report.progress
from grader.report.progress import ProgressReporter


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def clock(monkeypatch):
    """A fake monotonic clock for the reporter: set `clock.now` to move time."""

    class Clock:
        now = 100.0

    monkeypatch.setattr(grader.report.progress.time, "monotonic", lambda: Clock.now)
    return Clock


def test_disabled_writes_nothing():
    stream = Terminal()
    progress = ProgressReporter(enabled=False, stream=stream)
    progress("starting")
    progress(("generation", "sampling", 3, 10))
    progress.finish()
    assert stream.getvalue() == ""


def test_message_is_one_prefixed_line():
    stream = io.StringIO()
    ProgressReporter(stream=stream)("checking q")
    assert stream.getvalue() == "dli-grade: checking q\n"


def test_log_prints_a_line_per_phase_and_per_quarter(clock):
    stream = io.StringIO()
    progress = ProgressReporter(stream=stream)
    for done in range(21):
        progress(("generation", "sampling", done, 20))
    progress("next")
    progress(("generation", "training", 0, 4))
    lines = stream.getvalue().splitlines()
    sampling = [line for line in lines if "generation: sampling" in line]
    # quarters 0, 1, 2, 3 and 4 (done): five lines for 21 updates
    assert [re.search(r"(\d+)/20", line).group(1) for line in sampling] == ["0", "5", "10", "15", "20"]
    assert lines[5] == "dli-grade: next"
    assert lines[6].startswith("dli-grade: generation: training") and "0/4" in lines[6]
    assert len(lines) == 7
    assert "\r" not in stream.getvalue()


def test_log_rate_and_time_left_count_from_the_first_report(clock):
    stream = io.StringIO()
    progress = ProgressReporter(stream=stream)
    progress(("generation", "sampling", 10, 20))  # the phase was already half done when first seen
    clock.now += 10.0
    progress(("generation", "sampling", 15, 20))  # 5 steps in 10 s: 0.5/s, 10 s left
    last = stream.getvalue().splitlines()[-1]
    assert "15/20" in last
    assert "00:10<00:10" in last
    assert "2.00s/it" in last  # tqdm writes rates under 1/s as seconds per step


def test_terminal_bar_redraws_in_place_and_finish_ends_the_line():
    stream = Terminal()
    progress = ProgressReporter(stream=stream)
    for done in range(11):
        progress(("generation", "sampling", done, 10))
    progress.finish()
    text = stream.getvalue()
    assert "\r" in text  # redrawn, not one line per update
    assert text.endswith("\n")
    final = text.rsplit("\r", 1)[-1]
    assert final.startswith("dli-grade: generation: sampling") and "10/10" in final and "100%" in final
    assert text.count("\n") == 1


def test_terminal_message_closes_the_open_bar():
    stream = Terminal()
    progress = ProgressReporter(stream=stream)
    progress(("q", "probe", 1, 2))
    progress("checking loss")
    assert stream.getvalue().endswith("\ndli-grade: checking loss\n")
    assert progress.bar is None


def test_finish_without_a_bar_writes_nothing():
    stream = Terminal()
    ProgressReporter(stream=stream).finish()
    assert stream.getvalue() == ""
