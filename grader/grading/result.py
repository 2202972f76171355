"""The result of grading: per-task results and the whole grade, with their JSON form."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from importlib import resources

from grader.core.sanitize import one_line, strict_json_value
from tasks import find_task
from tasks.location import Location

SCHEMA = "dli-grade/result/v1"
SCHEMA_FILE = "result-v1.schema.json"  # JSON Schema of SCHEMA, shipped in grader/schemas/
STATUSES = ("passed", "failed", "error")


@dataclass
class TaskResult:
    """One task's verdict. `status` is passed, failed or error (the grader failed)."""

    id: str
    title: str
    score: float
    max_score: float
    status: str
    message: str = ""
    hints: list[str] = field(default_factory=list)
    location: Location | None = None
    details: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}")
        # Messages and hints may quote student code's exceptions: one clean line each.
        self.message = one_line(self.message, 1000)
        self.hints = [one_line(hint, 500) for hint in self.hints]


@dataclass
class GradeResult:
    """Everything `dli-grade` says about one submission."""

    submission: str
    sha256: str
    layout: str
    device: str
    tasks: list[TaskResult]
    integrity: list[str] = field(default_factory=list)
    seed: int | None = None
    sandbox: dict = field(default_factory=dict)  # containment layer -> {held, detail}
    profile: str | None = None  # generation profile, when generation ran
    interrupted: bool = False  # Ctrl-C ended the grade early
    duration_s: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase (a task's includes starting the child)

    @property
    def score(self) -> float:
        return round(sum(task.score for task in self.tasks), 2)

    @property
    def max_score(self) -> float:
        return round(sum(task.max_score for task in self.tasks), 2)

    @property
    def passed(self) -> bool:
        """Passed when every task graded passed."""
        return bool(self.tasks) and all(task.status == "passed" for task in self.tasks)

    def to_json(self) -> dict:
        """The `dli-grade/result/v1` document (grader/schemas/result-v1.schema.json): strict JSON
        (no NaN), student text on one line."""
        notes: list[str] = []
        document = strict_json_value(self._document(), notes)
        document["integrity"] += [f"not a number: {note}" for note in notes[:5]]
        return document

    def _document(self) -> dict:
        return {
            "schema": SCHEMA,
            "submission": self.submission,
            "sha256": self.sha256,
            "layout": self.layout,
            "device": self.device,
            "score": self.score,
            "max_score": self.max_score,
            "passed": self.passed,
            "tasks": [asdict(task) for task in self.tasks],
            "integrity": [one_line(note, 500) for note in self.integrity],
            # a string: JSON readers that hold numbers as doubles lose digits of a 63-bit seed
            **({"seed": str(self.seed)} if self.seed is not None else {}),
            **({"sandbox": {"layers": self.sandbox}} if self.sandbox else {}),
            **({"profile": self.profile} if self.profile else {}),
            "duration_s": round(self.duration_s, 2),
            "timings": {phase: round(seconds, 2) for phase, seconds in self.timings.items()},
            **self._task_fields(),
        }

    def _task_fields(self) -> dict:
        """What tasks add to the top of the document (the generation task: the official verdict)."""
        fields: dict = {}
        for task in self.tasks:
            declared = find_task(task.id)
            if declared:
                fields.update(declared.result_fields(task.details))
        return fields


def json_schema() -> dict:
    """The JSON Schema (draft 2020-12) that every `to_json()` document satisfies."""
    return json.loads((resources.files("grader") / "schemas" / SCHEMA_FILE).read_text(encoding="utf-8"))
