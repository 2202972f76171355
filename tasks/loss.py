"""Task `loss`: get_loss returns the MSE between the added noise and the model's prediction (one FIXME).

The student's q is swapped for a stand-in that returns the grader's noisy image and noise, and
the model for one whose prediction is a known function of its input.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from grader.core.i18n import N_, _
from tasks._schedule_runs import notebook_T
from tasks.base import TaskFailure, Verdict, approx_equal, plain_tensor, stub
from tasks.context import Context
from tasks.declaration import Task

ID = "loss"
TITLE = N_("Loss get_loss(model, x_0, t, *model_args)")
POINTS = 1
NEEDS = ("get_loss",)
BATCH = 16


SCALE, SHIFT = 0.5, 0.1  # the stand-in model predicts SCALE * x + SHIFT


def check(context: Context) -> Verdict:
    """Run get_loss with a stand-in model and a stand-in q that returns the grader's noise.

    The student's q is replaced while get_loss runs, so a wrong q is charged to the q task only,
    and the noise and noisy image are the grader's own; the model's prediction is known from
    the input it recorded.
    """
    T = notebook_T(context)
    generator = context.generator(ID)
    x_0 = torch.rand(BATCH, 1, 28, 28, generator=generator)
    t = torch.randint(0, T, (BATCH,), generator=generator).float()
    noise = torch.randn(BATCH, 1, 28, 28, generator=generator)
    x_noisy = torch.rand(BATCH, 1, 28, 28, generator=generator) * 2 - 1
    c_hot = F.one_hot(torch.randperm(BATCH, generator=generator) % 10, 10).float()
    value, records = context.call(
        "get_loss",
        stub("affine_model", scale=SCALE, shift=SHIFT),
        x_0,
        t,
        c_hot,
        torch.ones_like(c_hot),
        bind={"q": stub("fixed_q", x_noisy=x_noisy, noise=noise)},
    )
    data = {"x_0": x_0, "t": t, "noise": noise, "x_noisy": x_noisy}
    return judge(value, records, data, T, context)


def judge(value, records: dict, data: dict, T: int, context) -> Verdict:
    """The loss must be mean((noise - prediction)^2) for the noise q drew and the model's prediction."""
    verdict = Verdict(location=context.locate("get_loss"))
    try:
        loss = plain_tensor(value, N_("get_loss returned"), finite=False)
    except TaskFailure as failure:
        verdict.check(False, POINTS, failure.message)
        return verdict
    if loss.numel() != 1:
        verdict.check(
            False,
            POINTS,
            _("get_loss returned {count} values, expected one number").format(count=loss.numel()),
            _("average the squared errors: F.mse_loss(noise, noise_pred)"),
        )
        return verdict
    model_calls = [call for call in records.get("affine_model", []) if isinstance(call, dict)]
    if not records.get("fixed_q") or not model_calls:
        missing = "q" if not records.get("fixed_q") else _("the model")
        verdict.check(
            False,
            POINTS,
            _("get_loss never calls {what}").format(what=missing),
            _("x_noisy, noise = q(x_0, t); noise_pred = model(x_noisy, t, *model_args)"),
        )
        return verdict
    loss, x_0 = loss.double().reshape(()), data["x_0"].double()
    noise, x_noisy = data["noise"].double(), data["x_noisy"].double()
    call = model_calls[-1]
    model_x = call.get("x")
    if not isinstance(model_x, torch.Tensor) or model_x.shape != x_noisy.shape:
        verdict.check(
            False,
            POINTS,
            _("the model is not given an image batch shaped like x_0"),
            _("noise_pred = model(x_noisy, t, *model_args)"),
        )
        return verdict
    model_x = model_x.double()
    prediction = SCALE * model_x + SHIFT
    if not approx_equal(model_x, x_noisy):
        seen = "x_0" if approx_equal(model_x, x_0) else _("another tensor")
        verdict.check(
            False,
            POINTS,
            _("the model is given {what} instead of the noisy image from q").format(what=seen),
            _("noise_pred = model(x_noisy, t, *model_args)"),
        )
        return verdict
    if not isinstance(call.get("extra_args"), int) or call["extra_args"] < 2:
        verdict.check(
            False,
            POINTS,
            _("the model is not given the context (c_hot, c_mask) in model_args"),
            _("pass *model_args on to the model"),
        )
        return verdict
    candidates = {  # what the student's loss is, in words (translated where reported)
        "mse": F.mse_loss(prediction, noise),
        N_("the L1 loss (mean absolute error)"): F.l1_loss(prediction, noise),
        N_("a sum of squared errors instead of their mean"): F.mse_loss(prediction, noise, reduction="sum"),
        N_("an MSE against x_0 instead of the noise"): F.mse_loss(prediction, x_0),
        N_("an MSE against the noisy image instead of the noise"): F.mse_loss(prediction, x_noisy),
    }
    found = next((name for name, value in candidates.items() if approx_equal(loss, value, rtol=1e-4, atol=1e-6)), None)
    verdict.details["loss"] = loss.item()
    if found == "mse":
        verdict.check(True, POINTS, "")
        model_t, t = call.get("t"), data["t"].double()
        if (
            isinstance(model_t, torch.Tensor)
            and model_t.numel() == t.numel()
            and approx_equal(model_t.double().flatten(), t.flatten() / T)
        ):
            verdict.note(_("get_loss passes t / T to the model (layout A); the course's model divides by T again"))
    else:
        verdict.check(
            False,
            POINTS,
            _("get_loss computes {what}").format(what=_(found))
            if found
            else _("the loss {loss} is not the MSE between the noise and the prediction ({mse})").format(
                loss=f"{loss.item():.4g}", mse=f"{candidates['mse'].item():.4g}"
            ),
            _("return F.mse_loss(noise, noise_pred)"),
        )
    return verdict


TASK = Task(
    id=ID,
    title=TITLE,
    points=POINTS,
    order=60,
    needs=NEEDS,
    check=check,
)
