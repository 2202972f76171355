"""The stand-ins for the course's helper modules: `utils.*` and `run_assessment`.

The stand-ins import nothing of `grader`, `tasks` or `reference` (student code cannot see them).
They are tested against independent expectations: values computed by hand, the course's shapes
and parameter counts, the DDPM schedule's closed forms, and the shipped weights (which must be
there: a missing file fails, it is never skipped). Never against `reference`, which they copy.
"""

from __future__ import annotations

import ast
import importlib
import math
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from corpus.blocks import BLOCK_CASES, BLOCK_NAMES  # tests/ is on sys.path (pytest's default import mode)
from reference import mnist  # the shipped digits: data, not the implementation under test
from reference.course_path import course_path
from reference.weights import UNET_FILE, read_state_dict, weights_path

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


# --- the U-Net and its blocks: shapes, sizes and values from the course's definitions -------------
# Expectations come from docs/course.md ("Shapes") and arithmetic, never from `reference`, which the
# stand-ins were copied from: a bug copied into both would pass a comparison of the two.

# name -> (output shape for BLOCK_CASES' inputs, number of parameters, counted by hand:
# Conv2d(i, o, 3) = 9 i o + o, GroupNorm(o) = 2 o, Linear(i, o) = i o + o, ConvTranspose2d(i, o, 2) = 4 i o + o).
BLOCK_EXPECTATIONS = {
    "GELUConvBlock": ((2, 8, 8, 8), 9 * 3 * 8 + 8 + 2 * 8),  # 240
    "RearrangePoolBlock": ((2, 8, 4, 4), 9 * 32 * 8 + 8 + 2 * 8),  # GELUConvBlock(4 * 8, 8): 2,328
    "DownBlock": ((2, 8, 4, 4), (9 * 4 * 8 + 8 + 16) + (9 * 8 * 8 + 8 + 16) + 2328),  # 3,240
    "UpBlock": ((2, 4, 8, 8), (4 * 16 * 4 + 4) + 4 * (9 * 4 * 4 + 4 + 2 * 4)),  # 884
    "SinusoidalPositionEmbedBlock": ((5, 8), 0),
    "EmbedBlock": ((3, 16, 1, 1), (10 * 16 + 16) + (16 * 16 + 16)),  # 448
    "ResidualConvBlock": ((2, 8, 8, 8), (9 * 1 * 8 + 8 + 16) + (9 * 8 * 8 + 8 + 16)),  # 696
}


@pytest.mark.parametrize("name", BLOCK_NAMES)
def test_blocks_have_the_courses_shapes_and_sizes(course, name):
    block_cls = getattr(course.UNet_utils, name)
    assert block_cls.__module__ == "utils.UNet_utils"
    args, shapes = BLOCK_CASES[name]
    out_shape, parameters = BLOCK_EXPECTATIONS[name]
    torch.manual_seed(11)
    block = block_cls(*args)
    assert sum(p.numel() for p in block.parameters()) == parameters
    inputs = [torch.randn(shape) * 3 for shape in shapes]
    assert tuple(block(*inputs).shape) == out_shape
    if name == "SinusoidalPositionEmbedBlock":
        with pytest.raises(ValueError):
            block_cls(7)


def test_sinusoidal_embedding_values_by_hand(course):
    # dim 8: four frequencies 10000 ** (-i / 3), i = 0..3; the sines first, then the cosines.
    times = (0.0, 1.0, 37.5)
    got = course.UNet_utils.SinusoidalPositionEmbedBlock(8)(torch.tensor(times))
    freqs = [10000 ** (-i / 3) for i in range(4)]
    want = [[math.sin(t * f) for f in freqs] + [math.cos(t * f) for f in freqs] for t in times]
    torch.testing.assert_close(got, torch.tensor(want), rtol=1e-5, atol=1e-6)
    assert got[0].tolist() == [0.0] * 4 + [1.0] * 4


def test_gelu_conv_block_with_hand_set_weights(course):
    # Zero kernels and bias b: every pixel is b, GroupNorm turns a constant group into 0, so the
    # output is GELU(norm bias) everywhere, whatever the input.
    block = course.UNet_utils.GELUConvBlock(3, 4, 2)
    state = {k: torch.zeros_like(v) for k, v in block.state_dict().items()}
    norm_bias = [k for k, v in state.items() if v.shape == (4,)][-1]  # the last (4,) tensor: GroupNorm's bias
    state[norm_bias] = torch.tensor([-1.0, 0.0, 0.5, 2.0])
    block.load_state_dict(state, strict=True)
    got = block(torch.randn(2, 3, 5, 5))
    gelu = [0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in (-1.0, 0.0, 0.5, 2.0)]
    torch.testing.assert_close(got, torch.tensor(gelu).reshape(1, 4, 1, 1).expand(2, 4, 5, 5))


def _shipped_unet_state() -> dict[str, torch.Tensor]:
    path = weights_path(UNET_FILE)
    assert path.is_file(), f"the shipped U-Net weights are missing: {path} (reinstall the package or fetch them)"
    return {k: v.float() for k, v in read_state_dict(path).items()}


def test_unet_takes_the_shipped_course_weights_strictly(course):
    ours = course.UNet_utils.UNet(150, 1, 28, down_chs=(64, 64, 128), t_embed_dim=8, c_embed_dim=10)
    assert sum(p.numel() for p in ours.parameters()) == 2_547_457  # the course notebook's own count
    ours.load_state_dict(_shipped_unet_state(), strict=True)


def test_unet_with_the_shipped_weights_predicts_the_noise_of_real_digits(course):
    # Independent of any implementation: a model that learnt to predict the noise q adds to MNIST
    # digits must do far better than predicting none (whose loss is the noise's variance, ~1).
    model = course.UNet_utils.UNet(150, 1, 28, down_chs=(64, 64, 128), t_embed_dim=8, c_embed_dim=10)
    model.load_state_dict(_shipped_unet_state(), strict=True)
    images, labels = mnist.load("test")
    x_0, labels = images[:32], labels[:32]  # in [0, 1], as the course trains on them
    generator = torch.Generator().manual_seed(23)
    t = torch.randint(10, 140, (32,), generator=generator)
    noise = torch.randn(x_0.shape, generator=generator)
    a_bar = torch.cumprod(1 - torch.linspace(0.0001, 0.02, 150, dtype=torch.float64), 0)[t].float()
    x_t = a_bar.sqrt().view(-1, 1, 1, 1) * x_0 + (1 - a_bar).sqrt().view(-1, 1, 1, 1) * noise
    with torch.no_grad():
        predicted = model.eval()(x_t, t.float(), F.one_hot(labels, 10).float(), torch.ones(32, 10))
    loss = float(((predicted - noise) ** 2).mean())
    assert float((noise**2).mean()) > 0.9 and loss < 0.2, loss


@pytest.mark.parametrize("down_chs", [(12, 24, 16), (16, 24, 20)])
def test_narrow_unet_builds_and_keeps_the_image_shape(course, down_chs):
    # down_chs that 8 and 32 do not divide: the group counts must be lowered to ones that divide.
    torch.manual_seed(15)
    model = course.UNet_utils.UNet(150, 1, 28, down_chs, 4, 10)
    labels = torch.tensor([1, 5, 9])
    with torch.no_grad():
        out = model(
            torch.rand(3, 1, 28, 28), torch.tensor([0.0, 75.0, 149.0]), F.one_hot(labels, 10).float(), torch.ones(3, 10)
        )
    assert out.shape == (3, 1, 28, 28) and bool(torch.isfinite(out).all())
    for bad in ({"down_chs": (8, 16)}, {"img_size": 30}):
        kwargs = {"T": 150, "img_ch": 1, "img_size": 28, **bad}
        with pytest.raises(ValueError):
            course.UNet_utils.UNet(**kwargs)


# --- the context mask ----------------------------------------------------------------------------


def test_context_mask_one_hot_and_draws(course):
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
# A two-step schedule B = (0.1, 0.2) keeps every value hand-computable: a = (0.9, 0.8),
# a_bar = (0.9, 0.72), sqrt_a_inv = (1 / sqrt 0.9, 1 / sqrt 0.8),
# pred_noise_coeff = B / sqrt(1 - a_bar) = (0.1 / sqrt 0.1, 0.2 / sqrt 0.28).
SMALL_B = (0.1, 0.2)
SMALL = {
    "B": [0.1, 0.2],
    "a": [0.9, 0.8],
    "a_bar": [0.9, 0.72],
    "sqrt_a_bar": [math.sqrt(0.9), math.sqrt(0.72)],
    "sqrt_one_minus_a_bar": [math.sqrt(0.1), math.sqrt(0.28)],
    "sqrt_a_inv": [1 / math.sqrt(0.9), 1 / math.sqrt(0.8)],
    "pred_noise_coeff": [0.1 / math.sqrt(0.1), 0.2 / math.sqrt(0.28)],
}


def test_ddpm_schedule_by_hand_and_by_closed_form(course):
    small = course.ddpm_utils.DDPM(torch.tensor(SMALL_B), "cpu")
    assert small.T == 2 and set(course.ddpm_utils.TENSOR_NAMES) == set(SMALL)
    for name, values in SMALL.items():
        torch.testing.assert_close(getattr(small, name), torch.tensor(values), rtol=1e-6, atol=0)
        assert getattr(small, name) is getattr(small.schedule, name)
    # The course's schedule against the closed forms in float64 (float32 loses ~1e-4 relative in
    # 1 - a_bar near t = 0).
    ddpm = course.ddpm_utils.DDPM(torch.linspace(0.0001, 0.02, 150), "cpu")
    assert ddpm.T == 150 and ddpm.device == torch.device("cpu")
    B = torch.linspace(0.0001, 0.02, 150, dtype=torch.float64)
    a_bar = torch.cumprod(1 - B, 0)
    assert abs(float(ddpm.a_bar[0]) - 0.9999) < 1e-7 and abs(float(ddpm.B[-1]) - 0.02) < 1e-9
    torch.testing.assert_close(ddpm.a_bar.double(), a_bar, rtol=1e-5, atol=0)
    torch.testing.assert_close(ddpm.sqrt_a_bar.double(), a_bar.sqrt(), rtol=1e-5, atol=0)
    torch.testing.assert_close(ddpm.sqrt_one_minus_a_bar.double(), (1 - a_bar).sqrt(), rtol=1e-3, atol=0)
    torch.testing.assert_close(ddpm.pred_noise_coeff.double(), B / (1 - a_bar).sqrt(), rtol=1e-3, atol=0)
    torch.testing.assert_close(ddpm.sqrt_a_inv.double(), (1 / (1 - B)).sqrt(), rtol=1e-6, atol=0)
    built = course.ddpm_utils.schedule_from_betas(torch.linspace(0.0001, 0.02, 150))
    assert built.T == 150 and set(built.as_dict()) == set(SMALL)
    for bad in (torch.tensor([0.1, 1.5]), torch.tensor([0.1]), torch.zeros(2, 2) + 0.1):
        with pytest.raises(ValueError):
            course.ddpm_utils.schedule_from_betas(bad)


def test_q_by_hand_with_given_and_drawn_noise(course):
    ddpm = course.ddpm_utils.DDPM(torch.tensor(SMALL_B), "cpu")
    x_0 = torch.tensor([1.0, -0.5]).reshape(2, 1, 1, 1).expand(2, 1, 2, 2).contiguous()
    noise = torch.tensor([2.0, 1.0]).reshape(2, 1, 1, 1).expand(2, 1, 2, 2).contiguous()
    x_t, returned = ddpm.q(x_0, torch.tensor([0.0, 1.0]), noise=noise)
    assert returned is noise
    # t = 0: sqrt 0.9 * 1 + sqrt 0.1 * 2; t = 1: sqrt 0.72 * -0.5 + sqrt 0.28 * 1.
    want = torch.tensor([math.sqrt(0.9) + 2 * math.sqrt(0.1), -0.5 * math.sqrt(0.72) + math.sqrt(0.28)])
    torch.testing.assert_close(x_t, want.reshape(2, 1, 1, 1).expand(2, 1, 2, 2))
    # q(x_0, t), the course's call, draws standard normal noise and uses it.
    big = torch.rand(64, 1, 28, 28)
    torch.manual_seed(20)
    x_t, drawn = ddpm.q(big, torch.ones(64))
    assert abs(float(drawn.mean())) < 0.02 and abs(float(drawn.std()) - 1) < 0.02  # 50,176 draws
    torch.testing.assert_close(x_t, math.sqrt(0.72) * big + math.sqrt(0.28) * drawn)
    for bad_t in (torch.tensor([0.5, 1.0]), torch.tensor([0, 2]), torch.tensor([1])):
        with pytest.raises(ValueError):
            ddpm.q(x_0, bad_t)


def test_reverse_q_by_hand(course):
    ddpm = course.ddpm_utils.DDPM(torch.tensor(SMALL_B), "cpu")
    x_t, e_t, noise = torch.full((2, 1, 2, 2), 1.0), torch.full((2, 1, 2, 2), 0.5), torch.full((2, 1, 2, 2), 2.0)
    got = ddpm.reverse_q(x_t, torch.tensor([0, 1]).view(-1, 1, 1, 1), e_t, noise=noise)
    # mean = sqrt_a_inv[t] (x_t - pred_noise_coeff[t] e_t); the added noise has std sqrt B[t - 1], none at t = 0.
    at_0 = (1 - 0.5 * 0.1 / math.sqrt(0.1)) / math.sqrt(0.9)
    at_1 = (1 - 0.5 * 0.2 / math.sqrt(0.28)) / math.sqrt(0.8) + math.sqrt(0.1) * 2
    torch.testing.assert_close(got, torch.tensor([at_0, at_1]).reshape(2, 1, 1, 1).expand(2, 1, 2, 2))
    # Drawn noise: at t = 1 its spread is sqrt B[0] = sqrt 0.1 around the mean.
    torch.manual_seed(22)
    ones = torch.ones(64, 1, 28, 28)
    drawn = ddpm.reverse_q(ones, torch.ones(64, 1, 1, 1, dtype=torch.long), torch.zeros_like(ones))
    assert abs(float(drawn.mean()) - 1 / math.sqrt(0.8)) < 0.01 and abs(float(drawn.std()) - math.sqrt(0.1)) < 0.01
    with pytest.raises(ValueError):
        ddpm.reverse_q(x_t, torch.zeros(2, 1, 1, 1), e_t[:1])


def test_get_loss_is_the_noise_prediction_error(course):
    ddpm = course.ddpm_utils.DDPM(torch.tensor(SMALL_B), "cpu")
    x_0, t = torch.rand(8, 1, 28, 28), torch.tensor([0.0, 1.0] * 4)
    sqrt_a_bar = torch.tensor([math.sqrt(0.9), math.sqrt(0.72)])[t.long()].view(-1, 1, 1, 1)
    sqrt_one_minus = torch.tensor([math.sqrt(0.1), math.sqrt(0.28)])[t.long()].view(-1, 1, 1, 1)

    def knows_the_noise(x_t, t_in, offset):
        """Inverts q for these x_0 exactly, then adds `offset`: the loss must be offset ** 2."""
        return (x_t - sqrt_a_bar * x_0) / sqrt_one_minus + offset

    for offset in (0.0, 0.5):
        loss = ddpm.get_loss(knows_the_noise, x_0, t, offset)
        assert loss.dim() == 0 and abs(float(loss) - offset**2) < 1e-4, (offset, float(loss))


def _class_noise(x, t, c, c_mask):
    """A cheap stand-in model whose prediction depends on the kept class and on t."""
    label = (c * c_mask).float() @ torch.arange(10.0)
    return 0.1 * x + 0.01 * label.reshape(-1, 1, 1, 1) + t.float().reshape(-1, 1, 1, 1) / 1000


def test_ddpm_sample_w_two_steps_by_hand(course):
    ddpm = course.ddpm_utils.DDPM(torch.tensor(SMALL_B), "cpu")
    c_hot = F.one_hot(torch.tensor([3, 7]), 10)
    torch.manual_seed(4)
    x_0, store = course.ddpm_utils.sample_w(_class_noise, ddpm, (1, 28, 28), 2, c_hot, "cpu", [1.5])
    # Replayed: the start x_2 ~ N(0, 1), then the noise of step t = 1 (the one at t = 0 is drawn, unused).
    torch.manual_seed(4)
    x = torch.randn(2, 1, 28, 28)
    z = torch.randn(2, 1, 28, 28)
    label = torch.tensor([3.0, 7.0]).reshape(-1, 1, 1, 1)
    for step, z_t in ((1, z), (0, None)):
        keep, drop = 0.1 * x + 0.01 * label + step / 1000, 0.1 * x + step / 1000
        e_t = 2.5 * keep - 1.5 * drop  # (1 + w) keep - w drop, w = 1.5
        x = SMALL["sqrt_a_inv"][step] * (x - SMALL["pred_noise_coeff"][step] * e_t)
        if z_t is not None:
            x = x + math.sqrt(SMALL["B"][step - 1]) * z_t
    torch.testing.assert_close(x_0, x)
    assert store.shape == (2, 2, 1, 28, 28) and torch.equal(store[-1], x_0)  # both steps are among the last ten
    # Every 10th step (0..140) and each of the last ten: 15 + 9 snapshots over 150 steps.
    ddpm150 = course.ddpm_utils.DDPM(torch.linspace(0.0001, 0.02, 150), "cpu")
    _, store = course.ddpm_utils.sample_w(_class_noise, ddpm150, (1, 4, 4), 150, c_hot, "cpu", [0.0])
    assert store.shape == (24, 2, 1, 4, 4)


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
    # By hand: sqrt_a_inv[0] = 1 / sqrt(0.9999); pred_noise_coeff[0] = 0.0001 / sqrt(0.0001) = 0.01.
    torch.testing.assert_close(x_0, (x_init - 0.01 * e_t) / math.sqrt(0.9999))
    assert course.ddpm_utils.DEFAULT_W_TESTS == (-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0)
    keep_t, drop_t = torch.randn(2, 3), torch.randn(2, 3)
    torch.testing.assert_close(course.ddpm_utils.guided_noise(keep_t, drop_t, 0.7), 1.7 * keep_t - 0.7 * drop_t)


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
