"""Offline MNIST: the four IDX files shipped as package data, checksummed and loaded as tensors.

Nothing here downloads. `torchvision_root` lays the files out so that student code calling
`torchvision.datasets.MNIST(root, download=True)` finds them and never reaches the network.

The IDX parser is our own rather than torchvision's: torchvision's MNIST reads only
uncompressed files from a `raw/` folder on disk and validates them with `assert`, so using it
would mean writing 55 MB of decompressed files on every load (or keeping a writable cache next
to read-only package data). Here the checksummed .gz bytes are parsed in memory and a bad file
raises MnistDataError. tests/test_reference_data.py checks that both readers agree.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
from functools import cache
from importlib import resources
from pathlib import Path

import torch

# SHA-256 of the .gz files as shipped (also in data/mnist/SHA256SUMS).
SHA256 = {
    "train-images-idx3-ubyte.gz": "0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971",
    "train-labels-idx1-ubyte.gz": "1787548bbe0bff1ec2ecdc0ef292b02df999e2d1a6002d27500982c652b17203",
    "t10k-images-idx3-ubyte.gz": "1a1a05eab793c14bb050b398624a11b0ffd1a2953baed553b1b9bd079e2a20be",
    "t10k-labels-idx1-ubyte.gz": "b91679a0acfe4ba0e50a2437a903084cba1f5f92592b016a25a7dfd00455798b",
}
SPLITS = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
IDX_MAGIC = {1: 0x00000801, 3: 0x00000803}  # unsigned bytes, 1 or 3 dimensions


class MnistDataError(RuntimeError):
    """A shipped MNIST file is missing, corrupt or not what it claims to be."""


def data_dir() -> Path:
    """The folder holding the shipped .gz files."""
    return Path(str(resources.files("reference") / "data" / "mnist"))


def verify(directory: Path | None = None) -> dict[str, bool]:
    """Check every file's SHA-256; returns file name -> matches (a missing file is False)."""
    directory = Path(directory) if directory is not None else data_dir()
    result = {}
    for name, expected in SHA256.items():
        path = directory / name
        result[name] = path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == expected
    return result


@cache
def _verified_bytes(directory: str, name: str) -> bytes:
    path = Path(directory) / name
    if not path.is_file():
        raise MnistDataError(f"MNIST file missing: {path} (reinstall dli-grade)")
    raw = path.read_bytes()
    if hashlib.sha256(raw).hexdigest() != SHA256[name]:
        raise MnistDataError(f"MNIST file corrupt: {path} does not match its SHA-256")
    return gzip.decompress(raw)


def _parse_idx(data: bytes, dims: int, name: str) -> torch.Tensor:
    header = 4 + 4 * dims
    if len(data) < header or struct.unpack(">I", data[:4])[0] != IDX_MAGIC[dims]:
        raise MnistDataError(f"{name} is not an IDX file of {dims} dimension(s)")
    shape = struct.unpack(f">{dims}I", data[4:header])
    count = 1
    for size in shape:
        count *= size
    if len(data) - header != count:
        raise MnistDataError(f"{name}: header promises {count} bytes, file has {len(data) - header}")
    return torch.frombuffer(bytearray(data[header:]), dtype=torch.uint8).reshape(shape)


def load_raw(split: str, directory: Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(images uint8 (N, 28, 28), labels int64 (N,)) of the 'train' or 'test' split."""
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = str(directory if directory is not None else data_dir())
    image_name, label_name = SPLITS[split]
    images = _parse_idx(_verified_bytes(folder, image_name), 3, image_name)
    labels = _parse_idx(_verified_bytes(folder, label_name), 1, label_name).long()
    if images.shape[0] != labels.shape[0]:
        raise MnistDataError(f"{split}: {images.shape[0]} images but {labels.shape[0]} labels")
    return images, labels


def load(split: str = "train", directory: Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Images as float (N, 1, 28, 28) in [0, 1] (the course's ToTensor) and int64 labels.

    `split` is 'train', 'test', or 'all' (train then test, as the course concatenates them).
    """
    if split == "all":
        train_x, train_y = load("train", directory)
        test_x, test_y = load("test", directory)
        return torch.cat((train_x, test_x)), torch.cat((train_y, test_y))
    images, labels = load_raw(split, directory)
    return images.unsqueeze(1).float().div_(255.0), labels


def torchvision_root(root: Path) -> Path:
    """Write the uncompressed files to `root/MNIST/raw/`, where torchvision's MNIST looks.

    Existing files are overwritten: a student's interrupted download must not shadow the data.
    """
    raw = Path(root) / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    directory = str(data_dir())
    for name in SHA256:
        (raw / name[: -len(".gz")]).write_bytes(_verified_bytes(directory, name))
    return Path(root)
