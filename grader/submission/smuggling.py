"""Weights loaded, not learned: statements of the training cell that bring weights in from outside.

On the train profile the grader trains the student's model from its own seeded start through
the student's training cell. A cell that loads weights there (`torch.load`, `load_state_dict`,
a base64/zlib/pickle blob decoded, a huge literal) would hand the grader a model it did not
train. This names each such statement with its cell and line, read from the source (AST), for a
person to look at; it decides no verdict (a cell may load a checkpoint for a good reason).
Functions the training cell calls by name, defined in any cell, are read too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from grader.submission.syntax import dotted_name, module_scope

if TYPE_CHECKING:
    from grader.submission.analysis import Analysis

BASE64 = {
    "b64decode",
    "standard_b64decode",
    "urlsafe_b64decode",
    "b32decode",
    "b16decode",
    "b85decode",
    "a85decode",
    "decodebytes",
}
SERIALISERS = {"torch", "pickle", "np", "numpy", "joblib", "dill", "marshal", "cloudpickle", "safetensors"}
LONG_TEXT = 4096  # characters of one str or bytes literal
MANY_NUMBERS = 1000  # constants in one list, tuple, set or dict literal


@dataclass(frozen=True)
class Finding:
    cell: int
    line: int
    what: str

    def __str__(self) -> str:
        return f"cell {self.cell}, line {self.line}: the training cell {self.what} instead of learning the weights"


def weight_loading(analysis: Analysis) -> list[Finding]:
    """What the training cell (and the functions it calls) does that loads weights, in cell order."""
    training = analysis.training_cell()
    if training is None or training.tree is None:
        return []
    functions = {
        node.name: (facts.cell.number, node)
        for facts in analysis.cells
        if facts.tree
        for node in module_scope(facts.tree.body)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    }
    pending: list[tuple[int, ast.AST]] = [(training.cell.number, training.tree)]
    seen: set[str] = set()
    findings: list[Finding] = []
    while pending:
        cell, tree = pending.pop()
        for node in _nodes(tree):
            if isinstance(node, ast.Call):
                name = dotted_name(node.func)
                what = _loads(name)
                if what:
                    findings.append(Finding(cell, node.lineno, what))
                if name in functions and name not in seen:
                    seen.add(name)
                    pending.append(functions[name])
            else:
                what = _big_literal(node)
                if what:
                    findings.append(Finding(cell, node.lineno, what))
    return sorted(set(findings), key=lambda finding: (finding.cell, finding.line, finding.what))


def _nodes(tree: ast.AST) -> Iterator[ast.expr]:
    """Calls and the outermost literals of a tree, without recursion (hostile cells nest deep)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Constant, ast.List, ast.Tuple, ast.Set, ast.Dict)):
            yield node  # a literal's inner constants are counted with it, not on their own
            continue
        if isinstance(node, ast.Call):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _loads(name: str) -> str | None:
    """What a call of `name` does that brings weights in, or None."""
    root, _, last = name.rpartition(".")
    first = name.split(".")[0]
    if last in ("load_state_dict", "load_state_dict_from_url"):
        return f"loads weights into a model ({name})"
    if last in BASE64:
        return f"decodes a base64 blob ({name})"
    if last == "decompress":
        return f"decompresses a blob ({name})"
    if last == "loads" or (last in ("load", "load_file") and (not root or first in SERIALISERS)):
        return f"loads a saved object ({name})"
    if last in ("fromhex", "frombuffer"):
        return f"turns raw bytes into data ({name})"
    if name in ("exec", "eval"):
        return f"runs code made at run time ({name})"
    return None


def _big_literal(node: ast.AST) -> str | None:
    """A literal large enough to hold weights: long text or bytes, or very many numbers."""
    if isinstance(node, ast.Constant):
        if isinstance(node.value, (str, bytes)) and len(node.value) > LONG_TEXT:
            return f"holds a literal of {len(node.value):,} characters"
        return None
    count = sum(1 for inner in ast.walk(node) if isinstance(inner, ast.Constant))
    return f"holds a literal of {count:,} constants" if count > MANY_NUMBERS else None
