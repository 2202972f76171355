"""Independent commands answered at once by forked copies of the executor (child side).

A `batch` with `workers` > 1 shares its commands out, round robin, over that many processes
forked from this one. Each copy inherits the student's namespace and the grader's slots as they
are now, answers its share with one torch thread, and sends every answer back on a pipe of its
own as soon as it has it; this process only waits, passes progress on, and puts the answers back
in order. On the 2-core CPU two one-thread processes draw the official digits about 1.3 times as
fast as one process of two threads (docs/performance.md). What a copy changes stays in the copy.

One thread each: the OpenMP runtime behind torch's CPU kernels does not survive a fork with
more than one (a forked copy that asks for two threads hangs in its first parallel kernel), so
a copy also keeps the student's code from asking for more.

A copy that ends before answering leaves, for each command it did not answer, an answer saying
how it ended ({"ok": false, "lost": {"code": ...}}, the exit code, or minus the signal); one whose
answer cannot be read leaves {"ok": false, "lost": {"broken": ...}}. The grader reads these as
the child lost, in the order the commands were sent.
"""

import json
import os
import select
import signal
import sys

import torch

from .frame_format import LENGTH
from .wire import Encoder, decode, read_exactly, write_frame

# What one answer from a copy may be, at most (the grader's own limits on a frame are the same).
MAX_HEADER = 8 * 1024**2
MAX_BLOBS = 512 * 1024**2


class BrokenAnswer(Exception):
    """A copy's frame that is too large or does not decode."""


def answer_shared(executor, commands: list, workers: int, on_answer) -> list:
    """The answers to `commands` (command dicts, as `executor.answer` takes them), in order,
    computed by `workers` forked copies; `on_answer(done)` is called as each arrives."""
    answers: list = [None] * len(commands)
    pipes: dict[int, tuple[int, list[int]]] = {}  # read end -> (the copy's pid, the indices it owes)
    for worker in range(min(workers, len(commands))):
        share = list(range(worker, len(commands), workers))
        try:
            read_end, write_end = os.pipe()
        except OSError:
            _answer_here(executor, commands, share, answers, on_answer)
            continue
        _flush()  # else what the student printed so far is printed again by every copy
        try:
            pid = os.fork()
        except OSError:  # the process limit: this process answers the share itself
            os.close(read_end)
            os.close(write_end)
            _answer_here(executor, commands, share, answers, on_answer)
            continue
        if pid == 0:
            os.close(read_end)
            _work(executor, commands, share, write_end, others=list(pipes))
        os.close(write_end)
        pipes[read_end] = (pid, share)
    while pipes:
        ready, _, _ = select.select(list(pipes), [], [])
        for read_end in ready:
            pid, owed = pipes[read_end]
            try:
                index, answer, imports = _read_answer(read_end)
                if index not in owed:
                    raise BrokenAnswer("an answer to a command this copy was not given")
            except EOFError:
                _lost(answers, owed, {"code": _wait(pid)})
                os.close(read_end)
                del pipes[read_end]
                continue
            except Exception as error:  # whatever the copy wrote, this process goes on
                _lost(answers, owed, {"broken": type(error).__name__})
                os.close(read_end)
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
                _wait(pid)
                del pipes[read_end]
                continue
            owed.remove(index)
            answers[index] = answer
            _note_imports(executor, imports)
            on_answer(sum(a is not None for a in answers))
            if not owed:
                os.close(read_end)
                _wait(pid)
                del pipes[read_end]
    return answers


def _answer_here(executor, commands: list, share: list[int], answers: list, on_answer) -> None:
    for index in share:
        answers[index] = executor.answer(dict(commands[index]))
        on_answer(sum(a is not None for a in answers))


def _work(executor, commands: list, share: list[int], write_end: int, others: list[int]) -> None:
    """A forked copy: answer `share` with one torch thread, one frame per answer, then leave."""
    try:
        for fd in others:  # the other copies' pipes: this one must not read their answers
            os.close(fd)
        torch.set_num_threads(1)
        torch.set_num_threads = _one_thread  # see the module's docstring
        executor.send_progress = lambda *progress: None  # the grader's pipe is not this copy's
        for index in share:
            answer = executor.answer(dict(commands[index]))
            encoder = Encoder()
            tree = encoder.encode(answer)
            write_frame(
                write_end, {"index": index, "answer": tree, "imports": executor.watch.attempts[-5:]}, encoder.blobs
            )
    finally:
        _flush()
        os._exit(0)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # the student's code may have replaced the streams
            pass


def _one_thread(nthreads: int) -> None:
    """torch.set_num_threads in a forked copy: it stays at one thread."""


def _read_answer(fd: int) -> tuple:
    (length,) = LENGTH.unpack(read_exactly(fd, LENGTH.size))
    if length > MAX_HEADER:
        raise BrokenAnswer("a header too large")
    header = json.loads(read_exactly(fd, length))
    sizes = header.get("blobs") if isinstance(header, dict) else None
    if not (isinstance(sizes, list) and all(type(size) is int and size >= 0 for size in sizes)):
        raise BrokenAnswer("no blob sizes")
    if sum(sizes) > MAX_BLOBS:
        raise BrokenAnswer("blobs too large")
    blobs = [read_exactly(fd, size) for size in sizes]
    index, imports = header.get("index"), header.get("imports")
    if type(index) is not int:
        raise BrokenAnswer("no index")
    answer = decode(header.get("answer"), blobs, torch.device("cpu"), _no_stub)
    if not isinstance(answer, dict):
        raise BrokenAnswer("an answer that is not a dict")
    return index, answer, imports if isinstance(imports, list) else []


def _no_stub(spec):
    raise BrokenAnswer("a stand-in in an answer")


def _note_imports(executor, imports: list) -> None:
    attempts = executor.watch.attempts
    for name in imports:
        if type(name) is str and name not in attempts and len(attempts) < 20:
            attempts.append(name[:100])


def _lost(answers: list, owed: list[int], how: dict) -> None:
    for index in owed:
        answers[index] = {"ok": False, "lost": how}
    owed.clear()


def _wait(pid: int) -> int:
    """The copy's end as Popen.returncode gives it: the exit code, or minus the signal."""
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:  # already reaped
        return 0
    return os.waitstatus_to_exitcode(status)
