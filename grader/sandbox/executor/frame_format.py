"""What both ends of the pipes agree a frame is: its length prefix and the dtypes a tensor may travel in.

A frame is a 4-byte big-endian length, a JSON header of that length, then the bytes of the tensors
the header lists under "blobs". The child imports this module as `executor.frame_format` (wire.py
writes frames with it); the grader as `grader.sandbox.executor.frame_format` (frames.py reads them,
under limits of its own). Standard library and torch only, nothing of the project.
"""

from __future__ import annotations

import struct
from typing import Final

import torch

# The length of a frame's JSON header, in front of it.
LENGTH: Final = struct.Struct(">I")

# A tensor's dtype by the name the header gives it, and back: no other dtype crosses the pipe.
DTYPES: Final = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "int64": torch.int64,
    "int32": torch.int32,
    "int16": torch.int16,
    "int8": torch.int8,
    "uint8": torch.uint8,
    "bool": torch.bool,
}
DTYPE_NAMES: Final = {dtype: name for name, dtype in DTYPES.items()}
