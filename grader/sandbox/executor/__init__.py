"""The child's side of the trust boundary: a dumb executor for student code.

This package is copied into the sandbox read-only and imported there as `executor`; it imports
nothing from `grader`, `tasks` or `reference` (the child cannot reach them). It runs cells and
calls student functions with arguments the grader wrote, and returns raw values. It decides
nothing: student code in the same process may patch any of it, and the grader assumes so.
"""
