"""Running a grade: `runner` chooses the device and each task's options and grades the tasks in
order under one deadline; `session` owns the child, replays cells and asks each task for its
verdict through a `context`; `result` is the grade as data and its JSON document.

May import `grader.core`, `grader.submission`, `grader.sandbox`, `tasks` and `reference`.
"""
