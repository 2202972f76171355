"""Task `guidance`: classifier-free guidance weighting in sample_w (one FIXME).

sample_w runs with a stub model whose prediction is K for rows that keep the context and D for
rows that drop it, and with reverse_q swapped for a recorder of the noise it is given. The
recorded noise is alpha * K + beta * D: solving for (alpha, beta) at several w identifies the
formula the student wrote, whatever its algebraic form.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# `_` is a throwaway name here: the gettext function is i18n._
from grader.core import i18n
from grader.core.i18n import N_
from tasks.base import Verdict, plain_tensor, stub
from tasks.context import Context
from tasks.declaration import Task

ID = "guidance"
TITLE = N_("Classifier-free guidance in sample_w")
POINTS = 1
NEEDS = ("sample_w",)
WEIGHTS = (0.0, 1.0, 2.5)
SAMPLES = 3


def student_w(context):
    """The notebook's w when it is a plain number, else None."""
    info = context.describe("w").get("w", {})
    if info.get("type") in ("int", "float"):
        try:
            return float(info["value"])
        except (KeyError, ValueError):
            return None
    return None


def identify(context) -> dict:
    """Drive sample_w with a stand-in model and a recording reverse_q; the noise estimate handed
    to reverse_q at each w, as {"weights", "student_w", "called_reverse_q", "e_t": {w: tensor}}."""
    generator = context.generator(ID)
    keep = torch.randn(1, 28, 28, generator=generator)
    drop = torch.randn(1, 28, 28, generator=generator)
    c_hot = F.one_hot(torch.randperm(10, generator=generator)[:SAMPLES], 10).float()
    w_student = student_w(context)
    weights = list(WEIGHTS)
    if w_student is not None and w_student not in weights:
        weights.append(w_student)
    found = {
        "weights": weights,
        "student_w": w_student,
        "called_reverse_q": True,
        "e_t": {},
        "keep": keep,
        "drop": drop,
    }
    for w in weights:
        _, records = context.call(
            "sample_w",
            stub("keep_or_drop", keep=keep, drop=drop),
            c_hot,
            w=w,
            bind={"reverse_q": stub("noise_recorder")},
            no_grad=True,
        )
        noise = [record.get("e_t") for record in records.get("noise_recorder", []) if isinstance(record, dict)]
        if not noise:
            found["called_reverse_q"] = False
            return found
        found["e_t"][w] = plain_tensor(noise[0], i18n._("the noise passed to reverse_q"), finite=False)
    return found


def check(context: Context) -> Verdict:
    """The weights must be (1 + w, -w) for every w, or the shifted (w, 1 - w) form, noted."""
    return judge(identify(context), context)


def fit(e_t: torch.Tensor, keep: torch.Tensor, drop: torch.Tensor):
    """Least-squares (alpha, beta) with e_t ~ alpha * keep + beta * drop, and the fit's error."""
    design = torch.stack((keep.flatten(), drop.flatten()), dim=1).double()
    rows = e_t.reshape(e_t.shape[0], -1).double().T
    solution = torch.linalg.lstsq(design, rows).solution  # (2, rows)
    error = (design @ solution - rows).abs().max().item()
    return solution[0].mean().item(), solution[1].mean().item(), error


def _formula(alpha: float, beta: float) -> str:
    alpha, beta = (0.0 if abs(v) < 1e-9 else v for v in (alpha, beta))  # least-squares dust
    return f"{alpha:.3g} * e_t_keep_c {'-' if beta < 0 else '+'} {abs(beta):.3g} * e_t_drop_c"


def judge(info: dict, context) -> Verdict:
    """The weights must be (1 + w, -w) for every w, or the shifted (w, 1 - w) form, noted."""
    verdict = Verdict(location=context.locate("sample_w"))
    if not info["called_reverse_q"]:
        verdict.check(
            False,
            POINTS,
            i18n._("sample_w never calls reverse_q, so its guided noise could not be seen"),
            i18n._("x_t = reverse_q(x_t, t, e_t) at every step"),
        )
        return verdict
    fitted = {}
    for w in info["weights"]:
        e_t = info["e_t"][w]
        if (
            e_t.dim() < 1
            or e_t.shape[0] == 0
            or e_t[0].numel() != info["keep"].numel()
            or not torch.isfinite(e_t).all()
        ):
            verdict.check(
                False,
                POINTS,
                i18n._("at w = {w} the noise passed to reverse_q is not an image batch of finite values").format(
                    w=f"{w:g}"
                ),
                "e_t = (1 + w) * e_t_keep_c - w * e_t_drop_c",
            )
            return verdict
        alpha, beta, error = fit(e_t, info["keep"], info["drop"])
        if error > 1e-3:
            verdict.check(
                False,
                POINTS,
                i18n._(
                    "at w = {w} the noise passed to reverse_q is not a mix of the "
                    "conditional and unconditional predictions"
                ).format(w=f"{w:g}"),
                "e_t = (1 + w) * e_t_keep_c - w * e_t_drop_c",
            )
            return verdict
        fitted[w] = (alpha, beta)
    verdict.details["weights"] = {str(w): [round(a, 4), round(b, 4)] for w, (a, b) in fitted.items()}

    def all_match(form) -> bool:
        return all(abs(a - form(w)[0]) < 1e-3 and abs(b - form(w)[1]) < 1e-3 for w, (a, b) in fitted.items())

    if all_match(lambda w: (1 + w, -w)):
        verdict.check(True, POINTS, "")
        return verdict
    if all_match(lambda w: (w, 1 - w)):
        verdict.check(True, POINTS, "")
        verdict.note(
            i18n._(
                "sample_w uses e_t_drop_c + w * (e_t_keep_c - e_t_drop_c): the course's formula with w "
                "shifted by one (your w equals the course's w - 1)"
            )
        )
        student_w = info["student_w"]
        if student_w is not None and student_w <= 0:
            verdict.hints.append(
                i18n._(
                    "with your w = {w} this form ignores the class: samples are unconditional "
                    "and the digit classifier will fail them; use w > 1"
                ).format(w=f"{student_w:g}")
            )
        return verdict
    at = {w: _formula(*ab) for w, ab in fitted.items()}
    alphas = {round(a, 3) for a, _ in fitted.values()}
    betas = {round(b, 3) for _, b in fitted.values()}
    if all(abs(b) < 1e-3 for _, b in fitted.values()) or all(abs(a) < 1e-3 for a, _ in fitted.values()):
        failure = (
            i18n._("sample_w uses only the conditional prediction: e_t = {e_t} at w = 1")
            if all(abs(b) < 1e-3 for _, b in fitted.values())
            else i18n._("sample_w uses only the unconditional prediction: e_t = {e_t} at w = 1")
        )
        failure = failure.format(e_t=at[1.0])
    elif len(alphas) == 1 and len(betas) == 1:
        failure = i18n._("sample_w ignores w: e_t = {e_t} for every w").format(e_t=at[0.0])
    elif all_match(lambda w: (-w, 1 + w)) or all_match(lambda w: (1 - w, w)):
        failure = i18n._("the guidance sign is flipped: e_t = {e_t} at w = 1, pushing away from the class").format(
            e_t=at[1.0]
        )
    else:
        failure = i18n._("e_t = {e_t} at w = 1; expected 2 * e_t_keep_c - 1 * e_t_drop_c").format(e_t=at[1.0])
    verdict.check(False, POINTS, failure, "e_t = (1 + w) * e_t_keep_c - w * e_t_drop_c")
    return verdict


TASK = Task(
    id=ID,
    title=TITLE,
    points=POINTS,
    order=80,
    needs=NEEDS,
    answers=("sample_w", "w"),
    check=check,
)
