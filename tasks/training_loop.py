"""Task `training_loop`: c_drop_prob and the context passed to get_context_mask (two FIXMEs).

The student's training cell runs as written, in a copy of the namespace, against stand-ins:
a loader of a few small labelled batches, a tiny model, a recording get_context_mask and
get_loss, and no-op sampling and plotting. Every training batch is recorded with the drop
probability its mask was drawn with, so a value changed by the preview block is seen where
it takes effect, batch by batch, not read off the line that sets it.
"""

from __future__ import annotations


import torch
import torch.nn.functional as F

from grader.result import Location
from reference.conditioning import get_context_mask as reference_mask
from tasks import _harness
from tasks.base import Evidence, Verdict

ID = "training_loop"
TITLE = "Training loop (c_drop_prob, context from the batch)"
POINTS = 2
NEEDS = ()
BATCHES_PER_EPOCH = 4
STAND_IN_BATCH = 4
MAX_TRAINING_BATCHES = 60  # enough to see two epochs of any loop; stops runaway epoch counts


class TinyModel(torch.nn.Module):
    """Cheap stand-in with the course model's call signature model(x, t, c, c_mask)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 1, 1)
        self.embed = torch.nn.Linear(10, 1)

    def forward(self, x, t, c, c_mask):
        context = self.embed((c * c_mask).float()).reshape(-1, 1, 1, 1)
        return self.conv(x) + context


def prepare(out_dir, seed: int, analysis) -> dict:
    """Hand the child the training cell's code (unfiltered: it must run as written)."""
    facts = analysis.training_cell()
    if facts is None or facts.tree is None:
        return {"code": None}
    return {"code": facts.cell.code, "filename": f"<cell {facts.cell.number}>",
            "loaders": _harness.loader_names(facts.tree)}


def probe(namespace: dict, out_dir: str, code: str | None = None, filename: str = "",
          loaders: list[str] = ()) -> dict:
    """Run the training cell against the stand-ins and return what each batch used."""
    if code is None:
        return {"found": False}
    device = torch.device("cpu")
    if isinstance(namespace.get("device"), (str, torch.device)):
        device = torch.device(namespace["device"])
    generator = torch.Generator().manual_seed(0)
    loader = _harness.BatchLoader(
        torch.rand(4 * STAND_IN_BATCH, 1, 28, 28, generator=generator).to(device),
        torch.randint(0, 10, (4 * STAND_IN_BATCH,), generator=generator).to(device),
        STAND_IN_BATCH, BATCHES_PER_EPOCH)
    mask_calls, batches = [], []
    drop_of_mask = {}

    def recording_mask(c, drop_prob, *args, **kwargs):
        labels = torch.as_tensor(c)
        is_labels = labels.dim() == 1 and labels.numel() > 0
        record = {"epoch": loader.epoch, "step": loader.step, "drop_prob": _number(drop_prob),
                  "labels_from_batch": bool(is_labels and loader.current is not None
                                            and labels.shape == loader.current[1].shape
                                            and torch.equal(labels.to(device).long(), loader.current[1]))}
        mask_calls.append(record)
        p = record["drop_prob"] if record["drop_prob"] is not None and 0 <= record["drop_prob"] <= 1 else 0.0
        c_hot, c_mask = reference_mask(labels.long().flatten() % 10 if is_labels else torch.zeros(1), p)
        c_hot, c_mask = c_hot.to(device), c_mask.to(device)
        drop_of_mask[id(c_mask)] = len(mask_calls) - 1
        return c_hot, c_mask

    def recording_loss(model, x_0, t, *model_args):
        call = drop_of_mask.get(id(model_args[1])) if len(model_args) > 1 else None
        batches.append({"epoch": loader.epoch, "step": loader.step, "mask_call": call})
        if len(batches) >= MAX_TRAINING_BATCHES:
            raise _harness.StopTraining
        prediction = model(x_0, t, *model_args)
        return F.mse_loss(prediction, torch.zeros_like(prediction))

    error = _harness.run_training_cell(
        namespace, code, filename, loaders, loader,
        {"get_context_mask": recording_mask, "get_loss": recording_loss,
         "model": TinyModel().to(device), "BATCH_SIZE": STAND_IN_BATCH},
    )
    return {"found": True, "mask_calls": mask_calls, "batches": batches, "error": error}


def _number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _at(record) -> str:
    return f"epoch {record['epoch']}, step {record['step']}"


def _describe_bad(bad, used, masks, batches) -> list[str]:
    """One sentence per offending drop probability: how often, where first, and why if known."""
    training_calls = {batch["mask_call"] for batch in batches}
    sentences = []
    for value in sorted({call["drop_prob"] for _, call in bad}, key=lambda v: (v is None, v)):
        hits = [(batch, call) for batch, call in bad if call["drop_prob"] == value]
        batch, call = hits[0]
        shown = "not a number" if value is None else f"{value:g}"
        sentence = f"c_drop_prob is {shown} for {len(hits)} of {len(used)} training batches, first at {_at(batch)}"
        previews = [i for i in range(batch["mask_call"])
                    if i not in training_calls and masks[i]["drop_prob"] == value]
        if value == 0 and previews:
            sentence += (f": the preview at {_at(masks[previews[-1]])} sets c_drop_prob = 0 and the "
                         "training batches after it reuse that value")
        elif value == 0:
            sentence += ": the model never learns the unconditional prediction that guidance needs"
        elif value is not None and value >= 1:
            sentence += ": every label is dropped, so the model does not learn the digits"
        sentences.append(sentence)
    return sentences


def judge(evidence: Evidence) -> Verdict:
    """Every training batch: drop probability strictly between 0 and 1, context from its labels."""
    verdict = Verdict(POINTS)
    info = evidence.value
    if not info["found"]:
        verdict.check(False, POINTS, "no training loop found (a cell with a for loop that calls "
                      "get_loss, loss.backward() or optimizer.step())")
        return verdict
    verdict.location = evidence.locate("__training_cell__")
    masks, batches = info["mask_calls"], info["batches"]
    if not batches:
        reason = f": the cell raised {info['error']['error']}" if info["error"] else ""
        if info["error"] and info["error"]["line"] and verdict.location is not None:
            verdict.location = Location(verdict.location.cell, info["error"]["line"])
        verdict.check(False, POINTS, f"the training loop never called get_loss{reason}")
        return verdict
    used = []
    for batch in batches:
        call = masks[batch["mask_call"]] if batch["mask_call"] is not None else None
        used.append((batch, call))
    verdict.details["training_batches"] = len(used)
    verdict.details["drop_probs"] = [call["drop_prob"] if call else None for _, call in used]

    unmasked = [batch for batch, call in used if call is None]
    bad = [(batch, call) for batch, call in used if call and not (
        call["drop_prob"] is not None and 0 < call["drop_prob"] < 1)]
    if unmasked:
        verdict.check(False, 1, f"the mask given to get_loss at {_at(unmasked[0])} was not made by "
                      "get_context_mask for that batch", "c_hot, c_mask = get_context_mask(batch[1], c_drop_prob)")
    elif bad:
        verdict.check(False, 1, "; ".join(_describe_bad(bad, used, masks, batches)),
                      "set c_drop_prob (e.g. 0.1) inside the inner loop, before get_context_mask")
    else:
        verdict.check(True, 1, "")
        values = sorted({call["drop_prob"] for _, call in used})
        if len(values) > 1:
            verdict.note(f"c_drop_prob varies during training ({values[0]:g} to {values[-1]:g}); every value lies strictly between 0 and 1")
        elif values[0] != 0.1:
            verdict.note(f"c_drop_prob is {values[0]:g}; the course uses 0.1")

    from_labels = [call["labels_from_batch"] for _, call in used if call]
    verdict.check(bool(from_labels) and all(from_labels), 1,
                  "the context given to get_context_mask is not the batch's labels",
                  "c_hot, c_mask = get_context_mask(batch[1], c_drop_prob)")
    if info["error"] and not verdict.failures:
        verdict.note(f"the training cell stopped with {info['error']['error']} after the recorded batches")
    return verdict
