"""The grader's side of the pipe: frames read under limits, values checked on the way in.

Whatever arrives was written by a process that runs student code, so nothing here trusts it:
lengths are capped, the JSON is parsed without NaN, tensors are rebuilt from raw bytes with
an allowed dtype and a shape that matches their size, and anything else becomes `Opaque`.
Nothing is ever unpickled.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import torch

from grader.core.i18n import N_, _
from grader.sandbox.executor.frame_format import DTYPE_NAMES, DTYPES, LENGTH

MAX_HEADER = 8 * 1024**2
MAX_BLOBS = 512 * 1024**2  # tensor bytes in one frame
TASK_BYTES = 1024**3  # everything one task may receive (Sandbox.limit_received)
MAX_TENSORS = 10_000
MAX_DIMENSIONS = 8
MAX_EXTENT = 2**40  # product of a shape's non-zero sizes: every stride stays far inside int64
MAX_DEPTH = 24
MAX_PHASE = 200  # characters of a progress phase
MAX_COUNT = 10**12  # a progress count
READ_SLACK = 2 * 1024**2  # raw bytes held past a whole frame (one read of the pipe, and some)
ITEM_SIZES = {name: torch.empty((), dtype=dtype).element_size() for name, dtype in DTYPES.items()}


class ProtocolError(Exception):
    """The child broke the protocol: a malformed, oversized, early or extra frame."""


@dataclass(frozen=True)
class Opaque:
    """A value the child returned that is not plain data (an object, a tensor subclass, ...)."""

    what: str

    def __str__(self) -> str:
        return self.what


# How the child (executor/wire.py, English only) describes a value it cannot send: the grader says it in
# the grade's language, keeping only the value (a type name, a dtype); anything else is shown as sent.
_OPAQUE_WORDS = {
    "too deep or too many items": N_("too deep or too many items"),
    "tensor on the meta device (no values)": N_("tensor on the meta device (no values)"),
    "sparse tensor": N_("sparse tensor"),
}
_OPAQUE_PREFIXES = (
    ("tensor subclass ", N_("tensor subclass {name}")),
    ("tensor of dtype ", N_("tensor of dtype {name}")),
)


def _opaque(what: str) -> Opaque:
    if what in _OPAQUE_WORDS:
        return Opaque(_(_OPAQUE_WORDS[what]))
    for prefix, template in _OPAQUE_PREFIXES:
        if what.startswith(prefix):
            return Opaque(_(template).format(name=what.removeprefix(prefix)))
    return Opaque(what)  # a type name: the student's or torch's word, a value


class FrameReader:
    """Accumulates bytes and yields whole frames: (header, blobs).

    Each tensor's bytes are collected in a bytearray of their own, grown as they arrive (never
    allocated from the size a header claims), and later wrapped without a copy by `decode_value`:
    a frame costs the grader about its own size once. `allowance` (None: no limit) is how many
    bytes of frames the reader may still accept; a header that claims more breaks the protocol.
    """

    def __init__(self, allowance: int | None = None):
        self.buffer = bytearray()  # raw bytes: a header being read, or what came after a whole frame
        self.allowance = allowance
        self._header: dict | None = None
        self._sizes: list[int] = []
        self._blobs: list[bytearray] = []
        self._current = 0  # the blob being filled
        self._ready: tuple[dict | None, list[bytearray]] | None = None

    @property
    def pending(self) -> bool:
        """Bytes of a frame nobody has taken yet (a part of one, or a whole one)."""
        return bool(self.buffer) or self._header is not None or self._ready is not None

    def feed(self, data: bytes | bytearray) -> None:
        view = memoryview(data)
        while view:
            if self._ready is not None:
                self.buffer += view
                if len(self.buffer) > LENGTH.size + MAX_HEADER + READ_SLACK:
                    raise ProtocolError(_("the child sent more data than any answer may hold"))
                return
            if self._header is None:
                view = self._read_header(view)
            else:
                view = self._read_blobs(view)

    def next_frame(self) -> tuple[dict | None, list[bytearray]] | None:
        """The next complete frame, or None if more bytes are needed."""
        if self._ready is None:
            return None
        frame, self._ready = self._ready, None
        rest, self.buffer = self.buffer, bytearray()
        self.feed(rest)
        return frame

    def _read_header(self, view: memoryview) -> memoryview:
        prefix = LENGTH.size
        if len(self.buffer) < prefix:
            wanted = prefix - len(self.buffer)
        else:
            wanted = prefix + self._header_length() - len(self.buffer)
        self.buffer += view[:wanted]
        view = view[wanted:]
        if len(self.buffer) == prefix:
            self._header_length()  # refuse an oversized header before reading it
        if len(self.buffer) >= prefix and len(self.buffer) == prefix + self._header_length():
            self._start_frame(parse_header(bytes(self.buffer[prefix:])))
        return view

    def _header_length(self) -> int:
        length: int = LENGTH.unpack(self.buffer[: LENGTH.size])[0]
        if length > MAX_HEADER:
            raise ProtocolError(
                _("a frame header of {length} bytes (limit {limit})").format(length=length, limit=MAX_HEADER)
            )
        return length

    def _start_frame(self, header: dict) -> None:
        sizes = header.get("blobs", [])
        if not (
            isinstance(sizes, list)
            and len(sizes) <= MAX_TENSORS
            and all(type(size) is int and size >= 0 for size in sizes)
            and sum(sizes) <= MAX_BLOBS
        ):
            raise ProtocolError(_("a frame with malformed or oversized tensor data"))
        size = len(self.buffer) + sum(sizes)
        if self.allowance is not None:
            if size > self.allowance:
                raise ProtocolError(
                    _("the child sent more than the {limit} MiB a task may receive").format(limit=TASK_BYTES // 1024**2)
                )
            self.allowance -= size
        self.buffer = bytearray()
        self._header, self._sizes = header, sizes
        self._blobs, self._current = [bytearray() for _size in sizes], 0
        self._read_blobs(memoryview(b""))

    def _read_blobs(self, view: memoryview) -> memoryview:
        while self._current < len(self._sizes):
            blob = self._blobs[self._current]
            wanted = self._sizes[self._current] - len(blob)
            blob += view[:wanted]
            view = view[wanted:]
            if len(blob) < self._sizes[self._current]:
                return view
            self._current += 1
        self._ready = (self._header, self._blobs)
        self._header, self._sizes, self._blobs, self._current = None, [], [], 0
        return view


def parse_header(body: bytes) -> dict:
    """A frame's JSON header: an object, no NaN; anything else (deep nesting too) breaks the protocol."""
    try:
        header = json.loads(body, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError, RecursionError, MemoryError) as error:
        raise ProtocolError(_("a frame that is not JSON ({kind})").format(kind=type(error).__name__)) from None
    if not isinstance(header, dict):
        raise ProtocolError(_("a frame header that is not an object"))
    return header


def _no_constants(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def encode_frame(header: dict, blobs: Sequence[bytes] = ()) -> bytes:
    header = dict(header, blobs=[len(blob) for blob in blobs])
    body = json.dumps(header, allow_nan=False).encode()
    return b"".join([LENGTH.pack(len(body)), body, *blobs])


class ArgumentEncoder:
    """The grader's arguments as a JSON tree plus tensor bytes (the child rebuilds them)."""

    def __init__(self) -> None:
        self.blobs: list[bytes] = []

    def encode(self, value: Any) -> Any:
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


def decode_value(tree: Any, blobs: list[bytearray]) -> object:
    """A value the child returned: plain data and tensors, anything else as Opaque.

    Every malformed tree (deep, odd types, a tensor whose shape is absurd or whose bytes are
    used twice) raises ProtocolError and nothing else: the task it came with fails, the grade
    goes on."""
    try:
        return _Decoder(blobs).value(tree, 0)
    except ProtocolError:
        raise
    except (RecursionError, MemoryError, RuntimeError, ValueError, TypeError, OverflowError) as error:
        raise ProtocolError(
            _("a value the grader could not rebuild ({kind})").format(kind=type(error).__name__)
        ) from None


class _Decoder:
    def __init__(self, blobs: list):
        self.blobs = blobs
        self.used: set[int] = set()  # each tensor owns its bytes: no two returned tensors alias

    def value(self, tree: Any, depth: int) -> object:
        if depth > MAX_DEPTH:
            raise ProtocolError(_("a value nested too deeply"))
        if tree is None or type(tree) in (bool, int, float, str):
            return tree
        if isinstance(tree, list):
            raise ProtocolError(_("a bare list in a value"))
        if not isinstance(tree, dict) or len(tree) == 0:
            raise ProtocolError(_("a malformed value"))
        if "$tensor" in tree:
            return self.tensor(tree)
        if set(tree) == {"$opaque"} and type(tree["$opaque"]) is str:
            return _opaque(tree["$opaque"][:200])
        if set(tree) == {"$float"}:
            if tree["$float"] not in ("nan", "inf", "-inf"):
                raise ProtocolError(_("a malformed float"))
            return float(tree["$float"])
        if len(tree) != 1:
            raise ProtocolError(_("a malformed value"))
        kind, items = next(iter(tree.items()))
        if kind in ("$list", "$tuple") and isinstance(items, list):
            values = [self.value(item, depth + 1) for item in items]
            return tuple(values) if kind == "$tuple" else values
        if kind == "$dict" and isinstance(items, dict):
            return {str(key): self.value(item, depth + 1) for key, item in items.items()}
        raise ProtocolError(_("a malformed value"))

    def tensor(self, tree: dict) -> torch.Tensor:
        index, dtype, shape = tree.get("$tensor"), tree.get("dtype"), tree.get("shape")
        if not (
            type(index) is int
            and 0 <= index < len(self.blobs)
            and type(dtype) is str
            and dtype in DTYPES
            and type(shape) is list
            and len(shape) <= MAX_DIMENSIONS
            and all(type(size) is int and size >= 0 for size in shape)
        ):
            raise ProtocolError(_("a malformed tensor"))
        # Checked before anything is allocated: a 0-element [0, 2**62, 2**62] has no bytes but
        # strides past int64.
        if math.prod(max(size, 1) for size in shape) > MAX_EXTENT:
            raise ProtocolError(_("a tensor of absurd shape {shape}").format(shape=shape[:MAX_DIMENSIONS]))
        if index in self.used:
            raise ProtocolError(_("two tensors share the same bytes"))
        self.used.add(index)
        data = self.blobs[index]
        if len(data) != math.prod(shape) * ITEM_SIZES[dtype]:
            raise ProtocolError(_("a tensor whose bytes don't match its shape"))
        if not data:
            return torch.empty(shape, dtype=DTYPES[dtype])
        if not isinstance(data, bytearray):
            data = bytearray(data)  # a writable buffer of its own (the reader's blobs already are)
        return torch.frombuffer(data, dtype=DTYPES[dtype]).reshape(shape)


def progress_event(header: dict) -> tuple[str, int, int]:
    """A progress frame's (phase, done, total), schema-checked: exactly {"progress": [str, int, int]}
    (no tensor data), a phase of at most MAX_PHASE characters, 0 <= done <= total <= MAX_COUNT."""
    event = header.get("progress")
    if set(header) - {"progress", "blobs"} or header.get("blobs", []) != []:
        raise ProtocolError(_("a progress frame with other fields or tensor data"))
    if not (type(event) is list and len(event) == 3):
        raise ProtocolError(_("a progress frame that is not [phase, done, total]"))
    phase, done, total = event
    if type(phase) is not str or len(phase) > MAX_PHASE:
        raise ProtocolError(_("a progress frame whose phase is not a short string"))
    if not (type(done) is int and type(total) is int and 0 <= done <= total <= MAX_COUNT):
        raise ProtocolError(_("a progress frame whose counts are not 0 <= done <= total"))
    return phase, done, total
