"""The executor's commands are named once (grader/sandbox/executor/commands.py) and used by name.

The dispatcher must answer exactly the declared commands, the module must stay importable in the
child (standard library only, nothing of the project), and no grader or task file may send a
command as a bare string, where a typo would only show as an error from the child at grading time.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import grader
from grader.sandbox.executor import commands

ROOT = Path(grader.__file__).resolve().parents[1]
EXECUTOR_DIR = ROOT / "grader" / "sandbox" / "executor"
sys.path.insert(0, str(EXECUTOR_DIR.parent))  # the child imports `executor`
from executor.main import Executor  # noqa: E402


def test_the_dispatcher_answers_exactly_the_declared_commands():
    declared = {value for name, value in vars(commands).items() if name.isupper() and isinstance(value, str)}
    # every name is a command, the loop's EXIT, or a kind of error (none left out of its set)
    assert declared == commands.COMMANDS | {commands.EXIT} | commands.ERROR_KINDS
    assert not commands.COMMANDS & commands.ERROR_KINDS
    assert set(Executor({"course": ""}).handlers()) == commands.COMMANDS


def test_an_undeclared_command_is_answered_as_an_error_naming_it():
    reply = Executor({"course": ""}).answer({"op": "evaluate"})
    assert reply["ok"] is False
    assert reply["error"]["type"] == "UnknownCommand" and "evaluate" in reply["error"]["message"]


def test_the_commands_module_imports_nothing_but_the_standard_library():
    """The child imports it as `executor.commands`, where grader, tasks and reference are not."""
    tree = ast.parse((EXECUTOR_DIR / "commands.py").read_text())
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {
        node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported <= {"__future__", "typing"}


def bare_command_strings(source: str, filename: str) -> list[str]:
    """Where `source` sends a command as a string literal: the first argument of `.ask(...)` or
    `.request(...)`, an `op=` keyword, or the value under "op" in a dict literal."""
    found = []

    def flag(node: ast.AST) -> None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.append(f"{filename}:{node.lineno}: {node.value!r}")

    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute) and node.func.attr in ("ask", "request") and node.args:
                flag(node.args[0])
            for keyword in node.keywords:
                if keyword.arg == "op":
                    flag(keyword.value)
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "op":
                    flag(value)
    return found


@pytest.mark.parametrize(
    "source",
    [
        'context.ask("classes")',
        'self.grading.request("exec", 1.0, code="")',
        'frame = {"id": 1, "op": "exit"}',
        'send(op="call")',
    ],
)
def test_the_scan_finds_a_bare_command(source):
    assert bare_command_strings(source, "<example>")


def test_the_scan_accepts_a_named_command():
    source = 'context.ask(commands.CLASSES)\nframe = {"op": commands.EXIT}\nsandbox.request(op, 1.0)'
    assert bare_command_strings(source, "<example>") == []


def test_no_grader_or_task_file_sends_a_command_as_a_bare_string():
    files = [
        path
        for folder in ("grader", "tasks")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if EXECUTOR_DIR not in path.parents  # the child's own side reads the op it is sent
    ]
    assert len(files) > 30
    found = [hit for path in files for hit in bare_command_strings(path.read_text(), str(path.relative_to(ROOT)))]
    assert found == []


# -- build: the task says how to construct, the executor only instantiates --------------------------
def test_build_instantiates_with_exactly_the_arguments_the_grader_sends():
    import torch

    class Anything(torch.nn.Module):
        def __init__(self, first, *, second):
            super().__init__()
            self.first, self.second = first, second

    executor = Executor({"course": ""})
    executor.blobs = []
    executor.namespace.update(Anything=Anything, model=Anything(0, second=0), width=7)
    by_class = executor.answer(
        {"op": commands.BUILD, "slot": "a", "target": "Anything", "args": [3], "kwargs": {"$dict": {"second": 4}}}
    )
    assert by_class == {"ok": True, "value": {"built": "Anything"}, "records": {}}
    assert (executor.slots["a"].first, executor.slots["a"].second) == (3, 4)
    of_model = executor.answer(
        {
            "op": commands.BUILD,
            "slot": "b",
            "target": "model",
            "class_of": True,
            "args": [{"$name": "width"}],
            "kwargs": {"$dict": {"second": {"$tuple": [5]}}},
        }
    )
    assert of_model["ok"], of_model
    assert type(executor.slots["b"]) is Anything and (executor.slots["b"].first, executor.slots["b"].second) == (
        7,
        (5,),
    )


def test_the_executor_knows_no_constructor_of_the_course():
    """The course's UNet signature lives in tasks/generation/stages.py, not in the child's code."""
    for path in EXECUTOR_DIR.glob("*.py"):
        text = path.read_text()
        for word in ("down_chs", "t_embed_dim", "c_embed_dim", "IMG_CH", "N_CLASSES"):
            assert word not in text, (path.name, word)


def test_the_generation_task_builds_the_course_unet_from_the_notebooks_settings():
    from tasks.generation import stages

    sent = []

    class RecordingContext:
        def describe(self, *names):
            return {"T": {"type": "int", "value": "150"}}  # the notebook defines T only

        def ask(self, op, **payload):
            sent.append((op, payload))
            return {"built": "UNet"}, {}

    stages.build(RecordingContext(), "narrow", [16, 32, 64])
    course_unet = {"down_chs": (16, 32, 64), "t_embed_dim": 8, "c_embed_dim": 10}
    assert sent == [
        (
            commands.BUILD,
            {
                "slot": "narrow",
                "target": "model",
                "class_of": True,
                "args": [{"$name": "T"}, 1, 28],
                "kwargs": course_unet,
            },
        )
    ]
