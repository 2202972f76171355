"""The samples grid as a data URI, read under limits: reports inline it, and its path comes from a
result document (which a batch may have read back from disk), so nothing about the file is trusted.
"""

from __future__ import annotations

import base64
from pathlib import Path

MAX_GRID_BYTES = 8 * 1024 * 1024
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def grid_data_uri(grid: object, base: Path | None = None) -> str | None:
    """The samples PNG as a data URI, or None when it is missing, too big or not a PNG."""
    if not isinstance(grid, str) or not grid.lower().endswith(".png"):
        return None
    path = Path(grid)
    if not path.is_absolute() and base is not None:
        path = base / path
    try:
        if not path.is_file() or path.stat().st_size > MAX_GRID_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if not data.startswith(PNG_MAGIC):
        return None
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")
