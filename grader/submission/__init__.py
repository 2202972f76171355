"""Reading a submission, never running it: a notebook or module loaded into numbered cells
(`cells`), IPython syntax made plain (`ipython_syntax`), and what each cell defines, imports
and calls, found by AST (`analysis`, `blanking`, `training_cell`, `smuggling`, `syntax`).

Imports only `grader.core`. Runs in the grader, on text; no student code executes here.
"""
