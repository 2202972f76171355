"""Errors from the child are mapped by the kind its reply carries, never by the words of a message.

The executor decides the kind by the exception's class (`executor.main.error_kind`); the grader
reads it from its own field, checks what comes with it, and so a student exception that merely
looks like one of the grader's (its class named MissingName or SystemExit, a message quoting
"super(") is judged as what it is: the student's code raising.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

import grader
from grader.grading.context import Context
from grader.grading.runner import grade
from grader.sandbox.executor import commands
from grader.sandbox.parent import Outcome
from tasks import blocks
from tasks.base import MissingName, StudentRaised
from tasks.task_options import TaskOptions

sys.path.insert(0, str(Path(grader.__file__).parent / "sandbox"))  # the child imports `executor`
from executor.main import Executor

pytestmark = pytest.mark.usefixtures("single_thread")

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "submission.py"


# -- the child: the kind comes from the exception's class ----------------------------------------
def answer(source: str, target: str) -> dict:
    executor = Executor({"course": ""})
    executor.blobs = []  # the command carries no tensors
    exec(source, executor.namespace)
    return executor.answer({"op": commands.CALL, "target": target})


def test_a_name_the_child_lacks_is_reported_as_missing_with_the_name_in_its_own_field():
    reply = answer("", "nowhere")
    assert reply["ok"] is False
    assert (reply["error"]["kind"], reply["error"]["name"]) == (commands.MISSING_NAME, "nowhere")


def test_a_student_exception_named_like_the_executors_is_reported_as_raised():
    reply = answer("class MissingName(LookupError):\n    pass\ndef f():\n    raise MissingName('q')\n", "f")
    assert reply["error"]["type"] == "MissingName"
    assert reply["error"]["kind"] == commands.RAISED and "name" not in reply["error"]


def test_sys_exit_is_reported_as_exited_and_a_class_named_systemexit_as_raised():
    assert answer("import sys\ndef f():\n    sys.exit(3)\n", "f")["error"]["kind"] == commands.EXITED
    fake = answer("class SystemExit(Exception):\n    pass\ndef f():\n    raise SystemExit('x')\n", "f")
    assert (fake["error"]["type"], fake["error"]["kind"]) == ("SystemExit", commands.RAISED)


# -- the grader: the kind is checked, the message never parsed ------------------------------------
def context_answering(error: dict) -> Context:
    """A task's context whose every command fails with `error`, as the child would reply."""
    grading = SimpleNamespace(
        seed=0,
        device="cpu",
        analysis=None,
        submission=SimpleNamespace(cells=[]),
        timeout=1.0,
        failed_tasks=[],
        request=lambda op, timeout, on_progress, **payload: Outcome("error", error=error),
    )
    return Context(grading, "q", TaskOptions())


def test_the_missing_name_kind_raises_missing_name_with_the_name_field():
    error = {"kind": commands.MISSING_NAME, "name": "q", "type": "MissingName", "message": "MissingName: 'other'"}
    with pytest.raises(MissingName) as raised:
        context_answering(error).call("q")
    assert str(raised.value) == "q"  # the field, not the message's words


@pytest.mark.parametrize(
    "error",
    [
        {"kind": commands.RAISED, "type": "MissingName", "message": "MissingName: 'sqrt_a_bar'"},
        {"type": "MissingName", "message": "MissingName: 'sqrt_a_bar'"},  # no kind at all
        {"kind": commands.MISSING_NAME, "name": "q\nthe grader says: passed", "type": "MissingName", "message": ""},
        {"kind": commands.MISSING_NAME, "name": ["q"], "type": "MissingName", "message": ""},
    ],
)
def test_anything_else_typed_missingname_is_the_students_exception(error):
    with pytest.raises(StudentRaised):
        context_answering(error).call("q")


@pytest.mark.parametrize("kind", [None, 3, "exit", "missing_name "])
def test_an_unknown_kind_reads_as_raised(kind):
    assert Outcome("error", error={"kind": kind}).error_kind == commands.RAISED
    assert Outcome("ok").error_kind is None


# -- blocks: the super(Kind, self) retry is chosen by the error's type -----------------------------
class RecordingContext:
    """Answers the blocks trials with one error for every trial and records what was sent."""

    seed = 0

    def __init__(self, error: dict):
        self.error, self.sent = error, []

    def ask(self, op, **payload):
        assert op == commands.BATCH
        self.sent.append(payload["commands"])
        return [{"ok": False, "error": self.error} for _ in payload["commands"]], {}


def test_blocks_retries_a_type_error_with_the_kind_bound_to_the_class():
    context = RecordingContext({"type": "TypeError", "message": "TypeError: obj must be an instance of the type"})
    blocks._trials(context, ["Mystery"])
    retried = context.sent[1]
    assert [list(command["bind"]) for command in retried] == [[kind] for kind in blocks.KINDS]
    assert all(
        command["bind"][kind] == {"$name": "Mystery"} for command, kind in zip(retried, blocks.KINDS, strict=True)
    )


def test_blocks_does_not_retry_on_a_message_that_quotes_super():
    context = RecordingContext({"type": "RuntimeError", "message": "RuntimeError: super(DownBlock, self) failed"})
    trials, _ = blocks._trials(context, ["Mystery"])
    assert len(context.sent) == 1  # no second round trip
    assert trials["Mystery"]["DownBlock"] == "RuntimeError: super(DownBlock, self) failed"


# -- a whole grade: forged kinds change no verdict, genuine ones still read right -------------------
EDITS = (
    # q raises an exception of its own class named MissingName, quoting another name
    (
        "def q(x_0, t):\n    t = t.int()\n",
        "class MissingName(LookupError):\n    pass\n\n\n"
        "def q(x_0, t):\n    raise MissingName(\"'sqrt_a_bar'\")\n    t = t.int()\n",
    ),
    # reverse_q raises an exception of its own class named SystemExit
    (
        "@torch.no_grad()\ndef reverse_q(x_t, t, e_t):\n    t = t.int()\n",
        "class SystemExit(Exception):\n    pass\n\n\n@torch.no_grad()\ndef reverse_q(x_t, t, e_t):\n"
        "    raise SystemExit('the code called sys.exit(0)')\n    t = t.int()\n",
    ),
    # get_context_mask's definition fails, so the child truly lacks it
    ("def get_context_mask(c, drop_prob):\n", "@undefined_decorator\ndef get_context_mask(c, drop_prob):\n"),
    # get_loss really calls sys.exit
    ("    x_noisy, noise = q(x_0, t)\n", "    import sys\n    sys.exit(3)\n"),
)


def test_a_grade_maps_each_error_by_its_kind(tmp_path):
    text = EXAMPLE.read_text(encoding="utf-8")
    for old, new in EDITS:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = tmp_path / "submission.py"
    path.write_text(text, encoding="utf-8")
    result = grade(path, ["q", "reverse_q", "context_mask", "loss"], device="cpu", seed=1, timeout=30.0)
    tasks = {task.id: task for task in result.tasks}
    assert {task_id: task.status for task_id, task in tasks.items()} == dict.fromkeys(tasks, "failed")
    # the old mapping read these as "sqrt_a_bar is not defined ..." and "while checking reverse_q, ..."
    assert tasks["q"].message == "the student's code raised MissingName: 'sqrt_a_bar'"
    assert tasks["reverse_q"].message == "the student's code raised SystemExit: the code called sys.exit(0)"
    mask_cell = tasks["context_mask"].location.cell
    assert tasks["context_mask"].message == (
        f"get_context_mask is not defined: cell {mask_cell} raised "
        "NameError: name 'undefined_decorator' is not defined at line 2"  # the cell opens with a blank line
    )
    assert tasks["loss"].message == "while checking loss, the student's code called sys.exit(3)"


class ForgedBatchContext(RecordingContext):
    """Answers the trials with a batch reply the child forged: not a list of answers."""

    def __init__(self, reply):
        super().__init__({})
        self.reply = reply

    def ask(self, op, **payload):
        self.sent.append(payload["commands"])
        return self.reply, {}


@pytest.mark.parametrize(
    "reply", [[1, "x"], {"ok": True}, None, [{"ok": False, "error": {}}] * 3, [{"ok": False, "error": "x"}] * 7]
)
def test_blocks_reads_a_forged_batch_reply_as_failed_trials(reply):
    trials, outputs = blocks._trials(ForgedBatchContext(reply), ["Mystery"])
    assert set(trials["Mystery"]) == set(blocks.KINDS) and outputs == {}
    assert "ran" not in trials["Mystery"].values()
