"""Task `schedule`: the tensors derived from the betas B (five FIXMEs)."""

from __future__ import annotations

from typing import Any

import torch

from grader.core.i18n import N_, _
from tasks.base import MAX_ELEMENTS, Verdict, approx_equal
from tasks.context import Context
from tasks.declaration import Task

ID = "schedule"
TITLE = N_("DDPM schedule (a, a_bar, square roots, pred_noise_coeff)")
POINTS = 5
NEEDS = ("B", "a", "a_bar", "sqrt_a_bar", "sqrt_one_minus_a_bar", "sqrt_a_inv", "pred_noise_coeff")
DERIVED = NEEDS[1:]
BETA_START, BETA_END = 0.0001, 0.02


def _expected_from(student: dict[str, torch.Tensor], name: str):
    """What `name` should be, computed from the student's own upstream tensors (None if unknown)."""
    # Either may be missing (None): its formulas then raise TypeError, caught below.
    a: Any = student.get("a")
    a_bar: Any = student.get("a_bar")
    formulas = {
        "a": lambda: 1 - student["B"],
        "a_bar": lambda: torch.cumprod(a, dim=0),
        "sqrt_a_bar": lambda: torch.sqrt(a_bar),
        "sqrt_one_minus_a_bar": lambda: torch.sqrt(1 - a_bar),
        "sqrt_a_inv": lambda: torch.sqrt(1 / a),
        "pred_noise_coeff": lambda: (1 - a) / torch.sqrt(1 - a_bar),
    }
    try:
        return formulas[name]().double()
    except (KeyError, TypeError, RuntimeError):
        return None


def _consistent(value: torch.Tensor, expected: torch.Tensor) -> bool:
    """`value` is what the formula gives from the student's own upstream tensors, NaN where it gives NaN
    (1 - a_bar is negative when a_bar is wrong: the square root of it is not this tensor's fault)."""
    return value.shape == expected.shape and torch.allclose(value, expected, rtol=1e-4, atol=1e-5, equal_nan=True)


# Known wrong answers: name -> (wrong formula from upstream tensors, what to tell the student; translated where used).
DIAGNOSES = {
    "a_bar": [
        (
            lambda s: torch.cumsum(s["a"], dim=0),
            N_("a_bar is the cumulative sum of a; it must be the cumulative product: torch.cumprod(a, dim=0)"),
        )
    ],
    "sqrt_a_bar": [(lambda s: s["a_bar"], N_("sqrt_a_bar equals a_bar: the square root is missing"))],
    "sqrt_one_minus_a_bar": [
        (lambda s: 1 - s["a_bar"], N_("sqrt_one_minus_a_bar equals 1 - a_bar: the square root is missing")),
        (
            lambda s: 1 - torch.sqrt(s["a_bar"]),
            N_("sqrt_one_minus_a_bar is 1 - sqrt(a_bar); it must be sqrt(1 - a_bar)"),
        ),
    ],
    "sqrt_a_inv": [
        (lambda s: 1 / s["a"], N_("sqrt_a_inv equals 1 / a: the square root is missing")),
        (lambda s: torch.sqrt(s["a"]), N_("sqrt_a_inv is sqrt(a); it must be sqrt(1 / a)")),
    ],
    "pred_noise_coeff": [
        (
            lambda s: (1 - s["a"]) / (1 - s["a_bar"]),
            N_("pred_noise_coeff divides by 1 - a_bar: the square root is missing (use sqrt(1 - a_bar))"),
        ),
    ],
}


def _diagnose(name: str, value: torch.Tensor, student: dict) -> str | None:
    for wrong, message in DIAGNOSES.get(name, []):
        try:
            if approx_equal(value.double(), wrong(student).double()):
                return _(message)
        except (KeyError, RuntimeError, TypeError):
            continue
    return None


def check(context: Context) -> Verdict:
    """Each derived tensor: defined, a plain tensor, shape (T,), on the notebook's device, right values."""
    verdict = Verdict()
    info = context.describe(*NEEDS, "device")
    values = context.get(*[name for name in NEEDS if info.get(name, {}).get("exact")])
    # A tensor too large to be a schedule is left out before any formula or conversion touches it.
    student = {
        name: value
        for name, value in values.items()
        if isinstance(value, torch.Tensor) and value.numel() <= MAX_ELEMENTS
    }
    notebook_device = _device_type(info.get("device", {}).get("value", "cpu"))
    worth = POINTS / len(DERIVED)
    B = student.get("B")
    T = B.shape[0] if B is not None and B.dim() == 1 else 150
    reference_B = torch.linspace(BETA_START, BETA_END, T)
    if B is not None and not approx_equal(B, reference_B):
        verdict.note(
            _("B is not the course's torch.linspace(0.0001, 0.02, T); the other tensors are checked against your B")
        )
    elif B is None:
        student["B"] = reference_B

    for name in DERIVED:
        where = context.locate(name)
        if name not in info:
            verdict.check(False, worth, _("{name} is not defined").format(name=name), location=where)
            continue
        if "device" not in info[name]:
            verdict.check(
                False,
                worth,
                _("{name} is a {kind}, not a tensor").format(name=name, kind=info[name]["type"]),
                location=where,
            )
            continue
        if not info[name]["exact"]:
            verdict.check(
                False,
                worth,
                _("{name} is a {kind}, not a plain torch.Tensor").format(name=name, kind=info[name]["type"]),
                location=where,
            )
            continue
        shape = tuple(info[name]["shape"])
        if shape != (T,):
            verdict.check(
                False,
                worth,
                _("{name} has shape {shape}, expected {expected}").format(name=name, shape=shape, expected=f"({T},)"),
                _("keep every schedule tensor one-dimensional, one entry per timestep"),
                where,
            )
            continue
        device = _device_type(info[name]["device"])
        if device != notebook_device or name not in student:  # a meta tensor has no values to judge
            verdict.check(
                False,
                worth,
                _("{name} is on {device} but the notebook's device is {notebook_device}").format(
                    name=name, device=device, notebook_device=notebook_device
                ),
                _("build the schedule from B, which is moved to device, so every tensor follows it"),
                where,
            )
            continue
        value = student[name]
        expected = _expected_from(student, name)
        if expected is not None and _consistent(value.double(), expected):
            verdict.check(True, worth, "")
            continue
        diagnosis = _diagnose(name, value, student)
        difference = float((value.double() - expected).abs().max()) if expected is not None else float("nan")
        mismatch = _("{name} does not match its formula (max difference {difference})")
        verdict.check(
            False,
            worth,
            diagnosis or mismatch.format(name=name, difference=f"{difference:.3g}"),
            None if diagnosis else _("compare with the formulas in the notebook's markdown"),
            where,
        )
    verdict.earned = round(verdict.earned, 2)
    return verdict


def _device_type(text: str) -> str:
    try:
        return torch.device(text).type
    except (TypeError, RuntimeError):
        return "cpu"


TASK = Task(
    id=ID,
    title=TITLE,
    points=POINTS,
    order=10,
    needs=NEEDS,
    check=check,
)
