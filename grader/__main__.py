"""`python -m grader ...` runs the `dli-grade` command (the batch starts each grade this way)."""

from grader.cli import main

main(prog_name="dli-grade")
