"""Frames on the two pipes, and values as JSON trees plus raw tensor bytes (child side).

A frame's layout and the dtypes a tensor may travel in are in frame_format.py, which the grader's
reader (grader/sandbox/frames.py) uses too. That reader checks every limit; this side only has to
write what it means.
"""

import ctypes
import json
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import torch

# Relative: the same module whether this package is `executor` (in the child) or
# `grader.sandbox.executor` (mypy), so its names keep their types.
from .frame_format import DTYPE_NAMES, DTYPES, LENGTH

MAX_STRING = 2000
MAX_ITEMS = 10_000


def read_exactly(fd: int, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError("the grader closed the command pipe")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int) -> tuple[dict, list[bytes]]:
    (length,) = LENGTH.unpack(read_exactly(fd, LENGTH.size))
    header = json.loads(read_exactly(fd, length))
    return header, [read_exactly(fd, size) for size in header.get("blobs", [])]


def write_frame(fd: int, header: dict, blobs: Sequence[bytes] = ()) -> None:
    header = dict(header, blobs=[len(blob) for blob in blobs])
    body = json.dumps(header, allow_nan=False).encode()
    data = b"".join([LENGTH.pack(len(body)), body, *blobs])
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class Opaque:
    """A value that was sent as opaque, read back by the executor (an answer from a forked copy,
    fanout.py): it is sent on as the same marker."""

    def __init__(self, what: str) -> None:
        self.what = what


class Encoder:
    """Turns a returned value into a JSON tree, collecting tensor bytes on the side; at most
    `max_items` values in one tree (a batch's reply holds one answer's worth per command)."""

    def __init__(self, max_items: int = MAX_ITEMS) -> None:
        self.blobs: list[bytes] = []
        self.items = 0
        self.max_items = max_items

    def encode(self, value: Any, depth: int = 0) -> Any:
        self.items += 1
        if depth > 20 or self.items > self.max_items:
            return {"$opaque": "too deep or too many items"}
        if type(value) is Opaque:
            return {"$opaque": str(value.what)[:200]}
        if value is None or type(value) in (bool, int, str):
            return value[:MAX_STRING] if type(value) is str else value
        if type(value) is float:
            return value if math.isfinite(value) else {"$float": repr(value)}
        if type(value) in (list, tuple):
            return {"$" + type(value).__name__: [self.encode(item, depth + 1) for item in value]}
        if isinstance(value, dict):  # a state_dict is an OrderedDict
            return {"$dict": {str(key)[:200]: self.encode(item, depth + 1) for key, item in dict.items(value)}}
        if type(value) in (torch.Tensor, torch.nn.Parameter):
            return self.tensor(value)
        if isinstance(value, torch.Tensor):
            return {"$opaque": f"tensor subclass {type(value).__name__}"}
        return {"$opaque": type(value).__name__[:200]}

    def tensor(self, value: torch.Tensor) -> dict[str, Any]:
        if value.device.type == "meta":
            return {"$opaque": "tensor on the meta device (no values)"}
        if value.dtype not in DTYPE_NAMES:
            return {"$opaque": f"tensor of dtype {value.dtype}"}
        if value.is_sparse or value.layout != torch.strided:
            return {"$opaque": "sparse tensor"}
        plain = value.detach().to("cpu").contiguous().clone()
        data = ctypes.string_at(plain.data_ptr(), plain.numel() * plain.element_size()) if plain.numel() else b""
        self.blobs.append(data)
        return {
            "$tensor": len(self.blobs) - 1,
            "dtype": DTYPE_NAMES[value.dtype],
            "shape": list(plain.shape),
            "device": value.device.type,
        }


def decode(tree: Any, blobs: list[bytes], device: torch.device, make_stub: Callable[[dict], Any]) -> Any:
    """Arguments the grader wrote: tensors on `device`, stubs made by `make_stub(spec)`; also an
    answer a forked copy wrote (fanout.py), whose opaque values come back as Opaque."""
    if isinstance(tree, list):
        return [decode(item, blobs, device, make_stub) for item in tree]
    if not isinstance(tree, dict):
        return tree
    if "$tensor" in tree:
        dtype, shape = DTYPES[tree["dtype"]], tree["shape"]
        data = blobs[tree["$tensor"]]
        tensor = (
            torch.frombuffer(bytearray(data), dtype=dtype).reshape(shape) if data else torch.empty(shape, dtype=dtype)
        )
        return tensor.to(device)
    if "$tuple" in tree:
        return tuple(decode(item, blobs, device, make_stub) for item in tree["$tuple"])
    if "$list" in tree:
        return [decode(item, blobs, device, make_stub) for item in tree["$list"]]
    if "$dict" in tree:
        return {key: decode(item, blobs, device, make_stub) for key, item in tree["$dict"].items()}
    if "$float" in tree:
        return float(tree["$float"])
    if "$opaque" in tree:
        return Opaque(str(tree["$opaque"]))
    if "$stub" in tree or "$name" in tree:
        return make_stub(tree)
    raise ValueError(f"unknown value in a command: {sorted(tree)}")
