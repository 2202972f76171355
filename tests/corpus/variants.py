"""Valid submissions that are not the course's exact layout: each must be graded as the example is.

Students legitimately move code around: the optimizer in a cell of its own, the training loop
inside a function called later, a different `T`, `device` as a string, the model built with
keyword arguments, cells in another order where Python allows it, extra cells that plot or print.
Each case edits the bundled example (`tests/corpus/mutants.py`'s `Case` and `apply_edits`) and
expects every unit task to pass with the message "correct", as the example does.
"""

from __future__ import annotations

import textwrap

from corpus.mutants import SOURCES, Case  # tests/ is on sys.path (pytest's default import mode)

EXAMPLE = SOURCES["script"].read_text(encoding="utf-8")

OPTIMIZER = "optimizer = Adam(model.parameters(), lr=0.001)\n"
LOOP_START = "model.train()\nfor epoch in range(epochs):\n"
LOOP_END = "            preview_c = (preview_c + 1) % N_CLASSES\n"
EMBED_CELL_START = "# %%\nclass EmbedBlock(nn.Module):\n"
EMBED_CELL_END = "        x = x.view(-1, self.input_dim)\n        return self.model(x)\n\n"
GELU_CELL = "# %%\nclass GELUConvBlock(nn.Module):\n"
Q_CELL_START = "# %%\ndef q(x_0, t):\n"
Q_CELL_END = "    return x_t, noise\n\n"
REVERSE_Q_CELL = "# %%\n@torch.no_grad()\ndef reverse_q(x_t, t, e_t):\n"


def _between(start: str, end: str) -> str:
    """The example's text from `start` through `end` (each found once)."""
    assert EXAMPLE.count(start) == 1 and EXAMPLE.count(end) == 1, (start, end)
    first = EXAMPLE.index(start)
    return EXAMPLE[first : EXAMPLE.index(end, first) + len(end)]


def _loop_in_function() -> tuple[str, str]:
    """The training loop moved into a function that the same cell calls afterwards."""
    loop = _between(LOOP_START, LOOP_END)
    body = "preview_c = 0\n" + loop
    return loop, "def train_model():\n" + textwrap.indent(body, "    ") + "\n\ntrain_model()\n"


def _moved_before(cell_start: str, cell_end: str, before: str) -> tuple[tuple[str, str], ...]:
    """Edits that move one cell (its text from `cell_start` through `cell_end`) before `before`."""
    cell = _between(cell_start, cell_end)
    return ((cell, ""), (before, cell + before))


VARIANTS = [
    Case("variant_optimizer_own_cell", edits=((OPTIMIZER, OPTIMIZER + "\n# %%\n"),)),
    Case("variant_loop_in_function", edits=(_loop_in_function(),)),
    Case("variant_T_50", edits=(("T = nrows * ncols\n", "T = 50\n"),)),
    Case(
        "variant_device_string",
        edits=(
            (
                'device = torch.device("cuda" if torch.cuda.is_available() else "cpu")',
                'device = "cuda" if torch.cuda.is_available() else "cpu"',
            ),
        ),
    ),
    Case(
        "variant_model_keywords",
        edits=(
            (
                "model = UNet(\n    T, IMG_CH, IMG_SIZE, down_chs=(64, 64, 128), t_embed_dim=8, "
                "c_embed_dim=N_CLASSES\n)",
                "model = UNet(\n    c_embed_dim=N_CLASSES, t_embed_dim=8, down_chs=(64, 64, 128),\n"
                "    img_size=IMG_SIZE, img_ch=IMG_CH, T=T,\n)",
            ),
        ),
    ),
    Case(
        "variant_cells_reordered",
        edits=(
            *_moved_before(EMBED_CELL_START, EMBED_CELL_END, GELU_CELL),
            *_moved_before(Q_CELL_START, Q_CELL_END, "# %% [markdown]\n# ## The U-Net's building blocks\n"),
        ),
    ),
    Case(
        "variant_extra_cells",
        edits=(
            (
                "# %% [markdown]\n# ## Forward diffusion\n",
                "# %%\nplt.plot(B.cpu())\nplt.title('beta')\nplt.show()\nprint(a_bar[:5], T)\n\n"
                "# %% [markdown]\n# ## Forward diffusion\n",
            ),
            (
                REVERSE_Q_CELL,
                "# %%\nprint('defining reverse_q')\nfor row in range(2):\n    print(row)\n\n" + REVERSE_Q_CELL,
            ),
        ),
    ),
]
