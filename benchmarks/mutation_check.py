"""Mutation check of the reference library and the task judges: `python benchmarks/mutation_check.py`.

Each mutant changes one formula or comparison: of `reference/` (cumprod -> cumsum, B[t-1] -> B[t],
the sign in guidance, ...; `--suite reference`) or of a task's judge in `tasks/` (a comparison
flipped, a `verdict.check(...)` condition made always true, a threshold moved one step;
`--suite tasks`). For each, a scratch copy of the package and the tests is made, the mutation
is applied to the copy (the working tree is never touched), and only the tests that exercise
that module are run against it: the reference tests, or the grading-corpus cases that name the
task (tests/test_grading_corpus.py) and, for generation's judge, tests/test_generation.py.
A mutant that no test kills is a *survivor*: a test is missing or cannot fail. Exit status 1
when any mutant survives, unless it is marked equivalent (with the reason, printed).

Mutants find their target by its text (which must occur exactly once), never by line number,
so moving code keeps them valid and rewriting it makes the script refuse loudly
(`--check-targets` checks every target without running anything).

Runs torch: on a shared 2-core machine pass the CPU lock, `--lock /tmp/dli-cpu.lock`: the script
holds it for at most `--hold` seconds at a time (then lets others in between two mutants).
Not part of the default test suite.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parent.parent

SCHEDULE_TESTS = ("tests/test_reference_schedule.py", "tests/test_reference_diffusion.py")
DIFFUSION_TESTS = ("tests/test_reference_diffusion.py",)
CONDITIONING_TESTS = ("tests/test_reference_conditioning.py",)
MODEL_TESTS = ("tests/test_reference_model.py",)
WEIGHTS_TESTS = ("tests/test_reference_weights.py",)
DATA_TESTS = ("tests/test_reference_data.py",)


@dataclass(frozen=True)
class Mutant:
    id: str
    file: str  # relative to the repository root: a file, or a module that may be a file or a package
    old: str  # must occur exactly once in the file
    new: str
    tests: tuple[str, ...]  # pytest arguments; "corpus:TASK" stands for the corpus cases naming TASK
    equivalent: str = ""  # why no test can kill it, when that is so


MUTANTS = (
    # schedule
    Mutant(
        "schedule-cumsum", "reference/schedule.py", "torch.cumprod(a, dim=0)", "torch.cumsum(a, dim=0)", SCHEDULE_TESTS
    ),
    Mutant(
        "schedule-betas-reversed",
        "reference/schedule.py",
        "torch.linspace(beta_start, beta_end, T,",
        "torch.linspace(beta_end, beta_start, T,",
        SCHEDULE_TESTS,
    ),
    Mutant("schedule-a-is-B", "reference/schedule.py", "a = 1.0 - B\n", "a = B\n", SCHEDULE_TESTS),
    Mutant(
        "schedule-sqrt-one-minus",
        "reference/schedule.py",
        "sqrt_one_minus_a_bar=torch.sqrt(1.0 - a_bar)",
        "sqrt_one_minus_a_bar=1.0 - torch.sqrt(a_bar)",
        SCHEDULE_TESTS,
    ),
    Mutant(
        "schedule-sqrt-a-inv-unsquared",
        "reference/schedule.py",
        "sqrt_a_inv=torch.sqrt(1.0 / a)",
        "sqrt_a_inv=1.0 / a",
        SCHEDULE_TESTS,
    ),
    Mutant(
        "schedule-pred-noise-no-sqrt",
        "reference/schedule.py",
        "(1.0 - a) / torch.sqrt(1.0 - a_bar)",
        "(1.0 - a) / (1.0 - a_bar)",
        SCHEDULE_TESTS,
    ),
    # q, reverse_q, get_loss
    Mutant(
        "q-coefficients-swapped",
        "reference/diffusion.py",
        "_per_image(schedule.sqrt_a_bar, index) * x_0 + _per_image(schedule.sqrt_one_minus_a_bar, index) * noise",
        "_per_image(schedule.sqrt_one_minus_a_bar, index) * x_0 + _per_image(schedule.sqrt_a_bar, index) * noise",
        DIFFUSION_TESTS,
    ),
    Mutant(
        "q-a-bar-not-sqrt",
        "reference/diffusion.py",
        "_per_image(schedule.sqrt_a_bar, index) * x_0",
        "_per_image(schedule.a_bar, index) * x_0",
        DIFFUSION_TESTS,
    ),
    Mutant(
        "q-uniform-noise",
        "reference/diffusion.py",
        "noise = torch.randn_like(x_0)",
        "noise = torch.rand_like(x_0)",
        DIFFUSION_TESTS,
    ),
    Mutant(
        "q-index-off-by-one",
        "reference/diffusion.py",
        "index = timestep_indices(t, x_0.shape[0], schedule.T).to(schedule.device)",
        "index = (timestep_indices(t, x_0.shape[0], schedule.T) - 1).clamp(min=0).to(schedule.device)",
        DIFFUSION_TESTS,
    ),
    Mutant(
        "t-fractional-accepted",
        "reference/diffusion.py",
        "flat.is_floating_point() and not torch.equal(flat, flat.round())",
        "False",
        DIFFUSION_TESTS,
    ),
    Mutant(
        "reverse-mean-sign",
        "reference/diffusion.py",
        "(x_t - _per_image(schedule.pred_noise_coeff, index) * e_t)",
        "(x_t + _per_image(schedule.pred_noise_coeff, index) * e_t)",
        DIFFUSION_TESTS,
    ),
    Mutant(
        "reverse-variance-B-t",
        "reference/diffusion.py",
        "schedule.B[(index - 1).clamp(min=0)]",
        "schedule.B[index]",
        DIFFUSION_TESTS,
    ),
    Mutant(
        "reverse-std-is-variance",
        "reference/diffusion.py",
        "torch.sqrt(schedule.B[(index - 1).clamp(min=0)])",
        "schedule.B[(index - 1).clamp(min=0)]",
        DIFFUSION_TESTS,
    ),
    Mutant("reverse-noise-at-t0", "reference/diffusion.py", "* (index > 0)", "* (index >= 0)", DIFFUSION_TESTS),
    Mutant(
        "loss-l1",
        "reference/diffusion.py",
        "F.mse_loss(noise_pred, noise)",
        "F.l1_loss(noise_pred, noise)",
        DIFFUSION_TESTS,
    ),
    Mutant(
        "loss-sum",
        "reference/diffusion.py",
        "F.mse_loss(noise_pred, noise)",
        "F.mse_loss(noise_pred, noise, reduction='sum')",
        DIFFUSION_TESTS,
    ),
    Mutant(
        "loss-model-sees-x0",
        "reference/diffusion.py",
        "model(x_noisy, t, *model_args)",
        "model(x_0, t, *model_args)",
        DIFFUSION_TESTS,
    ),
    # context mask, guidance, sampler
    Mutant(
        "mask-keep-is-drop",
        "reference/conditioning.py",
        "torch.ones_like(c_hot).float() - float(drop_prob)",
        "torch.ones_like(c_hot).float() * float(drop_prob)",
        CONDITIONING_TESTS,
    ),
    Mutant(
        "mask-per-sample",
        "reference/conditioning.py",
        "torch.bernoulli(torch.ones_like(c_hot).float() - float(drop_prob))",
        "torch.bernoulli(torch.ones(c_hot.shape[0], 1) - float(drop_prob)).expand(c_hot.shape)",
        CONDITIONING_TESTS,
    ),
    Mutant(
        "guidance-sign",
        "reference/conditioning.py",
        "(1 + w) * e_t_keep_c - w * e_t_drop_c",
        "(1 + w) * e_t_keep_c + w * e_t_drop_c",
        CONDITIONING_TESTS,
    ),
    Mutant(
        "guidance-shifted",
        "reference/conditioning.py",
        "(1 + w) * e_t_keep_c - w * e_t_drop_c",
        "w * e_t_keep_c + (1 - w) * e_t_drop_c",
        CONDITIONING_TESTS,
    ),
    Mutant(
        "sampler-keep-drop-swapped",
        "reference/sampling.py",
        "guided_noise(e_t[:n], e_t[n:], w)",
        "guided_noise(e_t[n:], e_t[:n], w)",
        CONDITIONING_TESTS,
    ),
    Mutant(
        "sampler-mask-halves-swapped",
        "reference/sampling.py",
        "c_mask[n:] = 0.0",
        "c_mask[:n] = 0.0",
        CONDITIONING_TESTS,
    ),
    Mutant(
        "sampler-forward-in-time",
        "reference/sampling.py",
        "reversed(range(schedule.T))",
        "range(schedule.T)",
        CONDITIONING_TESTS,
    ),
    # blocks and U-Net
    Mutant("residual-returns-x2", "reference/blocks.py", "return x1 + x2", "return x2", MODEL_TESTS),
    Mutant(
        "upblock-concat-order", "reference/blocks.py", "torch.cat((x, skip), 1)", "torch.cat((skip, x), 1)", MODEL_TESTS
    ),
    Mutant(
        "sinusoidal-cos-first",
        "reference/blocks.py",
        "torch.cat((angles.sin(), angles.cos()), dim=-1)",
        "torch.cat((angles.cos(), angles.sin()), dim=-1)",
        MODEL_TESTS,
    ),
    Mutant(
        "sinusoidal-scale",
        "reference/blocks.py",
        "math.log(10000) / (half_dim - 1)",
        "math.log(10000) / half_dim",
        MODEL_TESTS,
    ),
    Mutant(
        "rearrange-channel-order",
        "reference/blocks.py",
        '"b c (h p1) (w p2) -> b (c p1 p2) h w"',
        '"b c (h p1) (w p2) -> b (p1 p2 c) h w"',
        MODEL_TESTS,
    ),
    Mutant(
        "gelu-conv-relu",
        "reference/blocks.py",
        "nn.GroupNorm(group_size, out_ch),\n            nn.GELU(),",
        "nn.GroupNorm(group_size, out_ch),\n            nn.ReLU(),",
        MODEL_TESTS,
    ),
    Mutant(
        "embed-relu",
        "reference/blocks.py",
        "nn.GELU(),\n            nn.Linear(emb_dim, emb_dim),",
        "nn.ReLU(),\n            nn.Linear(emb_dim, emb_dim),",
        MODEL_TESTS,
    ),
    Mutant("unet-t-not-scaled", "reference/unet.py", "t.float() / self.T", "t.float()", MODEL_TESTS),
    Mutant("unet-mask-ignored", "reference/unet.py", "c = c * c_mask", "c = c", MODEL_TESTS),
    Mutant("unet-no-time-embedding", "reference/unet.py", "c_emb1 * up0 + t_emb1", "c_emb1 * up0", MODEL_TESTS),
    Mutant(
        "training-ignores-drop-prob",
        "reference/training.py",
        "get_context_mask(labels[index], c_drop_prob)",
        "get_context_mask(labels[index], 0.1)",
        MODEL_TESTS,
    ),
    Mutant(
        "training-t-one-short",
        "reference/training.py",
        "torch.randint(0, schedule.T, (batch_size,)",
        "torch.randint(1, schedule.T, (batch_size,)",
        MODEL_TESTS,
    ),
    # judge and weights
    Mutant(
        "classifier-not-normalised",
        "reference/classifier.py",
        "return (images - MNIST_MEAN) / MNIST_STD",
        "return images",
        WEIGHTS_TESTS,
    ),
    Mutant(
        "classifier-clamped",
        "reference/classifier.py",
        "images = images.detach().float().cpu()",
        "images = images.detach().float().cpu().clamp(0, 1)",
        WEIGHTS_TESTS,
    ),
    Mutant("classifier-argmin", "reference/classifier.py", ".argmax(dim=1)", ".argmin(dim=1)", WEIGHTS_TESTS),
    Mutant(
        "classifier-not-eval",
        "reference/classifier.py",
        "    classifier.eval()\n    images",
        "    images",
        WEIGHTS_TESTS,
    ),
    Mutant(
        "weights-unexpected-accepted",
        "reference/weights.py",
        "if missing or unexpected or wrong_shape:",
        "if missing or wrong_shape:",
        WEIGHTS_TESTS,
    ),
    Mutant(
        "weights-pickles-allowed",
        "reference/weights.py",
        'map_location="cpu", weights_only=True',
        'map_location="cpu", weights_only=False',
        WEIGHTS_TESTS,
    ),
    # MNIST
    Mutant(
        "mnist-checksum-ignored",
        "reference/mnist.py",
        "if hashlib.sha256(raw).hexdigest() != SHA256[name]:",
        "if False:",
        DATA_TESTS,
    ),
    Mutant("mnist-scale-256", "reference/mnist.py", ".div_(255.0)", ".div_(256.0)", DATA_TESTS),
    Mutant(
        "mnist-all-test-first",
        "reference/mnist.py",
        "torch.cat((train_x, test_x))",
        "torch.cat((test_x, train_x))",
        DATA_TESTS,
    ),
)


# -- the task judges ----------------------------------------------------------------------------
# The judge's tests; not the one that grades whole notebooks through the child (no judge runs there).
GENERATION_TESTS = ("tests/test_generation.py", "-k", "not never_trains")
MASK_TESTS = ("corpus:context_mask", "tests/test_grading_corpus.py::test_mask_judge_keep_rate_band")
BLOCKS_TESTS = ("corpus:blocks", "tests/test_attacks.py::test_attack[subclassing_a_course_block_does_not_earn_it]")


def _task(id: str, task: str, old: str, new: str, tests: tuple[str, ...] = (), equivalent: str = "") -> Mutant:
    # The task's module, `tasks/TASK.py` or the package `tasks/TASK/`: the target is found in whichever
    # of its files holds it, so a task split into a package keeps its mutants.
    return Mutant(f"{task}:{id}", f"tasks/{task}", old, new, tests or (f"corpus:{task}",), equivalent)


TASK_MUTANTS = (
    # schedule: each derived tensor against its formula from the student's upstream tensors
    _task(
        "formula-always-consistent",
        "schedule",
        "return value.shape == expected.shape and torch.allclose(value, expected,",
        "return True or torch.allclose(value, expected,",
    ),
    _task("shape-unchecked", "schedule", "if shape != (T,):", "if False:"),
    _task(
        "device-unchecked",
        "schedule",
        "if device != notebook_device or name not in student:",
        "if name not in student:",
        equivalent="on a machine without CUDA the only other device a tensor can be on is meta, which carries no "
        "values, so `name not in student` gives the same finding; a GPU machine would tell them apart "
        "(a CPU tensor in a CUDA notebook)",
    ),
    _task("not-plain-accepted", "schedule", 'if not info[name]["exact"]:', "if False:"),
    _task(
        "diagnosis-inverted",
        "schedule",
        "if approx_equal(value.double(), wrong(student).double()):",
        "if not approx_equal(value.double(), wrong(student).double()):",
    ),
    _task(
        "course-B-noted-inverted",
        "schedule",
        "if B is not None and not approx_equal(B, reference_B):",
        "if B is not None and approx_equal(B, reference_B):",
    ),
    # q: the closed form for the returned noise, and that noise standard normal
    _task(
        "closed-form-inverted",
        "q",
        "if approx_equal(x_t, keep * x_0 + mix * noise):",
        "if not approx_equal(x_t, keep * x_0 + mix * noise):",
    ),
    _task(
        "normality-always",
        "q",
        "verdict.check(\n        abs(mean) < 0.05 and abs(std - 1) < 0.05,\n",
        "verdict.check(\n        True,\n",
    ),
    _task("normality-mean-only", "q", "abs(mean) < 0.05 and abs(std - 1) < 0.05", "abs(mean) < 0.05"),
    _task("normality-std-only", "q", "abs(mean) < 0.05 and abs(std - 1) < 0.05", "abs(std - 1) < 0.05"),
    _task("normality-std-loose", "q", "abs(std - 1) < 0.05", "abs(std - 1) < 1.05"),
    _task("swap-undiagnosed", "q", "if approx_equal(x_t, mix * x_0 + keep * noise):", "if False:"),
    _task("shape-unchecked", "q", "if x_t.shape != x_0.shape or noise.shape != x_0.shape:", "if False:"),
    # reverse_q: the mean's weights, the bare mean at t = 0, the variance B[t-1]
    _task(
        "mean-always-matches",
        "reverse_q",
        "return all(abs(w - e) <= tolerance * max(1.0, abs(e))",
        "return True or all(abs(w - e) <= tolerance * max(1.0, abs(e))",
    ),
    _task(
        "t0-noise-accepted",
        "reverse_q",
        "verdict.check(\n        at_zero.abs().max().item() < 1e-4,\n",
        "verdict.check(\n        True,\n",
    ),
    _task(
        "variance-no-upper",
        "reverse_q",
        "if not 0.9 * expected < variance < 1.1 * expected:",
        "if not 0.9 * expected < variance:",
    ),
    _task(
        "variance-no-lower",
        "reverse_q",
        "if not 0.9 * expected < variance < 1.1 * expected:",
        "if not variance < 1.1 * expected:",
    ),
    _task("variance-steps-one-short", "reverse_q", "for step in steps[1:]:", "for step in steps[2:]:"),
    _task(
        "swap-undiagnosed",
        "reverse_q",
        "if _weights_match(fits[middle][:2], (beta, alpha), fits[middle][2]):",
        "if False:",
    ),
    _task(
        "nan-unchecked",
        "reverse_q",
        "broken = [step for step, out in outputs.items() if not torch.isfinite(out).all()]",
        "broken = []",
    ),
    _task(
        "variance-named-inverted",
        "reverse_q",
        "if abs(variance - value) <= 0.05 * value:",
        "if abs(variance - value) > 0.05 * value:",
    ),
    # blocks: a class earns its name only when it computes the reference block under that name
    _task(
        "output-always-matches",
        "blocks",
        "and approx_equal(outputs[(name, kind)], expected[kind], rtol=1e-4, atol=1e-5)",
        "and True",
        BLOCKS_TESTS,
    ),
    _task(
        "name-ignored",
        "blocks",
        "if kind in matches and kind in matches[kind]:",
        "if kind in matches and matches[kind]:",
        BLOCKS_TESTS,
    ),
    _task("delegation-accepted", "blocks", "and name not in delegating\n", "\n", BLOCKS_TESTS),
    _task(
        "misnamed-body-unnamed",
        "blocks",
        "holders = [name for name, kinds in matches.items() if kind in kinds and name not in KINDS]",
        "holders = []",
        BLOCKS_TESTS,
    ),
    # context_mask: one-hot, binary, random, shaped like c_hot, keeping 1 - drop_prob
    _task(
        "one-hot-unchecked",
        "context_mask",
        "if hot.shape != one_hot.shape or not torch.equal(hot.long(), one_hot):",
        "if hot.shape != one_hot.shape:",
    ),
    _task("shape-unchecked", "context_mask", "if mask.shape != hot.shape:", "if False:"),
    _task(
        "binary-unchecked",
        "context_mask",
        "if not all(((m == 0) | (m == 1)).all() for m in masks.values()):",
        "if False:",
    ),
    _task(
        "randomness-unchecked",
        "context_mask",
        'if torch.equal(masks["0.1"], data["c_mask.0.1-again"].double()):',
        "if False:",
    ),
    _task("endpoints-unchecked", "context_mask", 'elif kept["0.0"] != 1.0 or kept["1.0"] != 0.0:', "elif False:"),
    _task(
        "rate-unchecked",
        "context_mask",
        'elif abs(kept["0.1"] - 0.9) > 0.03 or abs(kept["0.5"] - 0.5) > 0.04:',
        "elif False:",
    ),
    _task("rate-loose", "context_mask", 'abs(kept["0.1"] - 0.9) > 0.03', 'abs(kept["0.1"] - 0.9) > 0.13', MASK_TESTS),
    _task(
        "rate-half-loose", "context_mask", 'abs(kept["0.5"] - 0.5) > 0.04', 'abs(kept["0.5"] - 0.5) > 0.14', MASK_TESTS
    ),
    # loss: the MSE between the grader's noise and the prediction on the grader's noisy image
    _task("mse-inverted", "loss", 'if found == "mse":', 'if found != "mse":'),
    _task("one-number-unchecked", "loss", "if loss.numel() != 1:", "if False:"),
    _task("calls-unchecked", "loss", 'if not records.get("fixed_q") or not model_calls:', "if not model_calls:"),
    _task("model-input-unchecked", "loss", "if not approx_equal(model_x, x_noisy):", "if False:"),
    _task(
        "context-unchecked",
        "loss",
        'if not isinstance(call.get("extra_args"), int) or call["extra_args"] < 2:',
        "if False:",
    ),
    _task("context-one-short", "loss", 'call["extra_args"] < 2', 'call["extra_args"] < 1'),
    _task(
        "layout-a-note-inverted",
        "loss",
        "approx_equal(model_t.double().flatten(), t.flatten() / T)",
        "not approx_equal(model_t.double().flatten(), t.flatten() / T)",
    ),
    # training_loop: every batch's drop probability strictly in (0, 1), its context the batch's labels
    _task("drop-zero-accepted", "training_loop", '0 < call["drop_prob"] < 1)', '0 <= call["drop_prob"] < 1)'),
    _task("drop-one-accepted", "training_loop", '0 < call["drop_prob"] < 1)', '0 < call["drop_prob"] <= 1)'),
    _task(
        "labels-unchecked",
        "training_loop",
        "verdict.check(\n        bool(from_labels) and all(from_labels),\n",
        "verdict.check(\n        True,\n",
    ),
    _task(
        "labels-compared-loosely",
        "training_loop",
        "and c.shape == expected.shape\n            and torch.equal(c.long(), expected)\n",
        "and c.shape == expected.shape\n",
    ),
    _task(
        "batch-labels-off-by-one",
        "training_loop",
        "first = (epoch * BATCHES_PER_EPOCH + step) * STAND_IN_BATCH",
        "first = (epoch * BATCHES_PER_EPOCH + step + 1) * STAND_IN_BATCH",
    ),
    _task("unmasked-accepted", "training_loop", "if unmasked:", "if False:"),
    _task("course-value-note-inverted", "training_loop", "elif values[0] != 0.1:", "elif values[0] == 0.1:"),
    # guidance: the weights (1 + w, -w) at every w, or the shifted (w, 1 - w) form
    _task(
        "course-form-inverted",
        "guidance",
        "if all_match(lambda w: (1 + w, -w)):",
        "if not all_match(lambda w: (1 + w, -w)):",
    ),
    _task("shifted-form-refused", "guidance", "if all_match(lambda w: (w, 1 - w)):", "if False:"),
    _task(
        "match-tolerance-loose",
        "guidance",
        "abs(a - form(w)[0]) < 1e-3 and abs(b - form(w)[1]) < 1e-3",
        "abs(a - form(w)[0]) < 1.001 and abs(b - form(w)[1]) < 1.001",
    ),
    _task(
        "shifted-w0-hint-missing",
        "guidance",
        "if student_w is not None and student_w <= 0:",
        "if student_w is not None and student_w < 0:",
    ),
    _task("ignores-w-undiagnosed", "guidance", "elif len(alphas) == 1 and len(betas) == 1:", "elif False:"),
    _task(
        "sign-undiagnosed",
        "guidance",
        "elif all_match(lambda w: (-w, 1 + w)) or all_match(lambda w: (1 - w, w)):",
        "elif False:",
    ),
    _task("mix-unchecked", "guidance", "if error > 1e-3:", "if False:"),
    _task("reverse-q-call-unchecked", "guidance", 'if not info["called_reverse_q"]:', "if False:"),
    # generation's judge: the official bar, near copies, the trusted path, the short training's
    # held-out loss, the training records
    _task(
        "bar-always-met",
        "generation",
        "if not verdict.check(\n        official_accuracy >= OFFICIAL_BAR,\n",
        "if not verdict.check(\n        True,\n",
        GENERATION_TESTS,
    ),
    # Half a digit lower than the bar: 47 of 50 (0.94) passes, which the 47-of-50 test must refuse.
    _task("bar-47-of-50", "generation", "OFFICIAL_BAR = 0.95", "OFFICIAL_BAR = 0.935", GENERATION_TESTS),
    _task("bar-49-of-50", "generation", "OFFICIAL_BAR = 0.95", "OFFICIAL_BAR = 0.96", GENERATION_TESTS),
    _task("near-copies-ignored", "generation", "if copies > NEAR_COPY_LIMIT:", "if False:", GENERATION_TESTS),
    _task("near-copy-limit-up", "generation", "NEAR_COPY_LIMIT = 0.2", "NEAR_COPY_LIMIT = 0.3", GENERATION_TESTS),
    _task("near-copy-limit-down", "generation", "NEAR_COPY_LIMIT = 0.2", "NEAR_COPY_LIMIT = 0.1", GENERATION_TESTS),
    _task("near-copy-distance-up", "generation", "threshold: float = 2.0", "threshold: float = 3.0", GENERATION_TESTS),
    _task(
        "trusted-ignored",
        "generation",
        "elif (\n        official_accuracy >= OFFICIAL_BAR\n        and wilson_interval(trusted_correct",
        "elif (\n        False\n        and wilson_interval(trusted_correct",
        GENERATION_TESTS,
    ),
    _task(
        "trusted-flipped",
        "generation",
        "[1] < official_accuracy - TRUSTED_MARGIN",
        "[1] > official_accuracy - TRUSTED_MARGIN",
        GENERATION_TESTS,
    ),
    _task(
        "trusted-without-bar",
        "generation",
        "official_accuracy >= OFFICIAL_BAR\n        and wilson_interval(trusted_correct",
        "wilson_interval(trusted_correct",
        GENERATION_TESTS,
    ),
    _task("trusted-margin-0", "generation", "TRUSTED_MARGIN = 0.1", "TRUSTED_MARGIN = 0.0", GENERATION_TESTS),
    _task("trusted-margin-0.2", "generation", "TRUSTED_MARGIN = 0.1", "TRUSTED_MARGIN = 0.2", GENERATION_TESTS),
    _task(
        "trusted-skipped-on-every-transplant",
        "generation",
        'if profile == "transplant" and _official_count(official) / len(official) >= OFFICIAL_BAR:',
        'if profile == "transplant":',
        GENERATION_TESTS,
    ),
    _task(
        "chance-hint-from-44",
        "generation",
        "and 45 <= round(official_accuracy * 50) < 48",
        "and 44 <= round(official_accuracy * 50) < 48",
        GENERATION_TESTS,
    ),
    _task(
        "chance-hint-on-every-profile",
        "generation",
        'info.get("profile") == "transplant"\n        and 45 <=',
        "True\n        and 45 <=",
        GENERATION_TESTS,
    ),
    _task(
        "trusted-skipped-on-every-profile",
        "generation",
        'if profile == "transplant" and _official_count(official) / len(official) >= OFFICIAL_BAR:',
        "if _official_count(official) / len(official) >= OFFICIAL_BAR:",
        GENERATION_TESTS,
    ),
    _task(
        "all-or-nothing-dropped",
        "generation",
        "verdict.earned = POINTS if verdict.passed else 0.0",
        "verdict.earned = verdict.earned",
        GENERATION_TESTS,
    ),
    _task(
        "heldout-always",
        "generation",
        "verdict.check(\n        student_loss <= max(",
        "verdict.check(\n        True or student_loss <= max(",
        GENERATION_TESTS,
    ),
    _task(
        "heldout-flipped",
        "generation",
        "verdict.check(\n        student_loss <= max(",
        "verdict.check(\n        student_loss >= max(",
        GENERATION_TESTS,
    ),
    _task(
        "heldout-ratio-only",
        "generation",
        "max(reference_loss * ratio, reference_loss + slack)",
        "reference_loss * ratio",
        GENERATION_TESTS,
    ),
    _task(
        "heldout-slack-only",
        "generation",
        "max(reference_loss * ratio, reference_loss + slack)",
        "reference_loss + slack",
        GENERATION_TESTS,
    ),
    _task("heldout-ratio-up", "generation", "LOSS_SLACK = (1.25, 0.02)", "LOSS_SLACK = (1.35, 0.02)", GENERATION_TESTS),
    _task("heldout-slack-up", "generation", "LOSS_SLACK = (1.25, 0.02)", "LOSS_SLACK = (1.25, 0.12)", GENERATION_TESTS),
    _task(
        "short-training-unchecked",
        "generation",
        'if info.get("profile") == "transplant" and "narrow" in info:',
        "if False:",
        GENERATION_TESTS,
    ),
    _task(
        "training-records-unchecked",
        "generation",
        'if info.get("profile") == "train" and "training" in info:',
        "if False:",
        GENERATION_TESTS,
    ),
    _task("batch-count-unchecked", "generation", "if count != steps:", "if False:", GENERATION_TESTS),
    _task("batch-count-one-short", "generation", "if count != steps:", "if count < steps - 1:", GENERATION_TESTS),
    _task(
        "record-labels-unchecked",
        "generation",
        'if masks and not all(m["labels_from_batch"] for m in masks):',
        "if False:",
        GENERATION_TESTS,
    ),
    _task(
        "record-drop-zero-accepted",
        "generation",
        "not all(0 < p < 1 for p in drops)",
        "not all(0 <= p < 1 for p in drops)",
        GENERATION_TESTS,
    ),
    _task(
        "record-drop-one-accepted",
        "generation",
        "not all(0 < p < 1 for p in drops)",
        "not all(0 < p <= 1 for p in drops)",
        GENERATION_TESTS,
    ),
    _task(
        "record-drop-none-accepted",
        "generation",
        "elif len(drops) < len(masks) or not all(",
        "elif not all(",
        GENERATION_TESTS,
    ),
    _task("larger-sample-always", "generation", "if low <= correct <= high:", "if True:", GENERATION_TESTS),
)
SUITES = {"reference": MUTANTS, "tasks": TASK_MUTANTS, "all": MUTANTS + TASK_MUTANTS}


def scratch_copy(target: Path) -> None:
    """The package (`reference/` with its data folder linked, not copied; `grader/`, `tasks/`), the
    examples the corpus edits, the tests and the pytest settings."""
    shutil.copytree(ROOT / "reference", target / "reference", ignore=shutil.ignore_patterns("data", "__pycache__"))
    os.symlink(ROOT / "reference" / "data", target / "reference" / "data")
    for folder in ("grader", "tasks", "examples", "tests"):
        shutil.copytree(ROOT / folder, target / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", target / "pyproject.toml")


def corpus_cases(where: Path, task: str) -> list[str]:
    """The grading-corpus tests that exercise `task`: every case that names it (a mutant failing it,
    a variant passing it with a note, hints, a location) and the plain correct cases in both
    spellings of the example (which a judge made too strict fails)."""
    spec = importlib.util.spec_from_file_location("mutation_check_corpus", where / "tests" / "corpus" / "mutants.py")
    corpus = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = corpus  # dataclasses look their module up while it loads
    try:
        spec.loader.exec_module(corpus)
    finally:
        del sys.modules[spec.name]
    # A case with a shorter timeout than the default waits for it on purpose (an endless loop): it
    # exercises the sandbox's deadline, not the judge, and would only slow every run down.
    names = [
        case.name
        for case in corpus.CASES
        if (
            any(task in named for named in (case.failed, case.passed_with, case.hints, case.at, case.absent))
            and case.timeout >= corpus.Case("default").timeout
        )
        or case.name in ("example_script", "equivalent_forms")
    ]
    return [f"tests/test_grading_corpus.py::test_case[{name}]" for name in names]


def expand_tests(where: Path, tests: tuple[str, ...]) -> tuple[str, ...]:
    expanded = []
    for test in tests:
        expanded += corpus_cases(where, test.split(":", 1)[1]) if test.startswith("corpus:") else [test]
    return tuple(dict.fromkeys(expanded))


def run_tests(where: Path, tests: tuple[str, ...], timeout: float) -> tuple[bool, str]:
    """Run pytest on the scratch copy; returns (passed, last line of its output)."""
    env = dict(os.environ, PYTHONPATH=str(where), PYTHONDONTWRITEBYTECODE="1")
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-rf", "-p", "no:cacheprovider", *tests]
    try:
        done = subprocess.run(command, cwd=where, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"timed out after {timeout:.0f} s (counts as killed)"
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    failed = [line[len("FAILED ") :][:160] for line in lines if line.startswith("FAILED ")]
    if failed:
        lines.append(f"{lines[-1]}; {failed[0]}")
    if done.returncode not in (0, 1):  # 1: tests failed; anything else: pytest could not run them
        raise click.ClickException(f"pytest exited {done.returncode}: {(lines[-1] if lines else done.stderr)[-300:]}")
    return done.returncode == 0, (lines[-1] if lines else done.stderr.strip()[-200:])


def check_imports_copy(where: Path) -> None:
    """Make sure the scratch copy's packages are the ones imported there, not the working tree's."""
    env = dict(os.environ, PYTHONPATH=str(where))
    found = subprocess.run(
        [
            sys.executable,
            "-c",
            "import reference, tasks, grader\nfor m in (reference, tasks, grader): print(m.__file__)",
        ],
        cwd=where,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for path in found:
        if not Path(path).resolve().is_relative_to(where.resolve()):
            raise click.ClickException(f"the scratch copy is shadowed: an import finds {path}")


def holders(root: Path, m: Mutant) -> list[Path]:
    """The files under `root` that hold `m`'s target, once per occurrence (paths relative to `root`)."""
    module = root / m.file
    files = [module] if module.is_file() else []
    files += [module.with_name(module.name + ".py")] if module.with_name(module.name + ".py").is_file() else []
    files += sorted(module.rglob("*.py")) if module.is_dir() else []
    return [path.relative_to(root) for path in files for _ in range(path.read_text().count(m.old))]


def target_problems(mutants) -> list[str]:
    """Each mutant's target text occurs exactly once in the working tree's file and the mutated file
    still compiles (a mutant killed by a syntax error tests nothing); the problems."""
    problems = []
    for m in mutants:
        found = holders(ROOT, m)
        if len(found) != 1 or m.old == m.new:
            problems.append(f"mutant {m.id}: {m.old!r} occurs {len(found)} times in {m.file}")
            continue
        source = (ROOT / found[0]).read_text()
        try:
            compile(source.replace(m.old, m.new), str(found[0]), "exec")
        except SyntaxError as error:
            problems.append(f"mutant {m.id}: the mutated {m.file} does not compile ({error.msg}, line {error.lineno})")
    return problems


class CpuLock:
    """The shared CPU lock, held for at most `hold` seconds at a time (between two mutants)."""

    def __init__(self, path: str | None, hold: float):
        self.file = open(path, "a") if path else None  # noqa: SIM115 (held for the whole run, closed at exit)
        self.hold, self.since = hold, None

    def acquire(self) -> None:
        if self.file and self.since is None:
            fcntl.flock(self.file, fcntl.LOCK_EX)
            self.since = time.monotonic()

    def breathe(self) -> None:
        """Let others in when the lock has been held for `hold` seconds."""
        if self.file and self.since is not None and time.monotonic() - self.since > self.hold:
            fcntl.flock(self.file, fcntl.LOCK_UN)
            self.since = None
            time.sleep(1.0)
            self.acquire()

    def release(self) -> None:
        if self.file:
            fcntl.flock(self.file, fcntl.LOCK_UN)
            self.file.close()


@click.command(help=__doc__.split("\n\n")[0])
@click.option(
    "--suite",
    type=click.Choice(sorted(SUITES)),
    default="all",
    show_default=True,
    help="The reference library's mutants, the task judges', or both.",
)
@click.option("--only", default="", help="Comma-separated mutant ids (or prefixes such as `q:`) to run (default: all).")
@click.option("--list", "list_only", is_flag=True, help="List the mutants and exit.")
@click.option("--check-targets", is_flag=True, help="Check that every target occurs once, run nothing, and exit.")
@click.option("--timeout", type=float, default=300.0, show_default=True, help="Seconds per mutant's test run.")
@click.option("--lock", default=None, help="A lock file to hold while running tests (e.g. /tmp/dli-cpu.lock).")
@click.option(
    "--hold", type=float, default=150.0, show_default=True, help="Seconds to hold --lock before letting others in."
)
@click.option("--skip-baseline", is_flag=True, help="Do not first run every chosen test unmutated (they must pass).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
def main(
    suite: str,
    only: str,
    list_only: bool,
    check_targets: bool,
    timeout: float,
    lock: str | None,
    hold: float,
    skip_baseline: bool,
    as_json: bool,
) -> None:
    wanted = [w for w in only.split(",") if w]
    chosen = [
        m
        for m in SUITES[suite]
        if not wanted or any(m.id == w or (w.endswith(":") and m.id.startswith(w)) for w in wanted)
    ]
    if list_only:
        for m in chosen:
            click.echo(
                f"{m.id:40} {', '.join(map(str, holders(ROOT, m))) or m.file}: {m.old!r} -> {m.new!r}"
                + (f"  [equivalent: {m.equivalent}]" if m.equivalent else "")
            )
        return
    problems = target_problems(chosen)
    if problems:
        raise click.ClickException("; ".join(problems))
    if check_targets:
        click.echo(f"{len(chosen)} mutant targets each occur once")
        return
    # Killed (SIGTERM), still restore the scratch file and stop the test run under way.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    cpu = CpuLock(lock, hold)
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="dli-mutants-") as tmp:
            where = Path(tmp)
            scratch_copy(where)
            check_imports_copy(where)
            tests = {m.id: expand_tests(where, m.tests) for m in chosen}
            cpu.acquire()
            passed, line = (
                (True, "")
                if skip_baseline
                else run_tests(where, tuple(dict.fromkeys(t for m in chosen for t in tests[m.id])), timeout)
            )
            if not passed:
                raise click.ClickException(f"the unmutated tests fail, fix them first: {line}")
            killed, survivors, equivalent = [], [], []
            for m in chosen:
                cpu.breathe()
                path = where / holders(where, m)[0]
                original = path.read_text()
                path.write_text(original.replace(m.old, m.new))
                try:
                    passed, line = run_tests(where, tests[m.id], timeout)
                finally:
                    path.write_text(original)
                if not passed:
                    killed.append(m.id)
                    click.echo(f"killed   {m.id:40} {line}", err=True)
                elif m.equivalent:
                    equivalent.append(m.id)
                    click.echo(f"equivalent {m.id:38} {m.equivalent}", err=True)
                else:
                    survivors.append(m.id)
                    click.echo(f"SURVIVED {m.id:40} {line}", err=True)
    finally:
        cpu.release()
    summary = {
        "suite": suite,
        "mutants": len(chosen),
        "killed": len(killed),
        "survived": len(survivors),
        "equivalent": len(equivalent),
        "survivors": survivors,
        "seconds": round(time.monotonic() - started, 1),
    }
    click.echo(
        json.dumps(summary)
        if as_json
        else f"{len(killed)}/{len(chosen)} mutants killed, {len(survivors)} survived"
        + (f": {', '.join(survivors)}" if survivors else "")
        + (f", {len(equivalent)} equivalent (survive by design: {', '.join(equivalent)})" if equivalent else "")
        + f" in {summary['seconds']:.0f} s"
    )
    sys.exit(1 if survivors else 0)


if __name__ == "__main__":
    main()
