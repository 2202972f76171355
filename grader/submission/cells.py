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
from grader.core.i18n import _
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
        got = suffix or _("no suffix")
        raise UnusableInput(
            _("{name}: expected a .ipynb notebook or a .py module, got {got}").format(name=name, got=got)
        )
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
            raise UnusableInput(_("{name}: no such file").format(name=name))
        if path.is_dir():
            raise UnusableInput(_("{name}: is a directory, not a file").format(name=name))
        if not path.is_file():
            raise UnusableInput(_("{name}: not a regular file").format(name=name))
        if path.stat().st_size > MAX_BYTES:
            raise UnusableInput(
                _("{name}: file too large ({size} bytes; limit {limit})").format(
                    name=name, size=path.stat().st_size, limit=MAX_BYTES
                )
            )
        data = path.read_bytes()
    except OSError as exc:
        raise UnusableInput(
            _("{name}: cannot be read ({error})").format(name=name, error=exc.strerror or exc)
        ) from None
    if not data.strip():
        raise UnusableInput(_("{name}: empty file").format(name=name))
    return data


def _decode(data: bytes, name: str) -> str:
    """Decode UTF-8 text (a BOM is tolerated); binary content is unusable."""
    if b"\x00" in data:
        raise UnusableInput(_("{name}: binary file, not text").format(name=name))
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnusableInput(
            _("{name}: not UTF-8 text (undecodable byte at offset {offset})").format(name=name, offset=exc.start)
        ) from None


def _notebook_cells(text: str, name: str) -> list[Cell]:
    """Parse and validate notebook JSON; return its non-empty-checked code cells."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        where = _("line {line}, column {column}").format(line=exc.lineno, column=exc.colno)
        raise UnusableInput(
            _("{name}: not valid JSON ({where}: {error})").format(name=name, where=where, error=exc.msg)
        ) from None
    except (ValueError, RecursionError) as exc:
        why = _one_line(exc) or _("nested too deeply")
        raise UnusableInput(_("{name}: not valid JSON ({why})").format(name=name, why=why)) from None
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
        raise UnusableInput(_("{name}: the notebook has no code cells").format(name=name))
    if not any(cell.source.strip() for cell in cells):
        raise UnusableInput(_("{name}: every code cell of the notebook is empty").format(name=name))
    return cells


def _check_notebook_shape(raw: Any, name: str) -> None:
    """Reject JSON that is not an nbformat 4 notebook before the schema sees it."""
    if not isinstance(raw, dict):
        raise UnusableInput(
            _("{name}: not a Jupyter notebook (the JSON is {kind}, not an object)").format(
                name=name, kind=_json_kind(raw)
            )
        )
    version = raw.get("nbformat")
    if version is None:
        raise UnusableInput(_("{name}: not a Jupyter notebook (no 'nbformat' version field)").format(name=name))
    if not isinstance(version, int) or isinstance(version, bool):
        raise UnusableInput(
            _("{name}: not a Jupyter notebook ('nbformat' is {version}, not a number)").format(
                name=name, version=repr(version)
            )
        )
    if version != 4:
        raise UnusableInput(
            _(
                "{name}: nbformat {version} notebook; only nbformat 4 is supported (open and re-save it in Jupyter)"
            ).format(name=name, version=version)
        )
    if not isinstance(raw.get("cells"), list):
        raise UnusableInput(_("{name}: not a Jupyter notebook (no 'cells' list)").format(name=name))


def _validate(raw: dict[str, Any], name: str) -> None:
    """Validate against the nbformat schema of the notebook's own minor version."""
    minor = raw.get("nbformat_minor")
    if not isinstance(minor, int) or isinstance(minor, bool):
        raise UnusableInput(
            _("{name}: not a Jupyter notebook ('nbformat_minor' is {minor}, not a number)").format(
                name=name, minor=repr(minor)
            )
        )
    nb = copy.deepcopy(raw)
    try:
        with warnings.catch_warnings():
            # Missing 4.5 cell ids are repaired by Jupyter on open; don't reject for them.
            warnings.simplefilter("ignore")
            _changes, nb = nb_validator.normalize(nb, 4, minor)
            nbformat.validate(nb, version=4, version_minor=minor)
    except nbformat.ValidationError as exc:
        where = _schema_location(list(getattr(exc, "absolute_path", [])))
        raise UnusableInput(
            _("{name}: fails nbformat validation{where}: {error}").format(
                name=name, where=where, error=_one_line(exc.message)
            )
        ) from None
    except Exception as exc:  # the validator itself chokes on some malformed shapes
        problem = f"{type(exc).__name__}: {_one_line(exc)}"
        raise UnusableInput(_("{name}: fails nbformat validation: {error}").format(name=name, error=problem)) from None


def _schema_location(parts: list[str | int]) -> str:
    """Describe a JSON-schema path in the notebook's terms, e.g. ' at cell 4 (source)'."""
    if len(parts) >= 2 and parts[0] == "cells" and isinstance(parts[1], int):
        rest = ".".join(str(p) for p in parts[2:])
        return _(" at cell {cell}").format(cell=parts[1] + 1) + (f" ({rest})" if rest else "")
    return _(" at {path}").format(path=".".join(str(p) for p in parts)) if parts else ""


def _module_cells(text: str, name: str) -> list[Cell]:
    """Split a .py module at cell markers (or keep it whole) into code cells."""
    if not any(line.strip() and not line.lstrip().startswith("#") for line in text.splitlines()):
        raise UnusableInput(_("{name}: no Python code (only comments or blank lines)").format(name=name))
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
    kinds = {list: _("an array"), str: _("a string"), bool: _("a boolean"), int: _("a number"), float: _("a number")}
    return "null" if value is None else kinds.get(type(value), type(value).__name__)


def _one_line(exc_or_text: object) -> str:
    """First line of a message, cut short so the whole error stays one readable line."""
    lines = str(exc_or_text).strip().splitlines()
    text = lines[0] if lines else ""
    return text if len(text) <= 200 else text[:197] + "..."
