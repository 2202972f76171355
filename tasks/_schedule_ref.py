"""Helpers shared by the tasks that use the schedule: the reference tensors and the student's."""

from __future__ import annotations

import torch

from reference.schedule import make_schedule

SCHEDULE_NAMES = ("B", "sqrt_a_bar", "sqrt_one_minus_a_bar", "sqrt_a_inv", "pred_noise_coeff")


def student_schedule(namespace: dict) -> dict[str, torch.Tensor]:
    """The student's schedule tensors that exist (child side), to judge a task given them."""
    return {name: namespace[name] for name in SCHEDULE_NAMES
            if isinstance(namespace.get(name), torch.Tensor)}


def notebook_T(namespace: dict) -> int:
    """The notebook's T, or the course's 150 when it is missing or odd."""
    T = namespace.get("T", 150)
    return T if isinstance(T, int) and 2 <= T <= 10_000 else 150


def notebook_device(namespace: dict) -> torch.device:
    """The device the notebook works on (its `device` variable), CPU when unusable."""
    try:
        return torch.device(namespace.get("device", "cpu"))
    except (TypeError, RuntimeError):
        return torch.device("cpu")


def schedules_to_try(T: int, tensors: dict[str, torch.Tensor]):
    """The reference schedule first, then the student's own (so one bug is not charged twice)."""
    reference = make_schedule(T).as_dict()
    yield "reference", reference
    own = {name: tensors[f"schedule.{name}"].double() for name in SCHEDULE_NAMES
           if f"schedule.{name}" in tensors}
    if len(own) == len(SCHEDULE_NAMES) and all(v.shape == (T,) for v in own.values()):
        yield "yours", own


class course_schedule:
    """Context manager (child side): the course's schedule tensors bound in the student's namespace.

    A student's q or reverse_q reads the schedule from globals; running it once more with the
    course's tensors in their place judges the function alone, so a schedule bug (a wrong shape,
    NaN, another device) is charged to the schedule task only. Every name is restored after.
    """

    def __init__(self, namespace: dict, T: int, device: torch.device):
        self.namespace = namespace
        self.tensors = make_schedule(T, device=device).as_dict()
        self.saved: dict = {}

    def __enter__(self):
        self.saved = {name: self.namespace[name] for name in self.tensors if name in self.namespace}
        self.namespace.update(self.tensors)
        return self

    def __exit__(self, *exc_info):
        for name in self.tensors:
            if name in self.saved:
                self.namespace[name] = self.saved[name]
            else:
                self.namespace.pop(name, None)
        return False


def describe_failure(error: BaseException) -> str:
    """One line naming an exception raised by student code."""
    return f"{type(error).__name__}: {error}".strip().splitlines()[0][:200]


def judge_yours_then_course(evidence, task_id: str, judge_run):
    """Judge the run with the student's schedule; if that fails, the run with the course's.

    `judge_run(evidence, tensors, run)` judges one run ("yours" or "course") of the probe. A
    function that is right only with the course's tensors passes with a note, so a schedule
    bug is charged to the schedule task alone.
    """
    runs, data = evidence.value["runs"], evidence.tensors(task_id)
    yours = None if "raised" in runs["yours"] else judge_run(evidence, data, "yours")
    if (yours is not None and yours.passed) or "raised" in runs["course"]:
        return yours  # the probe re-raises when both runs raised, so one of them exists
    course = judge_run(evidence, data, "course")
    if course.passed:
        how = f"it raises {runs['yours']['raised']}" if yours is None else yours.failures[0]
        course.note(f"{task_id} is right with the course's schedule tensors, not with yours ({how}); "
                    "the schedule task reports what differs")
    return course
