"""The example submission (layout B, notebook and script) and the layout-A corpus notebook."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from corpus.blocks import BLOCK_CASES, BLOCK_NAMES  # tests/ is on sys.path (pytest's default import mode)
from reference.course_path import course_path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "examples" / "submission.ipynb"
SCRIPT = ROOT / "examples" / "submission.py"
LAYOUT_A = ROOT / "tests" / "corpus" / "layout_a.ipynb"


def notebook_code(path: Path) -> list[str]:
    """The sources of a notebook's code cells."""
    return [cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]


def script_code(path: Path) -> list[str]:
    """The sources of a `# %%` script's code cells (markdown cells and the docstring dropped)."""
    cells = re.split(r"^# %%.*\n", path.read_text(), flags=re.MULTILINE)[1:]
    headers = re.findall(r"^# %%.*$", path.read_text(), flags=re.MULTILINE)
    return [body.strip() for header, body in zip(headers, cells, strict=True) if "[markdown]" not in header]


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call) and ast.unparse(node.func) == name]


def _imports(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update(alias.asname or alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("path", [NOTEBOOK, LAYOUT_A])
def test_notebooks_validate(path):
    nbformat.validate(nbformat.read(path, as_version=4))
    assert all(
        not cell.get("outputs") and cell.get("execution_count") is None
        for cell in nbformat.read(path, as_version=4).cells
        if cell.cell_type == "code"
    )


@pytest.mark.parametrize("path", [NOTEBOOK, SCRIPT, LAYOUT_A])
def test_no_fixme_left(path):
    assert "FIXME" not in path.read_text()


def test_script_has_the_notebooks_code():
    assert script_code(SCRIPT) == [source.strip() for source in notebook_code(NOTEBOOK)]


def test_layouts_differ_as_the_course_does():
    b = ast.parse("\n".join(notebook_code(NOTEBOOK)))
    a = ast.parse("\n".join(notebook_code(LAYOUT_A)))
    assert {"math", "Rearrange", "other_utils", "ddpm_utils", "UNet_utils"} <= _imports(b)
    assert not {"math", "Rearrange"} & _imports(a)
    assert len(_calls(b, "UNet")) == 1 and not _calls(b, "UNet_utils.UNet")
    assert len(_calls(a, "UNet_utils.UNet")) == 1 and not _calls(a, "UNet")
    loss_b = next(n for n in ast.walk(b) if isinstance(n, ast.FunctionDef) and n.name == "get_loss")
    loss_a = next(n for n in ast.walk(a) if isinstance(n, ast.FunctionDef) and n.name == "get_loss")
    assert ast.unparse(_calls(loss_b, "model")[0].args[1]) == "t"
    assert ast.unparse(_calls(loss_a, "model")[0].args[1]) == "t / T"
    previews = {
        name: [
            ast.unparse(call.args[1])
            for call in _calls(tree, "sample_w")
            if len(call.args) == 3 and ast.unparse(call.args[2]) == "1.0"
        ]
        for name, tree in (("a", a), ("b", b))
    }
    assert previews == {"a": ["c_hot"], "b": ["c_hot.to(device)"]}
    for tree in (a, b):
        assert {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)} >= set(BLOCK_NAMES)
        assert [ast.unparse(c) for c in _calls(tree, "run_assessment")] == ["run_assessment(model, sample_w, w)"]


# Runs in a child process, cwd = a temporary folder, course_path() on PYTHONPATH.
# It executes only imports, definitions and the constant/schedule assignments (no data, no
# model, no training, no plots, no assessment) and compares them with `reference`.
CHILD = r'''
import ast, json, math, sys
import nbformat, torch
from einops.layers.torch import Rearrange
import reference
from reference.schedule import TENSOR_NAMES, make_schedule

path, layout = sys.argv[1], sys.argv[2]
if path.endswith(".ipynb"):
    cells = nbformat.read(path, as_version=4).cells
    source = "\n\n".join(c.source for c in cells if c.cell_type == "code")
else:
    source = open(path).read()
SCHEDULE_NAMES = {"IMG_SIZE", "IMG_CH", "BATCH_SIZE", "N_CLASSES", "device", "nrows", "ncols",
                  "T", "B_start", "B_end", *TENSOR_NAMES}

def wanted(node):
    if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)):
        return True
    return isinstance(node, ast.Assign) and all(
        isinstance(target, ast.Name) and target.id in SCHEDULE_NAMES for target in node.targets)

tree = ast.parse(source)
tree.body = [node for node in tree.body if wanted(node)]
ns = {"__name__": "submission"}
exec(compile(tree, path, "exec"), ns)
if layout == "A":
    # Layout A never imports these, because it never builds its own blocks (docs/course.md);
    # supply them so the class bodies can still be checked.
    assert "math" not in ns and "Rearrange" not in ns
    ns.update(math=math, Rearrange=Rearrange)

device = ns["device"]
schedule = make_schedule(device=device)
assert ns["T"] == 150
for name in TENSOR_NAMES:
    torch.testing.assert_close(ns[name], getattr(schedule, name), msg=name)

def same_draws(ours, theirs, seed):
    torch.manual_seed(seed); got = ours()
    torch.manual_seed(seed); want = theirs()
    torch.testing.assert_close(got, want)

x_0 = torch.rand(4, 1, 28, 28, device=device)
t = torch.tensor([0.0, 5.0, 80.0, 149.0], device=device)
same_draws(lambda: ns["q"](x_0, t), lambda: reference.q(x_0, t, schedule), 0)
e_t = torch.randn_like(x_0)
for step in (0, 1, 70, 149):
    t_col = torch.full((4, 1, 1, 1), step, device=device)
    same_draws(lambda: ns["reverse_q"](x_0, t_col, e_t),
               lambda: reference.reverse_q(x_0, t_col, e_t, schedule), step)
labels = torch.tensor([0, 9, 4, 4, 1])
for drop in (0.0, 0.1, 1.0):
    same_draws(lambda: ns["get_context_mask"](labels, drop),
               lambda: tuple(x.to(device) for x in reference.get_context_mask(labels, drop)), 3)

def stub(x, t, c_hot, c_mask):
    """Noise prediction that depends on x, t and the kept class."""
    label = (c_hot * c_mask).float() @ torch.arange(10.0, device=x.device)
    return 0.1 * x + 0.01 * label.reshape(-1, 1, 1, 1) + t.float().reshape(-1, 1, 1, 1) / 1000

c_hot, c_mask = reference.get_context_mask(labels[:4], 0.5)
c_hot, c_mask = c_hot.to(device), c_mask.to(device)
# Layout A's get_loss hands the model t / T (the course's double scaling); B hands it t.
seen_t = (lambda t: t / 150) if layout == "A" else (lambda t: t)
same_draws(lambda: ns["get_loss"](stub, x_0, t, c_hot, c_mask),
           lambda: reference.get_loss(lambda x, tt, *a: stub(x, seen_t(tt), *a), x_0, t, c_hot, c_mask,
                                      schedule=schedule), 4)
for w in (0.0, 1.0, 2.5):
    same_draws(lambda: ns["sample_w"](stub, c_hot[:2], w),
               lambda: reference.sample_w(stub, c_hot[:2], w, schedule), 5)

BLOCKS = json.loads(sys.argv[3])
for name, (args, shapes) in BLOCKS.items():
    theirs = getattr(reference, name)(*args)
    ours = ns[name](*args)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    inputs = [torch.randn(shape) for shape in shapes]
    torch.testing.assert_close(ours(*inputs), theirs(*inputs), msg=name)
if layout == "B":
    theirs = reference.course_unet()
    ours = ns["UNet"](150, 1, 28, down_chs=(64, 64, 128), t_embed_dim=8, c_embed_dim=10)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, 1, 28, 28)
    args = (torch.tensor([3.0, 120.0]), c_hot[:2].cpu(), c_mask[:2].cpu())
    with torch.no_grad():
        torch.testing.assert_close(ours(x, *args), theirs(x, *args))
print("ok")
'''


@pytest.mark.parametrize("path, layout", [(SCRIPT, "B"), (LAYOUT_A, "A")], ids=["submission.py", "layout_a"])
def test_definitions_match_reference(path, layout, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(course_path()), MPLBACKEND="Agg")
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), layout, json.dumps(BLOCK_CASES)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout == "ok\n"
    assert not any(tmp_path.iterdir())  # nothing downloaded, nothing written
