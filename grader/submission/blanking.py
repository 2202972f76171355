"""The statements the unit-task child must not run, replaced by `pass` without moving a line.

The child runs every cell for its definitions only: training, data loading, plotting,
compiling and the assessment itself are blanked, and a statement is kept only where running
it calls nothing on the skip list. Findings still point at the cell's own lines.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator

from grader.submission.syntax import LOOPS, TRIES, char_col, dotted_name

# Calls the unit-task grader must not run: training, data loading, plotting, compiling, the
# assessment itself. Matched on the last dotted component, so `ddpm_utils.sample_w` or
# `torchvision.datasets.MNIST` count too.
_SKIPPED_CALLS = {
    "run_assessment",
    "sample_w",
    "sample_images",
    "load_transformed_MNIST",
    "load_MNIST",
    "load_transformed_fashionMNIST",
    "DataLoader",
    "MNIST",
    "save_animation",
    "show_tensor_image",
    "plot_generated_images",
    "get_ipython",
}
_SKIPPED_EXACT = {"torch.compile"}
_SKIPPED_MODULES = {"plt", "other_utils", "matplotlib"}  # any call through these names
_SKIPPED_METHODS = {"backward", "step"}  # `loss.backward()`, `optimizer.step()`, `opt.step()`
_BLOCKS = (*LOOPS, ast.With, ast.AsyncWith)


def blank_side_effects(code: str, tree: ast.Module | None, also: Iterable[ast.stmt] = ()) -> str:
    """`code` with skipped statements (and the statements in `also`) replaced by `pass`."""
    lines = code.split("\n")
    if tree is None:
        return "\n".join("" for _ in lines)
    blanks = set(_statements_to_blank(tree.body)) | set(also)
    # Right to left, so blanking one statement never shifts the columns of another.
    for stmt in sorted(blanks, key=_position, reverse=True):
        _blank(lines, stmt)
    blanked = "\n".join(lines)
    try:
        ast.parse(blanked)
    except SyntaxError:  # a statement sharing its last line with another (`f(\n); g()`)
        return "\n".join("" for _ in lines)
    return blanked


def is_method_that_trains(name: str) -> bool:
    """`loss.backward`, `optimizer.step`: a method call a training loop makes."""
    parts = name.split(".")
    return len(parts) > 1 and parts[-1] in _SKIPPED_METHODS


def _is_skipped_call(name: str) -> bool:
    """True for a call the unit-task grader must not run."""
    parts = name.split(".")
    if name in _SKIPPED_EXACT or parts[-1] in _SKIPPED_CALLS:
        return True
    if any(part in _SKIPPED_MODULES for part in parts[:-1]):
        return True
    return len(parts) > 1 and parts[-1] in _SKIPPED_METHODS


def _calls_run_now(node: ast.AST) -> Iterator[str]:
    """Dotted names of calls evaluated when `node` runs (function and lambda bodies wait)."""
    stack = [node]
    while stack:  # explicit stack: a long `a + a + ...` chain nests deeper than Python recurses
        node = stack.pop()
        if isinstance(node, ast.Call):
            yield dotted_name(node.func)
        for decorator in getattr(node, "decorator_list", []):
            yield dotted_name(decorator)  # `@torch.compile` calls torch.compile on the function
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            parts = [*getattr(node, "decorator_list", []), *node.args.defaults, *node.args.kw_defaults]
        else:
            parts = list(ast.iter_child_nodes(node))
        stack.extend(part for part in parts if part is not None)


def _runs_skipped_call(node: ast.AST) -> bool:
    """True when running `node` would call something on the skip list."""
    return any(_is_skipped_call(name) for name in _calls_run_now(node) if name)


def _statements_to_blank(body: list[ast.stmt]) -> list[ast.stmt]:
    """Top-level statements (or bare expressions inside kept if/try blocks) to replace by `pass`."""
    blanked = []
    for stmt in body:
        inner = _inner_blanks(stmt)
        if inner is None:
            blanked.append(stmt)
        else:
            blanked.extend(inner)
    return blanked


def _inner_blanks(stmt: ast.stmt) -> list[ast.stmt] | None:
    """None if `stmt` must be skipped whole, else the bare expressions inside it to blank."""
    # Loops, with-blocks, bare expressions and asserts bind nothing the tasks need.
    if isinstance(stmt, (*_BLOCKS, ast.Expr, ast.Assert)):
        return None
    if isinstance(stmt, ast.If):
        heads, blocks = [stmt.test], [stmt.body, stmt.orelse]
    elif isinstance(stmt, TRIES):
        heads = [h.type for h in stmt.handlers if h.type is not None]
        blocks = [stmt.body, stmt.orelse, stmt.finalbody, *(h.body for h in stmt.handlers)]
    else:
        return None if _runs_skipped_call(stmt) else []
    if any(_runs_skipped_call(head) for head in heads):
        return None
    blanks: list[ast.stmt] = []
    for block in blocks:
        for inner in block:
            if isinstance(inner, ast.Expr) and not _runs_skipped_call(inner):
                blanks.append(inner)  # a print inside an if binds nothing: drop it alone
                continue
            nested = _inner_blanks(inner)
            if nested is None:
                return None  # an if/try holding a skipped statement is skipped whole
            blanks.extend(nested)
    return blanks


def _blank(lines: list[str], stmt: ast.stmt) -> None:
    """Replace a statement by `pass` where it starts and blank its other lines."""
    first = min([stmt.lineno] + [d.lineno for d in getattr(stmt, "decorator_list", [])]) - 1
    last = (stmt.end_lineno or stmt.lineno) - 1  # parsed statements always have an end
    start = char_col(lines[first], stmt.col_offset) if first == stmt.lineno - 1 else None
    if start is None:  # a decorator line: keep its indentation
        line = lines[first]
        start = len(line) - len(line.lstrip())
    if first == last:
        end = char_col(lines[last], stmt.end_col_offset or 0)
        lines[first] = lines[first][:start] + "pass" + lines[first][end:]
        return
    lines[first] = lines[first][:start] + "pass"
    for index in range(first + 1, last + 1):
        lines[index] = ""


def _position(stmt: ast.stmt) -> tuple[int, int]:
    """Where a statement starts, for ordering edits."""
    return stmt.lineno, stmt.col_offset
