"""A batch answered by forked copies of the child (grader/sandbox/executor/fanout.py) answers as
the same batch answered one command after another, and a copy that ends early, lies or reaches
for what is not its own is read as the child would be read.

The executor runs in this process for the copies' logic (each test forks pytest's process; a
copy leaves with os._exit); the draw itself is checked in a contained child at the end.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import grader
from grader.grading.context import ChildLost, Context
from grader.sandbox.executor import commands
from grader.sandbox.parent import SIGNAL_MEANINGS, Outcome, answer_outcome
from tasks.base import StudentRaised
from tasks.declaration import TaskOptions

sys.path.insert(0, str(Path(grader.__file__).parent / "sandbox"))  # the child imports `executor`
from executor import wire
from executor.main import Executor

pytestmark = pytest.mark.usefixtures("single_thread")

STUDENT = """
import os, stat, time, torch
calls = 0

def pid(k):
    global calls
    calls += 1
    return [os.getpid(), k, calls]

def noisy(k):
    torch.manual_seed(k)
    return torch.randn(3, 4) * k

def raises(k):
    raise ValueError(f"bad {k}")

def leaves(k):
    os._exit(3)

def threads(k):
    torch.set_num_threads(4)
    return torch.get_num_threads()

def pipes(k):
    return sorted(fd for fd in range(3, 1024) if _is_pipe(fd))

def garbage(k):
    # a frame length far past any limit, on every pipe the batch opened that this process may write to
    import fcntl
    for fd in set(pipes(k)) - BEFORE:
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_WRONLY:
            os.write(fd, bytes([255] * 4) + b" junk")
    return k

def _is_pipe(fd):
    try:
        return stat.S_ISFIFO(os.fstat(fd).st_mode)
    except OSError:
        return False
"""


def student_executor(progress: list | None = None) -> Executor:
    executor = Executor({"course": ""})
    executor.send_progress = lambda phase, done, total: (progress if progress is not None else []).append(
        (phase, done, total)
    )
    exec(compile(STUDENT, "<cell 1>", "exec"), executor.namespace)
    return executor


def batch(executor: Executor, calls: list[tuple[str, int]], workers: int, progress: str | None = None) -> list:
    """The executor's answers to one batch of calls `function(k)`, encoded as the grader would send them."""
    encoder = wire.Encoder()
    sent = [
        encoder.encode({"op": commands.CALL, "target": function, "args": [k], "kwargs": {}}) for function, k in calls
    ]
    executor.blobs = encoder.blobs
    reply = executor.answer({"op": commands.BATCH, "commands": sent, "workers": workers, "progress": progress})
    assert reply["ok"] is True, reply
    return reply["value"]


def test_copies_answer_in_order_what_one_process_answers():
    calls = [("noisy", k) for k in range(7)]
    serial = batch(student_executor(), calls, workers=1)
    shared = batch(student_executor(), calls, workers=3)
    assert [a["ok"] for a in shared] == [True] * 7
    for one, other in zip(serial, shared, strict=True):
        assert torch.equal(one["value"], other["value"])


def test_each_copy_is_another_process_and_keeps_its_changes_to_itself():
    executor = student_executor()
    answers = [a["value"] for a in batch(executor, [("pid", k) for k in range(4)], workers=2)]
    pids = {pid for pid, _, _ in answers}
    assert len(pids) == 2 and os.getpid() not in pids
    assert [k for _, k, _ in answers] == [0, 1, 2, 3]
    assert [count for _, _, count in answers] == [1, 1, 2, 2]  # round robin: two calls in each copy
    assert executor.namespace["calls"] == 0  # the copies' counter, not this process's
    one = [a["value"] for a in batch(executor, [("pid", k) for k in range(4)], workers=1)]
    assert {pid for pid, _, _ in one} == {os.getpid()} and executor.namespace["calls"] == 4


def test_an_error_is_that_commands_answer_and_the_others_still_answer():
    answers = batch(student_executor(), [("noisy", 1), ("raises", 2), ("noisy", 3)], workers=2)
    assert answers[0]["ok"] and answers[2]["ok"]
    assert answers[1]["ok"] is False and answers[1]["error"]["kind"] == commands.RAISED
    assert answers[1]["error"]["message"] == "ValueError: bad 2" and answers[1]["error"]["cell"] == "<cell 1>"


def test_a_copy_that_ends_leaves_how_it_ended_for_what_it_had_not_answered():
    """Commands 0 and 2 go to the first copy, 1 and 3 to the second; the second leaves at 1."""
    answers = batch(student_executor(), [("noisy", 0), ("leaves", 1), ("noisy", 2), ("noisy", 3)], workers=2)
    assert [a["ok"] for a in answers] == [True, False, True, False]
    assert answers[1] == answers[3] == {"ok": False, "lost": {"code": 3}}


def test_a_copy_stays_at_one_thread_whatever_the_students_code_asks():
    """A forked copy that runs two OpenMP threads hangs in its first parallel kernel."""
    executor = student_executor()
    assert [a["value"] for a in batch(executor, [("threads", 0), ("threads", 1)], workers=2)] == [1, 1]


def test_a_copy_holds_no_other_copys_pipe():
    """The second copy is forked after the first one's pipe is made: it must have closed its end
    of that pipe, or it could read (and steal) the first copy's answers."""
    before = set(student_executor().namespace["pipes"](0))
    answers = batch(student_executor(), [("pipes", 0), ("pipes", 1), ("pipes", 2)], workers=3)
    for answer in answers:
        assert len(set(answer["value"]) - before) == 1, answer  # its own answer pipe, nothing else


def test_a_copy_that_writes_junk_on_its_answer_pipe_loses_its_share_and_nothing_else():
    executor = student_executor()
    executor.namespace["BEFORE"] = set(executor.namespace["pipes"](0))
    answers = batch(executor, [("noisy", 0), ("garbage", 1), ("noisy", 2), ("noisy", 3)], workers=2)
    assert [a["ok"] for a in answers] == [True, False, True, False]
    assert answers[1] == answers[3] == {"ok": False, "lost": {"broken": "BrokenAnswer"}}
    assert answer_outcome(answers[1]).status == "broken"


def test_progress_is_reported_as_answers_arrive():
    progress: list = []
    batch(student_executor(progress), [("noisy", k) for k in range(3)], workers=2, progress="drawing")
    assert progress == [("drawing", 1, 3), ("drawing", 2, 3), ("drawing", 3, 3)]
    progress.clear()
    batch(student_executor(progress), [("noisy", k) for k in range(2)], workers=1)
    assert progress == []  # no phase, no progress


def test_a_cuda_child_answers_one_command_after_another():
    executor = student_executor()
    executor.device = torch.device("meta")  # any device but the CPU: no fork there
    answers = [a["value"] for a in batch(executor, [("pid", k) for k in range(2)], workers=2)]
    assert {pid for pid, _, _ in answers} == {os.getpid()}


# -- the grader's reading of the answers ---------------------------------------------------------
@pytest.mark.parametrize(
    ("lost", "status", "reason"),
    [
        ({"code": 3}, "died", "the student's code ended the process (exit code 3)"),
        ({"code": -9}, "died", SIGNAL_MEANINGS[9]),
        ({"code": "9"}, "broken", "could not be read"),
        ({"broken": "ValueError"}, "broken", "could not be read"),
    ],
)
def test_an_answer_a_copy_did_not_give_reads_as_the_child_lost(lost, status, reason):
    outcome = answer_outcome({"ok": False, "lost": lost})
    assert outcome.status == status and reason in outcome.reason and outcome.child_lost


class FakeGrading:
    """What Context asks of a grading run, answering a batch with `answers`."""

    seed, device, timeout = 0, "cpu", 10.0
    analysis = None
    submission = SimpleNamespace(cells=[])
    failed_tasks = ()

    def __init__(self, answers, threads: int = 2):
        self.answers, self.threads, self.sent = answers, threads, []

    def progress(self, event) -> None:
        pass

    def fanout(self, calls: int) -> int:
        return min(calls, self.threads)

    def request(self, op, timeout, on_progress=None, **payload):
        self.sent.append((op, payload))
        return Outcome("ok", value=self.answers)


def test_ask_each_sends_one_batch_and_settles_each_answer_as_ask_would():
    answers = [
        {"ok": True, "value": 1, "records": {"r": [1]}},
        {"ok": False, "error": {"kind": commands.RAISED, "type": "ValueError", "message": "ValueError: x"}},
        {"ok": False, "lost": {"code": -9}},
    ]
    grading = FakeGrading(answers)
    context = Context(grading, "generation", TaskOptions())  # type: ignore[arg-type]
    outcomes = context.ask_each(commands.CALL, [{"target": "f", "args": [k]} for k in range(3)], "drawing")
    [(op, payload)] = grading.sent
    assert op == commands.BATCH and payload["workers"] == 2 and payload["progress"] == "drawing"
    assert [command["op"] for command in payload["commands"]] == [commands.CALL] * 3
    assert context.settle(outcomes[0]) == (1, {"r": [1]})
    with pytest.raises(StudentRaised):
        context.settle(outcomes[1])
    with pytest.raises(ChildLost):
        context.settle(outcomes[2])


@pytest.mark.parametrize("value", [None, [], [{"ok": True}], [{"ok": True}, {"ok": True}, 3]])
def test_a_batch_not_answered_one_answer_each_breaks_the_protocol(value):
    context = Context(FakeGrading(value), "generation", TaskOptions())  # type: ignore[arg-type]
    with pytest.raises(ChildLost) as lost:
        context.ask_each(commands.CALL, [{"target": "f"}] * 3, "drawing")
    assert lost.value.outcome.status == "broken"


def test_a_grade_fans_out_one_copy_per_thread_of_a_cpu_child_and_none_on_cuda(tmp_path):
    from grader.grading.session import Grading

    grading = Grading(Path(grader.__file__).parents[1] / "examples" / "submission.py", "cpu", 0, 10.0, tmp_path)
    grading.sandbox.setup_reply = {"threads": 2}
    assert [grading.fanout(calls) for calls in (1, 10)] == [1, 2]
    grading.sandbox.setup_reply = {"threads": 64}
    assert grading.fanout(10) == 10 and grading.fanout(40) == 16
    grading.sandbox.setup_reply = {"threads": "2"}
    assert grading.fanout(10) == 1
    grading.device = "cuda"
    grading.sandbox.setup_reply = {"threads": 2}
    assert grading.fanout(10) == 1


# -- the draw in a contained child ---------------------------------------------------------------
TINY_SUBMISSION = """
import os
import torch
import torch.nn as nn

T = 6

class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1)
        self.embed = nn.Linear(10, 1)

    def forward(self, x, t, c, c_mask):
        return self.conv(x) + self.embed(c * c_mask).reshape(-1, 1, 1, 1) + t.reshape(-1, 1, 1, 1) / T

model = Tiny()

def sample_w(model, c, w=0.0):
    if int(c[0].argmax()) == EXIT_AT:
        os._exit(3)
    x = torch.randn(c.shape[0], 1, 28, 28)
    for call in range(CALLS - 1, -1, -1):
        step = call % T
        t = torch.full((2 * c.shape[0],), float(step))
        e = model(torch.cat([x, x]), t, torch.cat([c, c]), torch.cat([torch.ones_like(c), torch.zeros_like(c)]))
        keep, drop = e.chunk(2)
        x = x - 0.1 * ((1 + w) * keep - w * drop) + (0.01 * torch.randn_like(x) if step else 0)
    return x

EXIT_AT = -1
CALLS = T
"""


def test_the_draw_is_the_same_from_copies_of_a_contained_child_and_a_copy_that_ends_reads_as_the_child_did(
    tmp_path,
):
    from grader.grading.session import Grading
    from tasks.generation import stages

    submission = tmp_path / "tiny.py"
    submission.write_text(TINY_SUBMISSION)
    grading = Grading(submission, "cpu", 0, 60.0, tmp_path / "work")
    try:
        assert grading.start_child() is None
        context = Context(grading, "generation", TaskOptions())
        draws = {}
        for workers in (2, 1):
            grading.fanout = lambda calls, workers=workers: workers  # type: ignore[method-assign]
            draws[workers] = stages.draw(context, "model", 2, 1.0, "official sample", bf16=False, traced=True)
        (images_2, traces_2), (images_1, traces_1) = draws[2], draws[1]
        assert images_2.shape == (20, 1, 28, 28) and torch.equal(images_2, images_1)
        assert [[r["t"] for r in trace] for trace in traces_2] == [[r["t"] for r in trace] for trace in traces_1]
        for trace_2, trace_1 in zip(traces_2, traces_1, strict=True):
            assert all(torch.equal(a["x"], b["x"]) for a, b in zip(trace_2, trace_1, strict=True))
        # the larger sample's stand-in keeps no records and draws the same digits from the same seeds
        untraced, no_traces = stages.draw(context, "model", 2, 1.0, "official sample", bf16=False)
        assert torch.equal(untraced, images_1) and no_traces == []

        # The reply holds every digit's records: as many as the child sends for one call, ten times.
        grading.request(commands.EXEC, 10.0, code="CALLS = 400", filename="<cell 2>")
        _, traces = stages.draw(context, "model", 2, 1.0, "official sample", bf16=False, traced=True)
        assert [len(trace) for trace in traces] == [400] * 10

        grading.request(commands.EXEC, 10.0, code="EXIT_AT = 7", filename="<cell 3>")
        reasons = []
        for workers in (2, 1):  # the copy ends and the child lives on; then the child itself ends
            grading.fanout = lambda calls, workers=workers: workers  # type: ignore[method-assign]
            with pytest.raises(ChildLost) as lost:
                stages.draw(context, "model", 2, 1.0, "official sample", bf16=False, traced=True)
            reasons.append((lost.value.outcome.status, lost.value.outcome.reason))
        assert reasons[0] == reasons[1] == ("died", "the student's code ended the process (exit code 3)")
    finally:
        grading.close()
