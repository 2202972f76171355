"""What `dli_grade.check` raises instead of showing a verdict."""


class CheckError(Exception):
    """Base class: the check could not give a verdict."""


class NotInKernelError(CheckError):
    """Called outside an IPython/Jupyter kernel, so there are no executed cells to grade."""


class NoCellsRunError(CheckError):
    """The kernel has run no cell yet (apart from the one asking for the check)."""


class UnknownTaskError(CheckError, ValueError):
    """A task id the grader does not know; the message lists the valid ones."""


class GraderFailedError(CheckError):
    """The grader could not grade (it crashed, refused the machine, or printed no report)."""
