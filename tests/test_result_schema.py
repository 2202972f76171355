"""The shipped JSON Schema of `dli-grade/result/v1` accepts real output and rejects broken documents."""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import pytest

from grader.grading.result import SCHEMA, GradeResult, Location, TaskResult, json_schema

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def validator():
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.fixture(scope="module")
def graded():
    from grader.grading.runner import grade

    return grade(ROOT / "examples" / "submission.py", ["schedule", "q"], device="cpu").to_json()


def test_real_output_validates(validator, graded):
    validator.validate(graded)
    assert graded["schema"] == SCHEMA
    assert [task["id"] for task in graded["tasks"]] == ["schedule", "q"]
    assert graded["passed"] is True and graded["score"] == graded["max_score"] == 7


def good() -> dict:
    """A hand-built document with every optional part present."""
    result = GradeResult(
        submission="student.ipynb",
        sha256="0" * 64,
        layout="B",
        device="cpu",
        tasks=[
            TaskResult("q", "forward diffusion", 2, 2, "passed"),
            TaskResult(
                "reverse_q",
                "reverse step",
                0,
                3,
                "failed",
                "variance is B[t]",
                hints=["use B[t - 1]"],
                location=Location(7, 12),
                details={"t": [1, 2]},
            ),
            TaskResult(
                "generation",
                "digits",
                0,
                28,
                "error",
                location=Location(None, None),
                details={"official_accuracy": 0.5, "official_passed": False},
            ),
        ],
        integrity=["cell 3 was edited"],
        duration_s=12.3,
        timings={"q": 1.5},
    )
    document = result.to_json()
    document["profile"] = "cpu"
    document["sandbox"] = {
        "layers": {
            "netns": {"held": True, "detail": "own network namespace"},
            "landlock": {"held": False, "detail": "kernel too old"},
        }
    }
    return document


def test_hand_built_document_with_every_optional_part_validates(validator):
    document = good()
    assert "official_accuracy" in document and "official_passed" in document
    validator.validate(document)


def _drop(key):
    def edit(d):
        del d[key]

    return edit


def _set(*path_and_value):
    *path, value = path_and_value

    def edit(d):
        target = d
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value

    return edit


BROKEN = {
    "wrong schema id": _set("schema", "dli-grade/result/v2"),
    "missing tasks": _drop("tasks"),
    "missing sha256": _drop("sha256"),
    "sha256 not hex": _set("sha256", "z" * 64),
    "unknown layout": _set("layout", "C"),
    "negative score": _set("score", -1),
    "passed as string": _set("passed", "yes"),
    "unknown top-level field": _set("verdict", "ok"),
    "unknown task status": _set("tasks", 0, "status", "partial"),
    "a status the grader never gives": _set("tasks", 0, "status", "skipped"),
    "task without hints": lambda d: d["tasks"][0].pop("hints"),
    "hints not strings": _set("tasks", 0, "hints", [3]),
    "cell numbered from 0": _set("tasks", 1, "location", "cell", 0),
    "location as text": _set("tasks", 1, "location", "cell 7"),
    "details not an object": _set("tasks", 0, "details", []),
    "timing not a number": _set("timings", "q", "1.5 s"),
    "accuracy above 1": _set("official_accuracy", 48),
    "accuracy without its verdict": _drop("official_passed"),
    "sandbox layer without held": lambda d: d["sandbox"]["layers"]["netns"].pop("held"),
    "sandbox held as string": _set("sandbox", "layers", "netns", "held", "true"),
    "sandbox without layers": _set("sandbox", {}),
    "empty profile": _set("profile", ""),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_documents_are_rejected(validator, name):
    document = copy.deepcopy(good())
    BROKEN[name](document)
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(document)
