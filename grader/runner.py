"""Grade one submission: load it, run its definitions in a child, probe and judge each task."""

from __future__ import annotations

import ast
import os
import tempfile
import time
from pathlib import Path

import torch

from grader.analysis import Analysis, analyse
from grader.errors import UnusableInput
from grader.result import GradeResult, Location, TaskResult
from grader.sandbox import Sandbox, SandboxConfig
from grader.submission import load_submission
from reference import mnist
from reference.course_path import course_path
from tasks import TASK_IDS, load_task
from tasks.base import Evidence

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


def choose_device(requested: str) -> str:
    """Resolve --device: 'auto' picks CUDA when present; asking for absent CUDA is an input error."""
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise UnusableInput("--device cuda: no CUDA device is available here")
    if requested not in ("cpu", "cuda"):
        raise UnusableInput(f"--device must be auto, cpu or cuda, not {requested!r}")
    return requested


def defining_line(tree: ast.Module | None, name: str) -> int | None:
    """Line of the last top-level statement (or one inside a top-level if/try) that binds `name`."""
    if tree is None:
        return None
    found = None
    pending = list(tree.body)
    while pending:
        statement = pending.pop(0)
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if statement.name == name:
                found = statement.lineno
        elif isinstance(statement, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            if any(isinstance(n, ast.Name) and n.id == name for t in targets for n in ast.walk(t)):
                found = statement.lineno
        elif isinstance(statement, (ast.If, ast.Try)):
            pending[:0] = [*statement.body, *getattr(statement, "orelse", []),
                           *getattr(statement, "finalbody", []),
                           *[s for h in getattr(statement, "handlers", []) for s in h.body]]
    return found


class Grading:
    """One grading run: owns the child, the cell results and the per-task outcomes."""

    def __init__(self, path, device: str, seed: int, timeout: float, workdir: Path, progress=None,
                 options: dict | None = None):
        self.submission = load_submission(path)
        self.options = options or {}  # task id -> keyword options for its prepare and judge
        self.analysis: Analysis = analyse(self.submission)
        self.device, self.seed, self.timeout = device, seed, timeout
        self.workdir = workdir
        self.progress = progress or (lambda message: None)
        self.cell_errors: dict[int, list[dict]] = {}
        self.sandbox = Sandbox(SandboxConfig(
            workdir=workdir / "work", log_path=workdir / "student-output.log", device=device,
            seed=seed, sys_path=[str(course_path())], preamble=PREAMBLE,
            memory_limit_mb=memory_limit_mb(device),
            start_timeout=START_TIMEOUT,
        ))
        self.child_ready = False
        self.task_integrity: list[str] = []
        self.timings: dict[str, float] = {}  # phase -> seconds, for the report and benchmarks

    # -- the child --------------------------------------------------------------------------
    def _start_child(self) -> str | None:
        """Start a child and run every cell's definitions; a message if the child cannot start."""
        started = time.perf_counter()
        try:
            return self._start_child_and_run_cells()
        finally:
            self.timings["child_start_and_cells"] = (
                self.timings.get("child_start_and_cells", 0.0) + time.perf_counter() - started)

    def _start_child_and_run_cells(self) -> str | None:
        self.progress("starting the student's code")
        # The notebook's own MNIST("./data/", download=True) must find the data, offline.
        mnist.torchvision_root(self.sandbox.config.workdir / "data")
        outcome = self.sandbox.start()
        if not outcome.ok:
            return f"the grader could not start Python for the student's code: {outcome.error}"
        self.cell_errors.clear()
        ran: list[tuple[str, str]] = []  # (code, filename) of the cells that left the child alive
        for facts in self.analysis.cells:
            code = self.analysis.executable_code(facts)
            if not code.strip():
                continue
            filename = f"<cell {facts.cell.number}>"
            outcome = self.sandbox.exec(code, filename, self.timeout)
            if outcome.child_lost:
                # Go on without the cell that killed the child: a fresh one replays the cells before it.
                self.cell_errors[facts.cell.number] = [{"error": outcome.error, "line": None}]
                outcome = self.sandbox.start()
                if not outcome.ok:
                    return f"the grader could not restart Python for the student's code: {outcome.error}"
                for earlier_code, earlier_filename in ran:
                    self.sandbox.exec(earlier_code, earlier_filename, self.timeout)
                continue
            if outcome.ok and outcome.value:
                self.cell_errors[facts.cell.number] = outcome.value
            ran.append((code, filename))
        self.child_ready = True
        return None

    # -- locations --------------------------------------------------------------------------
    def locate(self, name: str) -> Location | None:
        """Where the submission defines `name` (the training loop for '__training_cell__')."""
        if name == "__training_cell__":
            facts = self.analysis.training_cell()
            return Location(facts.cell.number, None) if facts else None
        facts = self.analysis.defining(name)
        if facts is None:
            return None
        return Location(facts.cell.number, defining_line(facts.tree, name))

    def _why_missing(self, name: str) -> tuple[str, Location | None]:
        facts = self.analysis.defining(name)
        if facts is None:
            return f"no cell defines {name}", None
        where = self.locate(name)
        if facts.syntax_error:
            return f"{name} is not defined: {facts.syntax_error}", where
        for error in self.cell_errors.get(facts.cell.number, []):
            return (f"{name} is not defined: cell {facts.cell.number} raised {error['error']}"
                    + (f" at line {error['line']}" if error.get("line") else ""),
                    Location(facts.cell.number, error.get("line")))
        return f"{name} is not defined after running cell {facts.cell.number}", where

    def _not_attempted(self, task) -> TaskResult | None:
        cells = [self.analysis.defining(name) for name in task.NEEDS]
        if task.ID == "training_loop":
            cells.append(self.analysis.training_cell())
        for facts in cells:
            if facts is not None and facts.fixmes:
                return self._result(task, "failed", 0.0,
                                    f"not attempted: FIXME left in cell {facts.cell.number}, line {facts.fixmes[0]}",
                                    location=Location(facts.cell.number, facts.fixmes[0]),
                                    hints=["replace every FIXME with your answer"])
        return None

    # -- tasks ------------------------------------------------------------------------------
    def _result(self, task, status, score, message, hints=(), location=None, details=None):
        return TaskResult(id=task.ID, title=task.TITLE, score=round(score, 2), max_score=task.POINTS,
                          status=status, message=message, hints=list(hints), location=location,
                          details=details or {})

    def grade_task(self, task_id: str) -> TaskResult:
        task = load_task(task_id)
        skipped = self._not_attempted(task)
        if skipped:
            return skipped
        for name in task.NEEDS:
            if self.analysis.defining(name) is None:
                return self._result(task, "failed", 0.0, f"no cell defines {name}",
                                    hints=[f"define {name} as the notebook asks"])
        if not self.child_ready:
            problem = self._start_child()
            if problem:
                return self._result(task, "error", 0.0, problem)
        out_dir = Path(tempfile.mkdtemp(prefix=f"{task_id}-", dir=self.workdir))
        options = self.options.get(task_id, {})
        kwargs = task.prepare(out_dir, self.seed, self.analysis, **options) if hasattr(task, "prepare") else {}
        self.progress(f"checking {task_id}")
        progress_file = out_dir / "progress.txt"

        def report_progress():
            if progress_file.exists():
                phase, _, counts = progress_file.read_text().strip().partition("\t")
                done, _, total = counts.partition("\t")
                if done.isdigit() and total.isdigit():
                    self.progress((task_id, phase, int(done), int(total)))

        timeout = options.get("timeout", self.timeout)
        outcome = self.sandbox.call(f"tasks.{task_id}:probe", out_dir, timeout,
                                    on_wait=report_progress, **kwargs)
        if outcome.child_lost:
            self.child_ready = False
            return self._result(task, "failed", 0.0, f"while checking {task_id}, {outcome.error}",
                                hints=["look for infinite loops, sys.exit/os._exit or huge allocations"],
                                location=self.locate(task.NEEDS[0]) if task.NEEDS else None)
        if not outcome.ok:
            if outcome.error_type == "MissingName":
                name = outcome.error.split(": ", 1)[-1].strip("'\"")
                message, where = self._why_missing(name)
                return self._result(task, "failed", 0.0, message, location=where)
            where = None
            if outcome.filename and outcome.filename.startswith("<cell "):
                where = Location(int(outcome.filename[6:-1]), outcome.line)
            # The child words sys.exit as "the code called sys.exit(...)": not "raised".
            what = (f"while checking {task_id}, the student's {outcome.error.removeprefix('the ')}"
                    if outcome.error_type == "SystemExit" else f"the student's code raised {outcome.error}")
            return self._result(task, "failed", 0.0, what,
                                location=where or (self.locate(task.NEEDS[0]) if task.NEEDS else None))
        evidence = Evidence(value=outcome.value, out_dir=out_dir, locate=self.locate, seed=self.seed)
        verdict = task.judge(evidence, **options) if options else task.judge(evidence)
        message = verdict.message("correct")
        if verdict.notes:
            message += " (" + "; ".join(verdict.notes) + ")"
        self.task_integrity += verdict.details.pop("integrity", [])
        return self._result(task, "passed" if verdict.passed else "failed", verdict.earned,
                            message, verdict.hints, verdict.location, verdict.details)

    def integrity_notes(self) -> list[str]:
        notes = [f"cell {facts.cell.number} imports the grader's own packages (grader, tasks or reference)"
                 for facts in self.analysis.cells if facts.imports_grader]
        return notes + self.task_integrity

    def close(self):
        self.sandbox.close()


GPU_TRAIN_STEPS = 2000  # DESIGN.md: ~1000 eager steps reach 98-99.6% at w = 1 on an H100; 2000 for margin
CPU_CHECK_STEPS = 40
GENERATION_TIMEOUT = 900.0


def generation_options(device: str, train_steps: int | None = None, per_digit: int | None = None,
                       artifacts_dir: Path | None = None, stem: str = "submission") -> dict:
    """Budgets of the generation task for the device's profile (GPU: train; CPU: reference weights)."""
    gpu = device == "cuda"
    return {
        "profile": "gpu" if gpu else "cpu",
        "train_steps": train_steps or GPU_TRAIN_STEPS,
        "per_digit": per_digit or (50 if gpu else 10),
        "grader_per_digit": 10 if gpu else 1,
        "check_steps": 0 if gpu else CPU_CHECK_STEPS,
        "artifacts_dir": artifacts_dir,
        "stem": stem,
        "timeout": GENERATION_TIMEOUT,
    }


def grade(path, task_ids=None, device: str = "auto", seed: int = 0, timeout: float = 60.0,
          progress=None, generation: dict | None = None, total_timeout: float = 1800.0) -> GradeResult:
    """Grade the submission at `path` on the selected tasks (all of them by default).

    `generation` overrides the generation task's budgets (see `generation_options`); tasks not
    started within `total_timeout` seconds fail as not graded.
    """
    started = time.perf_counter()
    device = choose_device(device)
    task_ids = list(task_ids or TASK_IDS)
    with tempfile.TemporaryDirectory(prefix="dli-grade-") as workdir:
        options = {"generation": generation_options(device, stem=Path(path).stem, **(generation or {}))}
        grading = Grading(path, device, seed, timeout, Path(workdir), progress, options)
        try:
            results = []
            for task_id in task_ids:
                if time.perf_counter() - started > total_timeout:
                    task = load_task(task_id)
                    results.append(TaskResult(task.ID, task.TITLE, 0.0, task.POINTS, "failed",
                                              f"not graded: the overall time limit of {total_timeout:g} s was reached"))
                    continue
                try:
                    task_started = time.perf_counter()
                    results.append(grading.grade_task(task_id))
                    grading.timings[task_id] = time.perf_counter() - task_started
                except Exception as error:  # a grader bug: report it on this task, keep grading
                    task = load_task(task_id)
                    results.append(TaskResult(task.ID, task.TITLE, 0.0, task.POINTS, "error",
                                              f"internal grader error: {type(error).__name__}: {error}"))
        finally:
            grading.close()
        integrity = grading.integrity_notes()
        if grading.sandbox.config.isolate_network and not grading.sandbox.network_isolated:
            integrity.append("the student's code ran with network access (no network namespace here)")
    return GradeResult(
        submission=str(path), sha256=grading.submission.sha256, layout=grading.analysis.layout,
        device=device, tasks=results, integrity=integrity,
        duration_s=time.perf_counter() - started, timings=grading.timings,
    )
