"""Errors the grader raises, each mapped to the command line's exit code."""

EXIT_PASSED = 0
EXIT_NOT_PASSED = 1
EXIT_UNUSABLE = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT; the tasks graded so far are still printed


class UnusableInput(Exception):
    """The submission or the arguments cannot be graded (exit code 2).

    The message is one line that names the file and the problem; no traceback is shown.
    """
