"""reference.conditioning and reference.sampling: context mask, guidance, the guided sampler
(docs/course.md, tasks 5 and 8)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import reference.sampling
from reference.conditioning import get_context_mask, guided_noise
from reference.sampling import sample_w
from reference.schedule import make_schedule

pytestmark = pytest.mark.usefixtures("single_thread")

# ------------------------------------------------------------------ get_context_mask


def test_c_hot_is_one_hot():
    c = torch.tensor([0, 3, 9, 3, 5])
    c_hot, c_mask = get_context_mask(c, 0.1)
    assert torch.equal(c_hot, F.one_hot(c, 10))
    assert c_hot.shape == c_mask.shape == (5, 10)
    assert torch.equal(c_hot.sum(1), torch.ones(5, dtype=c_hot.dtype))
    assert c_mask.is_floating_point()


def test_c_hot_accepts_float_labels_and_other_class_counts():
    c_hot, c_mask = get_context_mask(torch.tensor([1.0, 2.0]), 0.0, n_classes=4)
    assert torch.equal(c_hot, torch.tensor([[0, 1, 0, 0], [0, 0, 1, 0]]))
    assert c_mask.shape == (2, 4)


def test_mask_binary_with_keep_rate_one_minus_drop():
    torch.manual_seed(0)
    c = torch.arange(20_000) % 10
    for drop in (0.1, 0.25, 0.5, 0.9):
        _, c_mask = get_context_mask(c, drop)
        assert set(c_mask.unique().tolist()) <= {0.0, 1.0}
        # 200,000 Bernoulli draws: standard error <= 0.0012
        assert c_mask.mean().item() == pytest.approx(1 - drop, abs=0.006)


def test_mask_is_all_ones_at_zero_and_all_zeros_at_one():
    c = torch.arange(100) % 10
    _, keep = get_context_mask(c, 0.0)
    _, drop = get_context_mask(c, 1.0)
    assert torch.equal(keep, torch.ones(100, 10))
    assert torch.equal(drop, torch.zeros(100, 10))


def test_mask_draws_each_element_independently():
    """One draw per one-hot element (the course's bernoulli over ones_like(c_hot)), not per sample."""
    torch.manual_seed(1)
    _, c_mask = get_context_mask(torch.arange(2000) % 10, 0.5)
    row_constant = (c_mask.min(1).values == c_mask.max(1).values).float().mean().item()
    assert row_constant < 0.01  # per element: 2 * 0.5**10 ~ 0.002; per sample it would be 1.0
    column_means = c_mask.mean(0)
    assert torch.all((column_means - 0.5).abs() < 0.05)
    # neighbouring elements uncorrelated
    a, b = c_mask[:, :-1].flatten(), c_mask[:, 1:].flatten()
    corr = torch.corrcoef(torch.stack((a, b)))[0, 1].item()
    assert abs(corr) < 0.05


def test_mask_follows_torch_seed():
    c = torch.arange(50) % 10
    torch.manual_seed(3)
    _, m1 = get_context_mask(c, 0.3)
    torch.manual_seed(3)
    _, m2 = get_context_mask(c, 0.3)
    assert torch.equal(m1, m2)


@pytest.mark.parametrize("drop", [-0.1, 1.01, 2, float("nan")])
def test_bad_drop_prob_raises(drop):
    with pytest.raises(ValueError, match="drop_prob must lie in"):
        get_context_mask(torch.tensor([1, 2]), drop)


@pytest.mark.parametrize("labels", [[0, 10], [-1, 3], [11]])
def test_labels_out_of_range_raise(labels):
    with pytest.raises(ValueError, match=r"class labels must lie in \[0, 9\]"):
        get_context_mask(torch.tensor(labels), 0.1)


@pytest.mark.parametrize(
    "labels", [torch.tensor(3), torch.zeros(2, 2, dtype=torch.long), F.one_hot(torch.tensor([1, 2]), 10)]
)
def test_non_1d_labels_raise(labels):
    with pytest.raises(ValueError, match="1-D tensor of class labels"):
        get_context_mask(labels, 0.1)


def test_fractional_labels_raise():
    with pytest.raises(ValueError, match="whole class labels"):
        get_context_mask(torch.tensor([1.5, 2.0]), 0.1)


# --------------------------------------------------------------------- guided_noise


# keep = (1, 2, -1, 0), drop = (3, 0.5, -1, 4); (1 + w) * keep - w * drop worked out by hand per w.
GUIDED = {
    0.0: [1.0, 2.0, -1.0, 0.0],
    1.0: [-1.0, 3.5, -1.0, -4.0],
    2.5: [-4.0, 5.75, -1.0, -10.0],
    -0.5: [2.0, 1.25, -1.0, 2.0],
}


@pytest.mark.parametrize("w", sorted(GUIDED))
def test_guided_noise_closed_form(w):
    keep = torch.tensor([1.0, 2.0, -1.0, 0.0])
    drop = torch.tensor([3.0, 0.5, -1.0, 4.0])
    torch.testing.assert_close(guided_noise(keep, drop, w), torch.tensor(GUIDED[w]))


def test_guided_noise_w_zero_is_conditional_prediction():
    keep, drop = torch.randn(2, 1, 4, 4), torch.randn(2, 1, 4, 4)
    assert torch.equal(guided_noise(keep, drop, 0.0), keep)
    assert torch.equal(guided_noise(keep, drop, 0), keep)


def test_guided_noise_accepts_tensor_w():
    keep, drop = torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)
    out = guided_noise(keep, drop, torch.tensor(2.0))
    assert torch.equal(out, torch.full((1, 1, 2, 2), 3.0))


# ------------------------------------------------------------------------- sample_w


class MaskAwareStub(nn.Module):
    """Tiny noise predictor: keep (c_mask = 1) and drop (c_mask = 0) predictions differ."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, x, t, c, c_mask):
        self.calls.append((x.clone(), t.clone(), c.clone(), c_mask.clone()))
        n = x.shape[0]
        context = (2 * c_mask.mean(1) - 1).reshape(n, 1, 1, 1)  # +1 keep, -1 drop
        label = (c * c_mask).argmax(1).float().reshape(n, 1, 1, 1) * 0.01
        return 0.1 * x + context + label + 0.01 * t.float().reshape(n, 1, 1, 1)


@pytest.fixture
def recorded(monkeypatch):
    calls = []
    original = reference.sampling.reverse_q

    def spy(x_t, t, e_t, schedule, *args, **kwargs):
        calls.append((x_t.clone(), t.clone(), e_t.clone()))
        return original(x_t, t, e_t, schedule, *args, **kwargs)

    monkeypatch.setattr(reference.sampling, "reverse_q", spy)
    return calls


@pytest.mark.parametrize("w", [0.0, 1.0, 2.5])
def test_sample_w_guidance_weights(recorded, w):
    schedule = make_schedule(5)
    model = MaskAwareStub()
    c_hot = F.one_hot(torch.tensor([0, 3, 7]), 10)
    torch.manual_seed(0)
    out = sample_w(model, c_hot, w, schedule)

    assert out.shape == (3, 1, 28, 28)
    assert torch.isfinite(out).all()
    assert len(model.calls) == len(recorded) == 5
    for step, ((x, t, c, c_mask), (x_t, t_rq, e_t)) in enumerate(zip(list(model.calls), recorded, strict=True)):
        expected_t = 4 - step
        # doubled batch: same images and timesteps, first half keeps the context, second drops it
        assert x.shape == (6, 1, 28, 28)
        assert torch.equal(x[:3], x_t) and torch.equal(x[3:], x_t)
        assert t.shape == (6, 1, 1, 1) and torch.all(t == expected_t)
        assert t_rq.shape == (3, 1, 1, 1) and torch.all(t_rq == expected_t)
        assert torch.equal(c, c_hot.float().repeat(2, 1))
        assert torch.equal(c_mask[:3], torch.ones(3, 10)) and torch.equal(c_mask[3:], torch.zeros(3, 10))
        # solve e_t = alpha * keep + beta * drop for the affine weights
        pred = model(x, t, c, c_mask)
        keep, drop = pred[:3].flatten(), pred[3:].flatten()
        A = torch.stack((keep, drop), 1).double()
        alpha, beta = torch.linalg.lstsq(A, e_t.flatten().double().unsqueeze(1)).solution.flatten().tolist()
        assert alpha == pytest.approx(1 + w, abs=1e-4)
        assert beta == pytest.approx(-w, abs=1e-4)
    # the last step is t = 0, which adds no noise: the output is the mean of that step
    x_t, _, e_t = recorded[-1]
    expected = schedule.sqrt_a_inv[0] * (x_t - schedule.pred_noise_coeff[0] * e_t)
    torch.testing.assert_close(out, expected)


def test_sample_w_starts_from_standard_normal_and_calls_progress(recorded):
    schedule = make_schedule(5)
    steps = []
    torch.manual_seed(42)
    sample_w(MaskAwareStub(), F.one_hot(torch.arange(10), 10), 1.0, schedule, progress=steps.append)
    assert steps == [1, 2, 3, 4, 5]
    torch.manual_seed(42)
    x_T = torch.randn(10, 1, 28, 28)
    assert torch.equal(recorded[0][0], x_T)


def test_sample_w_same_seed_same_images():
    schedule = make_schedule(5)
    c_hot = F.one_hot(torch.tensor([1, 2]), 10)
    torch.manual_seed(7)
    a = sample_w(MaskAwareStub(), c_hot, 1.0, schedule)
    torch.manual_seed(7)
    b = sample_w(MaskAwareStub(), c_hot, 1.0, schedule)
    assert torch.equal(a, b)


def test_sample_w_rejects_labels_instead_of_one_hot():
    with pytest.raises(ValueError, match="c_hot must be"):
        sample_w(MaskAwareStub(), torch.tensor([1, 2]), 1.0, make_schedule(5))
