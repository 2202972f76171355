"""Hostile frames on the reply pipe: everything the child sends is untrusted, and bounded.

Each case grades a hostile variant of examples/submission.py (as tests/test_attacks.py does):
a progress frame full of escapes and CI log commands must reach stderr inert; a reply the
decoder cannot rebuild (nested 200,000 deep, a 0-element tensor whose strides overflow, a
progress count that is a string) fails only the task it came with, as a broken protocol, and
the next task passes in a fresh child; a reply that would cost the grader gigabytes to convert
is refused before any conversion.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

import grader
from grader.grading.runner import grade
from tasks import _schedule_runs
from tasks.base import MAX_ELEMENTS, StudentRaised, TaskFailure, pair_of_tensors, plain_tensor

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "submission.py"
CHECKOUT = Path(grader.__file__).resolve().parent.parent
Q_BODY = "def q(x_0, t):\n    t = t.int()\n"
# A cell that lets q replace the reply to the command that called it (so the forged frame carries
# the right id): q appends a function of the id to `_forge`, the next reply is its bytes.
FORGE_CELL = """
import executor.wire as _w, os as _os, struct as _st
_real_write, _forge = _w.write_frame, []
def _write(fd, header, blobs=()):
    if _forge and "reply" in header:
        body = _forge.pop()(header["id"])
        _os.write(fd, _st.pack(">I", len(body)) + body)
        return
    return _real_write(fd, header, blobs)
_w.write_frame = _write
"""
# A progress frame written by q itself, through the executor's own writer.
PROGRESS = (
    "import executor.wire as _w, json, sys\n_w.write_frame(json.loads(sys.argv[1])['out_fd'], {{'progress': {}}})"
)
INJECTION = (
    "\\x1b[2J\\x1b]0;owned\\x07\\n::error file=x::forged\\n::add-mask::dli\\n::stop-commands::tok"
    "\\n##vso[task.complete]"
)


@dataclass(frozen=True)
class Breach:
    name: str
    q_body: str
    cell: str = ""


def _submission(folder: Path, q_body: str = "", cell: str = "", q_return: str = "") -> Path:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert text.count(Q_BODY) == 1
    hooked = "".join(f"    {line}\n" for line in q_body.splitlines())
    text = text.replace(Q_BODY, "def q(x_0, t):\n" + hooked + "    t = t.int()\n" + q_return)
    if cell:
        text += "\n# %%\n" + cell
    path = folder / "submission.py"
    path.write_text(text, encoding="utf-8")
    return path


BREACHES = [
    Breach(
        "a_reply_nested_200000_deep",  # json.loads raised RecursionError: an internal error, exit 3
        "_forge.append(lambda i: b'{\"id\": %d, \"reply\": ' % i + b'[' * 200000 + b']' * 200000 + b'}')",
        FORGE_CELL,
    ),
    Breach(
        "a_zero_element_tensor_whose_strides_overflow",  # torch.empty raised RuntimeError: exit 3
        "_forge.append(lambda i: json.dumps({'id': i, 'blobs': [0], 'reply': {'$dict': {'ok': True, 'value': "
        "{'$tensor': 0, 'dtype': 'float32', 'shape': [0, 2**62, 2**62]}}}}).encode())\n",
        "import json\n" + FORGE_CELL,
    ),
    Breach(
        "a_progress_count_that_is_a_string",  # int('many') raised ValueError: exit 3
        PROGRESS.format("['training', 'many', 2]"),
    ),
    Breach("a_progress_count_past_its_total", PROGRESS.format("['training', 5, 2]")),
]


@pytest.mark.parametrize("breach", BREACHES, ids=[b.name for b in BREACHES])
def test_a_malformed_reply_fails_only_its_task_as_a_broken_protocol(breach, tmp_path):
    path = _submission(tmp_path, breach.q_body, breach.cell)
    result = grade(path, ["q", "context_mask"], device="cpu", seed=1, timeout=20, total_timeout=120)
    statuses = {task.id: task.status for task in result.tasks}
    messages = {task.id: task.message for task in result.tasks}
    assert statuses == {"q": "failed", "context_mask": "passed"}, messages
    assert "while checking q, the child broke the protocol" in messages["q"], messages["q"]
    assert any("broke the protocol" in note for note in result.integrity), result.integrity


class _ReadsRunOutOfMemory:
    """The `os` the sandbox's parent sees, where reading a reply chunk raises MemoryError (once)
    after 8 MB have come: what --grader-memory-mb does to a large reply (the slow test below shows it
    for real), made independent of how much memory torch happens to take on this machine."""

    def __init__(self):
        self.received = 0

    def __getattr__(self, name):
        return getattr(os, name)

    def read(self, fd, size):
        if size == 1 << 20 and self.received > 8 * 1024**2:
            self.received = 0  # once: the next child's replies are read as usual
            raise MemoryError
        chunk = os.read(fd, size)
        self.received += len(chunk)
        return chunk


def test_memory_running_out_while_reading_a_reply_fails_only_its_task(tmp_path, monkeypatch):
    # Before: the MemoryError from os.read became an internal error (exit 3), and the next task,
    # in the same child, met the rest of the reply: "data after an answer".
    from grader.sandbox import parent

    monkeypatch.setattr(parent, "os", _ReadsRunOutOfMemory())
    path = _submission(tmp_path, q_return="    return torch.zeros(30_000_000, dtype=torch.bool), x_0\n")
    result = grade(path, ["q", "context_mask"], device="cpu", seed=1, timeout=30, total_timeout=120)
    messages = {task.id: (task.status, task.message) for task in result.tasks}
    assert messages["q"][0] == "failed", messages
    assert "the child sent more than the grader's memory allows" in messages["q"][1], messages
    assert messages["context_mask"] == ("passed", "correct"), messages


def test_a_grader_bug_in_one_task_gives_the_next_task_a_fresh_child(tmp_path, monkeypatch):
    # The bug may strike with half a reply still in the pipe: the child it talked to is not reused.
    from dataclasses import replace

    from grader.grading import session
    from grader.sandbox.parent import Sandbox

    starts = []
    real_start = Sandbox.start

    def counted_start(self, timeout):
        starts.append(timeout)
        return real_start(self, timeout)

    def broken_check(context):
        context.call("q", torch.zeros(1, 1, 28, 28), torch.zeros(1, dtype=torch.long))
        raise RuntimeError("a grader bug after a call")

    monkeypatch.setattr(Sandbox, "start", counted_start)
    real_get_task = session.get_task

    def get_task(task_id):
        task = real_get_task(task_id)
        return replace(task, check=broken_check) if task_id == "q" else task

    monkeypatch.setattr(session, "get_task", get_task)
    result = grade(EXAMPLE, ["q", "context_mask"], device="cpu", seed=1, timeout=30, total_timeout=120)
    statuses = {task.id: task.status for task in result.tasks}
    assert statuses == {"q": "error", "context_mask": "passed"}, result.tasks
    assert len(starts) == 2, starts


def test_progress_injection_reaches_stderr_inert(tmp_path):
    """q sends a progress phase with ANSI codes, newlines and GitHub/Azure log commands; the grade
    goes on (q passes) and stderr holds none of them raw."""
    path = _submission(tmp_path, PROGRESS.format(f"['{INJECTION}', 1, 2]"))
    run = subprocess.run(
        [sys.executable, "-m", "grader", str(path), "--tasks", "q", "--device", "cpu", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(CHECKOUT)},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout)["tasks"][0]["status"] == "passed"
    stderr = run.stderr
    assert "forged" in stderr, stderr  # the phase was shown (so the checks below are not vacuous)
    assert "\x1b" not in stderr and "\x07" not in stderr
    for line in stderr.splitlines():
        assert line.startswith("dli-grade: "), line  # no line of the child's own
    for command in ("::error", "::add-mask::", "::stop-commands::", "##vso["):
        assert command not in stderr, command


def test_an_error_reply_with_an_empty_message_is_described():
    # A patched executor can answer {"ok": false, "error": {"message": ""}}: splitlines()[0] was an IndexError.
    assert StudentRaised({"type": "X", "message": " \n "}).describe() == "an exception with no message"
    assert StudentRaised({"message": "ValueError: no\nmore"}).describe() == "ValueError: no"


# -- memory: conversions are refused before they allocate ---------------------------------------------

HUGE = torch.zeros(1, dtype=torch.bool).expand(2**40)  # 2**40 elements that take one byte: .double() is 8 TB


def test_a_huge_tensor_is_refused_before_any_conversion():
    with pytest.raises(TaskFailure, match=r"has 1,099,511,627,776 elements"):
        plain_tensor(HUGE, "q returned", finite=True)
    with pytest.raises(TaskFailure, match="elements"):
        pair_of_tensors((HUGE, HUGE), "get_context_mask", "c_hot, c_mask")
    assert plain_tensor(torch.zeros(MAX_ELEMENTS), "a batch").shape == (MAX_ELEMENTS,)


def test_schedule_tensors_of_the_wrong_shape_are_never_converted():
    # The student's schedule is only converted to float64 once every tensor has shape (T,).
    tensors = {f"schedule.{name}": HUGE for name in _schedule_runs.SCHEDULE_NAMES}
    assert [source for source, _ in _schedule_runs.schedules_to_try(150, tensors)] == ["reference"]

    class Context:
        @staticmethod
        def get(*names):
            return dict.fromkeys(names, HUGE)

    assert _schedule_runs.student_schedule(Context()) == {}


GRADE_AND_MEASURE = """
import json, resource, sys
from grader.grading.runner import grade
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = grade(sys.argv[1], ["q", "context_mask"], device="cpu", seed=1, timeout=60, total_timeout=300)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"growth_mb": (after - before) / 1024, "tasks": {t.id: [t.status, t.message] for t in result.tasks}}))
"""


@pytest.mark.slow
def test_two_200m_element_bool_tensors_cost_the_grader_little(tmp_path):
    """q returns two 200M-element bool tensors (400 MB, under the frame cap): the grader peaked at
    4.5 GB converting them; now the reply costs about its size and the task fails with a message."""
    path = _submission(
        tmp_path,
        q_return="    return torch.zeros(200_000_000, dtype=torch.bool), torch.zeros(200_000_000, dtype=torch.bool)\n",
    )
    run = subprocess.run(
        [sys.executable, "-c", GRADE_AND_MEASURE, str(path)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(CHECKOUT)},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    found = json.loads(run.stdout.splitlines()[-1])
    assert found["tasks"]["q"][0] == "failed" and "200,000,000 elements" in found["tasks"]["q"][1], found
    assert found["tasks"]["context_mask"][0] == "passed", found
    assert found["growth_mb"] < 700, found  # the reply is 400 MB: 487 MB measured, 3907 before the fix


@pytest.mark.slow
def test_a_reply_past_the_grader_memory_bound_fails_its_task_and_the_grade_goes_on(tmp_path):
    """With --grader-memory-mb, a 400 MB reply that does not fit fails q as a broken protocol
    (not an internal error), and context_mask passes in a fresh child. Importing torch alone
    takes about 790 MB of the data limit, so 1,000 MB leaves no room for the reply."""
    path = _submission(
        tmp_path,
        q_return="    return torch.zeros(200_000_000, dtype=torch.bool), torch.zeros(200_000_000, dtype=torch.bool)\n",
    )
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "grader",
            str(path),
            "--tasks",
            "q,context_mask",
            "--device",
            "cpu",
            "--format",
            "json",
            "--grader-memory-mb",
            "1000",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(CHECKOUT)},
    )
    assert run.returncode == 1, run.stderr[-2000:]
    tasks = {task["id"]: task for task in json.loads(run.stdout)["tasks"]}
    assert tasks["q"]["status"] == "failed", tasks["q"]
    assert "the child sent more than the grader's memory allows" in tasks["q"]["message"], tasks["q"]
    assert tasks["context_mask"]["status"] == "passed", tasks["context_mask"]
