"""Grade one submission: choose the device and the tasks' options, grade each task in order
under one deadline, and gather the result.

The work of a grade (the child, the cells, each task's check) is `grader.grading.session.Grading`;
this module decides what to run and turns the outcomes into a `GradeResult`.
"""

from __future__ import annotations

import logging
import os
import secrets
import tempfile
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from grader.core.errors import UnusableInput
from grader.core.i18n import _, use_language
from grader.core.sanitize import one_line
from grader.grading.result import GradeResult
from grader.grading.session import Grading, task_result
from tasks import Task, TaskOptions, get_task, task_ids as all_task_ids


def choose_device(requested: str) -> str:
    """Resolve --device: 'auto' picks CUDA when present; asking for absent CUDA is an input error."""
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise UnusableInput(_("--device cuda: no CUDA device is available here"))
    if requested not in ("cpu", "cuda"):
        raise UnusableInput(_("--device must be auto, cpu or cuda, not {device}").format(device=repr(requested)))
    return requested


log = logging.getLogger(__name__)  # quiet unless the operator asks (dli-grade --debug)
TRACEBACK_LINES = 80

GPU_FRACTION_ENV = "DLI_GRADE_GPU_FRACTION"
DEFAULT_GPU_FRACTION = 0.9  # one grade alone on the GPU; the rest is the CUDA context's and the grader's


def gpu_memory_fraction(asked: float | None = None) -> float:
    """The share of the GPU's memory the child may take (torch's per-process memory fraction).

    `asked` (--gpu-memory-fraction), else DLI_GRADE_GPU_FRACTION (an operator's setting; `dli-grade batch`
    sets it from --gpus-per-grade), else 0.9. Grades sharing a GPU must not each claim 90% of it.
    """
    source = "--gpu-memory-fraction"
    if asked is None:
        text = os.environ.get(GPU_FRACTION_ENV, "").strip()
        if not text:
            return DEFAULT_GPU_FRACTION
        source = GPU_FRACTION_ENV
        try:
            asked = float(text)
        except ValueError:
            raise UnusableInput(
                _("{setting} is not a number").format(setting=f"{GPU_FRACTION_ENV}={text[:50]!r}")
            ) from None
    if not 0 < asked <= 1:
        raise UnusableInput(
            _("{setting} must be above 0 and at most 1, not {value}").format(setting=source, value=f"{asked:g}")
        )
    return asked


def grader_traceback(error: BaseException) -> str:
    """The grader-side traceback of an internal error, for details.traceback: its last lines, each
    one clean line (an exception message may quote student text)."""
    lines = "".join(traceback.format_exception(error)).splitlines()[-TRACEBACK_LINES:]
    return "\n".join(line[: len(line) - len(line.lstrip(" "))] + one_line(line, 500) for line in lines)


def task_options(
    tasks: list[Task], device: str, stem: str, asked: Mapping[str, Mapping[str, Any] | None]
) -> dict[str, TaskOptions]:
    """Each task's options, chosen by its declaration from what was asked for it (the runner knows no
    task's budgets); a task's ValueError is the user's unusable input; what was asked of a task not graded is unused."""
    chosen = {}
    for task in tasks:
        try:
            chosen[task.id] = task.options(device, stem, asked.get(task.id))
        except ValueError as error:
            raise UnusableInput(str(error)) from error
    return chosen


def grade(
    path,
    task_ids=None,
    device: str = "auto",
    seed: int | None = None,
    timeout: float = 60.0,
    progress=None,
    total_timeout: float = 1800.0,
    contain: bool = True,
    gpu_fraction: float | None = None,
    lang: str | None = None,
    **asked: Mapping[str, Any] | None,
) -> GradeResult:
    """Grade the submission at `path` on the selected tasks (all of them by default).

    `gpu_fraction` caps the child's share of the GPU's memory (see `gpu_memory_fraction`).
    `lang` ('en', 'zh-CN') is the language of the result's messages and hints; None keeps the active one
    (`grader.core.i18n`: the CLI's --lang or the locale). Verdicts, ids, scores and details never depend on it.
    `seed` None draws one for this grade (the child can't predict the grader's inputs); the
    result records it, so `seed=` reproduces the grade. `asked` holds, under a task's id, what the
    user asked of that task's options: `generation={"profile": "train"}` goes to the generation task's
    `choose_options` (see `tasks/generation/options.py`). One deadline, `total_timeout` seconds from now,
    bounds everything: cells, restarts, replays and checks; tasks not reached fail as not graded.
    """
    unknown = sorted(set(asked) - set(all_task_ids()))
    if unknown:
        raise TypeError(f"grade() got options for {', '.join(unknown)}, which is no task id")
    with use_language(lang):
        return _grade(path, task_ids, device, seed, timeout, progress, asked, total_timeout, contain, gpu_fraction)


def _grade(path, task_ids, device, seed, timeout, progress, asked, total_timeout, contain, gpu_fraction) -> GradeResult:
    started = time.perf_counter()
    deadline = time.monotonic() + total_timeout
    device = choose_device(device)
    gpu_fraction = gpu_memory_fraction(gpu_fraction)
    seed = secrets.randbits(63) if seed is None else seed
    wanted = set(task_ids or all_task_ids())
    order = [task_id for task_id in all_task_ids() if task_id in wanted]  # in the declarations' order
    with tempfile.TemporaryDirectory(prefix="dli-grade-", ignore_cleanup_errors=True) as workdir:
        options = task_options([get_task(task_id) for task_id in order], device, Path(path).stem, asked)
        grading = Grading(
            path, device, seed, timeout, Path(workdir), progress, options, deadline, contain, gpu_fraction
        )
        results, interrupted = [], False
        try:
            for task_id in order:
                if interrupted or grading.left() <= 0:
                    why = (
                        _("the grade was interrupted")
                        if interrupted
                        else _("the overall time limit of {seconds} s was reached").format(seconds=f"{total_timeout:g}")
                    )
                    results.append(
                        task_result(get_task(task_id), "failed", 0.0, _("not graded: {why}").format(why=why))
                    )
                    continue
                task_started = time.perf_counter()
                try:
                    results.append(grading.grade_task(task_id))
                except KeyboardInterrupt:  # a person pressed Ctrl-C: report what was graded so far
                    interrupted = True
                    results.append(
                        task_result(
                            get_task(task_id),
                            "failed",
                            0.0,
                            _("not graded: {why}").format(why=_("the grade was interrupted")),
                        )
                    )
                except Exception as error:  # a grader bug: report it on this task, keep grading
                    log.debug("internal grader error on task %s", task_id, exc_info=True)
                    results.append(
                        task_result(
                            get_task(task_id),
                            "error",
                            0.0,
                            _("internal grader error: {error}").format(error=f"{type(error).__name__}: {error}"),
                            details={"traceback": grader_traceback(error)},
                        )
                    )
                grading.timings[task_id] = time.perf_counter() - task_started
                if results[-1].status in ("failed", "error"):
                    grading.failed_tasks.append(task_id)
        finally:
            grading.close()
        integrity = grading.integrity_notes()
        if interrupted:
            integrity.append(_("the grade was interrupted (Ctrl-C); tasks after it were not graded"))
        sandbox = grading.sandbox.layers
        missing = [name for name, layer in sandbox.items() if not layer.get("held")]
        if missing:
            integrity.append(
                _("the student's code ran without these containment layers: {layers}").format(layers=", ".join(missing))
            )
    return GradeResult(
        submission=str(path),
        sha256=grading.submission.sha256,
        layout=grading.analysis.layout,
        device=device,
        tasks=results,
        integrity=integrity,
        seed=seed,
        sandbox=sandbox,
        profile=next((chosen.profile for chosen in options.values() if chosen.profile), None),
        duration_s=time.perf_counter() - started,
        timings=grading.timings,
        interrupted=interrupted,
    )
