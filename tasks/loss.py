"""Task `loss`: get_loss returns the MSE between the added noise and the model's prediction (one FIXME).

The student's q is swapped for a recording reference q while get_loss runs, so a wrong q is
charged to the q task only, and the noise actually drawn is known.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from reference.diffusion import q as reference_q
from reference.schedule import make_schedule
from tasks._schedule_ref import notebook_T, notebook_device
from tasks.base import Evidence, Verdict, close, require, save

ID = "loss"
TITLE = "Loss get_loss(model, x_0, t, *model_args)"
POINTS = 1
NEEDS = ("get_loss",)
BATCH = 16


class _RecordingModel(torch.nn.Module):
    """Predicts a fixed function of its input and remembers what it was given."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(0.5))
        self.calls = []

    def forward(self, x, t, *args):
        self.calls.append((x, t, args))
        return self.scale * x + 0.1


def probe(namespace: dict, out_dir: str) -> dict:
    """Run get_loss with a recording model and a recording reference q."""
    get_loss = require(namespace, "get_loss")
    T, device = notebook_T(namespace), notebook_device(namespace)
    schedule = make_schedule(T, device=device)
    drawn = []

    def recording_q(x_0, t):
        x_t, noise = reference_q(x_0, t, schedule)
        drawn.append((x_t, noise))
        return x_t, noise

    model = _RecordingModel().to(device)
    x_0 = torch.rand(BATCH, 1, 28, 28, device=device)
    t = torch.randint(0, T, (BATCH,), device=device).float()
    c_hot = F.one_hot(torch.arange(BATCH, device=device) % 10, 10).float()
    c_mask = torch.ones_like(c_hot)
    had_q, old_q = "q" in namespace, namespace.get("q")
    namespace["q"] = recording_q
    try:
        loss = get_loss(model, x_0, t, c_hot, c_mask)
    finally:
        if had_q:
            namespace["q"] = old_q
        else:
            del namespace["q"]
    if not isinstance(loss, torch.Tensor):
        return {"returned": type(loss).__name__}
    info = {"returned": "tensor", "q_calls": len(drawn), "model_calls": len(model.calls),
            "requires_grad": bool(loss.requires_grad), "T": T}
    tensors = {"loss": loss.reshape(-1)[:1] if loss.numel() else loss, "x_0": x_0, "t": t,
               "loss_numel": torch.tensor(loss.numel())}
    if drawn:
        tensors.update(x_noisy=drawn[-1][0], noise=drawn[-1][1])
    if model.calls:
        x_in, t_in, args = model.calls[-1]
        tensors.update(model_x=x_in, prediction=model(x_in, t_in, *args))
        if isinstance(t_in, torch.Tensor):
            tensors["model_t"] = t_in
        info["model_args"] = len(args)
    save(out_dir, ID, tensors)
    return info


def judge(evidence: Evidence) -> Verdict:
    """The loss must be mean((noise - prediction)^2) for the noise q drew and the model's prediction."""
    verdict = Verdict(POINTS, location=evidence.locate("get_loss"))
    info = evidence.value
    if info["returned"] != "tensor":
        verdict.check(False, POINTS, f"get_loss returned a {info['returned']}, expected a tensor")
        return verdict
    data = evidence.tensors(ID)
    if int(data["loss_numel"]) != 1:
        verdict.check(False, POINTS, f"get_loss returned {int(data['loss_numel'])} values, expected one number",
                      "average the squared errors: F.mse_loss(noise, noise_pred)")
        return verdict
    if not info["q_calls"] or not info["model_calls"]:
        missing = "q" if not info["q_calls"] else "the model"
        verdict.check(False, POINTS, f"get_loss never calls {missing}",
                      "x_noisy, noise = q(x_0, t); noise_pred = model(x_noisy, t, *model_args)")
        return verdict
    loss, x_0 = data["loss"].double().reshape(()), data["x_0"].double()
    noise, x_noisy = data["noise"].double(), data["x_noisy"].double()
    prediction = data["prediction"].double()
    if not close(data["model_x"].double(), x_noisy):
        seen = "x_0" if close(data["model_x"].double(), x_0) else "another tensor"
        verdict.check(False, POINTS, f"the model is given {seen} instead of the noisy image from q",
                      "noise_pred = model(x_noisy, t, *model_args)")
        return verdict
    if info.get("model_args", 0) < 2:
        verdict.check(False, POINTS, "the model is not given the context (c_hot, c_mask) in model_args",
                      "pass *model_args on to the model")
        return verdict
    candidates = {
        "mse": F.mse_loss(prediction, noise),
        "the L1 loss (mean absolute error)": F.l1_loss(prediction, noise),
        "a sum of squared errors instead of their mean": F.mse_loss(prediction, noise, reduction="sum"),
        "an MSE against x_0 instead of the noise": F.mse_loss(prediction, x_0),
        "an MSE against the noisy image instead of the noise": F.mse_loss(prediction, x_noisy),
    }
    found = next((name for name, value in candidates.items() if close(loss, value, rtol=1e-4, atol=1e-6)), None)
    verdict.details["loss"] = loss.item()
    if found == "mse":
        verdict.check(True, POINTS, "")
        model_t, t = data.get("model_t"), data["t"].double()
        if model_t is not None and close(model_t.double().flatten(), t.flatten() / info["T"]):
            verdict.note("get_loss passes t / T to the model (layout A); the course's model divides by T again")
    else:
        verdict.check(False, POINTS, f"get_loss computes {found}" if found else
                      f"the loss {loss.item():.4g} is not the MSE between the noise and the prediction "
                      f"({candidates['mse'].item():.4g})", "return F.mse_loss(noise, noise_pred)")
    return verdict
