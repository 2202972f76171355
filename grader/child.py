"""The child process that runs student code: `python -I -m grader.child IN_FD OUT_FD`.

It reads one JSON command per line from IN_FD and answers one JSON line on OUT_FD. Student
code runs in one namespace (`__main__`-like); probes (functions in `tasks.*`) are called with
that namespace and a folder to write raw outputs to. The parent decides every verdict: this
process only executes and records. Its own stdout and stderr go to a log file, so nothing the
student prints can reach the grader's output or the protocol.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import sys
import traceback


def _error_reply(error: BaseException, filename_prefix: str = "<cell") -> dict:
    """Describe an exception by type, message and the innermost student (cell) frame."""
    frames = traceback.extract_tb(error.__traceback__)
    student = [f for f in frames if f.filename.startswith(filename_prefix)]
    frame = student[-1] if student else None
    message = f"{type(error).__name__}: {error}".strip()
    if isinstance(error, SystemExit):
        message = f"the code called sys.exit({error.code!r})"
    return {
        "ok": False,
        "error_type": type(error).__name__,
        "error": message,
        "filename": frame.filename if frame else None,
        "line": frame.lineno if frame else None,
        "traceback": "".join(traceback.format_exception(error))[-4000:],
    }


class Child:
    """Executes commands against one student namespace."""

    def __init__(self):
        self.namespace: dict = {"__name__": "__main__", "__builtins__": __builtins__}

    def setup(self, workdir: str, sys_path: list[str], seed: int, preamble: str) -> dict:
        os.chdir(workdir)
        sys.path[:0] = sys_path
        import random

        import numpy
        import torch

        random.seed(seed)
        numpy.random.seed(seed)
        torch.manual_seed(seed)
        exec(compile(preamble, "<preamble>", "exec"), self.namespace)
        return {"ok": True, "cuda": torch.cuda.is_available()}

    def exec_code(self, code: str, filename: str) -> dict:
        """Run a cell one top-level statement at a time, going on past failing statements.

        A FIXME left in one line must not hide the definitions after it in the same cell.
        """
        errors = []
        for statement in ast.parse(code, filename).body:
            try:
                exec(compile(ast.Module([statement], []), filename, "exec"), self.namespace)
            except BaseException as error:  # student code can raise anything
                errors.append(_error_reply(error))
        return {"ok": True, "value": errors}

    def call(self, function: str, out_dir: str, kwargs: dict) -> dict:
        module_name, _, attribute = function.partition(":")
        probe = getattr(importlib.import_module(module_name), attribute)
        value = probe(self.namespace, out_dir, **kwargs)
        return {"ok": True, "value": value}

    def handle(self, command: dict) -> dict:
        op = command.pop("op")
        handler = {"setup": self.setup, "exec": self.exec_code, "call": self.call}[op]
        try:
            return handler(**command)
        except BaseException as error:  # student code can raise anything; report, don't die
            return _error_reply(error)


def main() -> None:
    in_fd, out_fd = int(sys.argv[1]), int(sys.argv[2])
    commands = os.fdopen(in_fd, "r", encoding="utf-8")
    replies = os.fdopen(out_fd, "w", encoding="utf-8")
    child = Child()
    for line in commands:
        command = json.loads(line)
        if command.get("op") == "exit":
            break
        reply = child.handle(command)
        sys.stdout.flush()
        sys.stderr.flush()
        replies.write(json.dumps(reply, default=str) + "\n")
        replies.flush()
    # Skip interpreter teardown: student objects' __del__ or atexit hooks must not run or hang.
    os._exit(0)


if __name__ == "__main__":
    main()
