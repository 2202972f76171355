"""`dli-grade batch`: grade many submissions into a gradebook folder."""

from __future__ import annotations

import os
import signal
import sys

import click

from grader.cli_options import (
    FiniteFloatRange,
    TasksOption,
    device_option,
    lang_option,
    seed_option,
    task_list,
    timeout_option,
    total_timeout_option,
)
from grader.core.errors import EXIT_INTERNAL, EXIT_PASSED, EXIT_UNUSABLE, UnusableInput
from tasks import task_ids as declared_task_ids

EXIT_INTERRUPTED = 130


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # SIGTERM stops a batch as cleanly as Ctrl-C


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=str),
    help="gradebook folder: grades.csv, summary.md/.html, submissions/<student>/",
)
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="grades running at once, each in its own process with cores/jobs threads",
)
@click.option(
    "--tasks",
    "task_ids",
    cls=TasksOption,
    callback=task_list,
    default="",
    help="comma-separated task ids (default: all; choose from {all}; {unit} are the quick unit tasks)",
)
@device_option()
@seed_option("one seed for every grade (default: each grade draws its own, recorded in its result.json)")
@timeout_option("seconds for each cell and each unit task's check")
@total_timeout_option("seconds for one submission's whole grade")
@click.option(
    "--submission-timeout",
    type=FiniteFloatRange(min=1),
    default=None,
    help="wall-clock limit of one grade process, then status timeout (default: total timeout + 120 s)",
)
@click.option(
    "--resume", is_flag=True, help="keep results already in --out for the same bytes, grader version and options"
)
@click.option("--ref", default=None, help="git inputs: branch, tag or commit to grade")
@click.option("--notebook", default="*.ipynb", show_default=True, help="git inputs: glob of the assessment file")
@click.option(
    "--max-extract-mb",
    type=click.IntRange(min=1),
    default=1024,
    show_default=True,
    help="zip inputs: most MiB extracted from one archive",
)
@click.option("--backend", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--address", default=None, help="--backend ray: cluster address (default: start a local Ray)")
@click.option(
    "--gpus-per-grade",
    type=FiniteFloatRange(min=0),
    default=0.0,
    show_default=True,
    help="--backend ray: GPUs each grade asks Ray for",
)
@click.option("--quiet", "-q", is_flag=True, help="no progress on stderr")
@click.option(
    "--grader-memory-mb",
    type=click.IntRange(min=64),
    default=None,
    help="bound the memory of the batch process and of each grade it starts (RLIMIT_DATA, each)",
)
@lang_option(help="language of the messages, reports and class summary (see dli-grade grade --help)")
def batch(
    inputs,
    out_dir,
    jobs,
    task_ids,
    device,
    seed,
    timeout,
    total_timeout,
    submission_timeout,
    resume,
    ref,
    notebook,
    max_extract_mb,
    backend,
    address,
    gpus_per_grade,
    quiet,
    grader_memory_mb,
    lang,
):
    """Grade every submission in INPUT... (notebooks, .py files, folders, zip archives, git repositories).

    Writes OUT/grades.csv, OUT/summary.md, OUT/summary.html and OUT/submissions/<student>/
    (result.json, report.html, samples PNG). Exit 0 when the batch ran to the end, whatever
    the students' scores; 2 for bad inputs or options; 130 when interrupted (rerun with --resume).
    """
    from grader.batch.backends import ray_available
    from grader.batch.engine import run_batch
    from grader.batch.worker import GradeOptions
    from grader.core.i18n import _, set_language

    set_language(lang)  # the summary and reports written here; each grade gets --lang

    if backend == "ray" and not ray_available():
        click.echo("dli-grade: " + _("error: --backend ray needs Ray: pip install 'dli-grade[ray]'"), err=True)
        sys.exit(EXIT_UNUSABLE)
    if backend != "ray" and (address or gpus_per_grade):
        click.echo("dli-grade: " + _("error: --address and --gpus-per-grade need --backend ray"), err=True)
        sys.exit(EXIT_UNUSABLE)
    if grader_memory_mb:  # this process now; each local grade reads it from its environment
        from grader.core.memory import ENVIRONMENT, limit_grader_memory

        limit_grader_memory(grader_memory_mb)
        os.environ[ENVIRONMENT] = str(grader_memory_mb)
    options = GradeOptions(
        tuple(task_ids or declared_task_ids()),
        device,
        seed,
        timeout,
        total_timeout,
        lang,
        grader_memory_mb=grader_memory_mb,
    )
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        report = run_batch(
            inputs,
            out_dir,
            options,
            jobs=jobs,
            resume=resume,
            ref=ref,
            notebook=notebook,
            submission_timeout=submission_timeout,
            max_extract_bytes=max_extract_mb * 2**20,
            backend=backend,
            address=address,
            gpus_per_grade=gpus_per_grade,
            quiet=quiet,
        )
    except UnusableInput as error:
        click.echo("dli-grade: " + _("error: {error}").format(error=error), err=True)
        sys.exit(EXIT_UNUSABLE)
    except Exception as error:  # our fault; what finished is already on disk
        # the exception's own text is Python's or a library's: kept as a value after the translated words
        click.echo(
            "dli-grade: " + _("internal error: {error}").format(error=f"{type(error).__name__}: {error}"), err=True
        )
        sys.exit(EXIT_INTERNAL)
    finally:
        signal.signal(signal.SIGTERM, previous)
    by = report.stats.get("by_status", {})
    click.echo(
        "dli-grade batch: "
        + _(
            "{total} submissions ({now} graded now, {reused} reused): {graded} graded, {unusable} unusable, "
            "{timeout} timed out, {crashed} crashed; {passed} passed. See {out}/grades.csv and {out}/summary.html"
        ).format(
            total=len(report.records),
            now=report.graded,
            reused=report.reused,
            graded=by.get("graded", 0),
            unusable=by.get("unusable", 0),
            timeout=by.get("timeout", 0),
            crashed=by.get("crashed", 0),
            passed=report.stats.get("passed", 0),
            out=out_dir,
        )
    )
    if report.interrupted:
        click.echo("dli-grade: " + _("interrupted; rerun the same command with --resume to finish"), err=True)
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(EXIT_PASSED)
