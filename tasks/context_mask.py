"""Task `context_mask`: get_context_mask's one-hot and Bernoulli keep-mask (one FIXME)."""

from __future__ import annotations

import torch

from grader.core.i18n import N_, _
from tasks.base import TaskFailure, Verdict, pair_of_tensors
from tasks.context import Context
from tasks.declaration import Task

ID = "context_mask"
TITLE = N_("Context mask get_context_mask(c, drop_prob)")
POINTS = 1
NEEDS = ("get_context_mask",)
N_LABELS = 1000
PROBABILITIES = (0.0, 0.1, 0.5, 1.0)


def check(context: Context) -> Verdict:
    """Call the student's function at several drop probabilities (twice at 0.1, to see that it
    draws), and once with float labels as the notebook's preview does; judge what came back."""
    labels = torch.randperm(N_LABELS, generator=context.generator(ID)) % 10
    calls = [(str(p), p) for p in PROBABILITIES] + [("0.1-again", 0.1)]
    data = {"labels": labels}
    for name, p in calls:
        value, _records = context.call("get_context_mask", labels, p)
        try:
            data[f"c_hot.{name}"], data[f"c_mask.{name}"] = pair_of_tensors(value, "get_context_mask", "c_hot, c_mask")
        except TaskFailure as failure:
            verdict = Verdict(location=context.locate("get_context_mask"))
            verdict.check(False, POINTS, failure.message)
            return verdict
    context.call("get_context_mask", torch.tensor([3.0]), 0.0)  # must not raise
    return judge(data, context)


def judge(data: dict, context) -> Verdict:
    """c_hot is the one-hot; the mask is binary, random, shaped like c_hot, keeping 1 - drop_prob."""
    verdict = Verdict(location=context.locate("get_context_mask"))
    one_hot = torch.nn.functional.one_hot(data["labels"], 10)
    hot, mask = data["c_hot.0.1"], data["c_mask.0.1"]
    problems = []
    if hot.shape != one_hot.shape or not torch.equal(hot.long(), one_hot):
        problems.append((_("c_hot is not the one-hot encoding of c"), _("c_hot = F.one_hot(c.long(), N_CLASSES)")))
    if mask.shape != hot.shape:
        problems.append(
            (
                _("c_mask has shape {shape}, expected the shape of c_hot {expected}").format(
                    shape=tuple(mask.shape), expected=tuple(hot.shape)
                ),
                _("draw one keep/drop value per element of c_hot"),
            )
        )
    masks = {p: data[f"c_mask.{p}"].double() for p in map(str, PROBABILITIES)}
    if not all(((m == 0) | (m == 1)).all() for m in masks.values()):
        values = [round(v, 4) for v in torch.unique(masks["0.1"])[:4].tolist()]
        problems.append(
            (
                _("c_mask is not binary (values such as {values})").format(values=values),
                _("draw it with torch.bernoulli(torch.ones_like(c_hot).float() - drop_prob)"),
            )
        )
    elif not problems:
        kept = {p: m.mean().item() for p, m in masks.items()}
        verdict.details["kept_fraction"] = kept
        if torch.equal(masks["0.1"], data["c_mask.0.1-again"].double()):
            problems.append(
                (
                    _("c_mask is not random: two calls gave the same mask"),
                    _("torch.round or a fixed threshold is not a draw; use torch.bernoulli"),
                )
            )
        elif kept["0.0"] != 1.0 or kept["1.0"] != 0.0:
            failure = _("with drop_prob 0 it keeps {at_0} and with 1 it keeps {at_1}; expected all and none").format(
                at_0=f"{kept['0.0']:.0%}", at_1=f"{kept['1.0']:.0%}"
            )
            problems.append((failure, _("keep each element with probability 1 - drop_prob")))
        elif abs(kept["0.1"] - 0.9) > 0.03 or abs(kept["0.5"] - 0.5) > 0.04:
            problems.append(
                (
                    _("with drop_prob 0.1 it keeps {kept} of the context (expected about 90%)").format(
                        kept=f"{kept['0.1']:.0%}"
                    ),
                    _("keep each element with probability 1 - drop_prob"),
                )
            )
        elif (masks["0.5"] == masks["0.5"][:, :1]).all():
            verdict.note(
                _(
                    "c_mask drops whole rows (one draw per sample); the course draws each element, "
                    "which also trains guidance"
                )
            )
    for failure, hint in problems[:1]:
        verdict.check(False, POINTS, failure, hint)
    if not problems:
        verdict.check(True, POINTS, "")
    return verdict


TASK = Task(
    id=ID,
    title=TITLE,
    points=POINTS,
    order=50,
    needs=NEEDS,
    check=check,
)
