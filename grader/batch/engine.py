"""Run a batch: collect submissions, reuse finished grades on --resume, grade the rest, write it all.

Every finished grade is saved (files, record, grades.csv) before the next one is looked at,
so an interrupted batch keeps all that finished; grades.csv and the summary are rewritten
at the end, including after an interruption.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from grader.batch import backends, inputs, similarity, summary
from grader.batch.gradebook import Gradebook
from grader.batch.progress import BatchProgress
from grader.batch.worker import GradeOptions, Outcome
from grader.core.i18n import _
from grader.submission.cells import MAX_BYTES

STARTUP_MARGIN = 120.0  # seconds allowed beyond --total-timeout for starting and reporting


@dataclass
class BatchReport:
    records: list[dict] = field(default_factory=list)
    reused: int = 0
    graded: int = 0
    interrupted: bool = False
    stats: dict = field(default_factory=dict)


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def run_batch(
    sources: Iterable[str | Path],
    out_dir: str | Path,
    options: GradeOptions,
    jobs: int = 1,
    resume: bool = False,
    ref: str | None = None,
    notebook: str = "*.ipynb",
    submission_timeout: float | None = None,
    max_extract_bytes: int = 1024 * 2**20,
    backend: str = "local",
    address: str | None = None,
    gpus_per_grade: float = 0.0,
    quiet: bool = False,
    stream: TextIO | None = None,
) -> BatchReport:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    items = inputs.collect(sources, out_dir / ".work", ref=ref, notebook=notebook, max_extract_bytes=max_extract_bytes)
    gradebook = Gradebook(out_dir)
    order = [item.student for item in items]
    records: dict[str, dict] = {}
    report = BatchReport()
    wall = submission_timeout or options.total_timeout + STARTUP_MARGIN
    threads = max(1, cpu_count() // max(1, jobs))
    pending: list[backends.Job] = []

    for item in items:
        problem, data = item.problem, b""
        if problem is None:
            assert item.path is not None  # an item has a file unless its problem says why not
            try:
                if item.path.stat().st_size > MAX_BYTES:
                    problem = _("{source}: larger than {limit} MiB; not a submission").format(
                        source=item.source, limit=MAX_BYTES // 2**20
                    )
                else:
                    data = item.path.read_bytes()
            except OSError as error:
                # the system's own words (English) are quoted as a value
                problem = _("{source}: cannot be read: {error}").format(
                    source=item.source, error=repr(str(error.strerror or error))
                )
        if problem is not None:
            records[item.student] = gradebook.save(
                item.student, item.source, "", Outcome("unusable", problem), options, extra={"id_from": item.id_from}
            )
            continue
        assert item.path is not None
        sha = hashlib.sha256(data).hexdigest()
        previous = gradebook.previous(item.student, sha, options) if resume else None
        if previous is not None and previous.get("status") == "timeout" and previous.get("wall_timeout_s", 0) < wall:
            previous = None  # it timed out under a shorter --submission-timeout than this run allows
        if previous is not None:
            records[item.student] = previous
            report.reused += 1
            continue
        pending.append(
            backends.Job(
                item.student,
                item.source,
                item.path.name,
                data,
                sha,
                similarity.fingerprints(item.path),
                wall,
                threads,
                item.id_from,
            )
        )

    progress = BatchProgress(len(pending), enabled=not quiet, stream=stream)

    def rows() -> list[dict]:
        return [records[student] for student in order if student in records]

    def on_done(job: backends.Job, outcome: Outcome) -> None:
        seed = str((outcome.document or {}).get("seed"))
        # Reproduce a grade with `dli-grade grade --seed`; a decimal string, as in every JSON output (up to 2**63).
        extra = {"id_from": job.id_from, "wall_timeout_s": job.wall_timeout, "seed": seed if seed.isdigit() else None}
        records[job.student] = gradebook.save(
            job.student, job.source, job.sha256, outcome, options, job.fingerprints, extra
        )
        report.graded += 1
        gradebook.write_csv(rows(), options.tasks)
        score = records[job.student]
        status = f"{score['score']:g}/{score['max_score']:g}" if outcome.status == "graded" else outcome.status
        progress.finished_one(job.student, status)

    try:
        if backend == "ray":
            backends.run_ray(
                pending,
                options,
                jobs,
                on_done,
                address=address,
                gpus_per_grade=gpus_per_grade,
                empty_dir=out_dir / ".work" / "ray-working-dir",
            )
        else:
            backends.run_local(pending, options, jobs, on_done)
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        progress.close()
        report.records = rows()
        gradebook.write_csv(report.records, options.tasks)
        report.stats = summary.write(out_dir, report.records, options.tasks)
    return report
