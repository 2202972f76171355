"""The grading corpus: correct variants and one mutant per diagnosis, with the verdict each must get.

Every case starts from a correct submission (the bundled example as a `# %%` script or as a
notebook, or the layout-A notebook) and applies exact text replacements. `apply_edits`
insists that each replacement matches exactly once, so an example that drifts breaks the
corpus loudly instead of silently turning a mutant back into the correct answer.

A case lists only what differs from "every task passes with the message 'correct'":
`failed` maps a task to phrases its message must contain, `passed_with` maps a passing task to
phrases of its note, `hints` to phrases of its hints, `absent` to phrases its message must not
contain, and `at` to where its location must point (a snippet of the cell's source that
identifies the cell, and the line or None). In a phrase, {cell:SNIPPET} stands for the number
of the cell whose source contains SNIPPET.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
SOURCES = {
    "script": ROOT / "examples" / "submission.py",
    "notebook": ROOT / "examples" / "submission.ipynb",
    "layout_a": ROOT / "tests" / "corpus" / "layout_a.ipynb",
}
SUFFIX = {"script": ".py", "notebook": ".ipynb", "layout_a": ".ipynb"}


@dataclass(frozen=True)
class Case:
    name: str
    edits: tuple[tuple[str, str], ...] = ()
    source: str = "script"
    failed: dict[str, tuple[str, ...]] = field(default_factory=dict)
    passed_with: dict[str, tuple[str, ...]] = field(default_factory=dict)
    hints: dict[str, tuple[str, ...]] = field(default_factory=dict)
    at: dict[str, tuple[str, int | None]] = field(default_factory=dict)
    absent: dict[str, tuple[str, ...]] = field(default_factory=dict)
    timeout: float = 60.0


def apply_edits(text: str, edits) -> str:
    """Apply exact replacements in order; each `old` must occur exactly once when applied."""
    for old, new in edits:
        count = text.count(old)
        assert count == 1, f"edit target found {count} times (expected once): {old!r}"
        text = text.replace(old, new)
    return text


def write_case(case: Case, folder: Path) -> Path:
    """Write the case's submission under `folder` and return its path."""
    source = SOURCES[case.source]
    path = folder / f"{case.name}{SUFFIX[case.source]}"
    if SUFFIX[case.source] == ".py":
        path.write_text(apply_edits(source.read_text(encoding="utf-8"), case.edits), encoding="utf-8")
        return path
    notebook = nbformat.read(source, as_version=4)
    for old, new in case.edits:
        holders = [cell for cell in notebook.cells if cell.cell_type == "code" and old in cell.source]
        assert len(holders) == 1, f"edit target found in {len(holders)} cells (expected one): {old!r}"
        holders[0].source = apply_edits(holders[0].source, [(old, new)])
    nbformat.write(notebook, path)
    return path


# -- snippets of the example that the edits below rely on -----------------------------------
Q_HEAD = "def q(x_0, t):\n    t = t.int()\n"
UPBLOCK = """class UpBlock(nn.Module):
    def __init__(self, in_chs, out_chs, group_size):
        super(UpBlock, self).__init__()
        layers = [
            nn.ConvTranspose2d(2 * in_chs, out_chs, 2, 2),
            GELUConvBlock(out_chs, out_chs, group_size),
            GELUConvBlock(out_chs, out_chs, group_size),
            GELUConvBlock(out_chs, out_chs, group_size),
            GELUConvBlock(out_chs, out_chs, group_size),
        ]
        self.model = nn.Sequential(*layers)

    def forward(self, x, skip):
        x = torch.cat((x, skip), 1)
        x = self.model(x)
        return x
"""
GUIDANCE = "e_t = (1 + w) * e_t_keep_c - w * e_t_drop_c"
SHIFTED_GUIDANCE = "e_t = e_t_drop_c + w * (e_t_keep_c - e_t_drop_c)"
MASK = "c_mask = torch.bernoulli(torch.ones_like(c_hot).float() - drop_prob).to(device)"
CONTEXT = "c_hot, c_mask = get_context_mask(batch[1], c_drop_prob)"
END_TEST = "if t[0] == 0:"
W = "w = 1.0  # Change me"
INNER_DROP = "        c_drop_prob = 0.1\n"
EPOCH_LOOP = "for epoch in range(epochs):\n"

SCHEDULE_CELL = "T = nrows * ncols"
Q_CELL = "def q(x_0, t):"
REVERSE_CELL = "def reverse_q("
MASK_CELL = "def get_context_mask("
LOSS_CELL = "def get_loss("
GUIDANCE_CELL = "def sample_w("
TRAINING_CELL = "optimizer = Adam("

CORRECT = [
    Case("example_script"),
    Case("example_notebook", source="notebook"),
    Case("layout_a", source="layout_a", passed_with={"loss": ("passes t / T to the model (layout A)",)}),
    Case(
        "equivalent_forms",
        edits=(
            (GUIDANCE, "e_t = e_t_keep_c + w * (e_t_keep_c - e_t_drop_c)"),
            (MASK, "c_mask = (torch.rand_like(c_hot.float()) > drop_prob).float().to(device)"),
            (END_TEST, "if torch.all(t == 0):"),
            (CONTEXT, "y = batch[1].to(device)\n        c_hot, c_mask = get_context_mask(y, c_drop_prob)"),
            # commented-out FIXME lines (and one in a string) left next to the answers
            ("a_bar = torch.cumprod(a, dim=0)\n", "# a_bar = FIXME(a, dim=0)\na_bar = torch.cumprod(a, dim=0)\n"),
            ("    noise = torch.randn_like(x_0)\n", "    # noise = FIXME\n    noise = torch.randn_like(x_0)\n"),
            (
                "        new_noise = torch.randn_like(x_t)\n",
                "        new_noise = torch.randn_like(x_t)  # FIXME was here\n",
            ),
            (
                "    return F.mse_loss(noise, noise_pred)",
                '    """Replace FIXME with the loss."""\n    return F.mse_loss(noise, noise_pred)',
            ),
            (INNER_DROP, "        # c_drop_prob = FIXME\n" + INNER_DROP),
        ),
    ),
    Case(
        "equivalent_forms_notebook",
        source="notebook",
        edits=(
            (END_TEST, "if (t == 0).all():"),
            (INNER_DROP, "        c_drop_prob = 0.5\n"),
            (GUIDANCE, SHIFTED_GUIDANCE),
        ),
        passed_with={"training_loop": ("c_drop_prob is 0.5; the course uses 0.1",), "guidance": ("shifted by one",)},
    ),
    Case(
        "shifted_guidance_w0",
        edits=((GUIDANCE, SHIFTED_GUIDANCE), (W, "w = 0.0  # Change me")),
        passed_with={"guidance": ("shifted by one",)},
        hints={"guidance": ("w = 0", "unconditional", "w > 1")},
    ),
    # The commonest real failure: all code right, w left at the notebook's 0 (guidance off).
    Case("course_guidance_w0", edits=((W, "w = 0.0  # Change me"),)),
]

MUTANTS = [
    # -- schedule ---------------------------------------------------------------------------
    Case(
        "schedule_missing_sqrt",
        edits=(("sqrt_a_bar = torch.sqrt(a_bar)", "sqrt_a_bar = a_bar"),),
        failed={"schedule": ("sqrt_a_bar equals a_bar: the square root is missing",)},
        passed_with={"q": ("right given your schedule tensors",)},
        at={"schedule": (SCHEDULE_CELL, 12)},
    ),
    Case(
        "schedule_cumsum",
        edits=(("a_bar = torch.cumprod(a, dim=0)", "a_bar = torch.cumsum(a, dim=0)"),),
        failed={"schedule": ("a_bar is the cumulative sum of a", "torch.cumprod(a, dim=0)")},
        # sqrt(1 - a_bar) is NaN for this a_bar: not charged again to the tensors built from it,
        # nor to q and reverse_q, which are right with the course's schedule
        absent={"schedule": ("sqrt_one_minus_a_bar", "pred_noise_coeff")},
        passed_with={
            "q": ("q is right with the course's schedule tensors, not with yours",),
            "reverse_q": ("reverse_q is right with the course's schedule tensors, not with yours", "NaN"),
        },
        at={"schedule": (SCHEDULE_CELL, 11)},
    ),
    Case(
        "schedule_wrong_shape",
        edits=(("a_bar = torch.cumprod(a, dim=0)", "a_bar = torch.cumprod(a, dim=0)[None, :]"),),
        failed={
            "schedule": ("a_bar has shape (1, 150), expected (150,)", "sqrt_a_bar has shape (1, 150), expected (150,)")
        },
        passed_with={
            "q": ("not with yours (it raises IndexError",),
            "reverse_q": ("not with yours (it raises RuntimeError",),
        },
        at={"schedule": (SCHEDULE_CELL, 11)},
    ),
    Case(
        "schedule_wrong_device",
        edits=(("sqrt_a_inv = torch.sqrt(1 / a)", "sqrt_a_inv = torch.sqrt(1 / a).to('meta')"),),
        failed={"schedule": ("sqrt_a_inv is on meta but the notebook's device is cpu",)},
        absent={"schedule": ("not a tensor",)},
        passed_with={"reverse_q": ("not with yours (it raises RuntimeError", "meta")},
        at={"schedule": (SCHEDULE_CELL, 16)},
    ),
    # -- q ----------------------------------------------------------------------------------
    Case(
        "q_swapped_coefficients",
        edits=(
            (
                "x_t = sqrt_a_bar_t * x_0 + sqrt_one_minus_a_bar_t * noise",
                "x_t = sqrt_one_minus_a_bar_t * x_0 + sqrt_a_bar_t * noise",
            ),
        ),
        failed={"q": ("swaps its coefficients",)},
        at={"q": (Q_CELL, 2)},
    ),
    Case(
        "q_uniform_noise",
        edits=(("noise = torch.randn_like(x_0)", "noise = torch.rand_like(x_0)"),),
        failed={"q": ("the noise is not standard normal (mean 0.50, std 0.29)",)},
        hints={"q": ("torch.randn_like(x_0)",)},
        at={"q": (Q_CELL, 2)},
    ),
    # -- reverse_q --------------------------------------------------------------------------
    Case(
        "reverse_q_swapped_inputs",
        edits=(
            (
                "u_t = sqrt_a_inv_t * (x_t - pred_noise_coeff_t * e_t)",
                "u_t = sqrt_a_inv_t * (e_t - pred_noise_coeff_t * x_t)",
            ),
        ),
        failed={"reverse_q": ("swaps x_t and e_t",)},
        at={"reverse_q": (REVERSE_CELL, 3)},
    ),
    Case(
        "reverse_q_noise_at_zero",
        edits=((END_TEST, "if t[0] < 0:"),),
        failed={"reverse_q": ("at t = 0 reverse_q adds noise", "instead of returning the mean")},
        at={"reverse_q": (REVERSE_CELL, 3)},
    ),
    Case(
        "reverse_q_variance_of_t",
        edits=(("B_t = B[t - 1]", "B_t = B[t]"),),
        failed={"reverse_q": ("at t = 1, the added noise has variance B[t]; expected B[t-1]",)},
        at={"reverse_q": (REVERSE_CELL, 3)},
    ),
    Case(
        "reverse_q_no_sqrt",
        edits=(("return u_t + torch.sqrt(B_t) * new_noise", "return u_t + B_t * new_noise"),),
        failed={"reverse_q": ("the added noise has variance B[t-1] squared",)},
        at={"reverse_q": (REVERSE_CELL, 3)},
    ),
    # -- blocks -----------------------------------------------------------------------------
    Case(
        "blocks_name_missing",
        edits=((UPBLOCK, "pass\n"),),
        failed={"blocks": ("UpBlock is not defined",)},
        absent={"blocks": ("DownBlock", "the class named")},
        hints={"blocks": ("an up-sampling block) UpBlock",)},
    ),
    Case(
        "blocks_swapped",
        edits=(
            ("class DownBlock(nn.Module):", "class SWAPPED(nn.Module):"),
            ("class SinusoidalPositionEmbedBlock(nn.Module):", "class DownBlock(nn.Module):"),
            ("class SWAPPED(nn.Module):", "class SinusoidalPositionEmbedBlock(nn.Module):"),
        ),
        # {cell:...} is replaced by the number of the cell holding that snippet
        failed={
            "blocks": (
                "the class named DownBlock in cell {cell:half_dim} computes a sinusoidal embedding: "
                "that is SinusoidalPositionEmbedBlock",
                "the class named SinusoidalPositionEmbedBlock in cell {cell:super(DownBlock} computes "
                "two convolution blocks and a rearrange-pool (a down-sampling block): that is DownBlock",
            )
        },
        at={"blocks": ("half_dim", 2)},
    ),
    Case(
        "blocks_swapped_notebook",
        source="notebook",
        edits=(
            ("class DownBlock(nn.Module):", "class SWAPPED(nn.Module):"),
            ("class SinusoidalPositionEmbedBlock(nn.Module):", "class DownBlock(nn.Module):"),
            ("class SWAPPED(nn.Module):", "class SinusoidalPositionEmbedBlock(nn.Module):"),
        ),
        failed={
            "blocks": (
                "the class named DownBlock in cell {cell:half_dim} computes a sinusoidal embedding: "
                "that is SinusoidalPositionEmbedBlock",
            )
        },
        at={"blocks": ("half_dim", 1)},
    ),
    Case(
        "blocks_misspelt",
        edits=(("class ResidualConvBlock(nn.Module):", "class ResBlock(nn.Module):"),),
        failed={
            "blocks": (
                "ResidualConvBlock is not defined; the class named ResBlock in cell {cell:class ResBlock} "
                "computes two convolution blocks whose outputs are added (a residual block): "
                "that is ResidualConvBlock",
            )
        },
        hints={"blocks": ("ResidualConvBlock",)},
        at={"blocks": ("class ResBlock", 2)},
    ),
    Case(
        "blocks_upblock_skip_first",
        # Same layers, so the reference weights load; only the order of the concatenation differs.
        edits=(("x = torch.cat((x, skip), 1)", "x = torch.cat((skip, x), 1)"),),
        failed={
            "blocks": (
                "UpBlock in cell {cell:class UpBlock} does not behave like the course's UpBlock: "
                "its output differs from the course's",
            )
        },
        absent={"blocks": ("DownBlock", "the class named")},
        hints={"blocks": ("UpBlock should compute a transposed convolution on x concatenated with skip",)},
        at={"blocks": ("class UpBlock", 2)},
    ),
    # -- context mask -----------------------------------------------------------------------
    Case(
        "mask_not_random",
        edits=((MASK, "c_mask = torch.round(torch.ones_like(c_hot).float() - drop_prob).to(device)"),),
        failed={"context_mask": ("c_mask is not random",)},
        at={"context_mask": (MASK_CELL, 2)},
    ),
    Case(
        "mask_not_binary",
        edits=((MASK, "c_mask = (torch.ones_like(c_hot).float() - drop_prob).to(device)"),),
        failed={"context_mask": ("c_mask is not binary (values such as [0.9])",)},
        at={"context_mask": (MASK_CELL, 2)},
    ),
    Case(
        "mask_wrong_rate",
        edits=((MASK, "c_mask = torch.bernoulli(torch.ones_like(c_hot).float() * drop_prob).to(device)"),),
        failed={"context_mask": ("with drop_prob 0 it keeps 0%", "expected all and none")},
        at={"context_mask": (MASK_CELL, 2)},
    ),
    # -- loss -------------------------------------------------------------------------------
    Case(
        "loss_l1",
        edits=(("return F.mse_loss(noise, noise_pred)", "return F.l1_loss(noise, noise_pred)"),),
        failed={"loss": ("get_loss computes the L1 loss",)},
        at={"loss": (LOSS_CELL, 2)},
    ),
    Case(
        "loss_against_x0",
        edits=(("return F.mse_loss(noise, noise_pred)", "return F.mse_loss(x_0, noise_pred)"),),
        failed={"loss": ("an MSE against x_0 instead of the noise",)},
        at={"loss": (LOSS_CELL, 2)},
    ),
    # -- training loop ----------------------------------------------------------------------
    Case(
        "drop_prob_zero",
        edits=((INNER_DROP, "        c_drop_prob = 0\n"),),
        failed={
            "training_loop": (
                "c_drop_prob is 0 for 20 of 20 training batches, first at epoch 0, step 0",
                "never learns the unconditional prediction",
            )
        },
        at={"training_loop": (TRAINING_CELL, None)},
    ),
    Case(
        "drop_prob_circulated_decay",
        edits=((INNER_DROP, ""), (EPOCH_LOOP, EPOCH_LOOP + "    c_drop_prob = max(0.1, 1 - epoch / epochs)\n")),
        failed={
            "training_loop": (
                "c_drop_prob is 0 for 15 of 20 training batches, first at epoch 0, step 1: "
                "the preview at epoch 0, step 0 sets c_drop_prob = 0",
                "c_drop_prob is 1 for 1 of 20 training batches, first at epoch 0, step 0: every label is dropped",
            )
        },
        hints={"training_loop": ("inside the inner loop",)},
        at={"training_loop": (TRAINING_CELL, None)},
    ),
    Case(
        "context_not_labels",
        edits=((CONTEXT, "c_hot, c_mask = get_context_mask(torch.zeros(BATCH_SIZE), c_drop_prob)"),),
        failed={"training_loop": ("the context given to get_context_mask is not the batch's labels",)},
        at={"training_loop": (TRAINING_CELL, None)},
    ),
    Case(
        "context_constant",
        edits=((CONTEXT, "c_hot, c_mask = get_context_mask(torch.Tensor([preview_c]), c_drop_prob)"),),
        failed={"training_loop": ("the context given to get_context_mask is not the batch's labels",)},
        at={"training_loop": (TRAINING_CELL, None)},
    ),
    # -- guidance ---------------------------------------------------------------------------
    Case(
        "guidance_ignores_w",
        edits=((GUIDANCE, "e_t = 2 * e_t_keep_c - e_t_drop_c"),),
        failed={"guidance": ("sample_w ignores w",)},
        at={"guidance": (GUIDANCE_CELL, 3)},
    ),
    Case(
        "guidance_sign_flipped",
        edits=((GUIDANCE, "e_t = (1 + w) * e_t_drop_c - w * e_t_keep_c"),),
        failed={"guidance": ("the guidance sign is flipped",)},
        at={"guidance": (GUIDANCE_CELL, 3)},
    ),
    Case(
        "guidance_one_prediction",
        edits=((GUIDANCE, "e_t = e_t_keep_c"),),
        failed={
            "guidance": (
                "sample_w uses only the conditional prediction: e_t = 1 * e_t_keep_c + 0 * e_t_drop_c at w = 1",
            )
        },
        at={"guidance": (GUIDANCE_CELL, 3)},
    ),
    # -- cases that kill mutants of the judges (benchmarks/mutation_check.py --suite tasks) ----
    Case(
        "schedule_not_plain_tensor",
        edits=(
            (
                "sqrt_a_inv = torch.sqrt(1 / a)",
                "sqrt_a_inv = torch.nn.Parameter(torch.sqrt(1 / a), requires_grad=False)",
            ),
        ),
        failed={"schedule": ("sqrt_a_inv is a Parameter, not a plain torch.Tensor",)},
        at={"schedule": (SCHEDULE_CELL, 16)},
    ),
    Case(
        "q_noise_scaled",
        edits=(("noise = torch.randn_like(x_0)", "noise = 2 * torch.randn_like(x_0)"),),
        failed={"q": ("the noise is not standard normal",)},
        hints={"q": ("torch.randn_like(x_0)",)},
        at={"q": (Q_CELL, 2)},
    ),
    Case(
        "q_noise_shifted",
        edits=(("noise = torch.randn_like(x_0)", "noise = torch.randn_like(x_0) + 1"),),
        failed={"q": ("the noise is not standard normal (mean ",)},  # mean 1, std 1, up to sampling noise
        hints={"q": ("torch.randn_like(x_0)",)},
        at={"q": (Q_CELL, 2)},
    ),
    Case(
        "q_flat_x_t",
        edits=(("    return x_t, noise\n", "    return x_t.flatten(1), noise\n"),),
        failed={"q": ("q returned shapes (64, 784) and (64, 1, 28, 28) for x_0 of shape (64, 1, 28, 28)",)},
        at={"q": (Q_CELL, 2)},
    ),
    Case(
        "mask_one_hot_shifted",
        edits=(
            (
                "F.one_hot(c.to(torch.int64), num_classes=N_CLASSES)",
                "F.one_hot((c.to(torch.int64) + 1) % N_CLASSES, num_classes=N_CLASSES)",
            ),
        ),
        failed={"context_mask": ("c_hot is not the one-hot encoding of c",)},
        at={"context_mask": (MASK_CELL, 2)},
    ),
    Case(
        "mask_per_row",
        edits=((MASK, "c_mask = torch.bernoulli(torch.ones(c_hot.shape[0], 1) - drop_prob).to(device)"),),
        failed={"context_mask": ("c_mask has shape (1000, 1), expected the shape of c_hot (1000, 10)",)},
        at={"context_mask": (MASK_CELL, 2)},
    ),
    Case(
        "mask_two_draws_multiplied",
        edits=(
            (
                MASK,
                "c_mask = (torch.bernoulli(torch.ones_like(c_hot).float() - drop_prob)\n"
                "              * torch.bernoulli(torch.ones_like(c_hot).float() - drop_prob)).to(device)",
            ),
        ),
        # keeps 0.9 * 0.9 = 81% at 0.1, give or take a point of sampling noise
        failed={"context_mask": ("with drop_prob 0.1 it keeps 8", "of the context (expected about 90%)")},
        at={"context_mask": (MASK_CELL, 2)},
    ),
    Case(
        "loss_model_sees_x0",
        edits=(("noise_pred = model(x_noisy, t, *model_args)", "noise_pred = model(x_0, t, *model_args)"),),
        failed={"loss": ("the model is given x_0 instead of the noisy image from q",)},
        at={"loss": (LOSS_CELL, 2)},
    ),
    Case(
        "loss_one_model_arg",
        edits=(("noise_pred = model(x_noisy, t, *model_args)", "noise_pred = model(x_noisy, t, *model_args[:1])"),),
        failed={"loss": ("the model is not given the context (c_hot, c_mask) in model_args",)},
        at={"loss": (LOSS_CELL, 2)},
    ),
    Case(
        "loss_own_noise",
        edits=(("    x_noisy, noise = q(x_0, t)\n", "    noise = torch.randn_like(x_0)\n    x_noisy = x_0 + noise\n"),),
        failed={"loss": ("get_loss never calls q",)},
        at={"loss": (LOSS_CELL, 2)},
    ),
    Case(
        "loss_not_reduced",
        edits=(("return F.mse_loss(noise, noise_pred)", 'return F.mse_loss(noise, noise_pred, reduction="none")'),),
        failed={"loss": ("get_loss returned 12544 values, expected one number",)},
        at={"loss": (LOSS_CELL, 2)},
    ),
    Case(
        "training_mask_replaced",
        edits=((CONTEXT, CONTEXT + "\n        c_mask = torch.ones_like(c_mask)"),),
        failed={"training_loop": ("the mask given to get_loss at epoch 0, step 0 was not made by get_context_mask",)},
        at={"training_loop": (TRAINING_CELL, None)},
    ),
    Case(
        "context_zeros_like_labels",  # shaped like the labels, so only their values tell
        edits=((CONTEXT, "c_hot, c_mask = get_context_mask(torch.zeros_like(batch[1]), c_drop_prob)"),),
        failed={"training_loop": ("the context given to get_context_mask is not the batch's labels",)},
        at={"training_loop": (TRAINING_CELL, None)},
    ),
    Case(
        "guidance_not_a_mix",
        edits=((GUIDANCE, "e_t = (1 + w) * e_t_keep_c - w * e_t_drop_c ** 2"),),
        failed={
            "guidance": (
                "at w = 1 the noise passed to reverse_q is not a mix of the conditional and unconditional predictions",
            )
        },
        at={"guidance": (GUIDANCE_CELL, 3)},
    ),
    Case(
        "guidance_reverse_q_inlined",
        edits=(
            (
                "        x_t = reverse_q(x_t, t, e_t)\n",
                "        x_t = sqrt_a_inv[t] * (x_t - pred_noise_coeff[t] * e_t)\n",
            ),
        ),
        failed={"guidance": ("sample_w never calls reverse_q",)},
        at={"guidance": (GUIDANCE_CELL, 3)},
    ),
    # -- not attempted ----------------------------------------------------------------------
    Case(
        "fixme_left_in_q",
        edits=(("noise = torch.randn_like(x_0)", "noise = FIXME"),),
        failed={"q": ("not attempted: FIXME left in cell {cell:def q(x_0, t):}, line 4",)},
        at={"q": (Q_CELL, 4)},
    ),
    Case(
        "fixme_left_in_training",
        edits=((INNER_DROP, "        c_drop_prob = FIXME\n"),),
        failed={"training_loop": ("not attempted: FIXME left in cell {cell:optimizer = Adam(}, line 9",)},
        at={"training_loop": (TRAINING_CELL, 9)},
    ),
    # -- hostile or crashing code -----------------------------------------------------------
    Case(
        "q_os_exit",
        edits=((Q_HEAD, Q_HEAD.replace("    t = t.int()\n", "    import os\n    os._exit(3)\n")),),
        failed={"q": ("while checking q", "ended the process (exit code 3)")},
        at={"q": (Q_CELL, 2)},
    ),
    Case(
        "q_infinite_loop",
        edits=((Q_HEAD, Q_HEAD + "    while True:\n        pass\n"),),
        failed={"q": ("while checking q", "did not finish within 10 s")},
        at={"q": (Q_CELL, 2)},
        timeout=10.0,
    ),
    Case(
        "q_huge_tensor",
        edits=((Q_HEAD, Q_HEAD + "    hoard = torch.empty(10**13)\n"),),
        failed={"q": ("RuntimeError", "allocate")},
        at={"q": (Q_CELL, 4)},
    ),
    Case(
        "cell_os_exit",
        edits=(("    return x_t, noise\n", "    return x_t, noise\n\nimport os\n_ = os._exit(3)\n"),),
        failed={"q": ("exit code 3",)},
    ),
    Case(
        "loss_sys_exit",
        edits=(("    x_noisy, noise = q(x_0, t)\n", "    import sys\n    sys.exit()\n"),),
        failed={"loss": ("sys.exit",)},
        at={"loss": (LOSS_CELL, 4)},
    ),
]

CASES = CORRECT + MUTANTS
