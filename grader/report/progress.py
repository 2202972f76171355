"""Progress on stderr: plain messages, and a tqdm bar with rate and time left for long phases."""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

from grader.core.i18n import N_, _
from grader.core.sanitize import inert

PREFIX = "dli-grade: "

# The phases the grader's tasks and its child report, in the grader's own words; shown in the reader's
# language. A phase the child made up is shown as sent (inert), never looked up in the catalog.
PHASES = frozenset(
    {
        N_("official sample"),
        N_("larger sample"),
        N_("trusted sample"),
        N_("training"),
        N_("course flow: cells run"),
    }
)


def phase_text(phase: str) -> str:
    return _(phase) if phase in PHASES else phase


class ProgressReporter:
    """Receives a message (str) or a (task, phase, done, total) tuple from the runner.

    On a terminal each phase gets a tqdm bar that redraws in place; elsewhere (CI logs) a line
    is printed when a phase starts and each time it passes a quarter, so logs stay short.
    `finish()` ends whatever bar is open. Phases can come from the child (progress frames): every
    text is made inert (one line, no escapes, no CI log commands) before it is written.
    """

    def __init__(self, enabled: bool = True, stream=None):
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self.phase: tuple[str, str] | None = None  # (task, phase) of the phase being shown
        self.bar: tqdm | None = None
        self.last_quarter = -1
        self.phase_started, self.done_at_start = 0.0, 0

    def __call__(self, event) -> None:
        if not self.enabled:
            return
        if isinstance(event, str):
            self.finish()
            self._write(f"{PREFIX}{inert(event)}\n")
            return
        task, phase, done, total = event
        task, phase = inert(task, 60), phase_text(inert(phase, 60))
        if (task, phase) != self.phase:
            self.finish()
            self._start(task, phase, done, total)
        if self.bar is not None:
            self.bar.total = total
            self.bar.update(done - self.bar.n)
        else:
            self._log_line(done, total)

    def finish(self) -> None:
        """Close the open bar (a terminal gets its final state and a newline)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        self.phase = None

    def _start(self, task: str, phase: str, done: int, total: int) -> None:
        self.phase = (task, phase)
        self.last_quarter = -1
        self.phase_started, self.done_at_start = time.monotonic(), done
        if self.interactive:
            # `initial=done`: the rate counts only progress seen since the phase was first reported.
            self.bar = tqdm(
                total=total,
                initial=done,
                desc=f"{PREFIX}{task}: {phase}",
                file=self.stream,
                leave=True,
                dynamic_ncols=True,
                mininterval=0.2,
            )

    def _log_line(self, done: int, total: int) -> None:
        quarter = 4 * done // max(total, 1)
        if quarter == self.last_quarter:
            return
        self.last_quarter = quarter
        assert self.phase is not None  # only called from __call__, after _start set the phase
        task, phase = self.phase
        # `initial`: the rate counts only progress seen since the phase was first reported.
        line = tqdm.format_meter(
            done,
            total,
            time.monotonic() - self.phase_started,
            ncols=80,
            prefix=f"{PREFIX}{task}: {phase}",
            ascii=True,
            initial=self.done_at_start,
        )
        self._write(line + "\n")

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()
