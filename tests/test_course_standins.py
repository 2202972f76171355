"""The stand-ins for the course's helper modules: `utils.*` and `run_assessment`.

The stand-ins import nothing of `grader`, `tasks` or `reference` (student code cannot see them),
so comparing them with `reference` here is an independent check of both.
"""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

import reference
from corpus.blocks import BLOCK_CASES, BLOCK_NAMES  # tests/ is on sys.path (pytest's default import mode)
from reference.course_path import course_path
from reference.schedule import TENSOR_NAMES, make_schedule
from reference.unet import course_unet
from reference.weights import UNET_FILE, load_into, weights_path

pytestmark = pytest.mark.usefixtures("single_thread")

COURSE_MODULES = ("utils", "utils.other_utils", "utils.ddpm_utils", "utils.UNet_utils", "run_assessment")
GRADER_PACKAGES = {"grader", "tasks", "reference"}
ALLOWED_THIRD_PARTY = {"torch", "torchvision", "einops", "matplotlib"}


def _child(code: str, with_course: bool, **env_changes):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MPLBACKEND")}
    if with_course:
        env["PYTHONPATH"] = str(course_path())
    env.update(env_changes)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


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


# --- independence from the grader's packages -----------------------------------------------------

# Run with `python -I` (no PYTHONPATH, no cwd on sys.path) and a finder that refuses the grader's
# packages, as in the student's child, where they are hidden from the filesystem view.
ISOLATED = r"""
import importlib.abc, os, sys
BLOCKED = {"reference", "grader", "tasks"}

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is hidden from student code")
        return None

sys.meta_path.insert(0, Refuse())
for name in sorted(BLOCKED):
    try:
        __import__(name)
    except ImportError:
        pass
    else:
        raise SystemExit(f"the blocker failed: {name} imported")
sys.path.insert(0, sys.argv[1])
os.chdir(sys.argv[2])

import torch
torch.set_num_threads(1)
from utils import other_utils, ddpm_utils, UNet_utils
from run_assessment import run_assessment
import run_assessment as assessment
leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
assert not leaked, leaked

torch.manual_seed(0)
model = UNet_utils.UNet(150, 1, 28, down_chs=(64, 64, 128), t_embed_dim=8, c_embed_dim=10)
assert sum(p.numel() for p in model.parameters()) == 2_547_457
c_hot, c_mask = UNet_utils.get_context_mask(torch.tensor([1, 7]), 0.1)
assert c_hot.shape == c_mask.shape == (2, 10)
with torch.no_grad():
    assert model(torch.randn(2, 1, 28, 28), torch.tensor([3.0, 140.0]), c_hot, c_mask).shape == (2, 1, 28, 28)
for name in ("DownBlock", "EmbedBlock", "GELUConvBlock", "RearrangePoolBlock", "ResidualConvBlock",
             "SinusoidalPositionEmbedBlock", "UpBlock"):
    assert isinstance(getattr(UNet_utils, name), type), name

ddpm = ddpm_utils.DDPM(torch.linspace(1e-4, 0.02, 150), "cpu")
x_0 = torch.rand(2, 1, 28, 28)
x_t, noise = ddpm.q(x_0, torch.tensor([0.0, 149.0]))
assert x_t.shape == noise.shape == x_0.shape
assert ddpm.reverse_q(x_t, torch.zeros(2, 1, 1, 1, dtype=torch.long), noise).shape == x_0.shape
assert ddpm.get_loss(lambda x, t: torch.zeros_like(x), x_0, torch.tensor([5.0, 6.0])).dim() == 0
stub = lambda x, t, c, m: 0.1 * x
x, store = ddpm_utils.sample_w(stub, ddpm_utils.DDPM(torch.linspace(1e-4, 0.02, 12), "cpu"),
                               (1, 28, 28), 12, torch.eye(10)[:2], "cpu", [0.0, 1.0])
assert x.shape == (4, 1, 28, 28) and store.shape[1:] == (4, 1, 28, 28)
other_utils.to_image(torch.zeros(1, 28, 28))

out = run_assessment(model, lambda m, c, w: torch.zeros(c.shape[0], 1, 28, 28) + w, w=0.5)
assert out is assessment.last_samples and out.shape == (50, 1, 28, 28) and bool((out == 0.5).all())
assert os.path.isfile("run_assessment_samples.pt")
leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
assert not leaked, leaked
print("ok")
"""


def test_standins_import_and_work_with_the_grader_packages_hidden(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MPLBACKEND")}
    env.update(MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, "-I", "-c", ISOLATED, str(course_path()), str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.endswith("ok\n")


def _forbidden_imports(source: str, in_utils: bool) -> list[str]:
    """Imports a stand-in may not make: the grader's packages, and anything beyond torch,
    torchvision, einops, matplotlib, the standard library and (inside utils) its siblings."""
    allowed = ALLOWED_THIRD_PARTY | set(sys.stdlib_module_names) | {"__future__"}
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if not (in_utils and node.level == 1):
                    found.append(ast.unparse(node))
                continue
            names = [node.module or ""]
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and ast.unparse(node.func).split(".")[-1] in ("__import__", "import_module")
        ):
            names = [node.args[0].value]
        else:
            continue
        found += [name for name in names if name.split(".")[0] not in allowed or name.split(".")[0] in GRADER_PACKAGES]
    return found


def test_forbidden_import_check_catches_the_grader_packages():
    for source in (
        "from reference import diffusion",
        "import reference.unet",
        "from reference.blocks import UpBlock",
        "import grader",
        "from tasks.base import X",
        "importlib.import_module('reference.classifier')",
        "import numpy",
    ):
        assert _forbidden_imports(source, in_utils=True), source
    assert _forbidden_imports("from . import other_utils", in_utils=False)
    assert _forbidden_imports("from .. import x", in_utils=True)
    assert not _forbidden_imports(
        "import math\nimport torch.nn as nn\nfrom einops.layers.torch import Rearrange\n"
        "from . import other_utils\nimport matplotlib.pyplot as plt",
        in_utils=True,
    )


def test_standin_sources_import_nothing_of_the_grader():
    files = sorted(course_path().rglob("*.py"))
    assert len(files) == 5
    for path in files:
        source = path.read_text()
        assert _forbidden_imports(source, in_utils=path.parent.name == "utils") == [], path
        for needle in (
            "import reference",
            "from reference",
            "import grader",
            "from grader",
            "import tasks",
            "from tasks",
        ):
            code_lines = [line for line in source.splitlines() if line.lstrip().startswith(needle)]
            assert not code_lines, (path, code_lines)


# --- the U-Net and its blocks against reference's ------------------------------------------------


def _perturbed(state: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    """The state with every float tensor shifted, so norm weights and biases matter too."""
    generator = torch.Generator().manual_seed(seed)
    return {
        k: v + 0.1 * torch.randn(v.shape, generator=generator) if v.is_floating_point() else v for k, v in state.items()
    }


def _same_shapes(a: torch.nn.Module, b: torch.nn.Module) -> None:
    assert [(k, tuple(v.shape)) for k, v in a.state_dict().items()] == [
        (k, tuple(v.shape)) for k, v in b.state_dict().items()
    ]


@pytest.mark.parametrize("name", BLOCK_NAMES)
def test_blocks_match_reference(course, name):
    ours_cls = getattr(course.UNet_utils, name)
    assert ours_cls is not getattr(reference, name) and ours_cls.__module__ == "utils.UNet_utils"
    args, shapes = BLOCK_CASES[name]
    torch.manual_seed(11)
    theirs, ours = getattr(reference, name)(*args), ours_cls(*args)
    _same_shapes(ours, theirs)
    state = _perturbed(theirs.state_dict(), 12)
    theirs.load_state_dict(state, strict=True)
    ours.load_state_dict(state, strict=True)
    inputs = [torch.randn(shape) * 3 for shape in shapes]
    torch.testing.assert_close(ours(*inputs), theirs(*inputs), rtol=1e-5, atol=1e-6)
    if name == "SinusoidalPositionEmbedBlock":
        with pytest.raises(ValueError):
            ours_cls(7)


def _unet_inputs(n: int, c_embed_dim: int = 10):
    torch.manual_seed(13)
    labels = torch.arange(n) % c_embed_dim
    c_mask = torch.ones(n, c_embed_dim)
    c_mask[::2] = 0.0
    return (torch.rand(n, 1, 28, 28), torch.linspace(0, 149, n).round(), F.one_hot(labels, c_embed_dim).float(), c_mask)


def test_unet_loads_the_course_weights_and_gives_the_same_outputs(course):
    theirs = course_unet()
    if weights_path(UNET_FILE).is_file():
        load_into(theirs, weights_path(UNET_FILE))  # the trained model: realistic activations
    else:
        theirs.load_state_dict(_perturbed(theirs.state_dict(), 14))
    ours = course.UNet_utils.UNet(150, 1, 28, down_chs=(64, 64, 128), t_embed_dim=8, c_embed_dim=10)
    assert type(ours) is not reference.UNet
    _same_shapes(ours, theirs)
    assert sum(p.numel() for p in ours.parameters()) == 2_547_457
    ours.load_state_dict(theirs.state_dict(), strict=True)
    inputs = _unet_inputs(4)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(*inputs), theirs.eval()(*inputs), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("down_chs", [(12, 24, 16), (16, 24, 20)])
def test_narrow_unet_matches_reference_both_ways(course, down_chs):
    # down_chs that 8 and 32 do not divide: both must lower the group counts the same way
    # (the big count divides every level, not only the first: 4 here, where gcd(32, 16) = 16).
    config = (150, 1, 28, down_chs, 4, 10)
    torch.manual_seed(15)
    ours, theirs = course.UNet_utils.UNet(*config), reference.UNet(*config)
    _same_shapes(ours, theirs)
    ours.load_state_dict(_perturbed(ours.state_dict(), 16), strict=True)
    theirs.load_state_dict(ours.state_dict(), strict=True)
    inputs = _unet_inputs(3)
    with torch.no_grad():
        torch.testing.assert_close(ours(*inputs), theirs(*inputs), rtol=1e-5, atol=1e-5)
    for bad in ({"down_chs": (8, 16)}, {"img_size": 30}):
        kwargs = {"T": 150, "img_ch": 1, "img_size": 28, **bad}
        with pytest.raises(ValueError):
            course.UNet_utils.UNet(**kwargs)


# --- the context mask ----------------------------------------------------------------------------


def test_context_mask_one_hot_and_draws_match_reference(course):
    c = torch.tensor([0, 3, 9, 3])
    c_hot, c_mask = course.UNet_utils.get_context_mask(c, 0.5)
    assert c_hot.shape == c_mask.shape == (4, 10)
    assert c_hot.device.type == c_mask.device.type == course.UNet_utils.device.type
    assert torch.equal(c_hot.cpu(), F.one_hot(c, 10)) and c_mask.dtype == torch.float32
    assert set(c_mask.unique().tolist()) <= {0.0, 1.0}
    assert bool(course.UNet_utils.get_context_mask(c, 0.0)[1].eq(1).all())
    assert bool(course.UNet_utils.get_context_mask(c, 1.0)[1].eq(0).all())
    assert course.UNet_utils.get_context_mask(c, 0.3, num_classes=12)[0].shape == (4, 12)
    assert torch.equal(course.UNet_utils.get_context_mask(c.float(), 0.0)[0].cpu(), F.one_hot(c, 10))
    for drop in (0.1, 0.5):
        torch.manual_seed(17)
        got = course.UNet_utils.get_context_mask(c, drop)
        torch.manual_seed(17)
        want = reference.get_context_mask(c, drop)
        for ours, theirs in zip(got, want, strict=True):
            assert torch.equal(ours.cpu(), theirs)
    for bad in ((torch.tensor([10]), 0.1), (torch.tensor([0.5]), 0.1), (c, 1.5), (c.reshape(2, 2), 0.1)):
        with pytest.raises(ValueError):
            course.UNet_utils.get_context_mask(*bad)


def test_context_mask_keep_rate_and_per_element_draws(course):
    torch.manual_seed(18)
    c = torch.randint(0, 10, (20_000,))
    _, c_mask = course.UNet_utils.get_context_mask(c, 0.3)
    keep = float(c_mask.mean())
    assert 0.69 < keep < 0.71, keep  # 200,000 draws: the standard error is about 0.001
    # One draw per element, not per sample: with P(keep) = 0.7 a row of 10 is uniform only ~3% of the time.
    mixed = float((c_mask.min(1).values != c_mask.max(1).values).float().mean())
    assert mixed > 0.95, mixed


# --- DDPM: schedule, q, reverse_q, loss, sampling -----------------------------------------------


def test_ddpm_schedule_matches_reference(course):
    expected = make_schedule()
    ddpm = course.ddpm_utils.DDPM(torch.linspace(0.0001, 0.02, 150), "cpu")
    assert ddpm.T == 150 and ddpm.device == torch.device("cpu")
    for name in TENSOR_NAMES:
        torch.testing.assert_close(getattr(ddpm, name), getattr(expected, name), rtol=1e-6, atol=0)
        assert getattr(ddpm, name) is getattr(ddpm.schedule, name)
    # The closed forms themselves, in float64 (float32 loses ~1e-4 relative in 1 - a_bar near t = 0).
    B = torch.linspace(0.0001, 0.02, 150, dtype=torch.float64)
    a_bar = torch.cumprod(1 - B, 0)
    torch.testing.assert_close(ddpm.sqrt_one_minus_a_bar.double(), (1 - a_bar).sqrt(), rtol=1e-3, atol=0)
    torch.testing.assert_close(ddpm.pred_noise_coeff.double(), B / (1 - a_bar).sqrt(), rtol=1e-3, atol=0)
    torch.testing.assert_close(ddpm.sqrt_a_inv.double(), (1 / (1 - B)).sqrt(), rtol=1e-6, atol=0)
    built = course.ddpm_utils.schedule_from_betas(torch.linspace(0.0001, 0.02, 150))
    assert built.T == 150 and set(built.as_dict()) == set(TENSOR_NAMES)
    for bad in (torch.tensor([0.1, 1.5]), torch.tensor([0.1]), torch.zeros(2, 2) + 0.1):
        with pytest.raises(ValueError):
            course.ddpm_utils.schedule_from_betas(bad)


def test_q_closed_form_with_given_noise(course):
    s = make_schedule()
    ddpm = course.ddpm_utils.DDPM(s.B, "cpu")
    torch.manual_seed(19)
    x_0, noise = torch.rand(4, 1, 28, 28), torch.randn(4, 1, 28, 28)
    t = torch.tensor([0.0, 10.0, 75.0, 149.0])
    x_t, returned = ddpm.q(x_0, t, noise=noise)
    assert returned is noise
    idx = t.long()
    want = s.sqrt_a_bar[idx].view(-1, 1, 1, 1) * x_0 + s.sqrt_one_minus_a_bar[idx].view(-1, 1, 1, 1) * noise
    torch.testing.assert_close(x_t, want)
    torch.testing.assert_close(x_t, reference.q(x_0, t, s, noise=noise)[0])
    # The course's call, q(x_0, t), draws its noise like reference's.
    torch.manual_seed(20)
    got = ddpm.q(x_0, t)
    torch.manual_seed(20)
    torch.testing.assert_close(got, reference.q(x_0, t, s))
    for bad_t in (torch.tensor([0.5, 1.0, 2.0, 3.0]), torch.tensor([0, 1, 2, 150]), torch.tensor([1, 2])):
        with pytest.raises(ValueError):
            ddpm.q(x_0, bad_t)


def test_reverse_q_closed_form_with_given_noise(course):
    s = make_schedule()
    ddpm = course.ddpm_utils.DDPM(s.B, "cpu")
    torch.manual_seed(21)
    x_t, e_t, noise = (torch.randn(4, 1, 28, 28) for _ in range(3))
    for steps in ([0, 0, 0, 0], [1, 1, 1, 1], [90, 90, 90, 90], [0, 1, 90, 149]):
        t = torch.tensor(steps).view(-1, 1, 1, 1)
        idx = torch.tensor(steps)
        mean = s.sqrt_a_inv[idx].view(-1, 1, 1, 1) * (x_t - s.pred_noise_coeff[idx].view(-1, 1, 1, 1) * e_t)
        std = torch.tensor([float(s.B[i - 1].sqrt()) if i > 0 else 0.0 for i in steps]).view(-1, 1, 1, 1)
        got = ddpm.reverse_q(x_t, t, e_t, noise=noise)
        torch.testing.assert_close(got, mean + std * noise)
        torch.testing.assert_close(got, reference.reverse_q(x_t, t, e_t, s, noise=noise))
        torch.manual_seed(22)
        drawn = ddpm.reverse_q(x_t, t, e_t)
        torch.manual_seed(22)
        torch.testing.assert_close(drawn, reference.reverse_q(x_t, t, e_t, s))
    with pytest.raises(ValueError):
        ddpm.reverse_q(x_t, torch.zeros(4, 1, 1, 1), e_t[:2])


def test_get_loss_matches_reference(course):
    s = make_schedule()
    ddpm = course.ddpm_utils.DDPM(s.B, "cpu")
    x_0, t = torch.rand(4, 1, 28, 28), torch.tensor([0.0, 10.0, 75.0, 149.0])
    model = lambda x, t, scale: x * scale  # noqa: E731
    torch.manual_seed(3)
    got = ddpm.get_loss(model, x_0, t, 0.5)
    torch.manual_seed(3)
    torch.testing.assert_close(got, reference.get_loss(model, x_0, t, 0.5, schedule=s))
    torch.manual_seed(3)
    x_t, noise = ddpm.q(x_0, t)
    torch.testing.assert_close(got, ((x_t * 0.5 - noise) ** 2).mean())


def _class_noise(x, t, c, c_mask):
    """A cheap stand-in model whose prediction depends on the kept class and on t."""
    label = (c * c_mask).float() @ torch.arange(10.0)
    return 0.1 * x + 0.01 * label.reshape(-1, 1, 1, 1) + t.float().reshape(-1, 1, 1, 1) / 1000


def test_ddpm_sample_w_matches_reference_sampler(course):
    schedule = make_schedule()
    ddpm = course.ddpm_utils.DDPM(schedule.B, "cpu")
    c_hot = F.one_hot(torch.tensor([3, 7]), 10)
    torch.manual_seed(4)
    x_0, store = course.ddpm_utils.sample_w(_class_noise, ddpm, (1, 28, 28), 150, c_hot, "cpu", [1.5])
    torch.manual_seed(4)
    want = reference.sample_w(_class_noise, c_hot, 1.5, schedule)
    torch.testing.assert_close(x_0, want)
    # Every 10th step (0..140) and each of the last ten steps: 15 + 9 snapshots.
    assert store.shape == (24, 2, 1, 28, 28) and torch.equal(store[-1], x_0)


def test_ddpm_sample_w_rows_are_w_major(course):
    ddpm = course.ddpm_utils.DDPM(torch.linspace(0.0001, 0.02, 150), "cpu")
    c_hot = F.one_hot(torch.tensor([2, 5, 9]), 10)
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
    keep_t, drop_t = torch.randn(2, 3), torch.randn(2, 3)
    torch.testing.assert_close(
        course.ddpm_utils.guided_noise(keep_t, drop_t, 0.7), reference.guided_noise(keep_t, drop_t, 0.7)
    )


# --- other_utils -----------------------------------------------------------------------------------


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


# --- run_assessment: draws the official samples, the grader classifies them -----------------------


class _Holder(torch.nn.Module):
    """A 'model' with one parameter, so run_assessment can find its device."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))


def _recording_sampler(calls):
    def sample(*args, **kwargs):
        calls.append((args, kwargs))
        _, c_hot = args
        digit = int(c_hot[0].argmax())
        rows = torch.arange(c_hot.shape[0], dtype=torch.float64).reshape(-1, 1, 1, 1)
        # float64 and attached to a graph: run_assessment must hand back detached float32.
        return (digit + rows / 10 + torch.zeros(1, 1, 28, 28)).requires_grad_()

    return sample


def test_run_assessment_draws_the_official_samples(course, tmp_path, monkeypatch, capsys):
    module = course.run_assessment
    monkeypatch.chdir(tmp_path)
    model, calls = _Holder(), []
    result = module.run_assessment(model, _recording_sampler(calls), 0.7)

    assert len(calls) == 10
    for digit, (args, kwargs) in enumerate(calls):
        assert len(args) == 2 and args[0] is model and kwargs == {"w": 0.7}
        c_hot = args[1]
        assert c_hot.dtype == torch.float32 and c_hot.device == torch.device("cpu")
        assert torch.equal(c_hot, F.one_hot(torch.full((5,), digit), 10).float())

    labels = torch.arange(10).repeat_interleave(5)
    expected = (labels + torch.arange(5).repeat(10) / 10).float().reshape(50, 1, 1, 1).expand(50, 1, 28, 28)
    assert result is module.last_samples
    assert result.shape == (50, 1, 28, 28) and result.dtype == torch.float32
    assert result.device == torch.device("cpu") and not result.requires_grad
    torch.testing.assert_close(result, expected)
    assert torch.equal(module.last_labels, labels)

    saved = torch.load(tmp_path / "run_assessment_samples.pt", weights_only=True)
    assert set(saved) == {"samples", "labels"}
    assert torch.equal(saved["samples"], result) and torch.equal(saved["labels"], labels)

    lines = capsys.readouterr().out.splitlines()
    assert lines[:10] == [f"Digit {d}: drew 5 samples" for d in range(10)]
    assert len(lines) == 11 and "grader classifies" in lines[10] and "run_assessment_samples.pt" in lines[10]
    assert "Accuracy" not in "\n".join(lines)


def test_run_assessment_rejects_wrong_shapes_and_keeps_no_stale_samples(course, tmp_path, monkeypatch):
    module = course.run_assessment
    monkeypatch.chdir(tmp_path)
    module.run_assessment(_Holder(), _recording_sampler([]), w=1.0)
    assert module.last_samples is not None
    (tmp_path / "run_assessment_samples.pt").unlink()
    for bad in (
        lambda m, c, w: torch.zeros(c.shape[0], 28, 28),
        lambda m, c, w: torch.zeros(10, 1, 28, 28),
        lambda m, c, w: [0.0] * 5,
    ):
        with pytest.raises(ValueError, match="sample_func returned"):
            module.run_assessment(_Holder(), bad, w=1.0)
        assert module.last_samples is None and module.last_labels is None
    assert not (tmp_path / "run_assessment_samples.pt").exists()
    # A model with no parameters (or a plain callable) samples on the CPU.
    calls = []
    module.run_assessment(lambda *a: None, _recording_sampler(calls), w=2.0)
    assert calls[0][0][1].device == torch.device("cpu")
