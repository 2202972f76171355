"""The graded tasks of the assessment, one module each, in the order a report lists them.

A task module defines ID, TITLE, POINTS, NEEDS (names the submission must define) and
`check(context)`, which runs in the grader: it makes the inputs, has the contained child run
the student's code on them, and judges the raw values (see tasks/base.py). A task with
choices or budgets also defines `choose_options(device, stem=..., **asked)`; the runner passes
what it returns to `check` as `context.options` (the generation task's profiles), and binds
the folders named under `child_mounts` in them into the child, read-only.
"""

from importlib import import_module

UNIT_TASK_IDS = (
    "schedule",
    "q",
    "reverse_q",
    "blocks",
    "context_mask",
    "loss",
    "training_loop",
    "guidance",
)
TASK_IDS = (*UNIT_TASK_IDS, "generation")


def load_task(task_id: str):
    """The module implementing `task_id`."""
    if task_id not in TASK_IDS:
        raise KeyError(task_id)
    return import_module(f"tasks.{task_id}")
