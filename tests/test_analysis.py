"""Cell facts by AST: definitions, FIXMEs, layout, training cell, executable code."""

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader.submission.analysis import analyse
from grader.submission.cells import load_submission


def analysis_of(tmp_path, *sources):
    """Analyse a notebook with a markdown cell before each code cell (code cells are 2, 4, 6...)."""
    cells = []
    for source in sources:
        cells += [new_markdown_cell("words"), new_code_cell(source)]
    path = tmp_path / "submission.ipynb"
    path.write_text(nbformat.writes(new_notebook(cells=cells)), encoding="utf-8")
    return analyse(load_submission(path))


def facts_of(tmp_path, source):
    return analysis_of(tmp_path, source).cells[0]


def runnable(tmp_path, source):
    """executable_code of a one-cell notebook, checked to compile with the same line count."""
    analysis = analysis_of(tmp_path, source)
    code = analysis.executable_code(analysis.cells[0])
    assert len(code.split("\n")) == len(source.split("\n"))
    compile(code, "cell", "exec")
    return code.split("\n")


# --- facts -----------------------------------------------------------------------------------


def test_definitions_imports_and_calls(tmp_path):
    facts = facts_of(
        tmp_path,
        (
            "import torch, torch.nn as nn\n"
            "from einops.layers.torch import Rearrange\n"
            "B = torch.linspace(0.0001, 0.02, 150)\n"
            "a, (b, *rest) = 1, (2, 3)\n"
            "n: int = 3\n"
            "count += 1\n"
            "x_0[0] = 1\n"
            "for i in range(3):\n"
            "    inside = i\n"
            "def q(x_0, t):\n"
            "    return torch.randn_like(x_0)\n"
            "class DownBlock(nn.Module):\n"
            "    pass\n"
            "if cuda:\n"
            "    device = 'cuda'\n"
            "loss = get_loss(model, x).backward()\n"
            "optimizer.step()\n"
        ),
    )
    assert facts.syntax_error is None
    assert facts.imported == {"torch", "nn", "Rearrange"}
    assert facts.assigned == {"B", "a", "b", "rest", "n", "count", "device", "loss"}
    assert facts.functions == {"q"}
    assert set(facts.classes) == {"DownBlock"}
    assert {
        "torch.linspace",
        "torch.randn_like",
        "range",
        "get_loss",
        "get_loss().backward",
        "optimizer.step",
    } <= facts.calls


def test_syntax_error_names_cell_and_line(tmp_path):
    facts = facts_of(tmp_path, "x = 1\ny = 2\nz = (\n")
    assert facts.syntax_error.startswith("SyntaxError: ")
    assert facts.syntax_error.endswith("(cell 2, line 3)")
    assert facts.assigned == set() and facts.tree is None


def test_fixme_only_in_live_code(tmp_path):
    facts = facts_of(
        tmp_path,
        (
            "def f():\n"
            '    """Replace FIXME here."""\n'
            "    a = FIXME  # FIXME\n"
            '    s = "FIXME"\n'
            "    # b = FIXME\n"
            "    return FIXME(a) + FIXME\n"
            "class FIXME(nn.Module):\n"
            "    pass\n"
        ),
    )
    assert facts.fixmes == [3, 6, 7]


def test_fixme_lines_survive_a_later_syntax_error(tmp_path):
    facts = facts_of(tmp_path, "a = FIXME\nb = (\n")
    assert facts.syntax_error and facts.fixmes == [1]


@pytest.mark.parametrize(
    "line",
    [
        "import grader",
        "from tasks.schedule import check",
        "import reference.unet as r",
        "m = __import__('grader.grading.runner')",
    ],
)
def test_imports_grader(tmp_path, line):
    assert facts_of(tmp_path, f"def f():\n    {line}\n").imports_grader


def test_ordinary_imports_are_not_grader_imports(tmp_path):
    facts = facts_of(tmp_path, "from run_assessment import run_assessment\nfrom utils import UNet_utils")
    assert not facts.imports_grader


# --- lookups ---------------------------------------------------------------------------------


def test_last_definition_wins(tmp_path):
    analysis = analysis_of(
        tmp_path,
        "def q(x, t):\n    return 1",
        "w = 0.0  # Change me",
        "def q(x, t):\n    return 2",
        "w = 1.0",
        "class q:\n    pass",
        "print(w)",
    )
    assert analysis.defining("q").cell.number == 10
    assert analysis.defining("w").cell.number == 8
    assert analysis.defining("nothing") is None


def test_a_cell_that_does_not_parse_defines_nothing(tmp_path):
    analysis = analysis_of(tmp_path, "def q(x, t):\n    return 1", "def q(x, t)\n    return 2")
    assert analysis.defining("q").cell.number == 2


def test_training_cell(tmp_path):
    analysis = analysis_of(
        tmp_path,
        "for epoch in range(5):\n    for step, batch in enumerate(loader):\n        loss = get_loss(model, x, t)\n",
        "for step in range(3):\n    loss.backward()\n    optimizer.step()",
        "for i in range(10):\n    plt.imshow(x[i])",
        "def train():\n    for b in loader:\n        loss.backward()",
    )
    assert analysis.training_cell().cell.number == 4


def test_no_training_cell(tmp_path):
    assert analysis_of(tmp_path, "x = 1", "for i in range(3):\n    print(i)").training_cell() is None


# --- layout ----------------------------------------------------------------------------------


def test_layout_a(tmp_path):
    analysis = analysis_of(
        tmp_path,
        "from utils import other_utils, ddpm_utils, UNet_utils",
        "model = utils.UNet_utils.UNet(T, IMG_CH, IMG_SIZE, down_chs=(64, 64, 128))\n"
        "model = torch.compile(model.to(device))",
    )
    assert analysis.layout == "A"


def test_layout_b(tmp_path):
    analysis = analysis_of(
        tmp_path,
        "class UNet(nn.Module):\n    pass",
        "model = UNet(T, IMG_CH, IMG_SIZE, down_chs=(64, 64, 128)).to(device)",
    )
    assert analysis.layout == "B"


def test_bare_unet_imported_from_course_is_layout_a(tmp_path):
    analysis = analysis_of(tmp_path, "from utils.UNet_utils import UNet", "model = UNet(T, 1, 28)")
    assert analysis.layout == "A"


def test_layout_unknown(tmp_path):
    assert analysis_of(tmp_path, "x = 1", "UNet(1, 2, 3)").layout == "unknown"


# --- executable code -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "for epoch in range(epochs):\n    x = 1\n    loss.backward()",
        "while True:\n    break",
        "with torch.no_grad():\n    x_0 = sample()",
        "print(model)",
        "model",
        "plt.show()",
        '"""A docstring."""',
        "torch.manual_seed(0)",
        "assert w > 0",
        "run_assessment(model, sample_w, w)",
        "x_0, x_t = sample_w(model, c, w)",
        "model = torch.compile(model.to(device))",
        "data = load_transformed_MNIST(IMG_SIZE, BATCH_SIZE)",
        "data = other_utils.load_MNIST(IMG_SIZE)",
        "loader = torch.utils.data.DataLoader(data, batch_size=128, shuffle=True, drop_last=True)",
        "train = torchvision.datasets.MNIST('./data/', download=True)",
        "fig = plt.figure(figsize=(8, 8))",
        "anim = other_utils.save_animation(xs, 'x.gif')",
        "img = show_tensor_image(x)",
        "loss = get_loss(model, x, t).backward()",
        "ok = optimizer.step()",
        "out = get_ipython().getoutput('ls')",
        "if show:\n    plt.imshow(x)\n    y = 1",
        "try:\n    model = torch.compile(model)\nexcept Exception:\n    pass",
        "if train:\n    for b in loader:\n        pass",
        "@torch.compile\ndef f(x):\n    return x",
    ],
)
def test_skipped_statements(tmp_path, source):
    lines = runnable(tmp_path, source)
    assert lines[0] == "pass"
    assert all(line == "" for line in lines[1:])


@pytest.mark.parametrize(
    "source",
    [
        "import torch\nfrom utils import other_utils, ddpm_utils, UNet_utils",
        "nrows = 10\nncols = 15\nT = nrows * ncols",
        "B = torch.linspace(0.0001, 0.02, T).to(device)\na = 1.0 - B\na_bar = torch.cumprod(a, dim=0)",
        "device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')",
        "model = UNet(T, IMG_CH, IMG_SIZE, down_chs=(64, 64, 128), t_embed_dim=8, c_embed_dim=N_CLASSES)",
        "model = UNet_utils.UNet(T, IMG_CH, IMG_SIZE)",
        "w = 0.0  # Change me",
        "def q(x_0, t):\n    noise = torch.randn_like(x_0)\n    plt.show()\n    return x_0, noise",
        "@torch.no_grad()\ndef sample_w(model, c, w):\n    x_t = torch.randn(1)\n    return x_t",
        "class DownBlock(nn.Module):\n    def forward(self, x):\n        loss.backward()\n        return x",
        "if torch.cuda.is_available():\n    device = 'cuda'\nelse:\n    device = 'cpu'",
        "try:\n    import einops\nexcept ImportError:\n    einops = None",
        "f = lambda: plt.show()",
    ],
)
def test_kept_statements(tmp_path, source):
    assert runnable(tmp_path, source) == source.split("\n")


def test_bare_expression_inside_a_kept_if_is_dropped_alone(tmp_path):
    source = "if cuda:\n    device = 'cuda'\n    print('gpu')\nelse:\n    print(\n      'cpu')"
    lines = runnable(tmp_path, source)
    assert lines == ["if cuda:", "    device = 'cuda'", "    pass", "else:", "    pass", ""]


def test_mixed_cell_keeps_line_numbers(tmp_path):
    source = (
        "model = UNet(T, 1, 28)\n"
        "print('params', sum(p.numel() for p in model.parameters()))\n"
        "model = torch.compile(model.to(device))\n"
        "optimizer = Adam(model.parameters(), lr=0.001)\n"
        "for epoch in range(5):\n"
        "    train()\n"
        "x = 1; print(x)\n"
        "@other_utils.timed(plt.figure())\n"
        "def g():\n"
        "    pass\n"
        "w = 1.0"
    )
    assert runnable(tmp_path, source) == [
        "model = UNet(T, 1, 28)",
        "pass",
        "pass",
        "optimizer = Adam(model.parameters(), lr=0.001)",
        "pass",
        "",
        "x = 1; pass",
        "pass",
        "",
        "",
        "w = 1.0",
    ]


def test_executable_code_of_a_magic_cell(tmp_path):
    assert runnable(tmp_path, "!pip install einops\nimport einops\n%matplotlib inline") == [
        "pass",
        "import einops",
        "pass",
    ]


def test_executable_code_of_a_syntax_error_is_blank(tmp_path):
    assert runnable(tmp_path, "x = 1\ny = (\n") == ["", "", ""]


def test_several_skipped_statements_on_one_line(tmp_path):
    assert runnable(tmp_path, "print(a); y = 2; plt.imshow(img); print('done')") == [
        "pass; y = 2; pass; pass",
    ]


def test_course_shaped_notebook(tmp_path):
    analysis = analysis_of(
        tmp_path,
        "%pip install einops\nimport torch\nfrom utils import other_utils, ddpm_utils, UNet_utils\n"
        "IMG_SIZE = 28\nIMG_CH = 1\nBATCH_SIZE = 128\nN_CLASSES = 10",
        "def load_transformed_MNIST(img_size, batch_size):\n"
        "    data = MNIST('./data/', download=True)\n"
        "    return data, DataLoader(data, batch_size=batch_size)\n"
        "\n"
        "data, dataloader = load_transformed_MNIST(IMG_SIZE, BATCH_SIZE)",
        "nrows = 10\nncols = 15\nT = nrows * ncols\nB = torch.linspace(0.0001, 0.02, T).to(device)\n"
        "a = 1.0 - B\na_bar = torch.cumprod(a, dim=0)",
        "class UNet(nn.Module):\n    pass",
        "model = UNet(\n    T, IMG_CH, IMG_SIZE, down_chs=(64, 64, 128), t_embed_dim=8,\n"
        "    c_embed_dim=N_CLASSES\n)\n"
        "print('Num params: ', sum(p.numel() for p in model.parameters()))\n"
        "model = torch.compile(model.to(device))",
        "optimizer = Adam(model.parameters(), lr=0.001)\nepochs = 5\n\nmodel.train()\n"
        "for epoch in range(epochs):\n    for step, batch in enumerate(dataloader):\n"
        "        c_drop_prob = 0.1\n        optimizer.zero_grad()\n"
        "        loss = get_loss(model, x, t, c_hot, c_mask)\n"
        "        loss.backward()\n        optimizer.step()",
        "w = 0.0  # Change me\nx_0, x_t = sample_w(model, c, w)\nother_utils.save_animation(x_t, 'x.gif')",
        "from run_assessment import run_assessment\n\nrun_assessment(model, sample_w, w)",
    )
    assert analysis.layout == "B"
    assert analysis.defining("a_bar").cell.number == 6
    assert analysis.defining("c_drop_prob") is None  # set only inside the loop
    assert analysis.training_cell().cell.number == 12
    model_cell = analysis.defining("model")
    assert model_cell.cell.number == 10
    code = analysis.executable_code(model_cell).split("\n")
    assert code[:4] == model_cell.cell.code.split("\n")[:4] and code[4:] == ["pass", "pass"]
    data_cell = analysis.executable_code(analysis.defining("load_transformed_MNIST"))
    assert data_cell.split("\n")[-1] == "pass"
    training = analysis.executable_code(analysis.cells[5]).split("\n")
    assert training[:5] == [
        "optimizer = Adam(model.parameters(), lr=0.001)",
        "epochs = 5",
        "",
        "pass",
        "pass",
    ]
    assert set(training[5:]) == {""}
    guidance = analysis.executable_code(analysis.defining("w")).split("\n")
    assert guidance == ["w = 0.0  # Change me", "pass", "pass"]
    for facts in analysis.cells:
        compile(analysis.executable_code(facts), f"cell {facts.cell.number}", "exec")


def test_null_byte_in_source_is_a_syntax_error(tmp_path):
    facts = facts_of(tmp_path, "x = 1\x00\ny = FIXME")
    assert facts.syntax_error.startswith("SyntaxError") and "cell 2" in facts.syntax_error
    assert "None" not in facts.syntax_error


TRAINER = (
    "def train_model(epochs):\n"
    "    for epoch in range(epochs):\n"
    "        for step, batch in enumerate(dataloader):\n"
    "            loss = get_loss(model, batch[0], t)\n"
    "            loss.backward()\n"
    "    return loss\n"
)


def test_a_function_that_trains_called_at_top_level_is_the_training_cell(tmp_path):
    analysis = analysis_of(tmp_path, "x = 1", TRAINER, "last = train_model(5)\nprint(last)")
    facts = analysis.training_cell()
    assert facts is not None and facts.cell.number == 4  # the function's own cell
    assert facts.cell.code == TRAINER + "\ntrain_model(5)\n"
    # With the definitions, the call does not run: it trains only in the grader's harness.
    calling = analysis.executable_code(analysis.cells[2])
    assert "train_model" not in calling and "print" not in calling


def test_a_training_function_never_called_is_no_training_cell(tmp_path):
    assert analysis_of(tmp_path, TRAINER, "y = 2").training_cell() is None
