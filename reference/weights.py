"""Loading and saving the shipped weights (plain state dicts, read with `weights_only=True`)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TypeVar

import torch

CLASSIFIER_FILE = "mnist_classifier.pt"
UNET_FILE = "unet_course_fp16.pt"
M = TypeVar("M", bound=torch.nn.Module)


class WeightsError(RuntimeError):
    """A weights file is missing, unreadable, or does not fit the model it is loaded into."""


def weights_path(name: str) -> Path:
    """Path of a shipped weights file inside the package."""
    return Path(str(resources.files("reference") / "data" / name))


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict safely (no pickled code), or raise WeightsError saying why."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file missing: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for truncated or foreign files
        raise WeightsError(f"weights file unreadable: {path}: {error}") from error
    if not isinstance(state, dict) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in state.items()
    ):
        raise WeightsError(f"weights file {path} does not hold a state dict of tensors")
    return state


def load_into(model: M, path: str | Path) -> M:
    """Load a state dict strictly into `model` (cast to the model's dtypes); WeightsError on mismatch."""
    state = read_state_dict(path)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong_shape = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong_shape:
        raise WeightsError(
            f"weights in {path} do not fit {type(model).__name__}: "
            f"missing {missing[:5]}, unexpected {unexpected[:5]}, wrong shape {wrong_shape[:5]}"
        )
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=True)
    return model


def save_state_dict(model: torch.nn.Module, path: str | Path, dtype: torch.dtype | None = None) -> Path:
    """Save `model`'s state dict, floating tensors cast to `dtype` when given."""
    state = {
        k: (v.detach().to("cpu", dtype) if dtype is not None and v.is_floating_point() else v.detach().cpu())
        for k, v in model.state_dict().items()
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path
