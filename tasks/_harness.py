"""Run a student's training cell as written, against stand-ins the grader controls (child side).

The cell runs in a copy of the student's namespace, so nothing it rebinds leaks into later
probes. Sampling and plotting in its preview block become no-ops, but every other statement of
the preview still runs: state it changes (such as `c_drop_prob = 0`) stays in force, exactly as
it would in the notebook.
"""

from __future__ import annotations

import ast
import traceback

import torch


class StopTraining(Exception):
    """Raised once the batch budget is spent."""


class _Anything:
    """Absorbs any attribute access or call: stands in for plotting modules and helpers."""

    def __getattr__(self, name):
        return self

    def __call__(self, *args, **kwargs):
        return self

    def __iter__(self):
        return iter((self, self))


class BatchLoader:
    """A DataLoader look-alike over tensors: shuffled full batches, counting epochs and steps."""

    def __init__(self, images, labels, batch_size: int, batches_per_epoch: int, seed: int = 0):
        self.images, self.labels = images, labels
        self.batch_size, self.batches_per_epoch = batch_size, batches_per_epoch
        self.generator = torch.Generator().manual_seed(seed)
        self.epoch, self.step, self.current = -1, -1, None

    def __len__(self):
        return self.batches_per_epoch

    def __iter__(self):
        self.epoch += 1
        for self.step in range(self.batches_per_epoch):
            index = torch.randint(0, self.images.shape[0], (self.batch_size,), generator=self.generator)
            index = index.to(self.images.device)
            self.current = (self.images[index], self.labels[index])
            yield list(self.current)


def loader_names(tree: ast.AST) -> list[str]:
    """Names a cell iterates over in for loops, directly or through enumerate()/tqdm()."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.For):
            iterable = node.iter
            while isinstance(iterable, ast.Call) and iterable.args:
                iterable = iterable.args[0]
            if isinstance(iterable, ast.Name) and iterable.id != "range":
                names.append(iterable.id)
    return names


def epochs_assigned(tree: ast.AST) -> int | None:
    """The constant the cell assigns to `epochs`, if any (to split a batch budget over epochs)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) \
                and any(isinstance(t, ast.Name) and t.id == "epochs" for t in node.targets) \
                and isinstance(node.value.value, int) and node.value.value > 0:
            return node.value.value
    return None


def blank_sampler(device):
    """A sample_w stand-in: blank images, one per row of the context."""
    def sample(model, c, *args, **kwargs):
        rows = c.shape[0] if isinstance(c, torch.Tensor) and c.dim() else 1
        return torch.zeros(rows, 1, 28, 28, device=device)
    return sample


def run_training_cell(namespace: dict, code: str, filename: str, loaders: list[str], loader,
                      overrides: dict) -> dict | None:
    """Execute the cell with `loader` under each loader name and `overrides` on top; the error if any.

    Returns None when the cell finished or StopTraining ended it, else {error, line}.
    """
    device = overrides.get("device", namespace.get("device", "cpu"))
    sampler = blank_sampler(device)
    scratch = dict(namespace)
    scratch.update(
        sample_w=sampler, sample_images=sampler, plt=_Anything(), other_utils=_Anything(),
        run_assessment=_Anything(), display=_Anything(), show_tensor_image=_Anything(),
        plot_generated_images=_Anything(), save_animation=_Anything(), clear_output=_Anything(),
    )
    scratch.update(overrides)
    for name in loaders:
        scratch[name] = loader
    try:
        exec(compile(code, filename, "exec"), scratch)
    except StopTraining:
        return None
    except Exception as error:  # the student's loop may fail anywhere; report where
        frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == filename]
        return {"error": f"{type(error).__name__}: {error}"[:300], "line": frames[-1].lineno if frames else None}
    return None
