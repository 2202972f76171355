"""The grader's side of the device flow: its checks run on the CPU by design, whatever the device.

The child works on the grade's device (tests/test_device_flow.py). The grader never does: it
makes every input on the CPU (`context.generator`, the reference library), the protocol
decodes every tensor the child returns onto the CPU whatever device the child says it came
from, and the generation task's own samples and predictions (tasks/generation/trusted.py,
provenance.py) use CPU models. `context.device` only chooses budgets and bf16.

The unit tasks are graded here against the example submission with the grade's device set to
`meta`: a task that made an input or a comparison on `context.device` would send a meta tensor
(which has no bytes to send) or mix it with the child's CPU values, and fail.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

import grader
from grader.grading.session import PREAMBLE, Grading
from grader.sandbox.frames import ArgumentEncoder, decode_value
from grader.sandbox.parent import Outcome
from reference.course_path import course_path
from tasks import UNIT_TASK_IDS

sys.path.insert(0, str(Path(grader.__file__).parent / "sandbox"))  # the child imports `executor`
from executor import wire
from executor.main import Executor

pytestmark = pytest.mark.usefixtures("single_thread")

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "submission.py"
CPU = torch.device("cpu")


def test_a_tensor_the_child_returns_is_rebuilt_on_the_cpu_whatever_device_it_names():
    tree = {"$tensor": 0, "dtype": "float32", "shape": [2], "device": "cuda"}
    value = decode_value(tree, [torch.tensor([1.0, 2.0]).numpy().tobytes()])
    assert value.device == CPU and value.tolist() == [1.0, 2.0]


def test_the_childs_replies_carry_cpu_bytes_from_its_device():
    """The child's encoder copies a tensor off its device before taking its bytes; meta has none."""
    encoder = wire.Encoder()
    assert encoder.encode(torch.ones(2, device="meta")) == {"$opaque": "tensor on the meta device (no values)"}
    tree = encoder.encode(torch.arange(3.0))
    assert decode_value(tree, encoder.blobs).tolist() == [0.0, 1.0, 2.0]


class InProcessChild:
    """The contained child's command loop, run in this process on the CPU: arguments encoded by the
    grader's encoder, answered by the executor, the reply encoded by the child and decoded by the
    grader, exactly the bytes that would cross the pipes."""

    def __init__(self):
        self.executor = Executor({"course": str(course_path())})
        self.setup_reply, self.attempted_imports = {"cuda": False}, []

    def start(self, timeout: float) -> Outcome:
        exec(compile(PREAMBLE, "<preamble>", "exec"), self.executor.namespace)
        return Outcome("ok")

    def request(self, op: str, timeout: float, on_progress=None, **payload) -> Outcome:
        encoder = ArgumentEncoder()
        command = {key: encoder.encode(value) for key, value in payload.items()}
        self.executor.blobs = encoder.blobs
        self.executor.send_progress = lambda *event: on_progress(*event) if on_progress else None
        reply_encoder = wire.Encoder()
        tree = reply_encoder.encode(self.executor.answer({"op": op, **command}))
        reply = decode_value(tree, reply_encoder.blobs)
        if reply["ok"]:
            return Outcome("ok", value=reply.get("value"), records=reply.get("records") or {})
        return Outcome("error", error=reply["error"])

    def limit_received(self, limit) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.fixture
def course_modules(monkeypatch):
    """The course's stand-in `utils` importable, as in the child; none left behind afterwards."""
    monkeypatch.syspath_prepend(str(course_path()))
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.split(".")[0] in ("utils", "run_assessment"):
            del sys.modules[name]


def test_the_unit_tasks_judge_on_the_cpu_when_the_grade_runs_on_another_device(tmp_path, course_modules):
    grading = Grading(EXAMPLE, device="meta", seed=0, timeout=60.0, workdir=tmp_path, contain=False)
    grading.sandbox = InProcessChild()
    results = {task_id: grading.grade_task(task_id) for task_id in UNIT_TASK_IDS}
    statuses = {task_id: result.status for task_id, result in results.items()}
    assert statuses == dict.fromkeys(UNIT_TASK_IDS, "passed"), {key: r.message for key, r in results.items()}
    assert grading.cell_errors == {}  # every cell of the example ran in the in-process child


def test_the_generation_tasks_own_model_samples_and_heldout_batch_are_on_the_cpu():
    """tasks/generation/trusted.py: the grader's copy of the weights (as the child returns them,
    on the CPU) samples and predicts on the CPU; it takes no device, so a grade on CUDA changes nothing."""
    from reference.unet import UNet
    from tasks.generation.trusted import heldout_batch, trusted_model, trusted_samples

    state = UNet(150, 1, 28, (16, 32, 64)).state_dict()
    assert all(parameter.device == CPU for parameter in trusted_model(state).parameters())
    samples = trusted_samples(state, w=1.0, per_digit=1, seed=0, T=3)
    assert samples.device == CPU and samples.shape == (10, 1, 28, 28) and samples.dtype == torch.float32
    assert {tensor.device for tensor in heldout_batch(0).values()} == {CPU}
