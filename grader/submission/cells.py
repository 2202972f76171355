"""Load a student's submission (a Jupyter notebook or a .py module) into numbered code cells."""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from nbformat import validator as nb_validator

from grader.core.errors import UnusableInput
from grader.submission.ipython_syntax import neutralise

# Notebooks with embedded images can be tens of MB; anything far beyond that is not a submission.
MAX_BYTES = 200 * 1024 * 1024

# jupytext percent markers (`# %%`, `# %% [markdown]`) and nbconvert script markers (`# In[3]:`).
# Kept rather than depending on jupytext: its percent reader does not know nbconvert's markers,
# and splitting at a marker line is all the grader needs (cells keep their source lines as is).
_CELL_MARKER = re.compile(r"^(?:#\s*%%(?:\s|$)|# In\[[ \d]*\]:)")
_NON_CODE_MARKER = re.compile(r"\[(?:markdown|md|raw)\]")


@dataclass(frozen=True)
class Cell:
    number: int  # 1-based position among all cells (markdown included), as students see it
    source: str  # the cell's source as written
    code: str  # executable Python, same line count and numbering as source


@dataclass(frozen=True)
class Submission:
    path: Path
    kind: str  # "notebook" or "module"
    sha256: str  # of the file's bytes
    cells: tuple[Cell, ...]  # code cells only


def load_submission(path: str | Path) -> Submission:
    """Read a .ipynb or .py submission, or raise UnusableInput with a one-line reason."""
    path = Path(path)
    name = str(path)
    data = _read_bytes(path, name)
    suffix = path.suffix.lower()
    if suffix not in (".ipynb", ".py"):
        got = suffix or "no suffix"
        raise UnusableInput(f"{name}: expected a .ipynb notebook or a .py module, got {got}")
    text = _decode(data, name)
    if suffix == ".ipynb":
        cells, kind = _notebook_cells(text, name), "notebook"
    else:
        cells, kind = _module_cells(text, name), "module"
    return Submission(path=path, kind=kind, sha256=hashlib.sha256(data).hexdigest(), cells=tuple(cells))


def _read_bytes(path: Path, name: str) -> bytes:
    """Read the file, turning every filesystem problem into UnusableInput."""
    try:
        if not path.exists():
            raise UnusableInput(f"{name}: no such file")
        if path.is_dir():
            raise UnusableInput(f"{name}: is a directory, not a file")
        if not path.is_file():
            raise UnusableInput(f"{name}: not a regular file")
        if path.stat().st_size > MAX_BYTES:
            raise UnusableInput(f"{name}: file too large ({path.stat().st_size} bytes; limit {MAX_BYTES})")
        data = path.read_bytes()
    except OSError as exc:
        raise UnusableInput(f"{name}: cannot be read ({exc.strerror or exc})") from None
    if not data.strip():
        raise UnusableInput(f"{name}: empty file")
    return data


def _decode(data: bytes, name: str) -> str:
    """Decode UTF-8 text (a BOM is tolerated); binary content is unusable."""
    if b"\x00" in data:
        raise UnusableInput(f"{name}: binary file, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnusableInput(f"{name}: not UTF-8 text (undecodable byte at offset {exc.start})") from None


def _notebook_cells(text: str, name: str) -> list[Cell]:
    """Parse and validate notebook JSON; return its non-empty-checked code cells."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise UnusableInput(f"{name}: not valid JSON ({where}: {exc.msg})") from None
    except (ValueError, RecursionError) as exc:
        raise UnusableInput(f"{name}: not valid JSON ({_one_line(exc) or 'nested too deeply'})") from None
    _check_notebook_shape(raw, name)
    _validate(raw, name)
    cells = []
    for number, cell in enumerate(raw["cells"], start=1):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        cells.append(Cell(number=number, source=source, code=neutralise(source)))
    if not cells:
        raise UnusableInput(f"{name}: the notebook has no code cells")
    if not any(cell.source.strip() for cell in cells):
        raise UnusableInput(f"{name}: every code cell of the notebook is empty")
    return cells


def _check_notebook_shape(raw: Any, name: str) -> None:
    """Reject JSON that is not an nbformat 4 notebook before the schema sees it."""
    if not isinstance(raw, dict):
        raise UnusableInput(f"{name}: not a Jupyter notebook (the JSON is {_json_kind(raw)}, not an object)")
    version = raw.get("nbformat")
    if version is None:
        raise UnusableInput(f"{name}: not a Jupyter notebook (no 'nbformat' version field)")
    if not isinstance(version, int) or isinstance(version, bool):
        raise UnusableInput(f"{name}: not a Jupyter notebook ('nbformat' is {version!r}, not a number)")
    if version != 4:
        raise UnusableInput(
            f"{name}: nbformat {version} notebook; only nbformat 4 is supported (open and re-save it in Jupyter)"
        )
    if not isinstance(raw.get("cells"), list):
        raise UnusableInput(f"{name}: not a Jupyter notebook (no 'cells' list)")


def _validate(raw: dict[str, Any], name: str) -> None:
    """Validate against the nbformat schema of the notebook's own minor version."""
    minor = raw.get("nbformat_minor")
    if not isinstance(minor, int) or isinstance(minor, bool):
        raise UnusableInput(f"{name}: not a Jupyter notebook ('nbformat_minor' is {minor!r}, not a number)")
    nb = copy.deepcopy(raw)
    try:
        with warnings.catch_warnings():
            # Missing 4.5 cell ids are repaired by Jupyter on open; don't reject for them.
            warnings.simplefilter("ignore")
            _, nb = nb_validator.normalize(nb, 4, minor)
            nbformat.validate(nb, version=4, version_minor=minor)
    except nbformat.ValidationError as exc:
        where = _schema_location(list(getattr(exc, "absolute_path", [])))
        raise UnusableInput(f"{name}: fails nbformat validation{where}: {_one_line(exc.message)}") from None
    except Exception as exc:  # the validator itself chokes on some malformed shapes
        problem = f"{type(exc).__name__}: {_one_line(exc)}"
        raise UnusableInput(f"{name}: fails nbformat validation: {problem}") from None


def _schema_location(parts: list[str | int]) -> str:
    """Describe a JSON-schema path in the notebook's terms, e.g. ' at cell 4 (source)'."""
    if len(parts) >= 2 and parts[0] == "cells" and isinstance(parts[1], int):
        rest = ".".join(str(p) for p in parts[2:])
        return f" at cell {parts[1] + 1}" + (f" ({rest})" if rest else "")
    return f" at {'.'.join(str(p) for p in parts)}" if parts else ""


def _module_cells(text: str, name: str) -> list[Cell]:
    """Split a .py module at cell markers (or keep it whole) into code cells."""
    if not any(line.strip() and not line.lstrip().startswith("#") for line in text.splitlines()):
        raise UnusableInput(f"{name}: no Python code (only comments or blank lines)")
    lines = text.split("\n")
    starts = [i for i, line in enumerate(lines) if _CELL_MARKER.match(line)]
    if not starts:
        return [Cell(number=1, source=text, code=neutralise(text))]
    chunks = []
    preamble = lines[: starts[0]]
    # A jupytext header is all comments; only real code before the first marker makes a cell.
    if any(line.strip() and not line.lstrip().startswith("#") for line in preamble):
        chunks.append((True, "\n".join(preamble) + "\n"))
    for begin, end in itertools.pairwise([*starts, len(lines)]):
        body = "\n".join(lines[begin:end])
        body = body + "\n" if end < len(lines) else body
        chunks.append((not _NON_CODE_MARKER.search(lines[begin]), body))
    return [
        Cell(number=number, source=body, code=neutralise(body))
        for number, (is_code, body) in enumerate(chunks, start=1)
        if is_code
    ]


def _json_kind(value: object) -> str:
    """Name a JSON value's type the way JSON does."""
    kinds = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else kinds.get(type(value), type(value).__name__)


def _one_line(exc_or_text: object) -> str:
    """First line of a message, cut short so the whole error stays one readable line."""
    lines = str(exc_or_text).strip().splitlines()
    text = lines[0] if lines else ""
    return text if len(text) <= 200 else text[:197] + "..."
