"""The batch's progress on stderr: a tqdm bar redrawn in place on a terminal, one line per submission
elsewhere (CI logs, files), both in the same format as the single grade's bars (grader/report/progress.py).
"""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

# `desc` is the submission just finished and its status; the rate is the mean over the batch so far.
BAR_FORMAT = "dli-grade batch [{bar:28}] {n}/{total} {desc}  {rate_fmt}  about {remaining} left"
BAR_CHARACTERS = ".#"  # to do, done


class BatchProgress:
    def __init__(self, total: int, enabled: bool = True, stream=None):
        self.total, self.done = total, 0
        self.enabled = enabled and total > 0
        self.stream = stream or sys.stderr
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = time.monotonic()
        self.bar: tqdm | None = None
        if self.enabled and self.interactive:
            self.bar = tqdm(
                total=total,
                file=self.stream,
                bar_format=BAR_FORMAT,
                ascii=BAR_CHARACTERS,
                unit="grade",
                smoothing=0,  # grades differ in length: the mean rate predicts the rest best
                mininterval=0,  # one redraw per finished submission, however quick
                miniters=1,
                leave=True,
            )

    def line(self, student: str, status: str) -> str:
        """The progress after `self.done` submissions, the last being `student` with `status`."""
        return tqdm.format_meter(
            self.done,
            self.total,
            time.monotonic() - self.started,
            prefix=f"{student}: {status}",
            bar_format=BAR_FORMAT,
            ascii=BAR_CHARACTERS,
            unit="grade",
        )

    def finished_one(self, student: str, status: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_description_str(f"{student}: {status}", refresh=False)
            self.bar.update(1)
            return
        self.stream.write(self.line(student, status) + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End the bar: a terminal keeps its last state on a line of its own."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
