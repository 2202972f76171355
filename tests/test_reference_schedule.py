"""reference.schedule against the course's closed forms (docs/course.md, task 1)."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from reference import constants
from reference.schedule import TENSOR_NAMES, Schedule, make_schedule

pytestmark = pytest.mark.usefixtures("single_thread")


def loop_cumprod(values):
    """Running product with a plain Python loop, in float64."""
    out, running = [], 1.0
    for v in values:
        running *= float(v)
        out.append(running)
    return torch.tensor(out, dtype=torch.float64)


def assert_near(actual, expected, rtol=1e-5, atol=1e-7):
    torch.testing.assert_close(actual.double(), expected.double(), rtol=rtol, atol=atol)


@pytest.mark.parametrize("T", [constants.T, 10, 2])
def test_betas_are_linspace(T):
    s = make_schedule(T)
    assert s.B.dtype == torch.float32
    assert_near(s.B, torch.linspace(1e-4, 0.02, T, dtype=torch.float64))
    assert s.B[0].item() == pytest.approx(1e-4, rel=1e-6)
    assert s.B[-1].item() == pytest.approx(0.02, rel=1e-6)
    # evenly spaced, increasing
    steps = torch.diff(s.B.double())
    assert torch.all(steps > 0)
    assert_near(steps, torch.full_like(steps, (0.02 - 1e-4) / (T - 1)), rtol=1e-3)


def test_default_is_course_schedule():
    s = make_schedule()
    assert s.T == 150 == constants.T
    assert_near(s.B, torch.linspace(0.0001, 0.02, 150, dtype=torch.float64))


@pytest.mark.parametrize("T", [constants.T, 10])
def test_derived_tensors_match_closed_forms(T):
    s = make_schedule(T)
    B = torch.tensor([1e-4 + (0.02 - 1e-4) * i / (T - 1) for i in range(T)], dtype=torch.float64)
    a = 1.0 - B
    a_bar = loop_cumprod(a)
    assert_near(s.a, a)
    assert_near(s.a, 1.0 - s.B.double())
    assert_near(s.a_bar, a_bar)
    assert_near(s.a_bar, loop_cumprod(s.a))
    assert_near(s.sqrt_a_bar, a_bar.sqrt())
    # 1 - a_bar cancels in float32 at small t, so the float64 check is looser there ...
    assert_near(s.sqrt_one_minus_a_bar, (1.0 - a_bar).sqrt(), rtol=1e-3)
    assert_near(s.sqrt_a_inv, (1.0 / a).sqrt())
    assert_near(s.pred_noise_coeff, (1.0 - a) / (1.0 - a_bar).sqrt(), rtol=1e-3)
    # ... and the float32 formulas applied to the schedule's own a and a_bar agree tightly
    assert_near(s.sqrt_a_bar, torch.sqrt(s.a_bar), rtol=1e-6)
    assert_near(s.sqrt_one_minus_a_bar, torch.sqrt(1 - s.a_bar), rtol=1e-6)
    assert_near(s.sqrt_a_inv, torch.sqrt(1 / s.a), rtol=1e-6)
    assert_near(s.pred_noise_coeff, (1 - s.a) / torch.sqrt(1 - s.a_bar), rtol=1e-6)


def test_spot_values_course_schedule():
    s = make_schedule()
    # a_bar[0] = 1 - 1e-4, so sqrt(1 - a_bar[0]) = 0.01 and pred_noise_coeff[0] = 1e-4 / 0.01
    assert s.a_bar[0].item() == pytest.approx(1 - 1e-4, rel=1e-7)
    assert s.sqrt_one_minus_a_bar[0].item() == pytest.approx(0.01, rel=1e-3)
    assert s.pred_noise_coeff[0].item() == pytest.approx(0.01, rel=1e-3)
    # product of the 150 course alphas, computed independently
    prod = math.prod(1 - (1e-4 + (0.02 - 1e-4) * i / 149) for i in range(150))
    assert s.a_bar[-1].item() == pytest.approx(prod, rel=1e-4)
    assert 0.2 < s.a_bar[-1].item() < 0.25  # T=150 leaves a lot of signal: a_bar[-1] ~ 0.222


@pytest.mark.parametrize("T", [constants.T, 10])
def test_shapes_dtypes_and_monotonicity(T):
    s = make_schedule(T)
    for name in TENSOR_NAMES:
        tensor = getattr(s, name)
        assert tensor.shape == (T,), name
        assert tensor.dtype == torch.float32, name
        assert torch.isfinite(tensor).all(), name
    assert s.T == T
    assert torch.all(torch.diff(s.a_bar) < 0)
    assert torch.all((s.a_bar > 0) & (s.a_bar < 1))


def test_as_dict_uses_the_course_names():
    s = make_schedule(10)
    course_names = {
        "B",
        "a",
        "a_bar",
        "sqrt_a_bar",
        "sqrt_one_minus_a_bar",
        "sqrt_a_inv",
        "pred_noise_coeff",
    }
    d = s.as_dict()
    assert set(d) == course_names
    assert_near(d["B"], torch.linspace(1e-4, 0.02, 10, dtype=torch.float64))
    assert_near(d["a_bar"], loop_cumprod(1.0 - torch.linspace(1e-4, 0.02, 10, dtype=torch.float64)))
    assert_near(d["pred_noise_coeff"], s.B.double() / (1.0 - d["a_bar"].double()).sqrt(), rtol=1e-3)


# Values of the course schedule at chosen t, computed by hand in float64 from
# B = linspace(1e-4, 0.02, 150) (B[t] = 1e-4 + (0.02 - 1e-4) t / 149, a_bar[t] = prod_{s<=t} (1 - B[s])),
# written out as numbers so that they do not depend on any code under test.
#  t: (B, a_bar, sqrt_a_bar, sqrt_one_minus_a_bar, sqrt_a_inv, pred_noise_coeff)
COURSE_VALUES = {
    0: (1.0e-4, 0.9999, 0.99994999875, 0.01, 1.00005000375, 0.01),
    1: (2.3355704698e-4, 0.99966646631, 0.99983321925, 0.01826290479, 1.00011679898, 0.01278860344),
    2: (3.6711409396e-4, 0.99929947466, 0.99964967597, 0.02646743925, 1.00018360760, 0.01387040471),
    74: (9.98322147651e-3, 0.68427604278, 0.82720979369, 0.56189319022, 1.00502929868, 0.01776711598),
    149: (0.02, 0.21921859919, 0.46820785895, 0.88361835699, 1.01015254455, 0.02263420609),
}


@pytest.mark.parametrize("t", sorted(COURSE_VALUES))
def test_course_schedule_values_at_chosen_t(t):
    s = make_schedule()
    names = ("B", "a_bar", "sqrt_a_bar", "sqrt_one_minus_a_bar", "sqrt_a_inv", "pred_noise_coeff")
    for name, expected in zip(names, COURSE_VALUES[t], strict=True):
        # float32 cancellation in 1 - a_bar near t = 0 costs about 1e-3 relative there
        rel = 2e-3 if name in ("sqrt_one_minus_a_bar", "pred_noise_coeff") else 1e-5
        assert getattr(s, name)[t].item() == pytest.approx(expected, rel=rel), (name, t)
    assert s.a[t].item() == pytest.approx(1 - COURSE_VALUES[t][0], rel=1e-6)


def test_to_and_device():
    s = make_schedule(10)
    assert s.device == torch.device("cpu")
    moved = s.to("cpu")
    assert isinstance(moved, Schedule)
    assert moved.device == torch.device("cpu")
    for name in TENSOR_NAMES:
        assert torch.equal(getattr(moved, name), getattr(s, name))
        assert getattr(moved, name).device == torch.device("cpu")
    s2 = make_schedule(10, device=torch.device("cpu"))
    assert s2.device.type == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_to_cuda():
    s = make_schedule(10).to("cuda")
    assert s.device.type == "cuda"
    assert all(getattr(s, n).device.type == "cuda" for n in TENSOR_NAMES)


def test_schedule_is_frozen():
    s = make_schedule(10)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.B = torch.zeros(10)


@pytest.mark.parametrize("T", [0, 1, -5, 2.5, 150.0, True, "150", None])
def test_bad_T_raises(T):
    with pytest.raises(ValueError, match="T must be an integer"):
        make_schedule(T)


@pytest.mark.parametrize(
    "beta_start, beta_end",
    [(0.0, 0.02), (-1e-4, 0.02), (0.02, 0.0001), (1e-4, 1.0), (1e-4, 1.5)],
)
def test_bad_betas_raise(beta_start, beta_end):
    with pytest.raises(ValueError, match="betas must satisfy"):
        make_schedule(10, beta_start, beta_end)


def test_constant_betas_allowed():
    s = make_schedule(5, 0.01, 0.01)
    assert_near(s.B, torch.full((5,), 0.01, dtype=torch.float64))
    assert_near(s.a_bar, torch.tensor([0.99 ** (i + 1) for i in range(5)], dtype=torch.float64))
