"""One grading run: the contained child, the submission's cells run in it, and each task's verdict.

Tasks check through a `Context`; a crash, a hang or a broken protocol fails the task that was
running, and a fresh child (cells replayed) takes the rest.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from grader.core.i18n import _
from grader.grading.context import ChildLost, Context
from grader.grading.result import TaskResult
from grader.sandbox import view as containment
from grader.sandbox.executor import commands
from grader.sandbox.frames import TASK_BYTES
from grader.sandbox.parent import Outcome, Sandbox, SandboxConfig
from grader.submission.analysis import Analysis, analyse
from grader.submission.cells import load_submission
from grader.submission.syntax import defining_line
from reference.course_path import course_path
from tasks import Task, TaskOptions, get_task
from tasks.base import Location, MissingName, StudentRaised, TaskFailure, derive_seed

# The imports every version of the notebook makes before its FIXME cells; layout A lacks
# `math` and `Rearrange`, which its block cells use, so the child always provides them.
PREAMBLE = """\
import math
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
import torchvision.transforms as transforms
from torch.optim import Adam
from torch.utils.data import DataLoader
from einops.layers.torch import Rearrange
import matplotlib
import matplotlib.pyplot as plt
"""
START_TIMEOUT = 120.0
MAX_FANOUT = 16  # forked copies of the child for one batch (the executor forks as many as it is asked)


def memory_limit_mb(device: str) -> int | None:
    """Address-space cap for the child: 3/4 of this machine's memory on CPU, none with CUDA.

    CUDA reserves huge virtual ranges, so RLIMIT_AS cannot be used beside it.
    """
    if device != "cpu":
        return None
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return None
    return int(pages * page_size * 3 / 4 / 1024**2)


def _child_mounts(options: dict[str, TaskOptions]) -> dict[str, Path]:
    """Folders tasks asked to have in the child, read-only (`child_mounts` in their options)."""
    mounts: dict[str, Path] = {}
    for chosen in options.values():
        mounts.update(chosen.child_mounts)
    return mounts


class Grading:
    """One grading run: owns the child, the cell results, the deadline and the per-task outcomes."""

    def __init__(
        self,
        path,
        device: str,
        seed: int,
        timeout: float,
        workdir: Path,
        progress=None,
        options: dict[str, TaskOptions] | None = None,
        deadline: float | None = None,
        contain: bool = True,
        gpu_fraction: float = 0.9,
    ):
        self.submission = load_submission(path)
        self.options = options or {}  # task id -> options for its check (a task not here: its default choice)
        self.analysis: Analysis = analyse(self.submission)
        self.device, self.seed, self.timeout = device, seed, timeout
        self.deadline = deadline if deadline is not None else time.monotonic() + 3600
        self.workdir = workdir
        self.progress = progress or (lambda message: None)
        self.start_failed = False
        self.cell_errors: dict[int, list[dict]] = {}
        self.sandbox = Sandbox(
            SandboxConfig(
                workdir=workdir / "child",
                data_dir=None,  # no MNIST: the grader sends the batches; a task may mount it (child_mounts)
                course_dir=course_path(),
                view=containment.view_config(Path(path)),
                device=device,
                seed=derive_seed(seed, "child"),
                preamble=PREAMBLE,
                memory_limit_mb=memory_limit_mb(device),
                contain=contain,
                mounts=_child_mounts(self.options),
                gpu_fraction=gpu_fraction,
            )
        )
        self.child_ready = False
        self.integrity: list[str] = []
        self.timings: dict[str, float] = {}  # phase -> seconds, for the report and benchmarks
        self.failed_tasks: list[str] = []  # ids of the tasks failed so far, in grading order

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def request(self, op: str, timeout: float, on_progress=None, **payload) -> Outcome:
        """One command, bounded by its own timeout and by what is left of the whole grade."""
        return self.sandbox.request(op, max(0.0, min(timeout, self.left())), on_progress, **payload)

    def fanout(self, calls: int) -> int:
        """How many forked copies of the child answer `calls` independent commands at once: on a
        CPU, one per torch thread the child has (each copy runs one); on CUDA, none."""
        threads = self.sandbox.setup_reply.get("threads")
        if self.device != "cpu" or type(threads) is not int:
            return 1
        return max(1, min(calls, threads, MAX_FANOUT))

    # -- the child --------------------------------------------------------------------------
    def start_child(self) -> str | None:
        """Start a child and run every cell's definitions; a message if that is not possible."""
        started = time.perf_counter()
        try:
            return self._start_child_and_run_cells()
        finally:
            self.timings["child_start_and_cells"] = (
                self.timings.get("child_start_and_cells", 0.0) + time.perf_counter() - started
            )

    def _start(self) -> str | None:
        self.start_failed = False  # the grader's fault (status error), whatever language the message is in
        outcome = self.sandbox.start(max(0.0, min(START_TIMEOUT, self.left())))
        if not outcome.ok and self.left() <= 0:
            return _("not graded: the overall time limit was reached while running the student's cells")
        self.start_failed = not outcome.ok
        if not outcome.ok:
            why = outcome.reason or (outcome.error or {}).get("message", "")
            return _("the grader could not start Python for the student's code: {why}").format(why=why)
        if self.device == "cuda" and self.sandbox.setup_reply.get("cuda") is not True:
            # Decided once here, verified there: never train a GPU budget on the child's CPU.
            self.start_failed = True
            return _(
                "the grader could not start Python for the student's code on CUDA: the contained child "
                "sees no CUDA device (check CUDA_VISIBLE_DEVICES and the driver); grade with --device cpu"
            )
        return None

    def _start_child_and_run_cells(self) -> str | None:
        self.progress(_("starting the student's code"))
        problem = self._start()
        if problem:
            return problem
        self.cell_errors.clear()
        ran: list[tuple[str, str]] = []  # (code, filename) of the cells that left the child alive
        for facts in self.analysis.cells:
            code = self.analysis.executable_code(facts)
            if not code.strip():
                continue
            filename = f"<cell {facts.cell.number}>"
            outcome = self.request(commands.EXEC, self.timeout, code=code, filename=filename)
            if outcome.child_lost:
                # Go on without the cell that killed the child: a fresh one replays the cells before it.
                why = _("did not finish within the time limit") if outcome.status == "timeout" else outcome.reason
                self.cell_errors[facts.cell.number] = [{"message": why, "line": None}]
                if self.left() <= 0:
                    return _("the overall time limit was reached while running the cells")
                problem = self._start()
                if problem:
                    return problem
                for earlier_code, earlier_filename in ran:
                    self.request(commands.EXEC, self.timeout, code=earlier_code, filename=earlier_filename)
                continue
            if outcome.ok and isinstance(outcome.value, list) and outcome.value:
                self.cell_errors[facts.cell.number] = [e for e in outcome.value if isinstance(e, dict)]
            ran.append((code, filename))
        self.child_ready = True
        return None

    # -- locations --------------------------------------------------------------------------
    def locate(self, name: str | None) -> Location | None:
        """Where the submission defines `name` (None for a task that names nothing)."""
        if name is None:
            return None  # what defining() gave for None: no cell defines it
        facts = self.analysis.defining(name)
        if facts is None:
            return None
        return Location(facts.cell.number, defining_line(facts.tree, name))

    def _why_missing(self, name: str) -> tuple[str, Location | None]:
        facts = self.analysis.defining(name)
        if facts is None:
            return _("no cell defines {name}").format(name=name), None
        where = self.locate(name)
        if facts.syntax_error:
            return _("{name} is not defined: {error}").format(name=name, error=facts.syntax_error), where
        for error in self.cell_errors.get(facts.cell.number, []):
            line = error.get("line") if type(error.get("line")) is int else None
            template = (
                _("{name} is not defined: cell {cell} raised {error} at line {line}")
                if line
                else _("{name} is not defined: cell {cell} raised {error}")
            )
            return (
                template.format(name=name, cell=facts.cell.number, error=error.get("message"), line=line),
                Location(facts.cell.number, line),
            )
        return _("{name} is not defined after running cell {cell}").format(name=name, cell=facts.cell.number), where

    def _not_attempted(self, task: Task) -> TaskResult | None:
        cells = [self.analysis.defining(name) for name in task.needs]
        if task.uses_training_cell:
            cells.append(self.analysis.training_cell())
        for facts in cells:
            if facts is not None and facts.fixmes:
                return task_result(
                    task,
                    "failed",
                    0.0,
                    _("not attempted: FIXME left in cell {cell}, line {line}").format(
                        cell=facts.cell.number, line=facts.fixmes[0]
                    ),
                    location=Location(facts.cell.number, facts.fixmes[0]),
                    hints=[_("replace every FIXME with your answer")],
                )
        return None

    # -- tasks ------------------------------------------------------------------------------
    def grade_task(self, task_id: str) -> TaskResult:
        task = get_task(task_id)
        unanswered = self._not_attempted(task)
        if unanswered:
            return unanswered
        for name in task.needs:
            if self.analysis.defining(name) is None:
                return task_result(
                    task,
                    "failed",
                    0.0,
                    _("no cell defines {name}").format(name=name),
                    hints=[_("define {name} as the notebook asks").format(name=name)],
                )
        if not self.child_ready:
            problem = self.start_child()
            if problem:
                return task_result(task, "error" if self.start_failed else "failed", 0.0, problem)
        self.progress(_("checking {task}").format(task=task_id))
        self.sandbox.limit_received(TASK_BYTES)  # what one task may make the grader hold, whatever it asks
        options = self.options.get(task_id) or task.options(self.device, Path(self.submission.path).stem)
        context = Context(self, task_id, options)
        first_name = task.needs[0] if task.needs else None
        try:
            delegation = self._delegation(task)
            if delegation:
                self.integrity.append(delegation)
                return task_result(
                    task,
                    "failed",
                    0.0,
                    delegation,
                    location=self.locate(first_name),
                    hints=[_("write your own answer in the notebook's cell")],
                )
            verdict = task.check(context)
        except MissingName as missing:
            message, where = self._why_missing(str(missing))
            return task_result(task, "failed", 0.0, message, location=where)
        except StudentRaised as raised:
            return task_result(task, "failed", 0.0, *self._raised_message(task_id, raised, first_name))
        except TaskFailure as failure:
            return task_result(
                task,
                "failed",
                0.0,
                failure.message,
                hints=[failure.hint] if failure.hint else [],
                location=failure.location or self.locate(first_name),
            )
        except ChildLost as lost:
            self.child_ready = False
            return task_result(
                task,
                "failed",
                0.0,
                self._lost_message(task_id, lost.outcome, context.timeout),
                hints=[_("look for infinite loops, sys.exit/os._exit or huge allocations")],
                location=self.locate(first_name) if first_name else None,
            )
        except Exception:
            # a grader bug: the channel may hold half a reply, so the next task gets a fresh child
            self.sandbox.close()
            self.child_ready = False
            raise
        message = verdict.message(_("correct"))
        if verdict.notes:
            message = _("{message} ({notes})").format(message=message, notes="; ".join(verdict.notes))
        self.integrity += verdict.integrity
        return task_result(
            task,
            "passed" if verdict.passed else "failed",
            verdict.earned,
            message,
            verdict.hints,
            verdict.location,
            verdict.details,
        )

    def _delegation(self, task: Task) -> str | None:
        """A graded function that is the course helper's own (e.g. q = ddpm.q): not an answer."""
        if not task.needs:
            return None
        for name, info in Context(self, task.id, TaskOptions()).describe(*task.needs).items():
            module = str(info.get("module", ""))
            if info.get("type") in ("function", "method", "builtin_function_or_method") and module != "__main__":
                return _("{name} is {function}, not a function your notebook defines").format(
                    name=name, function=f"{module}.{info.get('qualname')}"
                )
        return None

    def _raised_message(self, task_id: str, raised: StudentRaised, first_name) -> tuple:
        cell, line = raised.error.get("cell"), raised.error.get("line")
        where = None
        if isinstance(cell, str) and cell.startswith("<cell ") and cell[6:-1].isdigit():
            where = Location(int(cell[6:-1]), line if type(line) is int else None)
        if raised.exited:
            # the child says "the code called sys.exit(CODE)" in English: only the call itself is quoted
            call = raised.describe().removeprefix("the code called ")
            text = _("while checking {task}, the student's code called {call}").format(task=task_id, call=call)
        else:
            text = _("the student's code raised {error}").format(error=raised.describe())
        return text, [], where or (self.locate(first_name) if first_name else None)

    def _lost_message(self, task_id: str, outcome: Outcome, timeout: float) -> str:
        if outcome.status == "timeout":
            limit = _("the overall time limit") if self.left() <= 0 else _("{seconds} s").format(seconds=f"{timeout:g}")
            return _("while checking {task}, the student's code did not finish within {limit}").format(
                task=task_id, limit=limit
            )
        message = _("while checking {task}, {reason}").format(task=task_id, reason=outcome.reason)
        if outcome.status == "broken":
            self.integrity.append(message)
        return message

    def integrity_notes(self) -> list[str]:
        notes = [
            _("cell {cell} imports the grader's own packages (grader, tasks or reference)").format(
                cell=facts.cell.number
            )
            for facts in self.analysis.cells
            if facts.imports_grader
        ]
        if self.sandbox.attempted_imports:
            notes.append(
                _("the student's code tried to import {modules}").format(
                    modules=", ".join(sorted(set(self.sandbox.attempted_imports))[:5])
                )
            )
        return notes + self.integrity

    def close(self):
        self.sandbox.close()


def task_result(task: Task, status, score, message, hints=(), location=None, details=None) -> TaskResult:
    return TaskResult(
        id=task.id,
        title=task.title,
        score=round(score, 2),
        max_score=task.points,
        status=status,
        message=message,
        hints=list(hints),
        location=location,
        details=details or {},
    )
