"""Grade cells through the `dli-grade` CLI in a child process and collect its reports.

The grader runs as `python -m grader` with the kernel's own interpreter, in a fresh temporary
folder (its working folder too, so nothing in the student's folder can shadow the grader's
modules), and contains the student's code exactly as the CLI does. This process only writes the
cells, reads the reports back and raises a clear error when there are none.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

from dli_grade.errors import GraderFailedError, UnknownTaskError
from dli_grade.history import NOTEBOOK_NAME, notebook_json
from dli_grade.language import _, ngettext

GRADER_COMMAND = (sys.executable, "-m", "grader")
HELPER_COMMAND = (sys.executable, "-m", "dli_grade.grader_side")
STDERR_TAIL = 2000
# The CLI's exit codes (grader/core/errors.py): passed, not passed, unusable input, grader error.
REPORTED = (0, 1, 2, 3)
# A grade ends by its own --total-timeout (1800 s by default); this only catches a hung process.
SLACK_S = 120
RENDER_S = 120  # rendering a text report takes seconds; this only catches a hung renderer


class Reports:
    """What one grade produced: the result document, the CLI's text report and its HTML page."""

    def __init__(self, document: dict, text: str, html: str):
        self.document, self.text, self.html = document, text, html


def _tail(text: str) -> str:
    text = text.strip()
    return text if len(text) <= STDERR_TAIL else "..." + text[-STDERR_TAIL:]


def _run(command, cwd, timeout: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as error:
        # On a timeout the output captured so far is bytes, whatever `text=True` says.
        captured = error.stderr or b""
        stderr = captured.decode(errors="replace") if isinstance(captured, bytes) else captured
        raise GraderFailedError(
            _("the grader did not finish in {seconds} s; its stderr ends: {tail}").format(
                seconds=f"{timeout:.0f}", tail=_tail(stderr) or _("(nothing)")
            )
        ) from None
    except OSError as error:
        raise GraderFailedError(_("the grader could not start: {error}").format(error=error)) from None


@lru_cache(maxsize=1)
def task_ids() -> dict:
    """The grader's task ids, {"unit": [...], "all": [...]}, asked from tasks/__init__.py once per kernel."""
    with tempfile.TemporaryDirectory(prefix="dli-grade-check-") as folder:
        done = _run([*HELPER_COMMAND, "task-ids"], folder, 120)
    try:
        return json.loads(done.stdout)
    except ValueError:
        raise GraderFailedError(
            _("could not list the grader's tasks (exit {code}): {tail}").format(
                code=done.returncode, tail=_tail(done.stderr) or _("(no error output)")
            )
        ) from None


def checked_ids(requested) -> list[str]:
    """`requested` if every id is a task of the grader, else UnknownTaskError naming the valid ones."""
    known = task_ids()["all"]
    unknown = [task for task in requested if task not in known]
    if unknown:
        raise UnknownTaskError(
            ngettext(
                "unknown task id {ids}; choose from {tasks}",
                "unknown task ids {ids}; choose from {tasks}",
                len(unknown),
            ).format(ids=", ".join(repr(task) for task in unknown), tasks=", ".join(known))
        )
    return list(requested)


def grade_cells(sources: list[str], ids: list[str], total_timeout: float = 1800.0, lang: str | None = None) -> Reports:
    """Grade the cells (cell N is sources[N - 1]) on the tasks `ids` with the CLI, in `lang` (None: the CLI and
    the renderer choose from the locale variables they inherit from the kernel, as a command-line grade does)."""
    language = ["--lang", lang] if lang else []
    with tempfile.TemporaryDirectory(prefix="dli-grade-check-") as folder:
        Path(folder, NOTEBOOK_NAME).write_text(notebook_json(sources), encoding="utf-8")
        command = [
            *GRADER_COMMAND,
            NOTEBOOK_NAME,
            "--format",
            "json",
            "--output",
            "result.json",
            "--html-report",
            "report.html",
            "--tasks",
            ",".join(ids),
            "--quiet",
            "--total-timeout",
            str(total_timeout),
            "--artifacts-dir",
            "artifacts",
            *language,
        ]
        # The text renderer imports torch (over a second on a 2-core CPU): started now, it does
        # that while the grade runs, then waits on stdin for the result to render.
        renderer = _start([*HELPER_COMMAND, "text", "-", *language], folder)
        try:
            done = _run(command, folder, total_timeout + SLACK_S)
            document = _read_json(Path(folder, "result.json"))
            if done.returncode not in REPORTED or document is None or "tasks" not in document:
                reason = (document or {}).get("error") or _tail(done.stderr) or _("(no error output)")
                raise GraderFailedError(
                    _("the grader failed (exit {code}): {reason}").format(code=done.returncode, reason=reason)
                )
            html = Path(folder, "report.html").read_text(encoding="utf-8")
            return Reports(document, _rendered(renderer, "result.json"), html)
        finally:
            if renderer.poll() is None:
                renderer.kill()
                renderer.wait()


def _start(command, cwd) -> subprocess.Popen:
    try:
        return subprocess.Popen(
            command, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    except OSError as error:
        raise GraderFailedError(_("the report renderer could not start: {error}").format(error=error)) from None


def _rendered(renderer: subprocess.Popen, report: str) -> str:
    try:
        text, errors = renderer.communicate(report + "\n", timeout=RENDER_S)
    except subprocess.TimeoutExpired:
        raise GraderFailedError(
            _("the report renderer did not finish in {seconds} s").format(seconds=RENDER_S)
        ) from None
    if renderer.returncode != 0:
        raise GraderFailedError(
            _("could not render the report: {tail}").format(tail=_tail(errors) or _("(no error output)"))
        )
    return text.rstrip("\n")


def _read_json(path: Path) -> dict | None:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None
