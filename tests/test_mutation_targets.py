"""benchmarks/mutation_check.py stays usable: each mutant's target text occurs exactly once.

The check itself runs by hand (see CONTRIBUTING.md); this keeps a change to `reference/` from
silently disabling one of its mutants.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_mutants():
    spec = importlib.util.spec_from_file_location("mutation_check", ROOT / "benchmarks" / "mutation_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module.MUTANTS


MUTANTS = load_mutants()


def test_mutant_ids_are_unique():
    ids = [m.id for m in MUTANTS]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.id)
def test_mutant_target_occurs_once_and_changes_the_source(mutant):
    assert mutant.file.startswith("reference/")
    source = (ROOT / mutant.file).read_text()
    assert source.count(mutant.old) == 1
    assert mutant.old != mutant.new
    for test_file in mutant.tests:
        assert (ROOT / test_file).is_file(), test_file
