"""Device flow of the child's executor, on a device that is not the CPU's default.

No GPU is needed: the `meta` device carries shapes and devices but no values, and torch refuses
any operation that mixes a meta tensor with a CPU one. So an executor run with device `meta`
fails exactly where, on CUDA, a tensor or module would be left on the CPU while the grader's
weights and inputs are decoded onto the GPU (a device mismatch, a false fail for correct work).

The executor is driven in-process through its own command entry (`Executor.answer`), with the
arguments wire-encoded as the grader sends them, so decoding onto the device is covered too.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

import grader
from reference import blocks as reference_blocks
from reference.unet import UNet
from tasks.blocks import KINDS

sys.path.insert(0, str(Path(grader.__file__).parent / "sandbox"))  # the child imports `executor`
from executor import harness, wire
from executor.main import Executor

pytestmark = pytest.mark.usefixtures("single_thread")

META = torch.device("meta")
# kind -> (constructor arguments, input shapes): the trials tasks/blocks.py makes
BLOCKS = KINDS


def executor_on(device: torch.device, **names) -> Executor:
    executor = Executor({"course": ""})
    executor.device = device
    executor.send_progress = lambda phase, done, total: None  # no grader pipe in-process
    executor.namespace.update(torch=torch, nn=torch.nn, device=device, **names)
    return executor


def send(executor: Executor, op: str, **arguments) -> dict:
    """Encode the arguments as the grader does (tensors become blobs) and run the command."""
    encoder = wire.Encoder()
    command = {key: encoder.encode(value) for key, value in arguments.items()}
    executor.blobs = encoder.blobs
    return executor.answer({"op": op, **command})


@pytest.mark.parametrize("kind", sorted(BLOCKS))
def test_a_block_is_built_on_the_device_of_its_weights_and_inputs(kind):
    """The blocks task's trial: build the class, load the reference weights, run forward."""
    cls = getattr(reference_blocks, kind)
    args, shapes = BLOCKS[kind]
    state = cls(*args).state_dict()
    inputs = [torch.rand(*shape) for shape in shapes]
    executor = executor_on(META, **{kind: cls})
    reply = send(executor, "module", target=kind, args=list(args), state=dict(state), inputs=inputs)
    assert reply["ok"], reply
    output = reply["value"]
    assert output.device == META
    with torch.no_grad():
        expected = cls(*args).eval()(*inputs)
    assert output.shape == expected.shape


def test_a_call_gets_its_tensors_and_stubs_on_the_device():
    def student(x, c, model):
        return model(x, None, c, torch.ones(c.shape[0], 1, device=device))  # noqa: F821 - the student's global

    executor = executor_on(META, student=student)
    student.__globals__["device"] = META
    encoder = wire.Encoder()
    x, c = encoder.encode(torch.rand(2, 1, 4, 4)), encoder.encode(torch.eye(10)[:2])
    executor.blobs = encoder.blobs
    stub = {"$stub": "tiny_model", "args": {"$dict": {}}}
    reply = executor.answer({"op": "call", "target": "student", "args": [x, c, stub]})
    assert reply["ok"], reply
    assert reply["value"].device == META and reply["value"].shape == (2, 1, 4, 4)


def _sample_w(model, c, w=0.0):
    """A sampler as students write it: noise made on the notebook's `device`."""
    x = torch.randn(c.shape[0], 1, 28, 28, device=device)  # noqa: F821 - the notebook's global
    t = torch.zeros(c.shape[0], 1, device=device)  # noqa: F821
    return model(x, t, c, torch.ones(c.shape[0], 1, device=device))  # noqa: F821


def test_generation_builds_loads_and_samples_on_the_device():
    """The generation steps: a fresh model at a narrow width with the grader's weights, then sample_w."""
    narrow = (16, 32, 64)
    student_model = UNet(150, 1, 28, down_chs=narrow, t_embed_dim=8, c_embed_dim=10)
    _sample_w.__globals__["device"] = META
    executor = executor_on(META, model=student_model, sample_w=_sample_w, T=150, IMG_CH=1, IMG_SIZE=28, N_CLASSES=10)
    state = UNet(150, 1, 28, down_chs=narrow, t_embed_dim=8, c_embed_dim=10).state_dict()
    built = send(
        executor,
        "build",
        slot="fresh",
        target="model",
        class_of=True,
        args=[150, 1, 28],
        kwargs={"down_chs": narrow, "t_embed_dim": 8, "c_embed_dim": 10},
    )
    assert built == {"ok": True, "value": {"built": "UNet"}, "records": {}}, built
    loaded = send(executor, "load", target="fresh", state=dict(state))
    assert loaded == {"ok": True, "value": {"loaded": True}, "records": {}}, loaded
    assert all(p.device == META for p in executor.slots["fresh"].parameters())
    # a digit of the draw (tasks/generation/stages.py, `draw`): sample_w with a seeded stand-in of the model
    from grader.sandbox.frames import ArgumentEncoder
    from tasks.base import named, stub

    model = stub("seeded_model", model=named("fresh"), bf16=False, seed=0)  # the tracer reads values: not on meta
    c_hot = torch.nn.functional.one_hot(torch.full((2,), 3), 10).float()
    encoder = ArgumentEncoder()  # the grader's: a stand-in's spec goes as it is
    call = {"target": "sample_w", "args": [model, c_hot], "kwargs": {"w": 1.0}, "no_grad": True}
    command = {key: encoder.encode(value) for key, value in call.items()}
    executor.blobs = encoder.blobs
    sampled = executor.answer({"op": "call", **command})
    assert sampled["ok"], sampled
    assert sampled["value"].shape == (2, 1, 28, 28) and sampled["value"].device == META


def test_the_training_cell_check_runs_its_stand_ins_on_the_device():
    """training_loop's check: the student's loop over the grader's batches with a stand-in model."""
    code = (
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "for epoch in range(1):\n"
        "    for step, batch in enumerate(dataloader):\n"
        "        optimizer.zero_grad()\n"
        "        x = batch[0].to(device)\n"
        "        t = torch.randint(0, 150, (x.shape[0],), device=device)\n"
        "        c_hot, c_mask = get_context_mask(batch[1], 0.1)\n"
        "        loss = get_loss(model, x, t, c_hot, c_mask)\n"
    )
    executor = executor_on(META)
    reply = send(
        executor,
        "training_cell",
        code=code,
        filename="<cell 9>",
        images=torch.rand(8, 1, 28, 28),
        labels=torch.arange(8),
        order=torch.arange(8),
        batch_size=4,
        batches_per_epoch=2,
        budget=2,
    )
    assert reply["ok"], reply
    assert reply["value"]["error"] is None, reply["value"]["error"]
    assert reply["value"]["batch_count"] == 2


def test_the_blank_sampler_of_a_training_cell_makes_images_on_the_device():
    images = harness.blank_sampler(META)(None, torch.zeros(3, 10, device=META))
    assert images.device == META and images.shape == (3, 1, 28, 28)


# -- an optimizer built in an earlier cell ---------------------------------------------------
TRAINING_STEP = (
    "for batch in dataloader:\n"
    "    optimizer.zero_grad()\n"
    "    loss = model(batch).pow(2).sum()\n"
    "    loss.backward()\n"
    "    optimizer.step()\n"
)


def test_an_optimizer_from_an_earlier_cell_trains_the_model_the_grader_swapped_in():
    """`optimizer = Adam(model.parameters(), ...)` in its own cell holds the notebook's model; the
    grader's model must still train, with the student's lr, betas and weight decay."""
    torch.manual_seed(0)
    notebook_model, graders_model = torch.nn.Linear(3, 1), torch.nn.Linear(3, 1)
    optimizer = torch.optim.Adam(notebook_model.parameters(), lr=0.05, betas=(0.8, 0.9), weight_decay=0.01)
    namespace = {"torch": torch, "model": notebook_model, "optimizer": optimizer}
    before, untouched = graders_model.weight.detach().clone(), notebook_model.weight.detach().clone()
    error = harness.run_cell(
        namespace, TRAINING_STEP, "<cell 9>", [torch.rand(4, 3)] * 3, {"model": graders_model}, "cpu"
    )
    assert error is None
    assert not torch.equal(graders_model.weight, before)  # the grader's model trained
    assert torch.equal(notebook_model.weight, untouched)  # the notebook's model did not
    assert namespace["optimizer"] is optimizer  # the student's namespace is left as it was


def test_the_rebuilt_optimizer_keeps_the_students_settings():
    notebook_model, graders_model = torch.nn.Linear(3, 1), torch.nn.Linear(3, 1)
    optimizer = torch.optim.AdamW(notebook_model.parameters(), lr=0.05, betas=(0.8, 0.9), weight_decay=0.3)
    optimizer.param_groups[0]["lr"] = 0.02  # as a scheduler leaves it
    scratch = {"optimizer": optimizer, "model": graders_model}
    harness.rebind_optimizers(scratch, graders_model)
    fresh = scratch["optimizer"]
    assert type(fresh) is torch.optim.AdamW and fresh is not optimizer
    group = fresh.param_groups[0]
    assert (group["lr"], group["betas"], group["weight_decay"]) == (0.02, (0.8, 0.9), 0.3)
    assert [id(p) for p in group["params"]] == [id(p) for p in graders_model.parameters()]


def test_an_optimizer_already_over_the_swapped_model_is_kept():
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scratch = {"optimizer": optimizer}
    harness.rebind_optimizers(scratch, model)
    assert scratch["optimizer"] is optimizer


# -- generation's training step: the MNIST batches the grader sends ------------------------------
COURSE_TRAINING_CELL = (
    "model.train()\n"
    "for epoch in range(2):\n"
    "    for step, batch in enumerate(dataloader):\n"
    "        optimizer.zero_grad()\n"
    "        x = batch[0].to(device)\n"
    "        c_hot, c_mask = get_context_mask(batch[1], 0.1)\n"
    "        t = torch.randint(0, 150, (x.shape[0],), device=device).float()\n"
    "        loss = get_loss(model, x, t, c_hot, c_mask)\n"
    "        loss.backward()\n"
    "        optimizer.step()\n"
)


def _course_mask(c, drop_prob):
    c_hot = torch.nn.functional.one_hot(c.to(torch.int64), num_classes=10).float().to(device)  # noqa: F821
    return c_hot, torch.bernoulli(torch.ones_like(c_hot) - drop_prob).to(device)  # noqa: F821


LOSS_INPUTS = []  # the devices of what each get_loss call was given and returned


def _course_loss(model, x_0, t, *model_args):
    noise = torch.randn_like(x_0)
    loss = torch.nn.functional.mse_loss(model(x_0 + noise, t, *model_args), noise)
    LOSS_INPUTS.append({x_0.device, t.device, loss.device, *(argument.device for argument in model_args)})
    return loss


def test_training_puts_the_graders_images_on_the_device_and_trains_the_model_there(monkeypatch):
    """The train command: the images the grader sends (uint8, only those its order reaches, made by
    tasks.generation.stages.training_batches) decoded onto the device, batches picked by an order
    decoded there, the student's cell and an optimizer from an earlier cell rebuilt over the
    grader's model."""
    from tasks.generation.stages import training_batches

    images, labels, positions = training_batches(torch.randperm(70_000)[:64])
    narrow = (16, 32, 64)
    notebook_model = UNet(150, 1, 28, down_chs=narrow, t_embed_dim=8, c_embed_dim=10)
    _course_mask.__globals__["device"] = META
    executor = executor_on(
        META,
        model=notebook_model,
        optimizer=torch.optim.Adam(notebook_model.parameters()),
        get_context_mask=_course_mask,
        get_loss=_course_loss,
    )
    graders_model = UNet(150, 1, 28, down_chs=narrow, t_embed_dim=8, c_embed_dim=10).to(META)
    executor.slots["fresh"] = graders_model
    loaders = []
    LOSS_INPUTS.clear()
    batches = harness.GraderBatches
    monkeypatch.setattr(harness, "GraderBatches", lambda *args: loaders.append(batches(*args)) or loaders[-1])
    reply = send(
        executor,
        "train",
        target="fresh",
        code=COURSE_TRAINING_CELL,
        filename="<cell 9>",
        images=images,
        labels=labels,
        order=positions,
        batch_size=8,
        batches_per_epoch=2,
        steps=3,
        seed=0,
    )
    assert reply["ok"], reply
    value = reply["value"]
    assert value["error"] is None, value["error"]
    assert value["batch_count"] == 3  # the budget stopped the second epoch at its second batch
    images, labels = loaders[0].images, loaders[0].labels
    assert (images.device, labels.device) == (META, META)
    assert (images.shape, labels.shape, images.dtype, labels.dtype) == (
        (64, 1, 28, 28),
        (64,),
        torch.float32,
        torch.int64,
    )
    assert [mask["c"].device for mask in value["masks"]] == [META] * 4  # the grader's labels, on the device
    assert [{META}] * 3 == LOSS_INPUTS
    assert all(p.device == META for p in graders_model.parameters())


# -- the course flow: what the kernel saves comes back to the grader's CPU --------------------
def test_weights_a_kernel_saved_on_a_gpu_are_read_onto_the_cpu(tmp_path, monkeypatch):
    """course._load reads the kernel's files with map_location="cpu": a file whose tensors were
    saved from CUDA (tagged so here, as torch.save would tag them) loads on a grader without one."""
    from executor import course

    state = {"weight": torch.rand(3, 2), "bias": torch.rand(3)}
    path = tmp_path / "saved.pt"
    with monkeypatch.context() as patch:
        patch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        torch.save(state, path)
    if not torch.cuda.is_available():  # the file really claims CUDA: without a map it cannot load here
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(path, weights_only=True)
    loaded = course._load(str(path))
    assert loaded is not None and sorted(loaded) == ["bias", "weight"]
    assert all(value.device == torch.device("cpu") and torch.equal(value, state[key]) for key, value in loaded.items())


class _Compiled(torch.nn.Module):
    """What torch.compile returns: the model under `_orig_mod`."""

    def __init__(self, model):
        super().__init__()
        self._orig_mod = model


def test_the_kernels_model_is_saved_as_float_weights_on_the_cpu(tmp_path, monkeypatch):
    """The cell course.py appends: the final model's weights, copied to the CPU as float32."""
    from executor import course

    monkeypatch.chdir(tmp_path)
    model = torch.nn.Linear(2, 3).half()
    exec(compile(course.SAVE_MODEL, "<save>", "exec"), {"model": _Compiled(model)})
    saved = course._load(course.MODEL_FILE)
    assert saved is not None and sorted(saved) == ["bias", "weight"]
    assert all(value.device == torch.device("cpu") and value.dtype == torch.float32 for value in saved.values())
    assert torch.equal(saved["weight"], model.weight.float())
    # On another device the cell copies out to the CPU (meta has no values to copy, so it says so).
    with pytest.raises(NotImplementedError, match="meta"):
        exec(compile(course.SAVE_MODEL, "<save>", "exec"), {"model": torch.nn.Linear(2, 3, device=META)})
