"""The graded tasks of the assessment, one module each, in the order a report lists them.

A task module defines ID, TITLE, POINTS, NEEDS (names the submission must define), a `probe`
that runs inside the child next to the student's code and writes raw outputs, and a `judge`
that runs in the grader and turns those outputs into a verdict.
"""

from importlib import import_module

UNIT_TASK_IDS = (
    "schedule", "q", "reverse_q", "blocks", "context_mask", "loss", "training_loop", "guidance",
)
TASK_IDS = UNIT_TASK_IDS + ("generation",)


def load_task(task_id: str):
    """The module implementing `task_id`."""
    if task_id not in TASK_IDS:
        raise KeyError(task_id)
    return import_module(f"tasks.{task_id}")
