"""The stand-ins for the course's helper modules: `utils.*` and `run_assessment`."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

import reference
from reference import mnist
from reference.course_path import course_path
from reference.schedule import TENSOR_NAMES, make_schedule
from reference.weights import JUDGE_FILE, weights_path

COURSE_MODULES = ("utils", "utils.other_utils", "utils.ddpm_utils", "utils.UNet_utils", "run_assessment")
BLOCK_NAMES = (
    "DownBlock", "EmbedBlock", "GELUConvBlock", "RearrangePoolBlock", "ResidualConvBlock",
    "SinusoidalPositionEmbedBlock", "UpBlock",
)


def _child(code: str, with_course: bool, **env_changes):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MPLBACKEND")}
    if with_course:
        env["PYTHONPATH"] = str(course_path())
    env.update(env_changes)
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def course():
    """The stand-in modules, imported with course_path() on sys.path only while importing."""
    saved = {name: sys.modules.pop(name) for name in COURSE_MODULES if name in sys.modules}
    sys.path.insert(0, str(course_path()))
    try:
        modules = SimpleNamespace(
            other_utils=importlib.import_module("utils.other_utils"),
            ddpm_utils=importlib.import_module("utils.ddpm_utils"),
            UNet_utils=importlib.import_module("utils.UNet_utils"),
            run_assessment=importlib.import_module("run_assessment"),
        )
    finally:
        sys.path.remove(str(course_path()))
    yield modules
    # Leave no top-level `utils` behind for other test modules.
    for name in COURSE_MODULES:
        sys.modules.pop(name, None)
    sys.modules.update(saved)


def test_course_path_holds_the_modules():
    folder = course_path()
    assert (folder / "run_assessment.py").is_file()
    for name in ("__init__", "other_utils", "ddpm_utils", "UNet_utils"):
        assert (folder / "utils" / f"{name}.py").is_file()
    assert not (folder / "__init__.py").exists()


IMPORT_AND_PLOT = """
import matplotlib, torch
from utils import other_utils, ddpm_utils, UNet_utils
from run_assessment import run_assessment
assert matplotlib.get_backend().lower() == "agg", matplotlib.get_backend()
other_utils.show_tensor_image(torch.zeros(1, 1, 28, 28))
other_utils.plot_generated_images(torch.randn(1, 1, 28, 28), torch.randn(1, 1, 28, 28))
ddpm = ddpm_utils.DDPM(torch.linspace(1e-4, 0.02, 6), "cpu")
ddpm.sample_images(lambda x, t: torch.zeros_like(x), 1, 28, 3)
import matplotlib.pyplot as plt
plt.show()  # under Agg this must be a silent no-op
print("ok")
"""


def test_importable_only_with_course_path_on_sys_path():
    # A fake display: the stand-ins must still choose Agg rather than a window backend.
    found = _child(IMPORT_AND_PLOT, with_course=True, DISPLAY=":0")
    assert (found.returncode, found.stdout, found.stderr) == (0, "ok\n", "")
    for module in ("utils", "run_assessment"):
        missing = _child(f"import {module}", with_course=False)
        assert missing.returncode != 0 and "ModuleNotFoundError" in missing.stderr


def test_schedule_from_betas_matches_reference(course):
    built = course.ddpm_utils.schedule_from_betas(torch.linspace(0.0001, 0.02, 150))
    expected = make_schedule()
    for name in TENSOR_NAMES:
        torch.testing.assert_close(getattr(built, name), getattr(expected, name))
    with pytest.raises(ValueError):
        course.ddpm_utils.schedule_from_betas(torch.tensor([0.1, 1.5]))


def test_ddpm_q_and_reverse_q_agree_with_reference(course):
    schedule = make_schedule()
    ddpm = course.ddpm_utils.DDPM(torch.linspace(0.0001, 0.02, 150), "cpu")
    assert ddpm.T == 150 and torch.equal(ddpm.a_bar, schedule.a_bar)
    x_0 = torch.rand(4, 1, 28, 28)
    t = torch.tensor([0.0, 10.0, 75.0, 149.0])
    torch.manual_seed(1)
    got = ddpm.q(x_0, t)
    torch.manual_seed(1)
    want = reference.q(x_0, t, schedule)
    torch.testing.assert_close(got, want)

    e_t = torch.randn(4, 1, 28, 28)
    for step in (0, 1, 90):
        t_col = torch.full((4, 1, 1, 1), step)
        torch.manual_seed(2)
        got = ddpm.reverse_q(x_0, t_col, e_t)
        torch.manual_seed(2)
        torch.testing.assert_close(got, reference.reverse_q(x_0, t_col, e_t, schedule))

    model = lambda x, t, scale: x * scale  # noqa: E731
    torch.manual_seed(3)
    got = ddpm.get_loss(model, x_0, t, 0.5)
    torch.manual_seed(3)
    torch.testing.assert_close(got, reference.get_loss(model, x_0, t, 0.5, schedule=schedule))


def _class_noise(x, t, c, c_mask):
    """A cheap stand-in model whose prediction depends on the kept class and on t."""
    label = (c * c_mask).float() @ torch.arange(10.0)
    return 0.1 * x + 0.01 * label.reshape(-1, 1, 1, 1) + t.float().reshape(-1, 1, 1, 1) / 1000


def test_ddpm_sample_w_matches_reference_sampler(course):
    schedule = make_schedule()
    ddpm = course.ddpm_utils.DDPM(schedule.B, "cpu")
    c_hot = torch.nn.functional.one_hot(torch.tensor([3, 7]), 10)
    torch.manual_seed(4)
    x_0, store = course.ddpm_utils.sample_w(_class_noise, ddpm, (1, 28, 28), 150, c_hot, "cpu", [1.5])
    torch.manual_seed(4)
    want = reference.sample_w(_class_noise, c_hot, 1.5, schedule)
    torch.testing.assert_close(x_0, want)
    # Every 10th step (0..140) and each of the last ten steps: 15 + 9 snapshots.
    assert store.shape == (24, 2, 1, 28, 28) and torch.equal(store[-1], x_0)


def test_ddpm_sample_w_rows_are_w_major(course):
    ddpm = course.ddpm_utils.DDPM(torch.linspace(0.0001, 0.02, 150), "cpu")
    c_hot = torch.nn.functional.one_hot(torch.tensor([2, 5, 9]), 10)
    w_tests = [-1.0, 0.0, 2.0]
    torch.manual_seed(5)
    x_0, _ = course.ddpm_utils.sample_w(_class_noise, ddpm, (1, 28, 28), 1, c_hot, "cpu", w_tests)
    torch.manual_seed(5)
    x_init = torch.randn(9, 1, 28, 28)
    # One step at t = 0 is noiseless: x_0 = sqrt_a_inv[0] * (x - coeff[0] * e), e guided per row.
    keep = 0.1 * x_init + 0.01 * torch.tensor([2.0, 5.0, 9.0] * 3).reshape(-1, 1, 1, 1)
    drop = 0.1 * x_init
    w = torch.tensor(w_tests).repeat_interleave(3).reshape(-1, 1, 1, 1)
    e_t = (1 + w) * keep - w * drop
    torch.testing.assert_close(x_0, ddpm.sqrt_a_inv[0] * (x_init - ddpm.pred_noise_coeff[0] * e_t))
    assert course.ddpm_utils.DEFAULT_W_TESTS == (-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0)


def test_unet_utils_reexports_reference_classes(course):
    for name in BLOCK_NAMES:
        assert getattr(course.UNet_utils, name) is getattr(reference, name)
    ours = course.UNet_utils.UNet(150, 1, 28, down_chs=(64, 64, 128), t_embed_dim=8, c_embed_dim=10)
    theirs = reference.UNet(150, 1, 28, down_chs=(64, 64, 128), t_embed_dim=8, c_embed_dim=10)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert sum(p.numel() for p in ours.parameters()) == 2_547_457


def test_unet_utils_context_mask(course):
    c = torch.tensor([0, 3, 9, 3])
    c_hot, c_mask = course.UNet_utils.get_context_mask(c, 0.5)
    assert c_hot.shape == c_mask.shape == (4, 10)
    assert c_hot.device.type == c_mask.device.type == course.UNet_utils.device.type
    assert torch.equal(c_hot.argmax(1).cpu(), c) and torch.equal(c_hot.sum(1).cpu(), torch.ones(4).long())
    assert set(c_mask.unique().tolist()) <= {0.0, 1.0}
    assert bool(course.UNet_utils.get_context_mask(c, 0.0)[1].eq(1).all())
    assert bool(course.UNet_utils.get_context_mask(c, 1.0)[1].eq(0).all())
    assert course.UNet_utils.get_context_mask(c, 0.3, num_classes=12)[0].shape == (4, 12)


def test_plotting_is_headless_and_silent(course, capfd):
    import matplotlib.pyplot as plt

    utils = course.other_utils
    image = utils.to_image(torch.tensor([[[-3.0, 0.0], [1.0, 3.0]]]), to_pil=False)
    assert torch.equal(image, torch.tensor([[[0.0, 0.5], [1.0, 1.0]]]))
    pil = utils.to_image(torch.zeros(1, 28, 28))
    assert pil.size == (28, 28) and pil.mode == "L"
    utils.show_tensor_image(torch.randn(2, 1, 28, 28))
    utils.plot_generated_images(torch.randn(1, 1, 28, 28), torch.randn(1, 1, 28, 28))
    ddpm = course.ddpm_utils.DDPM(torch.linspace(1e-4, 0.02, 8), "cpu")
    x = ddpm.sample_images(lambda x_t, t: torch.zeros_like(x_t), 1, 28, 4, axis_on=True)
    assert x.shape == (1, 1, 28, 28)
    plt.close("all")
    assert capfd.readouterr() == ("", "")


def test_save_animation_writes_a_gif(course, tmp_path):
    from PIL import Image

    frames = [course.other_utils.to_image(torch.rand(1, 28, 28) * 2 - 1) for _ in range(3)]
    target = tmp_path / "movie.gif"
    course.other_utils.save_animation(frames, str(target), interval=50, repeat_delay=100)
    assert target.read_bytes()[:4] == b"GIF8"
    with Image.open(target) as gif:
        assert gif.n_frames == 3


def test_fashion_loaders_explain_they_are_missing(course):
    for call in (
        lambda: course.other_utils.load_fashionMNIST(None),
        lambda: course.other_utils.load_transformed_fashionMNIST(28, 128),
    ):
        with pytest.raises(RuntimeError, match="only MNIST"):
            call()


# --- run_assessment: needs the judge weights, which are trained separately ----------------------

class _Holder(torch.nn.Module):
    """A 'model' with one parameter, so run_assessment can find its device."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))


@pytest.fixture(scope="module")
def digits_by_class():
    if not weights_path(JUDGE_FILE).is_file():
        pytest.skip(f"judge weights not built yet: {weights_path(JUDGE_FILE)}")
    images, labels = mnist.load("test")
    return {digit: images[labels == digit][:5] for digit in range(10)}


def _sampler(digits_by_class, shift, calls):
    def sample(model, c_hot, *, w):  # keyword-only: the official grader passes w=w
        calls.append((tuple(c_hot.shape), c_hot.device, w))
        digit = int(c_hot[0].argmax())
        assert bool((c_hot.argmax(1) == digit).all())
        return digits_by_class[(digit + shift) % 10]
    return sample


def test_run_assessment_passes_real_digits(course, digits_by_class, capsys):
    calls = []
    accuracy = course.run_assessment.run_assessment(_Holder(), _sampler(digits_by_class, 0, calls), w=0.7)
    out = capsys.readouterr().out
    assert isinstance(accuracy, float) and accuracy >= 0.95
    assert f"Final Accuracy: {accuracy}" in out
    assert course.run_assessment.PASS_LINE in out and course.run_assessment.FAIL_PREFIX not in out
    assert out.count("Digit ") == 10
    assert calls == [((5, 10), torch.device("cpu"), 0.7)] * 10


def test_run_assessment_fails_wrong_digits(course, digits_by_class, capsys):
    accuracy = course.run_assessment.run_assessment(_Holder(), _sampler(digits_by_class, 1, []), w=1.0)
    out = capsys.readouterr().out
    assert accuracy < 0.95
    assert course.run_assessment.FAIL_PREFIX in out and course.run_assessment.PASS_LINE not in out
