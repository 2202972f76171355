"""reference.diffusion (q, reverse_q, get_loss) against the course's closed forms (docs/course.md, tasks 2, 3, 6)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from reference.diffusion import get_loss, q, reverse_q, timestep_indices
from reference.schedule import make_schedule

pytestmark = pytest.mark.usefixtures("single_thread")

T = 150


@pytest.fixture(scope="module")
def schedule():
    return make_schedule(T)


def images(n=4, seed=0, size=28):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, size, size, generator=g)


def gaussian(shape, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- q


@pytest.mark.parametrize("as_4d_int", [False, True])
def test_q_matches_closed_form_per_image(schedule, as_4d_int):
    x_0 = images(5)
    steps = [0, 1, 37, 100, 149]
    t = torch.tensor(steps).float()
    if as_4d_int:
        t = torch.tensor(steps, dtype=torch.int32).reshape(5, 1, 1, 1)
    torch.manual_seed(0)
    x_t, noise = q(x_0, t, schedule)
    assert x_t.shape == noise.shape == x_0.shape
    for i, step in enumerate(steps):
        a_bar = schedule.a_bar[step].double()
        expected = a_bar.sqrt() * x_0[i].double() + (1 - a_bar).sqrt() * noise[i].double()
        torch.testing.assert_close(x_t[i].double(), expected, rtol=1e-5, atol=1e-5)


def test_q_coefficients_at_chosen_t_as_numbers(schedule):
    """x_t = sqrt(a_bar[t]) x_0 + sqrt(1 - a_bar[t]) noise with constant x_0 and noise, so each
    pixel is one number. Coefficients computed by hand in float64 from B = linspace(1e-4, 0.02, 150):
    t = 0: 0.99994999875, 0.01; t = 74: 0.82720979369, 0.56189319022; t = 149: 0.46820785895, 0.88361835699."""
    x_0 = torch.full((3, 1, 28, 28), 2.0)
    noise = torch.full((3, 1, 28, 28), -1.0)
    x_t, _ = q(x_0, torch.tensor([0.0, 74.0, 149.0]), schedule, noise=noise)
    for i, (sa, s1) in enumerate(
        [(0.99994999875, 0.01), (0.82720979369, 0.56189319022), (0.46820785895, 0.88361835699)]
    ):
        assert torch.allclose(x_t[i], torch.full_like(x_t[i], 2 * sa - s1), rtol=2e-5, atol=2e-5), i


def test_q_keeps_unit_variance_and_destroys_signal_at_the_last_step(schedule):
    """For unit-variance x_0 independent of the noise, Var(x_t) = a_bar + (1 - a_bar) = 1 at every t;
    at t = T - 1 the correlation with x_0 is sqrt(a_bar[149]) ~ 0.468 (hand-computed)."""
    torch.manual_seed(3)
    x_0 = torch.randn(64, 1, 28, 28)
    for step in (0, 74, 149):
        x_t, _ = q(x_0, torch.full((64,), float(step)), schedule)
        assert x_t.var().item() == pytest.approx(1.0, abs=0.03), step
    corr = torch.corrcoef(torch.stack((x_0.flatten(), x_t.flatten())))[0, 1].item()
    assert corr == pytest.approx(0.4682, abs=0.02)


def test_q_int_and_float_t_agree(schedule):
    x_0 = images(3)
    noise = gaussian(x_0.shape, 1)
    a, _ = q(x_0, torch.tensor([3.0, 50.0, 149.0]), schedule, noise=noise)
    b, _ = q(x_0, torch.tensor([3, 50, 149]).reshape(3, 1, 1, 1), schedule, noise=noise)
    c, _ = q(x_0, torch.tensor([3, 50, 149], dtype=torch.long), schedule, noise=noise)
    assert torch.equal(a, b) and torch.equal(a, c)


def test_q_returned_noise_is_standard_normal(schedule):
    torch.manual_seed(1234)
    x_0 = images(64)
    _, noise = q(x_0, torch.full((64,), 75.0), schedule)
    assert noise.shape == x_0.shape
    assert abs(noise.mean().item()) < 0.02
    assert abs(noise.std().item() - 1.0) < 0.02
    # not the same draw for every image
    assert not torch.equal(noise[0], noise[1])


def test_q_uses_passed_noise(schedule):
    x_0 = images(2)
    noise = gaussian(x_0.shape, 7)
    x_t, returned = q(x_0, torch.tensor([10.0, 20.0]), schedule, noise=noise)
    assert returned is noise
    expected = (
        schedule.sqrt_a_bar[[10, 20]].reshape(2, 1, 1, 1) * x_0
        + schedule.sqrt_one_minus_a_bar[[10, 20]].reshape(2, 1, 1, 1) * noise
    )
    torch.testing.assert_close(x_t, expected)


def test_q_at_zero_noise_is_scaled_image(schedule):
    x_0 = images(2)
    x_t, _ = q(x_0, torch.tensor([0.0, 149.0]), schedule, noise=torch.zeros_like(x_0))
    torch.testing.assert_close(x_t[0], schedule.sqrt_a_bar[0] * x_0[0])
    torch.testing.assert_close(x_t[1], schedule.sqrt_a_bar[149] * x_0[1])


def test_q_short_schedule():
    s = make_schedule(10)
    x_0 = images(2)
    noise = gaussian(x_0.shape, 3)
    x_t, _ = q(x_0, torch.tensor([0, 9]), s, noise=noise)
    torch.testing.assert_close(x_t[1], s.sqrt_a_bar[9] * x_0[1] + s.sqrt_one_minus_a_bar[9] * noise[1])
    with pytest.raises(ValueError, match=r"\[0, 9\]"):
        q(x_0, torch.tensor([0, 10]), s)


@pytest.mark.parametrize(
    "x_shape",
    [(1, 28, 28), (28, 28), (2, 1, 1, 28, 28)],
)
def test_q_rejects_non_image_batches(schedule, x_shape):
    with pytest.raises(ValueError, match="x_0 must be a 4-D image batch"):
        q(torch.zeros(x_shape), torch.zeros(x_shape[0]), schedule)


def test_q_rejects_wrong_noise_shape(schedule):
    x_0 = images(2)
    with pytest.raises(ValueError, match="noise shape"):
        q(x_0, torch.tensor([1.0, 2.0]), schedule, noise=torch.zeros(1, 1, 28, 28))
    with pytest.raises(ValueError, match="noise shape"):
        q(x_0, torch.tensor([1.0, 2.0]), schedule, noise=torch.zeros(2, 1, 28, 27))


@pytest.mark.parametrize("bad", [[-1.0, 0.0], [0.0, 150.0], [0, 1000]])
def test_q_rejects_t_out_of_range(schedule, bad):
    with pytest.raises(ValueError, match=r"t must lie in \[0, 149\]"):
        q(images(2), torch.tensor(bad), schedule)


def test_q_rejects_fractional_t(schedule):
    with pytest.raises(ValueError, match="whole timesteps"):
        q(images(2), torch.tensor([1.5, 2.0]), schedule)


@pytest.mark.parametrize("n_t", [1, 3, 8])
def test_q_rejects_t_count_mismatch(schedule, n_t):
    with pytest.raises(ValueError, match=f"t has {n_t} elements but the batch has 2 images"):
        q(images(2), torch.zeros(n_t), schedule)


def test_q_rejects_non_tensor_t(schedule):
    with pytest.raises(TypeError, match="t must be a tensor"):
        q(images(2), [1, 2], schedule)


def test_timestep_indices():
    idx = timestep_indices(torch.tensor([[[[3]]], [[[4]]]]), 2, 10)
    assert idx.dtype == torch.long and idx.tolist() == [3, 4]
    assert timestep_indices(torch.zeros(0), 0, 10).numel() == 0


# ---------------------------------------------------------------------- reverse_q


def mean_of(schedule, x_t, t, e_t):
    return schedule.sqrt_a_inv[t] * (x_t - schedule.pred_noise_coeff[t] * e_t)


@pytest.mark.parametrize("t_form", ["flat_int", "4d_int", "flat_float"])
def test_reverse_q_at_zero_is_exact_mean(schedule, t_form):
    x_t, e_t = gaussian((3, 1, 28, 28), 0), gaussian((3, 1, 28, 28), 1)
    t = {
        "flat_int": torch.zeros(3, dtype=torch.long),
        "4d_int": torch.zeros(3, 1, 1, 1, dtype=torch.int32),
        "flat_float": torch.zeros(3),
    }[t_form]
    torch.manual_seed(0)
    out = reverse_q(x_t, t, e_t, schedule)
    assert torch.equal(out, mean_of(schedule, x_t, 0, e_t))
    # and no randomness at t = 0
    torch.manual_seed(99)
    assert torch.equal(reverse_q(x_t, t, e_t, schedule), out)


def test_reverse_q_at_chosen_t_as_numbers(schedule):
    """x_t = e_t = noise = 1 everywhere: sqrt_a_inv[t] (1 - pred_noise_coeff[t]) + sqrt(B[t-1]) [t > 0],
    computed by hand in float64 from B = linspace(1e-4, 0.02, 150): 0.99004950371 at t = 0 (no noise),
    0.98732670185 + sqrt(B[0]) = 0.99732670185 at t = 1, 0.98728854367 + sqrt(B[148]) = 1.12823691349 at t = 149."""
    ones = torch.ones(3, 1, 28, 28)
    out = reverse_q(ones, torch.tensor([0, 1, 149]), ones, schedule, noise=ones)
    for i, expected in enumerate([0.99004950371, 0.99732670185, 1.12823691349]):
        assert torch.allclose(out[i], torch.full_like(out[i], expected), rtol=1e-5, atol=1e-6), i


@pytest.mark.parametrize("step", [1, 2, 75, 149])
def test_reverse_q_explicit_noise_exact(schedule, step):
    x_t, e_t, noise = (gaussian((2, 1, 28, 28), s) for s in (0, 1, 2))
    t = torch.full((2, 1, 1, 1), step)
    out = reverse_q(x_t, t, e_t, schedule, noise=noise)
    expected = mean_of(schedule, x_t, step, e_t) + torch.sqrt(schedule.B[step - 1]) * noise
    assert torch.equal(out, expected)


@pytest.mark.parametrize("step", [1, 2, 75, 149])
def test_reverse_q_noise_variance_is_previous_beta(schedule, step):
    """Variance B[t-1] (course convention), not B[t] nor the DDPM posterior variance."""
    x_t, e_t = gaussian((64, 1, 28, 28), 3), gaussian((64, 1, 28, 28), 4)
    t = torch.full((64,), step)
    torch.manual_seed(2024)
    out = reverse_q(x_t, t, e_t, schedule)
    added = (out - mean_of(schedule, x_t, step, e_t)).double()
    var = added.var().item()
    expected = schedule.B[step - 1].item()
    assert var == pytest.approx(expected, rel=0.03)  # 50,176 pixels: sampling error ~0.6%
    assert abs(added.mean().item()) < 4 * expected**0.5 / 50176**0.5 + 1e-7
    if step <= 2:  # here B[t], B[t-1] and the posterior variance differ by far more than 3%
        a_bar = schedule.a_bar.double()
        posterior = (1 - a_bar[step - 1]) / (1 - a_bar[step]) * schedule.B[step].double()
        assert abs(var - schedule.B[step].item()) > 0.2 * expected
        assert abs(var - posterior.item()) > 0.2 * expected


def test_reverse_q_mixed_batch_each_image_its_own_t(schedule):
    steps = [0, 1, 75, 149]
    x_t, e_t, noise = (gaussian((4, 1, 28, 28), s) for s in (5, 6, 7))
    out = reverse_q(x_t, torch.tensor(steps).reshape(4, 1, 1, 1), e_t, schedule, noise=noise)
    for i, step in enumerate(steps):
        expected = mean_of(schedule, x_t[i], step, e_t[i])
        if step > 0:
            expected = expected + torch.sqrt(schedule.B[step - 1]) * noise[i]
        torch.testing.assert_close(out[i], expected, rtol=0, atol=1e-6)
    assert torch.equal(out[0], mean_of(schedule, x_t[0], 0, e_t[0]))


def test_reverse_q_has_no_grad(schedule):
    x_t = gaussian((1, 1, 28, 28), 0).requires_grad_()
    out = reverse_q(x_t, torch.tensor([5]), torch.zeros(1, 1, 28, 28), schedule)
    assert not out.requires_grad


def test_reverse_q_rejects_e_t_shape_mismatch(schedule):
    with pytest.raises(ValueError, match="e_t shape"):
        reverse_q(torch.zeros(2, 1, 28, 28), torch.tensor([1, 1]), torch.zeros(2, 1, 28, 27), schedule)
    with pytest.raises(ValueError, match="e_t shape"):
        reverse_q(torch.zeros(2, 1, 28, 28), torch.tensor([1, 1]), torch.zeros(1, 1, 28, 28), schedule)


def test_reverse_q_rejects_bad_x_t_and_t(schedule):
    with pytest.raises(ValueError, match="x_t must be a 4-D image batch"):
        reverse_q(torch.zeros(1, 28, 28), torch.tensor([1]), torch.zeros(1, 28, 28), schedule)
    with pytest.raises(ValueError, match="t has 1 elements but the batch has 2"):
        reverse_q(torch.zeros(2, 1, 28, 28), torch.tensor([1]), torch.zeros(2, 1, 28, 28), schedule)
    with pytest.raises(ValueError, match=r"t must lie in \[0, 149\]"):
        reverse_q(torch.zeros(1, 1, 28, 28), torch.tensor([150]), torch.zeros(1, 1, 28, 28), schedule)


def test_reverse_q_rejects_wrong_noise_shape(schedule):
    with pytest.raises(ValueError, match="noise"):
        reverse_q(
            torch.zeros(2, 1, 28, 28),
            torch.tensor([5, 5]),
            torch.zeros(2, 1, 28, 28),
            schedule,
            noise=torch.ones(1, 1, 28, 28),
        )


# ----------------------------------------------------------------------- get_loss


class StubModel(nn.Module):
    """Deterministic noise predictor depending on every argument, recording what it is called with."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(0.3))
        self.calls = []

    def forward(self, x, t, c, c_mask):
        self.calls.append((x, t, c, c_mask))
        bias = (t.float().reshape(-1, 1, 1, 1) / 150) + (c * c_mask).sum(1).reshape(-1, 1, 1, 1)
        return self.scale * x + bias


def test_get_loss_is_mse_of_prediction_and_q_noise(schedule):
    model = StubModel()
    x_0 = images(6)
    steps = [0, 10, 50, 100, 140, 149]
    t = torch.tensor(steps).float()
    c = F.one_hot(torch.arange(6) % 10, 10).float()
    c_mask = torch.tensor([1.0, 0.0]).repeat(3).reshape(6, 1).expand(6, 10).contiguous()

    torch.manual_seed(11)
    loss = get_loss(model, x_0, t, c, c_mask, schedule=schedule)

    # The expectation is built without q: the noise is the first standard normal draw after
    # seeding (what q draws), x_t uses the closed-form coefficients, and the stub's formula
    # is written out again.
    torch.manual_seed(11)
    noise = torch.randn_like(x_0).double()
    a_bar = torch.tensor(
        [math.prod(1 - (1e-4 + (0.02 - 1e-4) * i / 149) for i in range(s + 1)) for s in steps], dtype=torch.float64
    ).reshape(6, 1, 1, 1)
    x_noisy = a_bar.sqrt() * x_0.double() + (1 - a_bar).sqrt() * noise
    kept = torch.tensor([1.0, 0.0] * 3, dtype=torch.float64).reshape(6, 1, 1, 1)  # one class each, masked or not
    prediction = 0.3 * x_noisy + torch.tensor(steps, dtype=torch.float64).reshape(6, 1, 1, 1) / 150 + kept
    expected = ((prediction - noise) ** 2).mean()
    assert loss.dim() == 0
    assert loss.item() == pytest.approx(expected.item(), rel=1e-4)
    # the model saw x_t from q, the undivided t, and the extra arguments in order
    seen_x, seen_t, seen_c, seen_mask = model.calls[0]
    torch.testing.assert_close(seen_x.double(), x_noisy, rtol=1e-4, atol=1e-5)
    assert seen_t is t
    assert seen_c is c and seen_mask is c_mask
    # the loss is differentiable in the model's parameters
    loss.backward()
    assert model.scale.grad is not None and torch.isfinite(model.scale.grad)


def test_get_loss_is_the_mean_not_the_sum(schedule):
    """A predictor off by exactly 1 everywhere has loss 1, whatever the batch and image size."""

    class OffByOne(nn.Module):
        def forward(self, x_t, t, x_0):
            idx = t.long()
            noise = (x_t - schedule.sqrt_a_bar[idx].reshape(-1, 1, 1, 1) * x_0) / (
                schedule.sqrt_one_minus_a_bar[idx].reshape(-1, 1, 1, 1)
            )
            return noise + 1.0

    x_0 = images(8)
    loss = get_loss(OffByOne(), x_0, torch.full((8,), 60.0), x_0, schedule=schedule)
    assert loss.item() == pytest.approx(1.0, rel=1e-3)


def test_get_loss_zero_for_perfect_predictor(schedule):
    class Oracle(nn.Module):
        def forward(self, x_t, t, x_0):
            idx = t.long()
            return (x_t - schedule.sqrt_a_bar[idx].reshape(-1, 1, 1, 1) * x_0) / (
                schedule.sqrt_one_minus_a_bar[idx].reshape(-1, 1, 1, 1)
            )

    x_0 = images(4)
    loss = get_loss(Oracle(), x_0, torch.tensor([1.0, 30.0, 90.0, 149.0]), x_0, schedule=schedule)
    assert loss.item() < 1e-8


def test_get_loss_of_zero_predictor_is_noise_power(schedule):
    zero = lambda x, t: torch.zeros_like(x)  # noqa: E731
    torch.manual_seed(5)
    loss = get_loss(zero, images(32), torch.full((32,), 7.0), schedule=schedule)
    assert loss.item() == pytest.approx(1.0, abs=0.03)
