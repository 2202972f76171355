"""Driving the child for the generation task: build, load, train and sample the student's model.

Every step is a command to the contained child with inputs made here; what comes back is
checked for shape and type before anything is judged. A step that cannot go on raises
StageFailure, which the judge turns into the task's message.
"""

from __future__ import annotations

import ast
from typing import Any

import torch

# `_` is a throwaway name here: the gettext function is i18n._
from grader.core import i18n
from grader.sandbox.executor import commands
from reference import narrow
from reference.unet import UNet
from tasks.base import MAX_ELEMENTS, StudentRaised, derive_seed, kind_of, named, plain_tensor, stub
from tasks.generation.official import COURSE_CHS, ID, OFFICIAL_PER_DIGIT, printed_accuracy
from tasks.generation.trusted import heldout_batch


class StageFailure(Exception):
    """The model could not be made or sampled; `info` says at which stage and why."""

    def __init__(self, stage: str, problem):
        super().__init__(stage)
        self.stage, self.problem = stage, problem


def training_cell(context) -> dict | None:
    facts = context.analysis.training_cell()
    if facts is None or facts.tree is None:
        return None
    return {"code": facts.cell.code, "filename": f"<cell {facts.cell.number}>", "epochs": _harness_epochs(facts.tree)}


def _harness_epochs(tree) -> int | None:
    """The constant the cell assigns to `epochs`, if any (to split a batch budget over epochs)."""
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and any(isinstance(t, ast.Name) and t.id == "epochs" for t in node.targets)
            and isinstance(node.value.value, int)
            and node.value.value > 0
        ):
            return node.value.value
    return None


def draw(
    context, target: str, per_digit: int, w: float, phase: str, bf16: bool, traced: bool = False
) -> tuple[torch.Tensor, list[list]]:
    """per_digit digits of each kind through the student's sample_w, one call a digit as the course
    makes them, checked and on the CPU: the images (10 * per_digit, 1, 28, 28), digit by digit.
    With `traced`, also one trace a digit: the raw records [{"t": step, "x": kept rows}] of every
    call of the model (stubs.TracedModel), which `provenance` checks; else no traces.

    Each call's stand-in model seeds torch's generator for it, so the calls do not depend on each
    other: they go in one batch that copies of the child share (`Context.ask_each`)."""
    calls = []
    for digit in range(10):
        c_hot = torch.nn.functional.one_hot(torch.full((per_digit,), digit), 10).float()
        model = stub(
            "traced_model" if traced else "seeded_model",
            model=named(target),
            bf16=bf16,
            seed=derive_seed(context.seed, ID, phase, str(digit)),
        )
        calls.append({"target": "sample_w", "args": [model, c_hot], "kwargs": {"w": w}, "no_grad": True})
    images, traces = [], []
    for digit, outcome in enumerate(context.ask_each(commands.CALL, calls, phase)):
        value, records = context.settle(outcome)
        if isinstance(value, (tuple, list)) and value:  # some samplers also return their stored steps
            value = value[0]
        if not isinstance(value, torch.Tensor):
            raise StageFailure(
                "sampling",
                i18n._("sample_w returned a {kind} for digit {digit}, expected images").format(
                    kind=kind_of(value), digit=digit
                ),
            )
        out = plain_tensor(
            value,
            i18n._("the images sample_w returned for digit {digit}").format(digit=digit),
            finite=False,
            max_elements=max(MAX_ELEMENTS, per_digit * 28 * 28),
        )  # however many were asked for
        if out.numel() != per_digit * 28 * 28:
            raise StageFailure(
                "sampling",
                i18n._(
                    "sample_w returned shape {shape} for {count} images of digit {digit}; expected {expected}"
                ).format(shape=tuple(out.shape), count=per_digit, digit=digit, expected=f"({per_digit}, 1, 28, 28)"),
            )
        images.append(out.float().reshape(per_digit, 1, 28, 28))
        if traced:
            trace = records.get("traced_model", []) if isinstance(records, dict) else []
            traces.append(trace if isinstance(trace, list) else [])
    return torch.cat(images), traces


def train(context, target: str, steps: int, training: dict, batch_size: int, bf16: bool) -> dict:
    """Train a model in the child through the student's cell on the grader's shuffled epochs."""
    batches_per_epoch = max(1, -(-steps // (training.get("epochs") or 1)))
    images, labels, positions = training_batches(batch_order(context, target, steps, batch_size))
    info, _ = context.ask(
        commands.TRAIN,
        target=target,
        code=training["code"],
        filename=training["filename"],
        images=images,
        labels=labels,
        order=positions,
        batch_size=batch_size,
        batches_per_epoch=batches_per_epoch,
        steps=steps,
        seed=derive_seed(context.seed, ID, "train", target),
        bf16=bf16,
    )
    if not isinstance(info, dict):
        raise StageFailure("training", i18n._("the training run returned no records"))
    return {**info, "batches_per_epoch": batches_per_epoch, "steps_asked": steps}


def batch_order(context, target: str, steps: int, batch_size: int) -> torch.Tensor:
    """Shuffled epochs of the 70,000 images, as the course's DataLoader(shuffle=True) draws them,
    as far as `steps` batches (and the one a budget-stopped loop draws before it stops) reach."""
    generator = context.generator(ID, "order", target)
    reached = (steps + 1) * batch_size
    epochs = -(-reached // 70_000)
    return torch.cat([torch.randperm(70_000, generator=generator) for _ in range(epochs)])[:reached]


def training_batches(order: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """What the child trains on, made here: the images `order` reaches (uint8 (N, 1, 28, 28), as
    the files hold them), their labels, and `order` as positions in them. The child gets no data
    folder: a short transplant run sees 5,248 of the 70,000 images, never the rest."""
    images, labels = all_mnist()
    used, positions = torch.unique(order, return_inverse=True)
    return images[used], labels[used], positions


def all_mnist() -> tuple[torch.Tensor, torch.Tensor]:
    """The 70,000 images (uint8 (N, 1, 28, 28)) and labels, train then test as the course joins them."""
    from reference import mnist

    train_images, train_labels = mnist.load_raw("train")
    test_images, test_labels = mnist.load_raw("test")
    return torch.cat((train_images, test_images)).unsqueeze(1), torch.cat((train_labels, test_labels))


def load_or_fail(context, target: str, state: dict) -> None:
    value, _ = context.ask(commands.LOAD, target=target, state=state)
    if isinstance(value, dict) and "mismatch" in value:
        raise StageFailure("weights", value["mismatch"])
    if isinstance(value, dict) and "not_a_module" in value:
        raise StageFailure("model", i18n._("model is a {kind}, not a torch module").format(kind=value["not_a_module"]))
    if not (isinstance(value, dict) and value.get("loaded") is True):
        raise StageFailure("weights", i18n._("loading the weights answered {kind}").format(kind=kind_of(value)))


def course_flow(context) -> tuple[torch.Tensor, dict | None, dict]:
    """The notebook run top to bottom in a kernel, as the DLI platform runs it: the 50 samples its
    run_assessment drew, the final model's weights when they fit the course's U-Net (for the
    trusted path), and how far the run got."""
    import nbformat

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell.source) for cell in context.cells])
    value, _ = context.ask(
        commands.COURSE_FLOW, notebook=nbformat.writes(notebook), cell_timeout=float(context.timeout)
    )
    if not isinstance(value, dict):
        raise StageFailure("course flow", i18n._("the course flow answered {kind}").format(kind=kind_of(value)))
    numbers = [cell.number for cell in context.cells]
    stopped, assessment = value.get("stopped"), value.get("assessment_cell")
    flow: dict[str, Any] = {  # a JSON document (the grade's details)
        "cells": value.get("cells"),
        "ran": value.get("ran"),
        "assessment_output": str(value.get("assessment_output") or ""),
    }
    flow["course_printed_accuracy"] = printed_accuracy(flow["assessment_output"])
    if isinstance(stopped, dict) and type(stopped.get("cell")) is int and 0 <= stopped["cell"] < len(numbers):
        flow["stopped"] = {"cell": numbers[stopped["cell"]], "error": str(stopped.get("error"))}
        raise StageFailure(
            "course flow",
            i18n._("the notebook stopped at cell {cell} ({error}) before the assessment ran").format(
                cell=flow["stopped"]["cell"], error=flow["stopped"]["error"]
            ),
        )
    if type(assessment) is not int or not 0 <= assessment < len(numbers):
        raise StageFailure("course flow", i18n._("no cell calls run_assessment(model, sample_w, w)"))
    images = value.get("samples")
    if images is None:
        raise StageFailure(
            "course flow",
            i18n._("cell {cell} ran, but run_assessment saved no samples").format(cell=numbers[assessment]),
        )
    images = plain_tensor(images, i18n._("the samples run_assessment drew"), finite=False)
    if tuple(images.shape) != (10 * OFFICIAL_PER_DIGIT, 1, 28, 28):
        raise StageFailure(
            "course flow",
            i18n._("run_assessment drew shape {shape}, not (50, 1, 28, 28)").format(shape=tuple(images.shape)),
        )
    return images.float(), _course_shaped(value.get("model_state")), flow


def _course_shaped(state) -> dict | None:
    """`state` when it is a state dict of plain tensors that loads into the course's U-Net."""
    if not isinstance(state, dict):
        return None
    expected = UNet(150, 1, 28, COURSE_CHS).state_dict()
    if set(state) != set(expected) or not all(
        type(state[k]) is torch.Tensor and state[k].shape == v.shape for k, v in expected.items()
    ):
        return None
    return state


# The course's UNet(T, img_ch, img_size, down_chs, t_embed_dim, c_embed_dim): the notebook's own
# settings where it has them (passed by name, as objects of the child), the course's otherwise.
MODEL_SETTINGS = {"T": 150, "IMG_CH": 1, "IMG_SIZE": 28, "N_CLASSES": 10}
T_EMBED_DIM = 8


def build(context, slot: str, down_chs) -> None:
    """A fresh model of the class of the student's `model` at width `down_chs`, kept in the child
    under `slot`, constructed as the course's notebook constructs its UNet."""
    defined = context.describe(*MODEL_SETTINGS)
    setting = {name: named(name) if name in defined else value for name, value in MODEL_SETTINGS.items()}
    context.ask(
        commands.BUILD,
        slot=slot,
        target="model",
        class_of=True,
        args=[setting["T"], setting["IMG_CH"], setting["IMG_SIZE"]],
        kwargs={"down_chs": tuple(down_chs), "t_embed_dim": T_EMBED_DIM, "c_embed_dim": setting["N_CLASSES"]},
    )


def seeded_start(context, down_chs) -> dict:
    torch.manual_seed(derive_seed(context.seed, ID, "start"))
    return UNet(150, 1, 28, tuple(down_chs)).state_dict()


def returned_state(context, target: str, start: dict) -> dict:
    """The trained weights as the child returns them: plain tensors with the start's keys and shapes."""
    value, _ = context.call(f"{target}.state_dict")
    if not (
        isinstance(value, dict)
        and set(value) == set(start)
        and all(isinstance(value[k], torch.Tensor) and value[k].shape == start[k].shape for k in start)
    ):
        raise StageFailure("weights", {"missing": [], "unexpected": [], "wrong_shape": ["(returned weights)"]})
    if all(torch.equal(value[k].float(), start[k].float()) for k in start):
        raise StageFailure("training", i18n._("the model's weights did not change during training"))
    return value


def short_training(context, steps: int, training: dict, bf16: bool) -> dict:
    """Train a narrow copy of the student's model briefly; its prediction on the held-out batch."""
    try:
        build(context, "narrow", narrow.WIDTHS)
    except StudentRaised as error:  # the class may not take down_chs; that is a finding
        return {"build_error": error.describe()}
    start = narrow.start_state()
    try:
        load_or_fail(context, "narrow", start)
    except StageFailure:
        pass  # a different layout trains from its own start
    info = train(context, "narrow", steps, training, 128, bf16)
    batch = heldout_batch(context.seed)
    info["masks"] = judged_masks(info, context, "narrow", steps, 128)
    prediction, _ = context.call(
        "narrow", batch["x_t"], batch["t"], batch["c_hot"], torch.ones_like(batch["c_hot"]), no_grad=True
    )
    info["heldout_prediction"] = prediction
    return info


def judged_masks(info: dict, context, target: str, steps: int, batch_size: int) -> list[dict]:
    """The recorded masks that reached get_loss, each with a plain drop probability (or None) and
    whether its context was the labels the grader put in that batch."""
    _, labels = all_mnist()  # the labels alone: not the images as float (220 MB)
    order = batch_order(context, target, steps, batch_size)
    masks = [m for m in info.get("masks", []) if isinstance(m, dict)]
    used = {b.get("mask_call") for b in info.get("batches", []) if isinstance(b, dict)}
    judged = []
    for index, mask in enumerate(masks):
        if index not in used:
            continue  # the preview's own mask does not describe training
        drop, c = mask.get("drop_prob"), mask.get("c")
        epoch, step = mask.get("epoch"), mask.get("step")
        expected = None
        if type(epoch) is int and type(step) is int and epoch >= 0 and step >= 0:
            first = (epoch * info.get("batches_per_epoch", 1) + step) * batch_size % len(order)
            expected = labels[order[first : first + batch_size]]
        judged.append(
            {
                "drop_prob": float(drop) if type(drop) is int or type(drop) is float else None,
                "labels_from_batch": bool(
                    isinstance(c, torch.Tensor)
                    and expected is not None
                    and c.shape == expected.shape
                    and torch.equal(c.long(), expected)
                ),
            }
        )
    return judged
