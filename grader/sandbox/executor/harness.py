"""Running a student's training cell, and the steps of the generation check (child side).

The training cell runs as written, in a copy of the student's namespace, with the grader's
batches under every name it loops over, recorders around get_context_mask and get_loss, and
no-op sampling and plotting. (Drawing digits is a plain call of the student's sample_w with a
stand-in model, stubs.TracedModel.) Everything recorded is raw: the drop probability as given,
the context tensor as given.
"""

import ast
import inspect
import time
from collections.abc import Callable
from typing import NamedTuple

import torch

from executor import stubs

RECORD_LIMIT = 400


class StopTraining(Exception):
    """Raised once the batch budget is spent."""


class Anything:
    """Absorbs any attribute access or call: stands in for plotting modules and helpers."""

    def __getattr__(self, name):
        return self

    def __call__(self, *args, **kwargs):
        return self

    def __iter__(self):
        return iter((self, self))


class GraderBatches:
    """A DataLoader look-alike that yields the grader's batches in the grader's order."""

    def __init__(self, images, labels, order, batch_size: int, batches_per_epoch: int):
        self.images, self.labels, self.order = images, labels, order
        self.batch_size, self.batches_per_epoch = batch_size, batches_per_epoch
        self.epoch, self.step, self.current = -1, -1, None

    def __len__(self):
        return self.batches_per_epoch

    def __iter__(self):
        self.epoch += 1
        start = self.epoch * self.batches_per_epoch * self.batch_size
        for self.step in range(self.batches_per_epoch):  # noqa: B020 (the loader keeps its current step)
            first = (start + self.step * self.batch_size) % max(1, len(self.order))
            index = self.order[first : first + self.batch_size]
            self.current = (self.images[index], self.labels[index])
            yield [self.current[0], self.current[1]]


def loader_names(code: str) -> list:
    """Names a cell iterates over in for loops, directly or through enumerate()/tqdm()."""
    names = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.For):
            iterable = node.iter
            while isinstance(iterable, ast.Call) and iterable.args:
                iterable = iterable.args[0]
            if isinstance(iterable, ast.Name) and iterable.id != "range":
                names.append(iterable.id)
    return names


def raw_number(value):
    """A drop probability as the grader may judge it: a plain int or float, else its type."""
    if type(value) in (int, float):
        return value
    return {"type": type(value).__name__[:100]}


class TrainingRecorders:
    """get_context_mask and get_loss wrappers that note what every batch used."""

    def __init__(self, loader, mask_function, loss_function, budget: int, progress=None):
        self.loader, self.mask_function, self.loss_function = loader, mask_function, loss_function
        self.budget, self.progress = budget, progress
        self.masks: list[dict] = []
        self.batches: list[dict] = []
        self.made: dict[int, int] = {}  # a returned mask (by id) -> its record in masks

    def get_context_mask(self, c, drop_prob, *args, **kwargs):
        result = self.mask_function(c, drop_prob, *args, **kwargs)
        if len(self.masks) < RECORD_LIMIT:
            c_raw = c.detach().clone() if type(c) is torch.Tensor and c.numel() <= 4096 else None
            self.masks.append(
                {"epoch": self.loader.epoch, "step": self.loader.step, "drop_prob": raw_number(drop_prob), "c": c_raw}
            )
        if isinstance(result, (tuple, list)) and len(result) == 2:
            self.made[id(result[1])] = len(self.masks) - 1
        return result

    def get_loss(self, model, x_0, t, *model_args, **kwargs):
        if len(self.batches) >= self.budget:
            raise StopTraining
        mask = self.made.get(id(model_args[1])) if len(model_args) > 1 else None
        self.batches.append({"epoch": self.loader.epoch, "step": self.loader.step, "mask_call": mask})
        if self.progress and len(self.batches) % 10 == 0:
            self.progress("training", len(self.batches), self.budget)
        return self.loss_function(model, x_0, t, *model_args, **kwargs)

    def summary(self, error):
        return {
            "masks": self.masks,
            "batches": self.batches[:RECORD_LIMIT],
            "batch_count": len(self.batches),
            "error": error,
        }


def run_cell(namespace: dict, code: str, filename: str, loader, overrides: dict, device):
    """Execute the cell with `loader` under each loader name; the error it raised, if any."""
    sampler = blank_sampler(device)
    scratch = dict(namespace)
    scratch.update(
        sample_w=sampler,
        sample_images=sampler,
        plt=Anything(),
        other_utils=Anything(),
        run_assessment=Anything(),
        display=Anything(),
        show_tensor_image=Anything(),
        plot_generated_images=Anything(),
        save_animation=Anything(),
        clear_output=Anything(),
    )
    scratch.update(overrides)
    if isinstance(overrides.get("model"), torch.nn.Module):
        rebind_optimizers(scratch, overrides["model"])
    for name in loader_names(code):
        scratch[name] = loader
    try:
        exec(compile(code, filename, "exec"), scratch)
    except StopTraining:
        return None
    except Exception as error:  # the student's loop may fail anywhere; report where
        import traceback

        frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == filename]
        return {"message": f"{type(error).__name__}: {error}"[:300], "line": frames[-1].lineno if frames else None}
    return None


def rebind_optimizers(scratch: dict, model: torch.nn.Module) -> None:
    """Optimizers an earlier cell built over the notebook's model now get the model the grader
    swapped in (else it never trains), with the student's own settings: lr, betas, weight decay."""
    own = {id(parameter) for parameter in model.parameters()}
    for name, value in list(scratch.items()):
        if not isinstance(value, torch.optim.Optimizer) or not value.param_groups:
            continue
        if any(id(parameter) in own for group in value.param_groups for parameter in group["params"]):
            continue
        try:
            fresh = type(value)(model.parameters(), **constructor_settings(type(value), value.defaults))
            # the first group's current values (a scheduler may have moved lr from the default)
            fresh.param_groups[0].update(
                {key: setting for key, setting in value.param_groups[0].items() if key != "params"}
            )
        except Exception:  # an optimizer class we cannot rebuild: leave the student's as it is
            continue
        scratch[name] = fresh


def constructor_settings(cls, defaults: dict) -> dict:
    """The defaults an optimizer class's constructor takes (AdamW keeps one it sets itself)."""
    parameters = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return dict(defaults)
    return {key: value for key, value in defaults.items() if key in parameters}


def blank_sampler(device):
    """A sample_w stand-in: blank images, one per row of the context."""

    def sample(model, c, *args, **kwargs):
        rows = c.shape[0] if isinstance(c, torch.Tensor) and c.dim() else 1
        return torch.zeros(rows, 1, 28, 28, device=device)

    return sample


class Steps(NamedTuple):
    """The harness's commands, bound to one executor (the dispatcher maps each to its name)."""

    training_cell: Callable
    build: Callable
    load: Callable
    train: Callable


def handlers(executor) -> Steps:
    """The harness commands, bound to one executor."""
    namespace = executor.namespace

    def training_cell(code, filename, images, labels, order, batch_size, batches_per_epoch, budget):
        """The training_loop check: the cell against stand-ins, every batch recorded."""
        loader = GraderBatches(images, labels, order, batch_size, batches_per_epoch)

        def mask(c, drop_prob, *args, **kwargs):
            labels_now = torch.as_tensor(c).long().flatten() % 10
            hot = torch.nn.functional.one_hot(labels_now, 10).float().to(executor.device)
            p = float(drop_prob) if type(drop_prob) in (int, float) and 0 <= drop_prob <= 1 else 0.0
            return hot, torch.bernoulli(torch.ones_like(hot) - p)

        def loss(model, x_0, t, *model_args, **kwargs):
            prediction = model(x_0, t, *model_args)
            return torch.nn.functional.mse_loss(prediction, torch.zeros_like(prediction))

        recorders = TrainingRecorders(loader, mask, loss, budget)
        error = run_cell(
            namespace,
            code,
            filename,
            loader,
            {
                "get_context_mask": recorders.get_context_mask,
                "get_loss": recorders.get_loss,
                "model": stubs.TinyModel().to(executor.device),
                "BATCH_SIZE": batch_size,
            },
            executor.device,
        )
        return recorders.summary(error)

    def build(slot, target, args=(), kwargs=None, class_of=False):
        """A fresh instance of the class `target` (with `class_of`, of the class of the object
        `target`, a compile wrapper unwrapped), built with the grader's arguments, moved to the
        device and kept under `slot`. The task decides the arguments; this only instantiates."""
        found = executor.lookup(target)
        cls = type(unwrap(found)) if class_of else found
        model = cls(*args, **(kwargs or {})).to(executor.device)
        executor.slots[slot] = model
        return {"built": type(model).__name__[:100]}

    def load(target, state):
        """Load weights strictly into a model; the mismatch, if any, instead."""
        model = unwrap(executor.lookup(target))
        if not isinstance(model, torch.nn.Module):
            return {"not_a_module": type(model).__name__[:100]}
        own = model.state_dict()
        mismatch = {
            "missing": sorted(set(own) - set(state))[:10],
            "unexpected": sorted(set(state) - set(own))[:10],
            "wrong_shape": sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)[:10],
        }
        if any(mismatch.values()):
            return {"mismatch": mismatch}
        model.load_state_dict({key: value.to(own[key].dtype) for key, value in state.items()})
        model.to(executor.device).eval()
        return {"loaded": True}

    def train(target, code, filename, images, labels, order, batch_size, batches_per_epoch, steps, seed, bf16=False):
        """Train a model for `steps` batches of real MNIST through the student's own cell: the
        grader sends only the images its order reaches (uint8, as the files hold them), so the
        child is given no dataset."""
        loader = GraderBatches(images.float() / 255, labels.long(), order, batch_size, batches_per_epoch)
        recorders = TrainingRecorders(
            loader, namespace.get("get_context_mask"), namespace.get("get_loss"), steps, executor.send_progress
        )
        model = executor.lookup(target)
        torch.manual_seed(seed)
        model.train()
        trained = BFloat16(model) if bf16 else model
        started = time.perf_counter()
        error = run_cell(
            namespace,
            code,
            filename,
            loader,
            {"model": trained, "get_loss": recorders.get_loss, "get_context_mask": recorders.get_context_mask},
            executor.device,
        )
        model.eval()
        return {**recorders.summary(error), "seconds": time.perf_counter() - started}

    return Steps(training_cell=training_cell, build=build, load=load, train=train)


def unwrap(model):
    return getattr(model, "_orig_mod", model)  # a torch.compile wrapper keeps the module here


class BFloat16(torch.nn.Module):
    """Runs the wrapped model under CPU bf16 autocast (AMX makes a training step faster)."""

    def __init__(self, model):
        super().__init__()
        self.inner = model

    def forward(self, *args, **kwargs):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return self.inner(*args, **kwargs).float()

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:  # a sampler may read attributes of the model, such as T
            return getattr(self.inner, name)
