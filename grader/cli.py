"""The `dli-grade` command: grade a submission (the default), or check the installation."""

from __future__ import annotations

import json
import logging
import signal
import sys

import click

from grader import __version__
from grader.batch.command import batch
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
from grader.core import click_language
from grader.core.errors import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_NOT_PASSED,
    EXIT_PASSED,
    EXIT_UNUSABLE,
    UnusableInput,
)
from grader.init_ci import init_ci
from grader.report import FORMATS
from grader.report.gradescope import VISIBILITIES
from grader.report.junit import FLAVOURS


class DefaultToGrade(click.Group):
    """A group whose first argument, when it names no subcommand, is a path to grade."""

    def main(self, args=None, *rest, **extra):
        # Click words a usage error while it parses, before --lang's callback: set the language first.
        args = list(sys.argv[1:] if args is None else args)
        click_language.use_for_command_line(args)
        return super().main(args, *rest, **extra)

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = ["grade", *args]
        return super().parse_args(ctx, args)

    def invoke(self, ctx):
        # A subcommand's options are parsed in here, and --tasks imports the task modules (torch):
        # under --grader-memory-mb (applied first, an eager option) that can already run out.
        try:
            return super().invoke(ctx)
        except MemoryError:
            from grader.core.memory import out_of_memory_message

            click.echo(f"dli-grade: error: {out_of_memory_message(_memory_bound['mb'])}", err=True)
            sys.exit(EXIT_INTERNAL)


# The bound --grader-memory-mb set, for the out-of-memory message of a failure while parsing.
_memory_bound: dict[str, int | None] = {"mb": None}


def _bound_memory_now(ctx, param, value):
    """--grader-memory-mb is eager: the bound holds before any other option is parsed (--tasks
    imports every task module), so all the grader does is under it. Torch is imported first: a
    library that cannot be mapped under the bound fails as an ImportError, not a MemoryError, and
    a bound too small for a grade must end it with the out-of-memory message (the bound counts
    the memory torch's libraries hold, about 790 MB: docs/performance.md)."""
    from grader.core.memory import limit_grader_memory

    if value is not None:
        import torch  # noqa: F401

    limit_grader_memory(value)
    _memory_bound["mb"] = value
    return value


@click.group(cls=DefaultToGrade, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dli-grade")
def main():
    """Grade the DLI 'Generative AI with Diffusion Models' assessment.

    dli-grade SUBMISSION grades one notebook (.ipynb) or module (.py).
    """


def _show_debug_log() -> None:
    """--debug: the grader's own log (internal errors with their tracebacks) on stderr; quiet otherwise."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("dli-grade: %(levelname)s %(name)s: %(message)s"))
    for name in ("grader", "tasks"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)


def _let_ctrl_c_interrupt() -> None:
    """A grade started with SIGINT ignored (a background job of a script inherits SIG_IGN, and Python
    then installs no KeyboardInterrupt handler) would ignore Ctrl-C and `kill -INT` and run to its end:
    take SIGINT back, so an interrupt always stops the grade and reports the tasks graded so far."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@main.command()
@click.argument("submission", type=click.Path(dir_okay=True, path_type=str))
@click.option(
    "--format",
    "output_format",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="text for people, json (dli-grade/result/v1) for machines; gradescope, junit, github "
    "(annotations, job summary, Classroom result) and html for CI and LMSs",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="write the report to this file (atomically) instead of stdout",
)
@click.option(
    "--html-report",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="also write the HTML report to this file (a CI artifact beside another format)",
)
@click.option(
    "--tasks",
    "task_ids",
    cls=TasksOption,
    callback=task_list,
    default="",
    help="comma-separated task ids to grade (default: all of {all})",
)
@device_option()
@seed_option("seed for every random draw (default: a new one each grade, reported in the result)")
@timeout_option("seconds allowed to each cell and each unit task's check (generation: 15 min)")
@total_timeout_option("seconds for the whole grade; tasks not started by then fail as not graded")
@click.option(
    "--profile",
    type=click.Choice(["auto", "train", "transplant", "course"]),
    default="auto",
    show_default=True,
    help="generation: train the student's model from a seeded start (auto with CUDA), load the "
    "reference weights into it (auto without CUDA), or run the notebook top to bottom in a "
    "Jupyter kernel as the DLI platform does (course; needs --force on a CPU)",
)
@click.option("--force", is_flag=True, help="run --profile course even without a GPU (hours for a real notebook)")
@click.option(
    "--course-helpers",
    type=click.Path(exists=True, file_okay=False, path_type=str),
    default=None,
    help="with --profile course: a folder holding the course's own run_assessment.py (copied from the "
    "DLI environment); the course flow runs it too and reports the accuracy it printed beside "
    "the grader's verdict (for disputes; its classifier is then in the student's reach)",
)
@click.option(
    "--train-steps",
    type=click.IntRange(min=1),
    default=None,
    help="generation, train profile: training steps (default 2000 with CUDA, 200 on a CPU)",
)
@click.option(
    "--samples-per-digit",
    type=click.IntRange(min=1),
    default=None,
    help="generation: size of the larger sample per digit, always drawn when given (default 50 "
    "on GPU; on a CPU 10, drawn by the train profile only when the official count is near the bar "
    "and by the transplant profile only when asked)",
)
@click.option(
    "--artifacts-dir",
    type=click.Path(file_okay=False, path_type=str),
    default="dli-grade-artifacts",
    show_default=True,
    help="where the generation task writes its PNG grid of samples",
)
@click.option(
    "--gradescope-visibility",
    type=click.Choice(VISIBILITIES),
    default="visible",
    show_default=True,
    help="--format gradescope: when students see the result and each task's output",
)
@click.option(
    "--junit-flavour",
    type=click.Choice(FLAVOURS),
    default="jenkins",
    show_default=True,
    help="--format junit: jenkins validates against the xunit plugin's schema; gitlab adds the "
    "submission as each testcase's file, which GitLab's test report links",
)
@click.option(
    "--gpu-memory-fraction",
    type=FiniteFloatRange(min=0, max=1, min_open=True),
    default=None,
    help="share of the GPU's memory the student's process may take (default: DLI_GRADE_GPU_FRACTION, "
    "else 0.9); lower it when several grades share one GPU",
)
@click.option("--quiet", "-q", is_flag=True, help="no progress messages on stderr")
@click.option(
    "--debug", is_flag=True, help="log the grader's own steps and the traceback of any internal error on stderr"
)
@click.option(
    "--allow-uncontained",
    is_flag=True,
    help="grade even where this machine can't hide the answer key from student code (no user "
    "namespaces and no Landlock); the result lists the missing layers: treat it as untrusted",
)
@click.option(
    "--grader-memory-mb",
    type=click.IntRange(min=64),
    default=None,
    is_eager=True,
    callback=_bound_memory_now,
    envvar="DLI_GRADE_GRADER_MEMORY_MB",
    help="bound the grader's own memory (RLIMIT_DATA; the student's code has its own limits): past it "
    "the grade stops with a clear error instead of the machine killing it",
)
@lang_option()
def grade(
    submission,
    output_format,
    output,
    html_report,
    task_ids,
    device,
    seed,
    timeout,
    total_timeout,
    profile,
    force,
    course_helpers,
    train_steps,
    samples_per_digit,
    artifacts_dir,
    gradescope_visibility,
    junit_flavour,
    gpu_memory_fraction,
    quiet,
    debug,
    allow_uncontained,
    grader_memory_mb,
    lang,
):
    """Grade SUBMISSION and print a report; exit 0 passed, 1 not passed, 2 unusable input (or a machine
    that can't contain student code), 3 grader error."""
    from grader.core.cpus import size_torch_threads
    from grader.core.i18n import _, set_language
    from grader.core.memory import limit_grader_memory, out_of_memory_message
    from grader.grading.runner import grade as run_grade
    from grader.report.output import emit, emit_unusable
    from grader.report.progress import ProgressReporter
    from grader.sandbox.parent import probe_isolation

    if debug:
        _show_debug_log()
    set_language(lang)  # the whole command: the grade's messages and every report it writes
    _let_ctrl_c_interrupt()
    threads = size_torch_threads()  # the cores this process may use, not the host's (affinity, cgroup quota)
    logging.getLogger("grader.cli").debug("torch threads: %d", threads)
    progress = ProgressReporter(enabled=not quiet)
    format_options = {"gradescope_visibility": gradescope_visibility, "junit_flavour": junit_flavour}
    generation = {
        "profile": profile,
        "force": force,
        "train_steps": train_steps,
        "per_digit": samples_per_digit,
        "artifacts_dir": artifacts_dir,
        "course_helpers": course_helpers,
    }
    try:
        limit_grader_memory(grader_memory_mb)
        if not allow_uncontained:
            machine = probe_isolation()
            if not machine["isolated"]:
                raise UnusableInput(
                    _(
                        "this machine can't contain student code: no namespaces ({why}) and no Landlock, so the "
                        "student's code could read the answer key and the network; grade elsewhere, or pass "
                        "--allow-uncontained to grade anyway (the result is then untrusted)"
                    ).format(why=machine.get("namespaces_error") or _("refused"))
                )
        result = run_grade(
            submission,
            task_ids,
            device=device,
            seed=seed,
            timeout=timeout,
            progress=progress,
            generation=generation,
            total_timeout=total_timeout,
            contain=not allow_uncontained,
            gpu_fraction=gpu_memory_fraction,
        )
        progress.finish()
    except UnusableInput as error:
        click.echo("dli-grade: " + _("error: {error}").format(error=error), err=True)
        emit_unusable(output_format, submission, str(error), output, format_options)
        if html_report:
            emit_unusable("html", submission, str(error), html_report)
        sys.exit(EXIT_UNUSABLE)
    except MemoryError:
        click.echo("dli-grade: " + _("error: {error}").format(error=out_of_memory_message(grader_memory_mb)), err=True)
        sys.exit(EXIT_INTERNAL)
    except Exception as error:  # never a bare traceback for users; say it is our fault
        logging.getLogger("grader.cli").debug("internal error", exc_info=True)
        internal = _("internal error: {error}").format(error=f"{type(error).__name__}: {error}")
        click.echo("dli-grade: " + internal, err=True)
        sys.exit(EXIT_INTERNAL)
    try:
        emit(output_format, result, output, format_options)
        if html_report:
            emit("html", result, html_report)
    except OSError as error:
        click.echo("dli-grade: " + _("error: cannot write the report: {error}").format(error=error), err=True)
        sys.exit(EXIT_UNUSABLE)
    if result.interrupted:
        sys.exit(EXIT_INTERRUPTED)
    if any(task.status == "error" for task in result.tasks):
        sys.exit(EXIT_INTERNAL)
    sys.exit(EXIT_PASSED if result.passed else EXIT_NOT_PASSED)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="print one JSON object instead of text")
def selfcheck(as_json):
    """Check versions, device, data checksums, the MNIST classifier's accuracy and the reference U-Net."""
    from grader.selfcheck import render_selfcheck, run_selfcheck

    report = run_selfcheck()
    click.echo(json.dumps(report, indent=2) if as_json else render_selfcheck(report))
    sys.exit(0 if report["ok"] else 1)


# Further commands live in their own modules; registered here so `dli-grade --help` lists them.
main.add_command(batch)
main.add_command(init_ci)
