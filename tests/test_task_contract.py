"""The contract between the grader and a task: a task is one module in tasks/ that declares `TASK`.

A new task module put on the package's path (no other file edited) must be discovered, placed by
its `order`, listed by the CLI's --help, accepted by --tasks, graded, and shown by the reports
through its own hooks. The grader's `Context` must offer everything the `tasks.context.Context`
protocol promises, and the options the grader reads come from typed fields.
"""

from __future__ import annotations

import inspect
import json
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from click.testing import CliRunner

import tasks
from grader.cli import main  # imported before any task is added: its help must still list a task added later
from grader.core.errors import UnusableInput
from tasks.declaration import Task, TaskOptions

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "submission.py"
# The assessment's order, as the course's notebook asks for the answers (docs/course.md).
COURSE_ORDER = ("schedule", "q", "reverse_q", "blocks", "context_mask", "loss", "training_loop", "guidance")

# A whole new task, as an author would write it: it calls the student's q on the grader's batch and
# passes when q returns (x_t, noise) shaped like x_0; its report hooks show a figure of its own.
TOY_TASK = '''
"""Task `toy`: q returns a pair of tensors shaped like x_0."""

from __future__ import annotations

import html

import torch

from tasks.base import Verdict, pair_of_tensors
from tasks.context import Context
from tasks.declaration import Task

ID = "toy"
POINTS = 3


def check(context: Context) -> Verdict:
    x_0 = torch.rand(4, 1, 28, 28, generator=context.generator(ID))
    value, _records = context.call("q", x_0, torch.tensor([0.0, 1.0, 2.0, 3.0]))
    x_t, noise = pair_of_tensors(value, "q", "x_t, noise")
    verdict = Verdict(location=context.locate("q"))
    verdict.check(x_t.shape == x_0.shape == noise.shape, POINTS, "q returned the wrong shapes")
    verdict.details["toy_figure"] = 42
    return verdict


TASK = Task(
    id=ID,
    title="A toy task added by one module",
    points=POINTS,
    order={order},
    needs=("q",),
    answers=("toy_answer",),
    check=check,
    text_details=lambda details: [f"toy figure: {{details.get('toy_figure')}}"],
    html_details=lambda details, base: f"<section id='toy'>{{html.escape(str(details.get('toy_figure')))}}</section>",
    result_fields=lambda details: {{"toy_figure": details.get("toy_figure")}},
)
'''


def _put_on_path(folder: Path, name: str, source: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")


@pytest.fixture
def extra_tasks(tmp_path, monkeypatch):
    """A folder on the `tasks` package's path: a module written there is a module of `tasks`."""
    folder = tmp_path / "more_tasks"
    folder.mkdir()
    monkeypatch.setattr(tasks, "__path__", [*tasks.__path__, str(folder)])
    yield folder
    monkeypatch.undo()
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", "")).startswith(str(folder)):
            del sys.modules[name]
    tasks.rediscover()


@pytest.fixture
def toy(extra_tasks):
    _put_on_path(extra_tasks, "toy", TOY_TASK.format(order=25))
    tasks.rediscover()
    return tasks.get_task("toy")


def test_the_registry_finds_the_courses_tasks_in_the_courses_order():
    ids, unit_ids = tasks.TASK_IDS, tasks.UNIT_TASK_IDS
    assert ids == (*COURSE_ORDER, "generation")
    assert unit_ids == COURSE_ORDER  # generation trains and samples: not a quick unit task
    assert tasks.get_task("training_loop").uses_training_cell and tasks.get_task("generation").uses_training_cell
    assert not tasks.get_task("q").uses_training_cell
    assert sum(task.points for task in tasks.all_tasks()) == 50  # the assessment's 50 points
    with pytest.raises(KeyError):
        tasks.get_task("nope")


def test_a_task_module_dropped_into_the_package_is_discovered_listed_and_graded(toy):
    ids, unit_ids = tasks.TASK_IDS, tasks.UNIT_TASK_IDS
    assert ids == ("schedule", "q", "toy", *COURSE_ORDER[2:], "generation")  # order 25: after q
    assert unit_ids == ("schedule", "q", "toy", *COURSE_ORDER[2:])
    runner = CliRunner()
    listed = runner.invoke(main, ["grade", "--help"], terminal_width=400)
    assert listed.exit_code == 0 and "default: all of schedule,q,toy,reverse_q" in listed.output
    batch_help = runner.invoke(main, ["batch", "--help"], terminal_width=400)
    assert "choose from schedule,q,toy,reverse_q" in batch_help.output

    graded = runner.invoke(
        main,
        [
            str(EXAMPLE),
            "--tasks",
            "toy",
            "--device",
            "cpu",
            "--allow-uncontained",
            "-q",
            "--format",
            "json",
            "--seed",
            "1",
        ],
    )
    assert graded.exit_code == 0, graded.output
    document = json.loads(graded.stdout)
    (task,) = document["tasks"]
    assert (task["id"], task["status"], task["score"], task["max_score"]) == ("toy", "passed", 3, 3)
    assert task["title"] == "A toy task added by one module" and task["details"] == {"toy_figure": 42}
    assert document["toy_figure"] == 42  # the task's result_fields hook, at the top of the document


def test_a_task_unknown_to_the_registry_is_refused_by_tasks(extra_tasks):
    refused = CliRunner().invoke(main, [str(EXAMPLE), "--tasks", "toy", "--allow-uncontained"])
    assert refused.exit_code == 2 and "unknown task id(s) toy" in refused.output


def test_the_reports_show_what_the_tasks_own_hooks_render(toy):
    from grader.grading.result import GradeResult, TaskResult
    from grader.report.html import render
    from grader.report.text import render_text

    result = GradeResult(
        "s.py",
        "0" * 64,
        "A",
        "cpu",
        [TaskResult("toy", toy.title, 3, 3, "passed", "correct", details={"toy_figure": 7})],
    )
    text = render_text(result)
    assert "        toy figure: 7" in text.splitlines()
    assert "<section id='toy'>7</section>" in render(result.to_json())
    assert result.to_json()["toy_figure"] == 7
    plain = GradeResult("s.py", "0" * 64, "A", "cpu", [TaskResult("q", "Q", 2, 2, "passed", "correct", details={})])
    assert "toy figure" not in render_text(plain) and "toy_figure" not in plain.to_json()


def test_no_output_or_runner_code_names_a_task():
    # Task knowledge lives in tasks/: the grader's output code and runner reach a task only through its declaration.
    files = ["grader/grading/runner.py", "grader/grading/result.py", "grader/report/text.py", "grader/report/html.py"]
    for name in files:
        code = (ROOT / name).read_text(encoding="utf-8")
        for task_id in tasks.TASK_IDS:
            assert f'"{task_id}"' not in code and f"'{task_id}'" not in code, (name, task_id)


def test_similarity_compares_the_answers_the_declarations_name(toy):
    from grader.batch.similarity import answer_names

    # The FIXME cells' names, listed by hand from the notebook (docs/course.md), plus the toy's answer.
    expected = {"B", "a", "a_bar", "sqrt_a_bar", "sqrt_one_minus_a_bar", "sqrt_a_inv", "pred_noise_coeff", "q"}
    expected |= {"reverse_q", "GELUConvBlock", "RearrangePoolBlock", "DownBlock", "UpBlock", "UNet"}
    expected |= {"SinusoidalPositionEmbedBlock", "EmbedBlock", "ResidualConvBlock", "get_context_mask", "get_loss"}
    expected |= {"sample_w", "c_drop_prob", "w", "toy_answer"}
    assert answer_names() == expected


@pytest.mark.parametrize(
    ("source", "error"),
    [
        (TOY_TASK.format(order=20), "tasks q and toy both declare order 20"),
        (TOY_TASK.format(order=25).replace('ID = "toy"', 'ID = "other"'), "declares the id 'other'"),
        ("TASK = 'toy'\n", "is a str, not a Task"),
    ],
)
def test_a_clashing_or_malformed_declaration_is_refused_by_name(extra_tasks, source, error):
    _put_on_path(extra_tasks, "toy", source)
    with pytest.raises((ValueError, TypeError), match=error):
        tasks.rediscover()


def test_a_module_without_a_declaration_is_a_helper_not_a_task(extra_tasks):
    _put_on_path(extra_tasks, "helper", "VALUE = 1\n")
    assert [task.id for task in tasks.rediscover()] == [*COURSE_ORDER, "generation"]


def _check(context):
    raise AssertionError("not called")


def test_options_are_typed_and_chosen_by_the_declaration():
    from grader.grading.runner import task_options

    plain = Task(id="plain", title="t", points=1, order=1, check=_check)
    assert plain.options("cpu", "s") == TaskOptions()
    with pytest.raises(ValueError, match="task plain takes no options"):
        plain.options("cpu", "s", {"profile": "train"})
    untyped = Task(id="untyped", title="t", points=1, order=1, check=_check, choose_options=lambda device, stem: {})
    with pytest.raises(TypeError, match="choose_options returned dict, not TaskOptions"):
        untyped.options("cpu", "s")
    with pytest.raises(UnusableInput, match="task plain takes no options"):
        task_options([plain], "cpu", "s", {"plain": {"profile": "train"}})

    generation = tasks.get_task("generation")
    course = generation.options("cpu", "s", {"profile": "course", "force": True})
    # The course flow's notebook reads ./data as written: its child alone is given MNIST, read-only.
    assert (type(course).__name__, course.profile, course.timeout, sorted(course.child_mounts)) == (
        "GenerationOptions",
        "course",
        24 * 3600.0,
        ["data"],
    )
    with pytest.raises(UnusableInput, match="--profile must be auto"):
        task_options([generation], "cpu", "s", {"generation": {"profile": "gpu"}})


def test_the_grader_reads_timeout_and_mounts_from_the_typed_options(tmp_path):
    from grader.grading.context import Context
    from grader.grading.session import _child_mounts

    grading = SimpleNamespace(
        seed=1, device="cpu", analysis=None, submission=SimpleNamespace(cells=()), timeout=60.0, failed_tasks=["q"]
    )
    assert Context(grading, "toy", TaskOptions()).timeout == 60.0
    assert Context(grading, "toy", TaskOptions(timeout=5.0)).timeout == 5.0
    mounts = {"a": TaskOptions(child_mounts={"official": tmp_path}), "b": TaskOptions()}
    assert _child_mounts(mounts) == {"official": tmp_path}


def test_a_grade_refuses_options_for_a_task_that_does_not_exist():
    from grader.grading.runner import grade

    with pytest.raises(TypeError, match="options for generaton, which is no task id"):
        grade(str(EXAMPLE), ["q"], generaton={"profile": "train"})


def test_the_grader_context_offers_every_member_of_the_protocol():
    from grader.grading.context import Context as GraderContext
    from tasks.context import Context as Protocol

    grading = SimpleNamespace(
        seed=1, device="cpu", analysis=None, submission=SimpleNamespace(cells=()), timeout=60.0, failed_tasks=[]
    )
    context = GraderContext(grading, "toy", TaskOptions())
    attributes = {name for name, member in vars(Protocol).items() if isinstance(member, property)}
    methods = {name for name, member in vars(Protocol).items() if inspect.isfunction(member) and name[0] != "_"}
    assert {"seed", "device", "options", "timeout", "analysis", "cells", "failed_before"} <= attributes
    assert {"call", "get", "describe", "ask", "generator", "locate", "progress"} <= methods
    for name in attributes:
        assert hasattr(context, name), name
    for name in methods:
        promised = inspect.signature(getattr(Protocol, name))
        assert list(inspect.signature(getattr(GraderContext, name)).parameters) == list(promised.parameters), name
    assert isinstance(context.generator("toy"), torch.Generator)
