"""Running q or reverse_q twice, with the student's schedule and with the course's, and judging.

A student's q or reverse_q reads the schedule from globals. The grader runs it once as the
notebook left it and once with the course's tensors bound in place of the student's, so a
schedule bug (a wrong shape, NaN, another device) is charged to the schedule task only.
"""

from __future__ import annotations

import torch

from grader.core.i18n import _
from reference.schedule import make_schedule
from tasks.base import MAX_ELEMENTS, StudentRaised, TaskFailure

SCHEDULE_NAMES = ("B", "sqrt_a_bar", "sqrt_one_minus_a_bar", "sqrt_a_inv", "pred_noise_coeff")
RUNS = ("yours", "course")  # the student's schedule as the notebook left it; the course's bound in its place


# The keys of a task's data: one helper per kind of name, used where the data is filled and where it
# is read, so a misspelt name raises KeyError instead of silently finding nothing.
def run_key(run: str, output: str) -> str:
    """What one run of the student's function returned under the name `output`."""
    if run not in RUNS:
        raise KeyError(f"no run named {run!r}")
    return f"{run}.{output}"


def schedule_key(name: str) -> str:
    """One tensor of the student's schedule."""
    if name not in SCHEDULE_NAMES:
        raise KeyError(f"no schedule tensor named {name!r}")
    return f"schedule.{name}"


def step_output(step: int) -> str:
    """The name of what a function returned at timestep `step` (reverse_q runs at several)."""
    return f"out.{int(step)}"


def notebook_T(context) -> int:
    """The notebook's T, or the course's 150 when it is missing or odd."""
    info = context.describe("T").get("T", {})
    try:
        T = int(info["value"]) if info.get("type") == "int" else 150
    except (KeyError, ValueError):
        T = 150
    return T if 2 <= T <= 10_000 else 150


def student_schedule(context) -> dict[str, torch.Tensor]:
    """The student's schedule tensors that are plain tensors of a sane size (to judge a function given them)."""
    return {
        name: value
        for name, value in context.get(*SCHEDULE_NAMES).items()
        if isinstance(value, torch.Tensor) and value.numel() <= MAX_ELEMENTS
    }


def schedule_data(context) -> dict[str, torch.Tensor]:
    """`student_schedule` under the keys `schedules_to_try` reads."""
    return {schedule_key(name): value for name, value in student_schedule(context).items()}


def run_twice(context, function: str, arguments: tuple, describe_result) -> tuple[dict, dict]:
    """Call `function(*arguments)` with the student's schedule, then with the course's.

    `describe_result(value)` turns a returned value into (summary, tensors) or raises TaskFailure.
    Returns runs {"yours"|"course": summary or {"raised": text}} and the tensors of both runs,
    each under `run_key(run, name)`. Re-raises when both runs raised.
    """
    T = notebook_T(context)
    course = make_schedule(T).as_dict()
    runs, tensors = {}, {}
    for run, bind in zip(RUNS, (None, course), strict=True):
        outputs = {}
        try:
            # No name keeps the reply: a huge one is freed before the next call brings another.
            runs[run], outputs = describe_result(context.call(function, *arguments, bind=bind)[0])
        except StudentRaised as error:
            if run == "course" and "raised" in runs["yours"]:
                raise
            runs[run] = {"raised": error.describe()}
        except TaskFailure as failure:
            runs[run] = {"returned": failure.message}
        tensors.update({run_key(run, key): value for key, value in outputs.items()})
    return runs, tensors


def schedules_to_try(T: int, tensors: dict[str, torch.Tensor]):
    """The reference schedule first, then the student's own (so one bug is not charged twice)."""
    yield "reference", make_schedule(T).as_dict()
    own = {name: tensors[schedule_key(name)] for name in SCHEDULE_NAMES if schedule_key(name) in tensors}
    if len(own) == len(SCHEDULE_NAMES) and all(v.shape == (T,) for v in own.values()):  # shape first, then convert
        yield "yours", {name: value.double() for name, value in own.items()}


def judge_yours_then_course(task_id: str, runs: dict, data: dict, judge_run):
    """Judge the run with the student's schedule; if that fails, the run with the course's.

    `judge_run(runs, data, run)` judges one run. A function that is right only with the
    course's tensors passes with a note, so a schedule bug is charged to the schedule task alone.
    """
    yours = None if "raised" in runs["yours"] else judge_run(runs, data, "yours")
    if (yours is not None and yours.passed) or "raised" in runs["course"]:
        return yours  # run_twice re-raises when both runs raised, so one of them exists
    course = judge_run(runs, data, "course")
    if course.passed:
        how = _("it raises {error}").format(error=runs["yours"]["raised"]) if yours is None else yours.failures[0]
        course.note(
            _(
                "{task} is right with the course's schedule tensors, not with yours ({how}); the schedule task "
                "reports what differs"
            ).format(task=task_id, how=how)
        )
    return course
