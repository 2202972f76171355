"""The operator's bound on the grader's own memory: `--grader-memory-mb` (grade and batch).

A hostile reply is capped on the pipe and refused before any conversion, but a few grades in
`batch --jobs N` still add up; this bound makes the grader fail with a clear error instead of
being killed with the machine's other work. It is `RLIMIT_DATA` (heap and private writable
mappings), not `RLIMIT_AS`: CUDA reserves huge address ranges it never writes, which count
against the address space but not the data limit. Only the soft limit is lowered, and the
processes the grader starts (the sandbox's launcher) get the previous one back: the student's
child has limits of its own (grader/sandbox/launcher.py).
"""

from __future__ import annotations

import os
import resource
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from grader.core.i18n import _

ENVIRONMENT = "DLI_GRADE_GRADER_MEMORY_MB"  # how `batch` hands its bound to each grade it starts
# The soft limit before any bound, handed down too: a grade started by a bounded batch inherits the
# batch's bound, and must still give its sandbox what the operator's shell had.
BEFORE = "DLI_GRADE_DATA_LIMIT_BEFORE"
_previous: int | None = None  # the soft limit before ours (set once a bound is applied)


def limit_grader_memory(megabytes: int | None) -> None:
    """Bound this process's data segment at `megabytes` (None: leave it as it is)."""
    global _previous
    if not megabytes:
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    limit = megabytes * 1024**2
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    if _previous is None:
        _previous = int(os.environ.get(BEFORE, soft))
        os.environ[BEFORE] = str(_previous)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))


def _restore() -> None:
    assert _previous is not None  # child_preexec hands this out only once a bound is applied
    resource.setrlimit(resource.RLIMIT_DATA, (_previous, resource.getrlimit(resource.RLIMIT_DATA)[1]))


def child_preexec() -> Callable[[], None] | None:
    """`preexec_fn` for a process the grader starts: the previous limit back, or None when the
    grader has no bound (then nothing runs between fork and exec, as before)."""
    return _restore if _previous is not None else None


@contextmanager
def previous_limit_for_children() -> Iterator[None]:
    """Processes started inside get the limit from before the bound, as `child_preexec` gives
    the sandbox: for a local Ray, whose daemons and workers are started by `ray.init` (and would
    otherwise keep the batch's bound, and hand it to every grade's sandbox as its "previous" one).
    Each grade a worker runs bounds itself (--grader-memory-mb on its command line)."""
    if _previous is None:
        yield
        return
    bound = resource.getrlimit(resource.RLIMIT_DATA)
    _restore()
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_DATA, bound)


def out_of_memory_message(megabytes: int | None) -> str:
    """The grader's own error when its memory ran out, in the grade's language (English if even that fails)."""
    try:
        if megabytes:
            return _(
                "the grader ran out of memory: it reached its limit of {megabytes} MB (--grader-memory-mb); "
                "raise the limit or grade fewer at once (--jobs)"
            ).format(megabytes=megabytes)
        return _(
            "the grader ran out of memory: it reached the memory this machine has; "
            "raise the limit or grade fewer at once (--jobs)"
        )
    except MemoryError:  # loading the catalog needs memory too: say it in the source language
        limit = f"its limit of {megabytes} MB (--grader-memory-mb)" if megabytes else "the memory this machine has"
        return f"the grader ran out of memory: it reached {limit}; raise the limit or grade fewer at once (--jobs)"
