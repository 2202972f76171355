"""The packages depend on each other in one direction only, and no two modules import each other.

Every import of every module of `grader`, `tasks` and `reference` is read from its source (AST:
imports inside functions and under `if TYPE_CHECKING:` count too, and so do `import_module("...")`
calls with a literal name), so a lazy import cannot hide a dependency or a circle.

The layers, lowest first; a module may import its own layer and the layers below it:

    grader.core (and the `grader` package itself: the version)
    grader.submission
    grader.sandbox
    tasks, reference          tasks use grader.core and grader.submission only; reference uses no tasks
    grader.grading
    grader.report
    grader.cli_options        the options the grade and batch commands share
    grader.batch
    grader.cli, grader.selfcheck, grader.init_ci, grader.__main__, dli_grade's grader_side

Some modules run where the grader's packages are not there, and import only their own kind:
`grader/sandbox/executor/` (imported as `executor` in the child), `grader/sandbox/launcher.py`
(runs alone, standard library only), `grader/dli_grade/` (imported as `dli_grade` in the student's
kernel; its `grader_side` runs as its own process) and `reference/course/` (the course's helpers).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("grader", "tasks", "reference")

LAYERS = (
    ("grader.core", "grader"),
    ("grader.submission",),
    ("grader.sandbox",),
    ("tasks", "reference"),
    ("grader.grading",),
    ("grader.report",),
    ("grader.cli_options",),
    ("grader.batch",),
    ("grader.cli", "grader.selfcheck", "grader.init_ci", "grader.__main__", "grader.dli_grade.grader_side"),
)
# Stricter than the layer order: what a package may import, beside itself.
ONLY = {
    "tasks": ("grader.core", "grader.submission", "grader.sandbox.executor.commands", "reference"),
    "reference": ("grader.core", "grader.submission", "grader.sandbox"),
}
# Code that runs apart from the grader: it may import its own group and nothing else of the project.
APART = ("grader.sandbox.executor", "grader.sandbox.launcher", "grader.dli_grade", "reference.course")
# Of the code apart, what the grader may import: the command names both sides of the pipe share
# (standard library only; tests/test_executor_commands.py checks it) and a frame's layout and dtypes.
SHARED = ("grader.sandbox.executor.commands", "grader.sandbox.executor.frame_format")
# Names under which the code that runs apart imports itself (the course helpers: only among themselves).
ALIASES = {"executor": "grader.sandbox.executor", "dli_grade": "grader.dli_grade"}
COURSE_ALIASES = {"utils": "reference.course.utils", "run_assessment": "reference.course.run_assessment"}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module of the project
    line: int

    def __str__(self) -> str:
        return f"{self.source} (line {self.line}) imports {self.target}"


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_sources(root: Path = ROOT) -> dict[str, tuple[str, bool]]:
    """Every module of the project: its name -> (source, whether it is a package's __init__)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            found[module_name(path, root)] = (path.read_text(encoding="utf-8"), path.name == "__init__.py")
    return found


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _unalias(name: str, importer: str) -> str:
    head, _, rest = name.partition(".")
    aliases = {**ALIASES, **COURSE_ALIASES} if _within(importer, "reference.course") else ALIASES
    if head not in aliases:
        return name
    return f"{aliases[head]}.{rest}" if rest else aliases[head]


def _named_modules(node: ast.AST, importer: str, is_package: bool) -> list[str]:
    """The dotted names an import statement or an import_module("...") call asks for."""
    if isinstance(node, ast.Import):
        return [_unalias(alias.name, importer) for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level:
            package = importer.split(".") if is_package else importer.split(".")[:-1]
            base = ".".join(package[: len(package) - (node.level - 1)])
            module = f"{base}.{node.module}" if node.module else base
        else:
            module = _unalias(node.module or "", importer)
        return [f"{module}.{alias.name}" for alias in node.names] + [module]
    if (
        isinstance(node, ast.Call)
        and ast.unparse(node.func).split(".")[-1] in ("import_module", "__import__")
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ):
        return [_unalias(node.args[0].value, importer)]
    return []


def imports_of(sources: dict[str, tuple[str, bool]]) -> tuple[list[Import], list[Import]]:
    """(imports between modules of the project, imports of project names that are no module)."""
    edges, missing = [], []
    for importer, (source, is_package) in sources.items():
        for node in ast.walk(ast.parse(source)):
            names = _named_modules(node, importer, is_package)
            if not names or names[-1].split(".")[0] not in PACKAGES:
                continue
            if isinstance(node, ast.ImportFrom):
                # `from pkg import x`: the module pkg.x when there is one, else pkg itself.
                *submodules, module = names
                targets = [name for name in submodules if name in sources] or [module]
            else:
                targets = names
            for target in targets:
                # `import a.b.c` imports the module a.b.c; `import_module("a.b")` likewise.
                known = target if target in sources else None
                edge = Import(importer, known or target, node.lineno)
                (edges if known else missing).append(edge)
    return edges, missing


def _layer(module: str) -> int | None:
    best, found = -1, None
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if _within(module, prefix) and len(prefix) > best:
                best, found = len(prefix), index
    return found


def _group(module: str, prefixes) -> str | None:
    matching = [prefix for prefix in prefixes if _within(module, prefix)]
    return max(matching, key=len) if matching else None


def layer_violations(edges: list[Import]) -> list[str]:
    problems = []
    for edge in edges:
        if edge.source == edge.target:
            continue
        apart = _group(edge.source, APART)
        if apart and edge.source != "grader.dli_grade.grader_side":  # runs as its own process, in the grader
            if not _within(edge.target, apart):
                problems.append(f"{edge}: {apart} runs apart from the grader and imports only itself")
            continue
        if _group(edge.target, APART) and not _group(edge.target, SHARED):
            problems.append(f"{edge}: {_group(edge.target, APART)} runs apart; the grader does not import it")
            continue
        source_layer, target_layer = _layer(edge.source), _layer(edge.target)
        if source_layer is None or target_layer is None:
            problems.append(f"{edge}: a module in no layer (add it to LAYERS in tests/test_layers.py)")
        elif target_layer > source_layer:
            problems.append(f"{edge}: an import against the layer order (layer {source_layer} < {target_layer})")
        only = ONLY.get(_group(edge.source, ONLY) or "")
        own = _group(edge.source, ONLY)
        if only is not None and not _within(edge.target, own) and not any(_within(edge.target, p) for p in only):
            problems.append(f"{edge}: {own} may import only {', '.join(only)}")
    return problems


def circles(edges: list[Import]) -> list[list[str]]:
    """Groups of modules that import each other (strongly connected components, Tarjan), each sorted."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        if edge.source != edge.target:
            graph.setdefault(edge.source, set()).add(edge.target)
            graph.setdefault(edge.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(node: str) -> None:  # recursion depth is bounded by the ~100 modules of the project
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for after in sorted(graph[node]):
            if after not in index:
                visit(after)
                low[node] = min(low[node], low[after])
            elif after in on_stack:
                low[node] = min(low[node], index[after])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def _describe(circle: list[str], edges: list[Import]) -> str:
    inside = sorted({str(edge) for edge in edges if edge.source in circle and edge.target in circle})
    return " <-> ".join(circle) + ":\n    " + "\n    ".join(inside)


# --- the project -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def project():
    sources = project_sources()
    assert {"grader.cli", "grader.sandbox.executor.main", "tasks.q", "reference.unet"} <= set(sources)
    return imports_of(sources)


def test_no_import_circles(project):
    edges, _ = project
    found = circles(edges)
    assert not found, "modules that import each other:\n" + "\n".join(_describe(c, edges) for c in found)


def test_imports_follow_the_layers(project):
    edges, _ = project
    problems = layer_violations(edges)
    assert not problems, "\n".join(problems)


def test_every_import_of_the_project_names_a_module(project):
    _, missing = project
    assert not missing, "\n".join(f"{edge}, which does not exist" for edge in missing)


def test_every_module_has_a_layer():
    for module in project_sources():
        assert _layer(module) is not None or _group(module, APART), module


# --- the checker itself: it catches what it must -------------------------------------------------


def _fake(**modules: str) -> dict[str, tuple[str, bool]]:
    return {name.replace("__", "."): (source, False) for name, source in modules.items()}


def test_checker_finds_a_circle_through_a_lazy_import_and_type_checking():
    sources = _fake(
        grader__grading__a="def f():\n    from grader.grading.b import g\n",
        grader__grading__b="from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from grader.grading import c\n",
        grader__grading__c="import grader.grading.a\n",
        grader__grading__d="from grader.grading.a import f\n",
    )
    edges, missing = imports_of(sources)
    assert missing == []
    assert circles(edges) == [["grader.grading.a", "grader.grading.b", "grader.grading.c"]]


def test_checker_finds_imports_against_the_layers():
    sources = _fake(
        grader__core__x="from grader.submission.y import z\n",
        grader__submission__y="import importlib\nimportlib.import_module('grader.cli')\nz = 1\n",
        tasks__t="from grader.grading import r\nfrom grader.core import x\nfrom reference import u\n",
        reference__u="from tasks import t\n",
        grader__grading__r="from grader.sandbox.executor import w\n",
        grader__sandbox__executor__w="from executor import v\nfrom grader.core import x\n",
        grader__sandbox__executor__v="",
        grader__cli="from grader.core import x\nfrom grader.batch import q\n",
        grader__batch__q="",
    )
    edges, missing = imports_of(sources)
    assert missing == []
    found = layer_violations(edges)
    expected = [
        "grader.core.x (line 1) imports grader.submission.y",
        "grader.submission.y (line 2) imports grader.cli",
        "tasks.t (line 1) imports grader.grading.r",  # against the layers, and not what tasks may use
        "tasks.t (line 1) imports grader.grading.r",
        "reference.u (line 1) imports tasks.t",
        "grader.grading.r (line 1) imports grader.sandbox.executor.w",
        "grader.sandbox.executor.w (line 2) imports grader.core.x",
    ]
    assert sorted(problem.split(":")[0] for problem in found) == sorted(expected)


def test_checker_reports_imports_of_modules_that_do_not_exist():
    edges, missing = imports_of(_fake(grader__cli="def f():\n    from grader.gone import x\n"))
    assert edges == [] and [str(edge) for edge in missing] == ["grader.cli (line 2) imports grader.gone"]
