"""What every layer of the grader uses: exit codes and errors, atomic writes, safe text, the
language of messages (gettext catalogs under `locale/`), CPU and memory sizing.

Imports nothing from the rest of `grader`, from `tasks` or from `reference`; everything may import it.
"""
