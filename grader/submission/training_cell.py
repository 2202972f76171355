"""Which cell trains the model: a top-level loop that steps an optimizer, or a call of a function
whose body does.

The training-loop and generation tasks run that cell in a harness of their own; every other
child run blanks it (and the calls of such functions), so definitions load without training.
"""

from __future__ import annotations

import ast
from dataclasses import replace

from grader.submission.blanking import is_method_that_trains
from grader.submission.cell_facts import CellFacts
from grader.submission.syntax import LOOPS, dotted_name, module_scope


def find_training_cell(cells: list[CellFacts]) -> CellFacts | None:
    """The last cell whose top-level loop trains (calls .backward(), optimizer.step() or get_loss);
    else a function that trains, called at top level: its cell with that call appended."""
    for facts in reversed(cells):
        if facts.tree and any(is_training_loop(stmt) for stmt in module_scope(facts.tree.body)):
            return facts
    found = trainers(cells)
    for facts in reversed(cells):
        for stmt in module_scope(facts.tree.body) if facts.tree else ():
            call = trainer_call(stmt, found)
            if call is not None:
                home = found[dotted_name(call.func)]
                # Line numbers of the function's own cell stay right; the call comes after them.
                code = f"{home.cell.code}\n{ast.unparse(call)}\n"
                return replace(home, cell=replace(home.cell, code=code), tree=ast.parse(code))
    return None


def trainers(cells: list[CellFacts]) -> dict[str, CellFacts]:
    """Top-level functions whose body has a training loop, with the cell defining each."""
    return {
        stmt.name: facts
        for facts in cells
        if facts.tree
        for stmt in module_scope(facts.tree.body)
        if isinstance(stmt, ast.FunctionDef) and any(is_training_loop(inner) for inner in ast.walk(stmt))
    }


def trainer_call(stmt: ast.stmt, found: dict[str, CellFacts]) -> ast.Call | None:
    """The call in `stmt` (`train()` or `x = train()`) when it calls one of `found` by name."""
    call = getattr(stmt, "value", None)
    if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id in found:
        return call
    return None


def is_training_loop(stmt: ast.AST) -> bool:
    """True for a loop whose body calls .backward(), .step() on an optimizer, or get_loss."""
    if not isinstance(stmt, LOOPS):
        return False
    for node in ast.walk(stmt):
        if isinstance(node, ast.Call):
            name = dotted_name(node.func)
            if name.split(".")[-1] == "get_loss" or is_method_that_trains(name):
                return True
    return False
