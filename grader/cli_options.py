"""Command-line options that `dli-grade grade` and `dli-grade batch` parse the same way: the task list,
the language, the device, the seed and the two timeouts. Each is declared once here (type, default,
validation) and a command passes only its own help text. Both commands import them from here (the
batch command lives below the CLI's entry point, so it cannot import them from `grader.cli`).

May import `grader.core` and `tasks` (for the task ids).
"""

from __future__ import annotations

import math

import click

from tasks import task_ids as declared_task_ids


def task_list(ctx, param, value):
    """--tasks: comma-separated ids, in the order given; empty means every task."""
    known = declared_task_ids()
    if not value:
        return list(known)
    ids = [part.strip() for part in value.split(",") if part.strip()]
    unknown = [task for task in ids if task not in known]
    if unknown:
        raise click.BadParameter(f"unknown task id(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    return ids


class TasksOption(click.Option):
    """An option whose help names the declared tasks when it is shown: `{all}` is every task id,
    `{unit}` the quick ones (the registry in tasks/__init__.py finds them; no list is kept here)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.help_template = self.help or ""

    def get_help_record(self, ctx):
        self.help = self.help_template.format(all=",".join(declared_task_ids()), unit=",".join(declared_task_ids(True)))
        return super().get_help_record(ctx)


def language(ctx, param, value):
    """--lang, else the locale (LANGUAGE, LC_ALL, LC_MESSAGES, LANG starting with zh), else English;
    an unknown --lang is a usage error (exit 2)."""
    from grader.core.i18n import UnknownLanguage, resolve

    try:
        return resolve(value)
    except UnknownLanguage as error:
        raise click.BadParameter(str(error)) from None


LANG_HELP = (
    "language of messages, hints and reports: en or zh-CN (default: the locale, LANGUAGE/LC_ALL/"
    "LC_MESSAGES/LANG starting with zh means zh-CN, else en); machine fields stay as they are"
)


def lang_option(help: str = LANG_HELP):
    """The --lang option, with the grade command's help unless another is given."""
    return click.option("--lang", "lang", callback=language, default=None, metavar="en|zh-CN", help=help)


# --device, --seed, --timeout and --total-timeout: one declaration each, the help text the command's own
# (a grade and a batch word them for their readers). tests/test_cli.py checks both commands use these.
DEVICES = ("auto", "cpu", "cuda")
DEVICE_HELP = "the device a grade runs on: auto picks cuda when this machine has it, else cpu"
DEFAULT_TIMEOUT = 60.0
DEFAULT_TOTAL_TIMEOUT = 1800.0


def device_option(help: str = DEVICE_HELP):
    """--device: auto, cpu or cuda (asking for cuda where there is none is the grade's unusable input)."""
    return click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True, help=help)


def seed_option(help: str):
    """--seed: a whole number >= 0, or none (each grade draws its own)."""
    return click.option("--seed", type=click.IntRange(min=0), default=None, help=help)


class FiniteFloatRange(click.FloatRange):
    """A FloatRange that also refuses NaN and infinity: no comparison with NaN is true, so a plain
    FloatRange lets it through (a NaN time limit never arrives, a NaN share of a GPU is an error later)."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


def timeout_option(help: str):
    """--timeout: seconds (at least 1) for each cell and each unit task's check."""
    return click.option(
        "--timeout", type=FiniteFloatRange(min=1), default=DEFAULT_TIMEOUT, show_default=True, help=help
    )


def total_timeout_option(help: str):
    """--total-timeout: seconds (at least 1) for one submission's whole grade."""
    return click.option(
        "--total-timeout", type=FiniteFloatRange(min=1), default=DEFAULT_TOTAL_TIMEOUT, show_default=True, help=help
    )
