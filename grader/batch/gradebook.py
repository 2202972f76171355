"""The batch's output folder: one folder per submission, and grades.csv over all of them.

DIR/submissions/<student>/ holds result.json (the grader's document, or an error document),
report.html, the samples PNG when generation drew one, and record.json, the row the
gradebook is built from. record.json is written last and atomically: a submission counts
as done exactly when its record exists, which is what --resume relies on.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

from grader import __version__
from grader.batch.worker import GradeOptions, Outcome
from grader.core import atomic
from grader.core.sanitize import csv_cell, one_line, safe_json, safe_text
from grader.report import html
from grader.report.common import error_document

RECORD_SCHEMA = "dli-grade/batch-record/v1"
BASE_COLUMNS = ["student", "submission", "sha256", "score", "max_score", "passed", "status"]


class Gradebook:
    def __init__(self, out_dir: Path):
        self.out_dir = Path(out_dir)
        self.submissions = self.out_dir / "submissions"

    def folder(self, student: str) -> Path:
        return self.submissions / student

    def previous(self, student: str, sha256: str, options: GradeOptions) -> dict | None:
        """The saved record when it graded these same bytes with this grader version and options.

        A `crashed` record is never reused: the crash may have been ours, not the submission's.
        """
        folder = self.folder(student)
        try:
            record = json.loads((folder / "record.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if (
            isinstance(record, dict)
            and record.get("schema") == RECORD_SCHEMA
            and sha256
            and record.get("sha256") == sha256
            and record.get("grader_version") == __version__
            and record.get("options") == options.key()
            and record.get("status") != "crashed"
            and (folder / "result.json").is_file()
        ):
            return record
        return None

    def save(
        self,
        student: str,
        source: str,
        sha256: str,
        outcome: Outcome,
        options: GradeOptions,
        fingerprints: dict | None = None,
        extra: dict | None = None,
    ) -> dict:
        """Write the submission's files and record; return the record."""
        folder = self.folder(student)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.png"):
            stale.unlink()
        if outcome.status == "graded" and outcome.document is not None:
            document = dict(outcome.document)
            document["submission"] = source  # not the grader's temporary copy
            for name, data in outcome.artifacts.items():
                atomic.write_bytes(folder / name, data)
            for task in document.get("tasks") or []:
                grid = (task.get("details") or {}).get("grid") if isinstance(task, dict) else None
                if isinstance(grid, str) and Path(grid).name in outcome.artifacts:
                    task["details"]["grid"] = Path(grid).name  # relative to this folder
        else:
            document = error_document(source, outcome.message, outcome.status)
            document["sha256"] = sha256
        document = safe_json(document)  # a student's text must not stop the batch (nor --resume)
        atomic.write_text(folder / "result.json", json.dumps(document, indent=2) + "\n")
        atomic.write_text(folder / "report.html", html.render(document, base=folder))
        record = self._record(student, source, sha256, outcome, document, options, fingerprints)
        record.update(extra or {})  # the batch's own facts: where the id came from, the seed, the wall limit
        atomic.write_text(folder / "record.json", json.dumps(safe_json(record), indent=2) + "\n")
        return record

    @staticmethod
    def _record(
        student: str,
        source: str,
        sha256: str,
        outcome: Outcome,
        document: dict,
        options: GradeOptions,
        fingerprints: dict | None,
    ) -> dict:
        tasks = {}
        for task in document.get("tasks") or []:
            if isinstance(task, dict) and isinstance(task.get("id"), str):
                tasks[task["id"]] = {
                    "status": task.get("status"),
                    "score": task.get("score"),
                    "max_score": task.get("max_score"),
                    "message": one_line(task.get("message", "")),
                }
        graded = outcome.status == "graded"
        return {
            "schema": RECORD_SCHEMA,
            "student": student,
            "source": source,
            "sha256": sha256,
            "status": outcome.status,
            "message": one_line(outcome.message, 1000),
            "score": document.get("score") if graded else 0.0,
            "max_score": document.get("max_score") if graded else None,
            "passed": document.get("passed") is True if graded else False,
            "tasks": tasks,
            "official_accuracy": document.get("official_accuracy"),
            "grader_version": __version__,
            "options": options.key(),
            "graded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "duration_s": round(outcome.duration_s, 2),
            "fingerprints": fingerprints or {},
        }

    def write_csv(self, records: list[dict], task_ids: Iterable[str]) -> Path:
        """grades.csv: one row per record, every student-derived cell made formula-safe."""
        task_ids = list(task_ids)
        columns = (
            BASE_COLUMNS
            + task_ids
            + [f"{task}_points" for task in task_ids]
            + ["grader_version", "graded_at", "message", "id_from"]
        )
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        for record in records:
            tasks = record.get("tasks") or {}
            row = [
                record["student"],
                one_line(record["source"], 1000),
                record["sha256"],
                record.get("score"),
                record.get("max_score") if record.get("max_score") is not None else "",
                str(bool(record.get("passed"))).lower(),
                record["status"],
            ]
            row += [(tasks.get(task) or {}).get("status") or "" for task in task_ids]
            row += [(tasks.get(task) or {}).get("score", "") for task in task_ids]
            row += [
                record.get("grader_version", ""),
                record.get("graded_at", ""),
                one_line(record.get("message", ""), 1000),
                record.get("id_from", ""),
            ]
            writer.writerow([csv_cell(cell) for cell in row])
        path = self.out_dir / "grades.csv"
        atomic.write_text(path, safe_text(buffer.getvalue()))
        return path
