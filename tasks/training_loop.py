"""Task `training_loop`: c_drop_prob and the context passed to get_context_mask (two FIXMEs).

The student's training cell runs as written, in a copy of the namespace, against stand-ins:
a loader of a few small labelled batches, a tiny model, a recording get_context_mask and
get_loss, and no-op sampling and plotting. Every training batch is recorded with the drop
probability its mask was drawn with, so a value changed by the preview block is seen where
it takes effect, batch by batch, not read off the line that sets it.
"""

from __future__ import annotations

import torch

# `_` is a throwaway name here: the gettext function is i18n._
from grader.core import i18n
from grader.core.i18n import N_
from grader.sandbox.executor import commands
from tasks.base import Location, TaskFailure, Verdict
from tasks.context import Context
from tasks.declaration import Task

ID = "training_loop"
TITLE = N_("Training loop (c_drop_prob, context from the batch)")
POINTS = 2
NEEDS = ()
BATCHES_PER_EPOCH = 4
STAND_IN_BATCH = 4
MAX_TRAINING_BATCHES = 60  # enough to see two epochs of any loop; stops runaway epoch counts
MAX_EPOCHS = MAX_TRAINING_BATCHES // BATCHES_PER_EPOCH + 1


def check(context: Context) -> Verdict:
    """Run the training cell against stand-ins on the grader's batches; judge every batch."""
    facts = context.analysis.training_cell()
    if facts is None or facts.tree is None:
        verdict = Verdict()
        verdict.check(
            False,
            POINTS,
            i18n._(
                "no training loop found (a cell with a for loop that calls "
                "get_loss, loss.backward() or optimizer.step())"
            ),
        )
        return verdict
    generator = context.generator(ID)
    images = torch.rand(4 * STAND_IN_BATCH, 1, 28, 28, generator=generator)
    labels = torch.randint(0, 10, (4 * STAND_IN_BATCH,), generator=generator)
    order = torch.cat([torch.randperm(len(labels), generator=generator) for _ in range(MAX_EPOCHS)])
    info, _ = context.ask(
        commands.TRAINING_CELL,
        code=facts.cell.code,
        filename=f"<cell {facts.cell.number}>",
        images=images,
        labels=labels,
        order=order,
        batch_size=STAND_IN_BATCH,
        batches_per_epoch=BATCHES_PER_EPOCH,
        budget=MAX_TRAINING_BATCHES,
    )
    return judge(read_records(info, labels, order), context, Location(facts.cell.number, None))


def read_records(info, labels: torch.Tensor, order: torch.Tensor) -> dict:
    """The child's raw records, checked for shape and against the grader's own batches.

    Whether the context given to get_context_mask is the batch's labels is decided here, from
    the tensor the student passed and the labels the grader put in that batch.
    """
    if not isinstance(info, dict):
        raise TaskFailure(i18n._("the training cell's records are missing"))
    masks = [m for m in info.get("masks", []) if isinstance(m, dict)]
    batches = [b for b in info.get("batches", []) if isinstance(b, dict)]
    for mask in masks:
        drop = mask.get("drop_prob")
        mask["drop_prob"] = float(drop) if type(drop) in (int, float) else None  # type: ignore[arg-type]  # (not bool)
        epoch, step = mask.get("epoch"), mask.get("step")
        expected = _batch_labels(labels, order, epoch, step)
        c = mask.get("c")
        mask["labels_from_batch"] = bool(
            expected is not None
            and isinstance(c, torch.Tensor)
            and c.shape == expected.shape
            and torch.equal(c.long(), expected)
        )
    for batch in batches:
        call = batch.get("mask_call")
        if not (type(call) is int and 0 <= call < len(masks)):
            batch["mask_call"] = None
    error = info.get("error")
    if error is not None and not isinstance(error, dict):
        error = {"message": str(error)[:300], "line": None}
    return {"mask_calls": masks, "batches": batches, "error": error}


def _batch_labels(labels, order, epoch, step):
    if not (type(epoch) is int and type(step) is int and epoch >= 0 and 0 <= step < BATCHES_PER_EPOCH):
        return None
    first = (epoch * BATCHES_PER_EPOCH + step) * STAND_IN_BATCH % len(order)
    return labels[order[first : first + STAND_IN_BATCH]]


def _at(record) -> str:
    return i18n._("epoch {epoch}, step {step}").format(epoch=record["epoch"], step=record["step"])


def _describe_bad(bad, used, masks, batches) -> list[str]:
    """One sentence per offending drop probability: how often, where first, and why if known."""
    training_calls = {batch["mask_call"] for batch in batches}
    sentences = []
    for value in sorted({call["drop_prob"] for _, call in bad}, key=lambda v: (v is None, v)):
        hits = [(batch, call) for batch, call in bad if call["drop_prob"] == value]
        batch, _ = hits[0]
        shown = i18n._("not a number") if value is None else f"{value:g}"
        sentence = i18n._("c_drop_prob is {value} for {count} of {total} training batches, first at {at}").format(
            value=shown, count=len(hits), total=len(used), at=_at(batch)
        )
        previews = [i for i in range(batch["mask_call"]) if i not in training_calls and masks[i]["drop_prob"] == value]
        if value == 0 and previews:
            sentence += i18n._(
                ": the preview at {at} sets c_drop_prob = 0 and the training batches after it reuse that value"
            ).format(at=_at(masks[previews[-1]]))
        elif value == 0:
            sentence += i18n._(": the model never learns the unconditional prediction that guidance needs")
        elif value is not None and value >= 1:
            sentence += i18n._(": every label is dropped, so the model does not learn the digits")
        sentences.append(sentence)
    return sentences


def judge(info: dict, context, where: Location) -> Verdict:
    """Every training batch: drop probability strictly between 0 and 1, context from its labels."""
    verdict = Verdict(location=where)
    masks, batches = info["mask_calls"], info["batches"]
    if not batches:
        reason = i18n._(": the cell raised {error}").format(error=info["error"].get("message")) if info["error"] else ""
        if info["error"] and type(info["error"].get("line")) is int:
            verdict.location = Location(where.cell, info["error"]["line"])
        verdict.check(False, POINTS, i18n._("the training loop never called get_loss{reason}").format(reason=reason))
        return verdict
    used = []
    for batch in batches:
        call = masks[batch["mask_call"]] if batch["mask_call"] is not None else None
        used.append((batch, call))
    verdict.details["training_batches"] = len(used)
    verdict.details["drop_probs"] = [call["drop_prob"] if call else None for _, call in used]

    unmasked = [batch for batch, call in used if call is None]
    bad = [
        (batch, call)
        for batch, call in used
        if call and not (call["drop_prob"] is not None and 0 < call["drop_prob"] < 1)
    ]
    if unmasked:
        verdict.check(
            False,
            1,
            i18n._("the mask given to get_loss at {at} was not made by get_context_mask for that batch").format(
                at=_at(unmasked[0])
            ),
            "c_hot, c_mask = get_context_mask(batch[1], c_drop_prob)",
        )
    elif bad:
        verdict.check(
            False,
            1,
            "; ".join(_describe_bad(bad, used, masks, batches)),
            i18n._("set c_drop_prob (e.g. 0.1) inside the inner loop, before get_context_mask"),
        )
    else:
        verdict.check(True, 1, "")
        values = sorted({call["drop_prob"] for _, call in used if call})  # every batch has its call here
        if len(values) > 1:
            verdict.note(
                i18n._(
                    "c_drop_prob varies during training ({low} to {high}); every value lies strictly between 0 and 1"
                ).format(low=f"{values[0]:g}", high=f"{values[-1]:g}")
            )
        elif values[0] != 0.1:
            verdict.note(i18n._("c_drop_prob is {value}; the course uses 0.1").format(value=f"{values[0]:g}"))

    from_labels = [call["labels_from_batch"] for _, call in used if call]
    verdict.check(
        bool(from_labels) and all(from_labels),
        1,
        i18n._("the context given to get_context_mask is not the batch's labels"),
        "c_hot, c_mask = get_context_mask(batch[1], c_drop_prob)",
    )
    if info["error"] and not verdict.failures:
        verdict.note(
            i18n._("the training cell stopped with {error} after the recorded batches").format(
                error=info["error"].get("message")
            )
        )
    return verdict


TASK = Task(
    id=ID,
    title=TITLE,
    points=POINTS,
    order=70,
    needs=NEEDS,
    answers=("c_drop_prob",),
    uses_training_cell=True,
    check=check,
)
