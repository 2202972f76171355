"""The trust boundary: student code runs only in a contained child process.

`parent` (runs in the grader) starts the child and talks to it; `launcher` (runs alone in the
child process, standard library only) contains it and then execs the executor; `view` (grader)
decides the allow-list of paths the child may see; `frames` (grader) reads the child's replies
as untrusted input; `executor/` (runs in the child) executes cells and calls.

Imports only `grader.core` (and `executor/` imports nothing of the project at all).
"""
