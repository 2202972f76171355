"""Grade the corpus of tests/corpus/mutants.py and check the exact verdict of every task.

Each case is written to a temporary folder (a mutant is the example with exact text edits),
graded on all eight unit tasks through `grader.grading.runner.grade`, and checked task by task: the
status, phrases of the message and hints, and the cell (and line) the location points to.

Grading is mostly the child's start (imports, the student's cells), so the cases selected in a
run are graded up front, two at a time in worker processes (DLI_GRADE_TEST_WORKERS changes
that), each child on one thread so that two of them share a 2-core machine without thrashing.
"""

from __future__ import annotations

import multiprocessing
import os
import re
from concurrent.futures import ProcessPoolExecutor

import pytest
import torch

import tasks
from corpus import mutants as corpus  # tests/ is on sys.path (pytest's default import mode)
from grader.grading.runner import grade
from grader.submission.cells import load_submission

CASES, CORRECT, MUTANTS, SOURCES = corpus.CASES, corpus.CORRECT, corpus.MUTANTS, corpus.SOURCES
Case, apply_edits, write_case = corpus.Case, corpus.apply_edits, corpus.write_case

# The eight unit tasks (the generation task, which samples digits, is not part of this corpus).
UNIT_TASKS = tuple(getattr(tasks, "UNIT_TASK_IDS", tasks.TASK_IDS))
CELL_REFERENCE = re.compile(r"\{cell:([^}]+)\}")


def cell_holding(path, snippet: str) -> int:
    """The number of the one code cell whose source contains `snippet`."""
    cells = [cell.number for cell in load_submission(path).cells if snippet in cell.source]
    assert len(cells) == 1, f"{snippet!r} is in cells {cells} of {path.name}, expected exactly one"
    return cells[0]


def expand(text: str, path) -> str:
    """Replace each {cell:SNIPPET} by the number of the cell holding SNIPPET."""
    return CELL_REFERENCE.sub(lambda match: str(cell_holding(path, match.group(1))), text)


def check(case: Case, result, path) -> None:
    """Every task's status, message phrases, hints and location, as the case expects."""
    by_id = {task.id: task for task in result.tasks}
    assert list(by_id) == list(UNIT_TASKS)
    summary = "\n".join(f"{t.id}: {t.status}: {t.message} {t.hints} {t.location}" for t in result.tasks)
    for task_id, task in by_id.items():
        if task_id in case.failed:
            assert task.status == "failed", summary
            assert task.score < task.max_score, summary
            for phrase in case.failed[task_id]:
                assert expand(phrase, path) in task.message, summary
        else:
            assert task.status == "passed", summary
            assert task.score == task.max_score, summary
            assert task.message.startswith("correct"), summary
            expected_notes = case.passed_with.get(task_id, ())
            for phrase in expected_notes:
                assert phrase in task.message, summary
            if not expected_notes:
                assert task.message == "correct", summary
        for phrase in case.absent.get(task_id, ()):
            assert phrase not in task.message, summary
        for phrase in case.hints.get(task_id, ()):
            assert any(phrase in hint for hint in task.hints), summary
        if task_id not in case.hints and task.status == "passed":
            assert not task.hints, summary
        if task_id in case.at:
            snippet, line = case.at[task_id]
            assert task.location is not None, summary
            assert task.location.cell == cell_holding(path, snippet), summary
            if line is not None:
                assert task.location.line == line, summary
    assert result.passed == (not case.failed)


WORKERS = int(os.environ.get("DLI_GRADE_TEST_WORKERS", min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="module")
def graded(request, tmp_path_factory):
    """Grade every corpus case selected in this run; name -> (path, GradeResult or the exception)."""
    selected = [
        item.callspec.params["case"]
        for item in request.session.items
        if getattr(item, "originalname", None) == "test_case" and item.module is request.module
    ]
    folder = tmp_path_factory.mktemp("corpus")
    paths = {case.name: write_case(case, folder) for case in selected}
    outcomes = {}
    with pytest.MonkeyPatch.context() as patch:
        # Workers inherit this environment, and the sandbox hands it on to the student's child.
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            patch.setenv(name, "1")
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max(1, WORKERS), mp_context=context) as pool:
            futures = {
                case.name: pool.submit(
                    grade, str(paths[case.name]), task_ids=UNIT_TASKS, timeout=case.timeout, device="cpu"
                )
                for case in selected
            }
            for name, future in futures.items():
                try:
                    outcomes[name] = future.result()
                except Exception as error:  # reported by the case's own test
                    outcomes[name] = error
    return {name: (paths[name], outcomes[name]) for name in paths}


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_case(case, graded):
    path, result = graded[case.name]
    if isinstance(result, Exception):
        raise result
    check(case, result, path)


# -- the corpus itself ----------------------------------------------------------------------


def test_case_names_are_unique():
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", [pytest.param(case, id=case.name) for case in CASES])
def test_every_edit_changes_the_source(case, tmp_path):
    """A mutant differs from its source, and every expected task id exists."""
    path = write_case(case, tmp_path)
    named = set(case.failed) | set(case.passed_with) | set(case.hints) | set(case.at) | set(case.absent)
    assert named <= set(UNIT_TASKS)
    if case.edits:
        assert path.read_bytes() != SOURCES[case.source].read_bytes()


def test_every_task_has_a_mutant():
    failing = {task for case in MUTANTS for task in case.failed}
    assert failing == set(UNIT_TASKS)
    assert all(len(case.failed) == 1 for case in MUTANTS)
    assert all(not case.failed for case in CORRECT)


def test_apply_edits_refuses_a_missing_or_repeated_target():
    with pytest.raises(AssertionError):
        apply_edits("a = 1\n", [("b = 2", "b = 3")])
    with pytest.raises(AssertionError):
        apply_edits("a = 1\na = 1\n", [("a = 1", "a = 2")])
    assert apply_edits("a = 1\n", [("a = 1", "a = 2")]) == "a = 2\n"


# -- the context mask's keep-rate band, judged directly (benchmarks/mutation_check.py) --------------
class _Where:
    """The one thing context_mask.judge asks of its context: where the function is."""

    def locate(self, name):
        return None


def _mask_keeping(fraction: float, generator: torch.Generator) -> torch.Tensor:
    """A (1000, 10) binary mask with exactly round(fraction * 10000) ones, at random places."""
    flat = torch.zeros(10_000)
    flat[torch.randperm(10_000, generator=generator)[: round(fraction * 10_000)]] = 1.0
    return flat.view(1000, 10)


@pytest.mark.parametrize(
    "at_01, at_05, failure",
    [
        (0.88, 0.47, None),  # 2 and 3 points off: sampling noise allows that
        (0.85, 0.50, "with drop_prob 0.1 it keeps 85%"),  # 5 points off at 0.1: more than 0.03
        (0.90, 0.45, "with drop_prob 0.1 it keeps 90%"),  # 5 points off at 0.5: more than 0.04
    ],
)
def test_mask_judge_keep_rate_band(at_01, at_05, failure):
    """A mask keeping 1 - drop_prob within 0.03 at 0.1 and 0.04 at 0.5 passes (10,000 draws have a
    standard deviation of 0.003 and 0.005 there); further off fails (the message names the rate at 0.1)."""
    import torch.nn.functional as F

    from tasks import context_mask

    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(1000) % 10
    data = {"labels": labels}
    for name, keep in (("0.0", 1.0), ("0.1", at_01), ("0.5", at_05), ("1.0", 0.0), ("0.1-again", at_01)):
        data[f"c_hot.{name}"] = F.one_hot(labels, 10)
        data[f"c_mask.{name}"] = _mask_keeping(keep, generator)
    verdict = context_mask.judge(data, _Where())
    if failure is None:
        assert verdict.passed, verdict.failures
    else:
        assert not verdict.passed and failure in verdict.failures[0], verdict.failures
