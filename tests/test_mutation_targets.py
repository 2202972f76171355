"""benchmarks/mutation_check.py stays usable: each mutant's target text occurs exactly once.

The check itself runs by hand (see CONTRIBUTING.md); this keeps a change to `reference/` or to a
task's judge from silently disabling one of its mutants.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

import tasks

ROOT = Path(__file__).resolve().parent.parent


def load_check():
    spec = importlib.util.spec_from_file_location("mutation_check", ROOT / "benchmarks" / "mutation_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


CHECK = load_check()
ALL = CHECK.MUTANTS + CHECK.TASK_MUTANTS


def test_mutant_ids_are_unique():
    ids = [m.id for m in ALL]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("mutant", ALL, ids=lambda m: m.id)
def test_mutant_target_occurs_once_and_the_mutation_compiles(mutant):
    assert mutant.file.startswith(("reference/", "tasks/"))
    assert CHECK.target_problems([mutant]) == []
    arguments = iter(mutant.tests)
    for test in arguments:
        if test == "-k":  # a pytest option and its value
            next(arguments)
        elif test.startswith("corpus:"):
            assert test.split(":", 1)[1] in tasks.TASK_IDS, test
        else:
            assert (ROOT / test.split("::")[0]).is_file(), test
