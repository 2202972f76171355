"""Valid notebooks that are not the course's exact layout keep every verdict of the example.

The cases are in tests/corpus/variants.py; each is graded on the eight unit tasks (two grades at a
time, one torch thread each, as tests/test_grading_corpus.py does) and checked with that module's
`check`: every task passed with the message "correct".
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import pytest
from test_grading_corpus import UNIT_TASKS, check

from corpus.mutants import write_case
from corpus.variants import VARIANTS
from grader.grading.runner import grade

WORKERS = int(os.environ.get("DLI_GRADE_TEST_WORKERS", min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Every variant graded up front; name -> (path, GradeResult or the exception)."""
    folder = tmp_path_factory.mktemp("variants")
    paths = {case.name: write_case(case, folder) for case in VARIANTS}
    outcomes = {}
    with pytest.MonkeyPatch.context() as patch:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            patch.setenv(name, "1")
        with ProcessPoolExecutor(max(1, WORKERS), mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {
                case.name: pool.submit(
                    grade, str(paths[case.name]), task_ids=UNIT_TASKS, timeout=case.timeout, device="cpu"
                )
                for case in VARIANTS
            }
            for name, future in futures.items():
                try:
                    outcomes[name] = future.result()
                except Exception as error:  # reported by the case's own test
                    outcomes[name] = error
    return {name: (paths[name], outcomes[name]) for name in paths}


@pytest.mark.parametrize("case", VARIANTS, ids=[case.name for case in VARIANTS])
def test_variant_is_graded_as_the_example(case, graded):
    path, result = graded[case.name]
    if isinstance(result, Exception):
        raise result
    check(case, result, path)


def test_every_variant_changes_the_example(tmp_path):
    for case in VARIANTS:
        assert write_case(case, tmp_path).read_text(encoding="utf-8") != write_case(
            case.__class__(case.name), tmp_path
        ).read_text(encoding="utf-8")


def test_reverse_q_is_judged_at_steps_every_accepted_T_has():
    """T = 50 asked reverse_q for t = 49 but judged index 75 (an IndexError for correct work)."""
    from tasks import reverse_q

    for T in range(2, 400):
        steps = reverse_q.steps_for(T)
        assert steps[0] == 0 and steps[1] == 1 and max(steps) == min(75, T - 1), (T, steps)
        assert len(set(steps)) == len(steps)


GENERATION_VARIANTS = ("variant_optimizer_own_cell", "variant_loop_in_function")


@pytest.mark.slow
@pytest.mark.parametrize("name", GENERATION_VARIANTS)
def test_variant_passes_generation_with_its_short_training(name, tmp_path):
    """The variants that move the optimizer or the loop also pass generation (about two minutes each on
    a 2-core CPU): the short training check trains the grader's model through the student's own cell."""
    case = next(case for case in VARIANTS if case.name == name)
    result = grade(
        write_case(case, tmp_path), ["generation"], device="cpu", generation={"artifacts_dir": tmp_path / "artifacts"}
    )
    (task,) = result.tasks
    assert task.status == "passed" and task.score == 28, task.message
    assert "short_training" in task.details
