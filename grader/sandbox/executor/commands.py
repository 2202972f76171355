"""The names both sides of the pipe agree on: the executor's commands and the kinds of error it reports.

Standard library only and no import from the project: the child imports this module as
`executor.commands`, the grader as `grader.sandbox.executor.commands`. A command is the `op` of a
command frame; the executor's dispatcher (`main.Executor.handlers`) maps exactly `COMMANDS`, and
the grader sends them only through these constants (tests/test_executor_commands.py checks both).
"""

from __future__ import annotations

from typing import Final

# -- commands answered by the executor's dispatcher ------------------------------------------------
SETUP: Final = "setup"  # seed, preamble, device and threads of the child
EXEC: Final = "exec"  # run one cell, statement by statement
GET: Final = "get"  # values of names
DESCRIBE: Final = "describe"  # what names are (type, module, tensor facts)
CLASSES: Final = "classes"  # the nn.Module classes the student's cells define
CALL: Final = "call"  # a student function or class, with stand-ins and temporary bindings
MODULE: Final = "module"  # build a class, load weights strictly, run forward once
BATCH: Final = "batch"  # several commands in one frame
TRAINING_CELL: Final = "training_cell"  # the training cell against stand-ins, every batch recorded
BUILD: Final = "build"  # a fresh model kept in a slot for later commands
LOAD: Final = "load"  # weights loaded strictly into a model
TRAIN: Final = "train"  # a model trained through the student's own cell
COURSE_FLOW: Final = "course_flow"  # the notebook run top to bottom in a Jupyter kernel

COMMANDS: Final = frozenset(
    {SETUP, EXEC, GET, DESCRIBE, CLASSES, CALL, MODULE, BATCH, TRAINING_CELL, BUILD, LOAD, TRAIN, COURSE_FLOW}
)

# Not a command the dispatcher answers: the loop ends on it, and the child leaves.
EXIT: Final = "exit"

# -- kinds of error a reply carries (`error["kind"]`): the grader maps an error by these, never by its text.
# Student code shares the child's process and can forge any of them; the grader checks what comes with one.
RAISED: Final = "raised"  # student code raised an exception
EXITED: Final = "exited"  # student code raised SystemExit (sys.exit)
MISSING_NAME: Final = "missing_name"  # nothing under a name the grader referred to; `error["name"]` says which
UNKNOWN_COMMAND: Final = "unknown_command"  # an op outside COMMANDS

ERROR_KINDS: Final = frozenset({RAISED, EXITED, MISSING_NAME, UNKNOWN_COMMAND})
