"""The batch's progress on stderr: a redrawn bar on a terminal, one line per submission elsewhere."""

from __future__ import annotations

import sys
import time

WIDTH = 28


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class BatchProgress:
    def __init__(self, total: int, enabled: bool = True, stream=None):
        self.total, self.done = total, 0
        self.enabled = enabled and total > 0
        self.stream = stream or sys.stderr
        self.interactive = getattr(self.stream, "isatty", lambda: False)()
        self.started = time.monotonic()

    def line(self, student: str, status: str) -> str:
        elapsed = time.monotonic() - self.started
        left = elapsed / self.done * (self.total - self.done) if self.done else 0.0
        rate = self.done / elapsed * 3600 if elapsed > 0 else 0.0
        filled = WIDTH * self.done // max(self.total, 1)
        return (
            f"dli-grade batch [{'#' * filled}{'.' * (WIDTH - filled)}] {self.done}/{self.total} "
            f"{student}: {status}  {rate:.0f}/h  about {_duration(left)} left"
        )

    def finished_one(self, student: str, status: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        text = self.line(student, status)
        if self.interactive:
            self.stream.write("\r" + text + "\033[K" + ("\n" if self.done == self.total else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.interactive and self.done != self.total:
            self.stream.write("\n")
            self.stream.flush()
