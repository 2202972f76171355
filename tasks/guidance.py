"""Task `guidance`: classifier-free guidance weighting in sample_w (one FIXME).

sample_w runs with a stub model whose prediction is K for rows that keep the context and D for
rows that drop it, and with reverse_q swapped for a recorder of the noise it is given. The
recorded noise is alpha * K + beta * D: solving for (alpha, beta) at several w identifies the
formula the student wrote, whatever its algebraic form.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tasks._schedule_ref import notebook_device
from tasks.base import Evidence, Verdict, require, save

ID = "guidance"
TITLE = "Classifier-free guidance in sample_w"
POINTS = 1
NEEDS = ("sample_w",)
WEIGHTS = (0.0, 1.0, 2.5)
SAMPLES = 3


class _KeepOrDrop(torch.nn.Module):
    """Predicts `keep` where the row's context mask is on and `drop` where it is off."""

    def __init__(self, keep, drop):
        super().__init__()
        self.register_buffer("keep", keep)
        self.register_buffer("drop", drop)

    def forward(self, x, t, c, c_mask):
        kept = (c_mask.reshape(c_mask.shape[0], -1) != 0).any(dim=1).reshape(-1, 1, 1, 1)
        return torch.where(kept, self.keep, self.drop).expand(x.shape[0], *self.keep.shape).clone()


def probe(namespace: dict, out_dir: str) -> dict:
    """Sample with the stub at each w and record the first noise estimate passed to reverse_q."""
    sample_w = require(namespace, "sample_w")
    device = notebook_device(namespace)
    generator = torch.Generator().manual_seed(0)
    keep = torch.randn(1, 28, 28, generator=generator)
    drop = torch.randn(1, 28, 28, generator=generator)
    model = _KeepOrDrop(keep, drop).to(device)
    c_hot = F.one_hot(torch.arange(SAMPLES) % 10, 10).float().to(device)
    student_w = namespace.get("w")
    weights = list(WEIGHTS)
    if isinstance(student_w, (int, float)) and not isinstance(student_w, bool) and student_w not in weights:
        weights.append(float(student_w))
    recorded = []

    def recording_reverse_q(x_t, t, e_t, *args, **kwargs):
        recorded.append(e_t.detach().clone())
        return x_t

    had, old = "reverse_q" in namespace, namespace.get("reverse_q")
    namespace["reverse_q"] = recording_reverse_q
    tensors = {"keep": keep, "drop": drop}
    try:
        for w in weights:
            recorded.clear()
            sample_w(model, c_hot, w=w)
            if not recorded:
                return {"called_reverse_q": False, "weights": weights}
            tensors[f"e_t.{w}"] = recorded[0]
    finally:
        if had:
            namespace["reverse_q"] = old
        else:
            namespace.pop("reverse_q", None)
    save(out_dir, ID, tensors)
    return {"called_reverse_q": True, "weights": weights,
            "student_w": float(student_w) if isinstance(student_w, (int, float)) else None}


def _solve(e_t: torch.Tensor, keep: torch.Tensor, drop: torch.Tensor):
    """Least-squares (alpha, beta) with e_t ~ alpha * keep + beta * drop, and the fit's error."""
    design = torch.stack((keep.flatten(), drop.flatten()), dim=1).double()
    rows = e_t.reshape(e_t.shape[0], -1).double().T
    solution = torch.linalg.lstsq(design, rows).solution  # (2, rows)
    error = (design @ solution - rows).abs().max().item()
    return solution[0].mean().item(), solution[1].mean().item(), error


def _formula(alpha: float, beta: float) -> str:
    alpha, beta = (0.0 if abs(v) < 1e-9 else v for v in (alpha, beta))  # least-squares dust
    return f"{alpha:.3g} * e_t_keep_c {'-' if beta < 0 else '+'} {abs(beta):.3g} * e_t_drop_c"


def judge(evidence: Evidence) -> Verdict:
    """The weights must be (1 + w, -w) for every w, or the shifted (w, 1 - w) form, noted."""
    verdict = Verdict(POINTS, location=evidence.locate("sample_w"))
    info = evidence.value
    if not info["called_reverse_q"]:
        verdict.check(False, POINTS, "sample_w never calls reverse_q, so its guided noise could not be seen",
                      "x_t = reverse_q(x_t, t, e_t) at every step")
        return verdict
    data = evidence.tensors(ID)
    fitted = {}
    for w in info["weights"]:
        alpha, beta, error = _solve(data[f"e_t.{w}"], data["keep"], data["drop"])
        if error > 1e-3:
            verdict.check(False, POINTS, f"at w = {w:g} the noise passed to reverse_q is not a mix of the "
                          "conditional and unconditional predictions", "e_t = (1 + w) * e_t_keep_c - w * e_t_drop_c")
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
        verdict.note("sample_w uses e_t_drop_c + w * (e_t_keep_c - e_t_drop_c): the course's formula with w "
                     "shifted by one (your w equals the course's w - 1)")
        student_w = info.get("student_w")
        if student_w is not None and student_w <= 0:
            verdict.hints.append(f"with your w = {student_w:g} this form ignores the class: samples are "
                                 "unconditional and the digit classifier will fail them; use w > 1")
        return verdict
    at = {w: _formula(*ab) for w, ab in fitted.items()}
    alphas = {round(a, 3) for a, _ in fitted.values()}
    betas = {round(b, 3) for _, b in fitted.values()}
    if all(abs(b) < 1e-3 for _, b in fitted.values()) or all(abs(a) < 1e-3 for a, _ in fitted.values()):
        which = "conditional" if all(abs(b) < 1e-3 for _, b in fitted.values()) else "unconditional"
        failure = f"sample_w uses only the {which} prediction: e_t = {at[1.0]} at w = 1"
    elif len(alphas) == 1 and len(betas) == 1:
        failure = f"sample_w ignores w: e_t = {at[0.0]} for every w"
    elif all_match(lambda w: (-w, 1 + w)) or all_match(lambda w: (1 - w, w)):
        failure = f"the guidance sign is flipped: e_t = {at[1.0]} at w = 1, pushing away from the class"
    else:
        failure = f"e_t = {at[1.0]} at w = 1; expected 2 * e_t_keep_c - 1 * e_t_drop_c"
    verdict.check(False, POINTS, failure, "e_t = (1 + w) * e_t_keep_c - w * e_t_drop_c")
    return verdict
