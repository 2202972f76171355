"""MNIST where the course's notebook reads it (`./data/MNIST/raw`), for the one profile that needs it.

Only the course profile runs the notebook as written, and the notebook loads MNIST from ./data;
every other child is given no data (the grader sends the batches a training run uses). The
folder is laid out once per grading process and removed when that process ends; the child sees
it read-only.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from reference import mnist

_folder: tempfile.TemporaryDirectory | None = None


def mnist_for_the_notebook() -> Path:
    """A folder holding MNIST/raw as torchvision's MNIST("./data/", download=True) finds it, offline."""
    global _folder
    if _folder is None:
        _folder = tempfile.TemporaryDirectory(prefix="dli-grade-mnist-", ignore_cleanup_errors=True)
        root = mnist.torchvision_root(Path(_folder.name) / "data")
        # Readable by the sandbox's own uid whatever the umask (the temporary folder above is 0700).
        for path in (root, *root.rglob("*")):
            path.chmod(0o755 if path.is_dir() else 0o644)
    return Path(_folder.name) / "data"
