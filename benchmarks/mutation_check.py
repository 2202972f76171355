"""Mutation check of the reference library: `python benchmarks/mutation_check.py`.

Each mutant changes one formula or comparison of `reference/` (cumprod -> cumsum, B[t-1] -> B[t],
the sign in guidance, ...). For each, a scratch copy of `reference/` and the tests is made, the
mutation is applied to the copy (the working tree is never touched), and the reference tests
that cover that module are run against it. A mutant that no test kills is a *survivor*: a
test is missing or cannot fail. Exit status 1 when any mutant survives.

Runs torch: on a shared 2-core machine wrap it in the CPU lock,
`flock /tmp/dli-cpu.lock python benchmarks/mutation_check.py`. About 3 minutes there.
Not part of the default test suite.
"""

from __future__ import annotations

import json
import os
import shutil
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
    file: str  # relative to the repository root
    old: str  # must occur exactly once in the file
    new: str
    tests: tuple[str, ...]


MUTANTS = (
    # schedule
    Mutant("schedule-cumsum", "reference/schedule.py", "torch.cumprod(a, dim=0)", "torch.cumsum(a, dim=0)", SCHEDULE_TESTS),
    Mutant("schedule-betas-reversed", "reference/schedule.py", "torch.linspace(beta_start, beta_end, T,",
           "torch.linspace(beta_end, beta_start, T,", SCHEDULE_TESTS),
    Mutant("schedule-a-is-B", "reference/schedule.py", "a = 1.0 - B\n", "a = B\n", SCHEDULE_TESTS),
    Mutant("schedule-sqrt-one-minus", "reference/schedule.py", "sqrt_one_minus_a_bar=torch.sqrt(1.0 - a_bar)",
           "sqrt_one_minus_a_bar=1.0 - torch.sqrt(a_bar)", SCHEDULE_TESTS),
    Mutant("schedule-sqrt-a-inv-unsquared", "reference/schedule.py", "sqrt_a_inv=torch.sqrt(1.0 / a)",
           "sqrt_a_inv=1.0 / a", SCHEDULE_TESTS),
    Mutant("schedule-pred-noise-no-sqrt", "reference/schedule.py", "(1.0 - a) / torch.sqrt(1.0 - a_bar)",
           "(1.0 - a) / (1.0 - a_bar)", SCHEDULE_TESTS),
    # q, reverse_q, get_loss
    Mutant("q-coefficients-swapped", "reference/diffusion.py",
           "_per_image(schedule.sqrt_a_bar, index) * x_0\n        + _per_image(schedule.sqrt_one_minus_a_bar, index) * noise",
           "_per_image(schedule.sqrt_one_minus_a_bar, index) * x_0\n        + _per_image(schedule.sqrt_a_bar, index) * noise",
           DIFFUSION_TESTS),
    Mutant("q-a-bar-not-sqrt", "reference/diffusion.py", "_per_image(schedule.sqrt_a_bar, index) * x_0",
           "_per_image(schedule.a_bar, index) * x_0", DIFFUSION_TESTS),
    Mutant("q-uniform-noise", "reference/diffusion.py", "noise = torch.randn_like(x_0)", "noise = torch.rand_like(x_0)",
           DIFFUSION_TESTS),
    Mutant("q-index-off-by-one", "reference/diffusion.py",
           "index = timestep_indices(t, x_0.shape[0], schedule.T).to(schedule.device)",
           "index = (timestep_indices(t, x_0.shape[0], schedule.T) - 1).clamp(min=0).to(schedule.device)",
           DIFFUSION_TESTS),
    Mutant("t-fractional-accepted", "reference/diffusion.py",
           "flat.is_floating_point() and not torch.equal(flat, flat.round())", "False", DIFFUSION_TESTS),
    Mutant("reverse-mean-sign", "reference/diffusion.py", "(x_t - _per_image(schedule.pred_noise_coeff, index) * e_t)",
           "(x_t + _per_image(schedule.pred_noise_coeff, index) * e_t)", DIFFUSION_TESTS),
    Mutant("reverse-variance-B-t", "reference/diffusion.py", "schedule.B[(index - 1).clamp(min=0)]", "schedule.B[index]",
           DIFFUSION_TESTS),
    Mutant("reverse-std-is-variance", "reference/diffusion.py", "torch.sqrt(schedule.B[(index - 1).clamp(min=0)])",
           "schedule.B[(index - 1).clamp(min=0)]", DIFFUSION_TESTS),
    Mutant("reverse-noise-at-t0", "reference/diffusion.py", "* (index > 0)", "* (index >= 0)", DIFFUSION_TESTS),
    Mutant("loss-l1", "reference/diffusion.py", "F.mse_loss(noise_pred, noise)", "F.l1_loss(noise_pred, noise)",
           DIFFUSION_TESTS),
    Mutant("loss-sum", "reference/diffusion.py", "F.mse_loss(noise_pred, noise)",
           "F.mse_loss(noise_pred, noise, reduction='sum')", DIFFUSION_TESTS),
    Mutant("loss-model-sees-x0", "reference/diffusion.py", "model(x_noisy, t, *model_args)", "model(x_0, t, *model_args)",
           DIFFUSION_TESTS),
    # context mask, guidance, sampler
    Mutant("mask-keep-is-drop", "reference/conditioning.py", "torch.ones_like(c_hot).float() - float(drop_prob)",
           "torch.ones_like(c_hot).float() * float(drop_prob)", CONDITIONING_TESTS),
    Mutant("mask-per-sample", "reference/conditioning.py",
           "torch.bernoulli(torch.ones_like(c_hot).float() - float(drop_prob))",
           "torch.bernoulli(torch.ones(c_hot.shape[0], 1) - float(drop_prob)).expand(c_hot.shape)",
           CONDITIONING_TESTS),
    Mutant("guidance-sign", "reference/conditioning.py", "(1 + w) * e_t_keep_c - w * e_t_drop_c",
           "(1 + w) * e_t_keep_c + w * e_t_drop_c", CONDITIONING_TESTS),
    Mutant("guidance-shifted", "reference/conditioning.py", "(1 + w) * e_t_keep_c - w * e_t_drop_c",
           "w * e_t_keep_c + (1 - w) * e_t_drop_c", CONDITIONING_TESTS),
    Mutant("sampler-keep-drop-swapped", "reference/sampling.py", "guided_noise(e_t[:n], e_t[n:], w)",
           "guided_noise(e_t[n:], e_t[:n], w)", CONDITIONING_TESTS),
    Mutant("sampler-mask-halves-swapped", "reference/sampling.py", "c_mask[n:] = 0.0", "c_mask[:n] = 0.0",
           CONDITIONING_TESTS),
    Mutant("sampler-forward-in-time", "reference/sampling.py", "reversed(range(schedule.T))", "range(schedule.T)",
           CONDITIONING_TESTS),
    # blocks and U-Net
    Mutant("residual-returns-x2", "reference/blocks.py", "return x1 + x2", "return x2", MODEL_TESTS),
    Mutant("upblock-concat-order", "reference/blocks.py", "torch.cat((x, skip), 1)", "torch.cat((skip, x), 1)",
           MODEL_TESTS),
    Mutant("sinusoidal-cos-first", "reference/blocks.py", "torch.cat((angles.sin(), angles.cos()), dim=-1)",
           "torch.cat((angles.cos(), angles.sin()), dim=-1)", MODEL_TESTS),
    Mutant("sinusoidal-scale", "reference/blocks.py", "math.log(10000) / (half_dim - 1)", "math.log(10000) / half_dim",
           MODEL_TESTS),
    Mutant("rearrange-channel-order", "reference/blocks.py", '"b c (h p1) (w p2) -> b (c p1 p2) h w"',
           '"b c (h p1) (w p2) -> b (p1 p2 c) h w"', MODEL_TESTS),
    Mutant("gelu-conv-relu", "reference/blocks.py", "nn.GroupNorm(group_size, out_ch),\n            nn.GELU(),",
           "nn.GroupNorm(group_size, out_ch),\n            nn.ReLU(),", MODEL_TESTS),
    Mutant("embed-relu", "reference/blocks.py", "nn.GELU(),\n            nn.Linear(emb_dim, emb_dim),",
           "nn.ReLU(),\n            nn.Linear(emb_dim, emb_dim),", MODEL_TESTS),
    Mutant("unet-t-not-scaled", "reference/unet.py", "t.float() / self.T", "t.float()", MODEL_TESTS),
    Mutant("unet-mask-ignored", "reference/unet.py", "c = c * c_mask", "c = c", MODEL_TESTS),
    Mutant("unet-no-time-embedding", "reference/unet.py", "c_emb1 * up0 + t_emb1", "c_emb1 * up0", MODEL_TESTS),
    Mutant("training-ignores-drop-prob", "reference/training.py", "get_context_mask(labels[index], c_drop_prob)",
           "get_context_mask(labels[index], 0.1)", MODEL_TESTS),
    Mutant("training-t-one-short", "reference/training.py", "torch.randint(0, schedule.T, (batch_size,)",
           "torch.randint(1, schedule.T, (batch_size,)", MODEL_TESTS),
    # judge and weights
    Mutant("judge-not-normalised", "reference/judge.py", "return (images - MNIST_MEAN) / MNIST_STD", "return images",
           WEIGHTS_TESTS),
    Mutant("judge-clamped", "reference/judge.py", "images = images.detach().float().cpu()",
           "images = images.detach().float().cpu().clamp(0, 1)", WEIGHTS_TESTS),
    Mutant("judge-argmin", "reference/judge.py", ".argmax(dim=1)", ".argmin(dim=1)", WEIGHTS_TESTS),
    Mutant("judge-not-eval", "reference/judge.py", "    judge.eval()\n    images", "    images", WEIGHTS_TESTS),
    Mutant("weights-unexpected-accepted", "reference/weights.py", "if missing or unexpected or wrong_shape:",
           "if missing or wrong_shape:", WEIGHTS_TESTS),
    Mutant("weights-pickles-allowed", "reference/weights.py", "map_location=\"cpu\", weights_only=True",
           "map_location=\"cpu\", weights_only=False", WEIGHTS_TESTS),
    # MNIST
    Mutant("mnist-checksum-ignored", "reference/mnist.py", "if hashlib.sha256(raw).hexdigest() != SHA256[name]:",
           "if False:", DATA_TESTS),
    Mutant("mnist-scale-256", "reference/mnist.py", ".div_(255.0)", ".div_(256.0)", DATA_TESTS),
    Mutant("mnist-all-test-first", "reference/mnist.py", "torch.cat((train_x, test_x))", "torch.cat((test_x, train_x))",
           DATA_TESTS),
)


def scratch_copy(target: Path) -> None:
    """`reference/` (its data folder linked, not copied), the tests and the pytest settings."""
    shutil.copytree(ROOT / "reference", target / "reference", ignore=shutil.ignore_patterns("data", "__pycache__"))
    os.symlink(ROOT / "reference" / "data", target / "reference" / "data")
    shutil.copytree(ROOT / "tests", target / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", target / "pyproject.toml")


def run_tests(where: Path, tests: tuple[str, ...], timeout: float) -> tuple[bool, str]:
    """Run pytest on the scratch copy; returns (passed, last line of its output)."""
    env = dict(os.environ, PYTHONPATH=str(where), PYTHONDONTWRITEBYTECODE="1")
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    try:
        done = subprocess.run(command, cwd=where, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"timed out after {timeout:.0f} s (counts as killed)"
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return done.returncode == 0, (lines[-1] if lines else done.stderr.strip()[-200:])


def check_imports_copy(where: Path) -> None:
    """Make sure `import reference` inside the scratch copy reaches the copy, not the working tree."""
    env = dict(os.environ, PYTHONPATH=str(where))
    found = subprocess.run([sys.executable, "-c", "import reference; print(reference.__file__)"],
                           cwd=where, env=env, capture_output=True, text=True, check=True).stdout.strip()
    if not Path(found).resolve().is_relative_to(where.resolve()):
        raise click.ClickException(f"the scratch copy is shadowed: `import reference` finds {found}")


@click.command(help=__doc__.split("\n\n")[0])
@click.option("--only", default="", help="Comma-separated mutant ids to run (default: all).")
@click.option("--list", "list_only", is_flag=True, help="List the mutants and exit.")
@click.option("--timeout", type=float, default=300.0, show_default=True, help="Seconds per mutant's test run.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
def main(only: str, list_only: bool, timeout: float, as_json: bool) -> None:
    chosen = [m for m in MUTANTS if not only or m.id in only.split(",")]
    if list_only:
        for m in chosen:
            click.echo(f"{m.id:32} {m.file}: {m.old!r} -> {m.new!r}")
        return
    with tempfile.TemporaryDirectory(prefix="dli-mutants-") as tmp:
        where = Path(tmp)
        scratch_copy(where)
        check_imports_copy(where)
        all_tests = tuple(sorted({t for m in chosen for t in m.tests}))
        passed, line = run_tests(where, all_tests, timeout)
        if not passed:
            raise click.ClickException(f"the unmutated tests fail, fix them first: {line}")
        killed, survivors = [], []
        started = time.monotonic()
        for m in chosen:
            path = where / m.file
            original = path.read_text()
            if original.count(m.old) != 1:
                raise click.ClickException(f"mutant {m.id}: {m.old!r} occurs {original.count(m.old)} times in {m.file}")
            path.write_text(original.replace(m.old, m.new))
            try:
                passed, line = run_tests(where, m.tests, timeout)
            finally:
                path.write_text(original)
            (survivors if passed else killed).append(m.id)
            click.echo(f"{'SURVIVED' if passed else 'killed  '} {m.id:32} {line}", err=True)
    summary = {"mutants": len(chosen), "killed": len(killed), "survived": len(survivors),
               "survivors": survivors, "seconds": round(time.monotonic() - started, 1)}
    click.echo(json.dumps(summary) if as_json else
               f"{len(killed)}/{len(chosen)} mutants killed, {len(survivors)} survived"
               + (f": {', '.join(survivors)}" if survivors else ""))
    sys.exit(1 if survivors else 0)


if __name__ == "__main__":
    main()
