"""`python -m grader ...` runs the `dli-grade` command (the batch starts each grade this way)."""

import os
import sys

# `-m` put the working directory first on sys.path. Run from a folder of collected submissions,
# a student's json.py or tasks.py there would be imported in place of ours: drop it, unless it
# is the checkout holding this package. (A grader.py there wins before this runs: use the
# `dli-grade` script or `python -P -m grader`; docs/security.md.)
_HERE = os.path.realpath(os.getcwd())
if (
    sys.path
    and os.path.realpath(sys.path[0] or ".") == _HERE
    and os.path.dirname(os.path.dirname(os.path.realpath(__file__))) != _HERE
):
    del sys.path[0]

from grader.cli import main  # noqa: E402  (after the path is cleaned)

main(prog_name="dli-grade")
