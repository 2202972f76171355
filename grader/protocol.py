"""The grader's side of the pipe: frames read under limits, values checked on the way in.

Whatever arrives was written by a process that runs student code, so nothing here trusts it:
lengths are capped, the JSON is parsed without NaN, tensors are rebuilt from raw bytes with
an allowed dtype and a shape that matches their size, and anything else becomes `Opaque`.
Nothing is ever unpickled.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass

import torch

MAX_HEADER = 8 * 1024**2
MAX_BLOBS = 512 * 1024**2
MAX_TENSORS = 10_000
DTYPES = {
    "float32": torch.float32, "float64": torch.float64, "float16": torch.float16,
    "bfloat16": torch.bfloat16, "int64": torch.int64, "int32": torch.int32, "int16": torch.int16,
    "int8": torch.int8, "uint8": torch.uint8, "bool": torch.bool,
}
DTYPE_NAMES = {dtype: name for name, dtype in DTYPES.items()}


class ProtocolError(Exception):
    """The child broke the protocol: a malformed, oversized, early or extra frame."""


@dataclass(frozen=True)
class Opaque:
    """A value the child returned that is not plain data (an object, a tensor subclass, ...)."""

    what: str

    def __str__(self) -> str:
        return self.what


class FrameReader:
    """Accumulates bytes and yields whole frames: (header, blobs)."""

    def __init__(self):
        self.buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > MAX_HEADER + MAX_BLOBS + 8:
            raise ProtocolError("the child sent more data than any answer may hold")

    def next_frame(self):
        """The next complete frame, or None if more bytes are needed."""
        if len(self.buffer) < 4:
            return None
        (length,) = struct.unpack(">I", self.buffer[:4])
        if length > MAX_HEADER:
            raise ProtocolError(f"a frame header of {length} bytes (limit {MAX_HEADER})")
        if len(self.buffer) < 4 + length:
            return None
        try:
            header = json.loads(bytes(self.buffer[4:4 + length]), parse_constant=_no_constants)
        except (ValueError, UnicodeDecodeError) as error:
            raise ProtocolError(f"a frame that is not JSON ({error})") from None
        if not isinstance(header, dict):
            raise ProtocolError("a frame header that is not an object")
        sizes = header.get("blobs", [])
        if not (isinstance(sizes, list) and len(sizes) <= MAX_TENSORS
                and all(type(size) is int and size >= 0 for size in sizes) and sum(sizes) <= MAX_BLOBS):
            raise ProtocolError("a frame with malformed or oversized tensor data")
        end = 4 + length + sum(sizes)
        if len(self.buffer) < end:
            return None
        blobs, start = [], 4 + length
        for size in sizes:
            blobs.append(bytes(self.buffer[start:start + size]))
            start += size
        del self.buffer[:end]
        return header, blobs


def _no_constants(name):
    raise ValueError(f"{name} is not JSON")


def encode_frame(header: dict, blobs: list[bytes] = ()) -> bytes:
    header = dict(header, blobs=[len(blob) for blob in blobs])
    body = json.dumps(header, allow_nan=False).encode()
    return b"".join([struct.pack(">I", len(body)), body, *blobs])


class ArgumentEncoder:
    """The grader's arguments as a JSON tree plus tensor bytes (the child rebuilds them)."""

    def __init__(self):
        self.blobs: list[bytes] = []

    def encode(self, value):
        if isinstance(value, torch.Tensor):
            plain = value.detach().cpu().contiguous()
            self.blobs.append(plain.view(torch.uint8).numpy().tobytes() if plain.numel() else b"")
            return {"$tensor": len(self.blobs) - 1, "dtype": DTYPE_NAMES[plain.dtype], "shape": list(plain.shape)}
        if isinstance(value, float) and not math.isfinite(value):
            return {"$float": repr(value)}
        if isinstance(value, tuple):
            return {"$tuple": [self.encode(item) for item in value]}
        if isinstance(value, list):
            return [self.encode(item) for item in value]
        if isinstance(value, dict):
            if "$stub" in value or "$name" in value:
                return {key: self.encode(item) for key, item in value.items()}
            return {"$dict": {str(key): self.encode(item) for key, item in value.items()}}
        return value


def decode_value(tree, blobs: list[bytes], depth: int = 0):
    """A value the child returned: plain data and tensors, anything else as Opaque."""
    if depth > 24:
        raise ProtocolError("a value nested too deeply")
    if tree is None or type(tree) in (bool, int, float, str):
        return tree
    if isinstance(tree, list):
        raise ProtocolError("a bare list in a value")
    if not isinstance(tree, dict) or len(tree) == 0:
        raise ProtocolError("a malformed value")
    if "$tensor" in tree:
        return _tensor(tree, blobs)
    if set(tree) == {"$opaque"}:
        return Opaque(str(tree["$opaque"])[:200])
    if set(tree) == {"$float"}:
        if tree["$float"] not in ("nan", "inf", "-inf"):
            raise ProtocolError("a malformed float")
        return float(tree["$float"])
    if len(tree) != 1:
        raise ProtocolError("a malformed value")
    kind, items = next(iter(tree.items()))
    if kind in ("$list", "$tuple") and isinstance(items, list):
        values = [decode_value(item, blobs, depth + 1) for item in items]
        return tuple(values) if kind == "$tuple" else values
    if kind == "$dict" and isinstance(items, dict):
        return {str(key): decode_value(item, blobs, depth + 1) for key, item in items.items()}
    raise ProtocolError("a malformed value")


def _tensor(tree: dict, blobs: list[bytes]) -> torch.Tensor:
    index, dtype, shape = tree.get("$tensor"), DTYPES.get(tree.get("dtype")), tree.get("shape")
    if not (type(index) is int and 0 <= index < len(blobs) and dtype is not None and isinstance(shape, list)
            and len(shape) <= 8 and all(type(size) is int and size >= 0 for size in shape)):
        raise ProtocolError("a malformed tensor")
    numel = math.prod(shape)
    data = blobs[index]
    if len(data) != numel * torch.empty((), dtype=dtype).element_size():
        raise ProtocolError("a tensor whose bytes don't match its shape")
    if numel == 0:
        return torch.empty(shape, dtype=dtype)
    return torch.frombuffer(bytearray(data), dtype=dtype).reshape(shape)
