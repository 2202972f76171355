"""Progress on stderr: plain messages, and a bar with rate and time left for long phases."""

from __future__ import annotations

import sys
import time

BAR_WIDTH = 24


class ProgressReporter:
    """Receives a message (str) or a (task, phase, done, total) tuple from the runner.

    On a terminal the bar redraws in place; elsewhere (CI logs) it prints a line per phase
    and every quarter, so logs stay short.
    """

    def __init__(self, enabled: bool = True, stream=None):
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.interactive = getattr(self.stream, "isatty", lambda: False)()
        self.phase, self.last_quarter, self.drawn = None, -1, False
        self.phase_started, self.done_at_start = 0.0, 0

    def __call__(self, event) -> None:
        if not self.enabled:
            return
        if isinstance(event, str):
            self.finish()
            self._write(f"dli-grade: {event}\n")
            return
        task, phase, done, total = event
        if (task, phase) != self.phase:
            self.finish()
            self.phase, self.last_quarter = (task, phase), -1
            self.phase_started, self.done_at_start = time.monotonic(), done
        # The rate counts only progress seen since the phase was first reported.
        elapsed = time.monotonic() - self.phase_started
        progressed = done - self.done_at_start
        timing = ""
        if elapsed > 1 and progressed > 0:
            rate = progressed / elapsed
            timing = f"  {rate:.2f}/s  {(total - done) / rate:.0f} s left"
        filled = int(BAR_WIDTH * done / max(total, 1))
        line = f"dli-grade: {task}: {phase} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total}{timing}"
        if self.interactive:
            self._write("\r" + line + "\033[K")
            self.drawn = True
        else:
            quarter = 4 * done // max(total, 1)
            if quarter != self.last_quarter:
                self.last_quarter = quarter
                self._write(line + "\n")

    def finish(self) -> None:
        """End an in-place bar with a newline."""
        if self.drawn:
            self._write("\n")
            self.drawn = False
        self.phase = None

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()
