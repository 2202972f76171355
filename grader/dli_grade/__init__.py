"""Checks inside the notebook: `import dli_grade; dli_grade.check("q")` in a Jupyter kernel.

This is a thin client. It imports nothing of the grader into the student's kernel: it writes the
cells the kernel has run (history.py) to a temporary notebook, grades it with the `dli-grade`
CLI in a child process (runner.py), which contains the student's code as a command-line grade
does, and shows the CLI's report (display.py). The installed top-level package `dli_grade` is
the folder grader/dli_grade/ of the repository (see pyproject.toml).
"""

from __future__ import annotations

from dli_grade.display import CheckResult
from dli_grade.errors import CheckError, GraderFailedError, NoCellsRunError, NotInKernelError, UnknownTaskError
from dli_grade.language import _, current, use_language

__all__ = [
    "CheckError",
    "CheckResult",
    "GraderFailedError",
    "NoCellsRunError",
    "NotInKernelError",
    "UnknownTaskError",
    "check",
    "check_all",
    "task_ids",
]


def task_ids(generation: bool = True) -> list[str]:
    """The grader's task ids (tasks/__init__.py), the unit tasks only when `generation` is False."""
    from dli_grade import runner

    return list(runner.task_ids()["all" if generation else "unit"])


def check(*task_ids: str, total_timeout: float = 1800.0, lang: str | None = None) -> CheckResult:
    """Grade the cells run so far on these tasks, e.g. `check("q")` or `check("q", "reverse_q")`.

    `lang` ("en" or "zh-CN") is the language of the messages, hints and reports, and of this client's own
    errors; by default the kernel's locale chooses, as it does for the `dli-grade` command (LANGUAGE, LC_ALL,
    LC_MESSAGES, LANG)."""
    from dli_grade import runner

    with use_language(lang):
        if not task_ids:
            raise UnknownTaskError(
                _("name a task to check; choose from {tasks}").format(tasks=", ".join(runner.task_ids()["all"]))
            )
        ids = runner.checked_ids(task_ids)
        return _grade(ids, total_timeout, lang)


def check_all(generation: bool = False, total_timeout: float = 1800.0, lang: str | None = None) -> CheckResult:
    """Grade the cells run so far on every unit task, and on generation when asked (minutes on a CPU);
    `lang` as for `check`."""
    from dli_grade import runner

    with use_language(lang):
        return _grade(list(runner.task_ids()["all" if generation else "unit"]), total_timeout, lang)


def _grade(ids: list[str], total_timeout: float, lang: str | None) -> CheckResult:
    from dli_grade import history, runner

    shell = _kernel()
    sources = history.without_client(history.executed_cells(shell), shell.transform_cell)
    if not any(source.strip() for source in sources):
        raise NoCellsRunError(
            _("no cells run yet in this kernel: run the cells that define your answers, then check again")
        )
    reports = runner.grade_cells(sources, ids, total_timeout, lang)
    return CheckResult(reports.document, reports.text, reports.html, lang=current())


def _kernel():
    try:
        from IPython import get_ipython
    except ImportError:
        get_ipython = None
    shell = get_ipython() if get_ipython else None
    if shell is None or not hasattr(shell, "history_manager"):
        raise NotInKernelError(
            _(
                "dli_grade.check grades the cells a Jupyter kernel has run; outside one, "
                "grade the file with `dli-grade SUBMISSION`"
            )
        )
    return shell
