"""Grade many submissions: discover them, grade each in its own process, keep a gradebook.

inputs (files, folders, zip archives, git repositories) -> worker (one grade, one subprocess)
-> gradebook (per-submission files, grades.csv) -> summary (summary.md / summary.html).
`engine.run_batch` ties them together; `backends` runs the workers locally or on Ray.
"""
