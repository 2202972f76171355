"""The executor's loop: read a command frame, do it, answer one frame (child side).

Commands (named in `commands`, which the grader imports too): setup, exec (run a cell), get
(values of names), describe (what names are), classes (the student's module classes), call (a
student function or class, with stubs and temporary bindings), the training and sampling steps
in `harness`, and the course's own flow in `course`. Every answer is raw: values, records, or
the exception student code raised, with its cell and line.
"""

import ast
import importlib.abc
import json
import os
import sys
import traceback

import torch

from executor import commands, course, fanout, harness, stubs, wire

FORBIDDEN_PACKAGES = ("grader", "tasks", "reference")


class MissingName(LookupError):
    """The student's code does not define a name the grader asked for (reported as kind MISSING_NAME)."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


class UnknownCommand(LookupError):
    """A command frame whose op is none of `commands.COMMANDS`."""


class ImportWatch(importlib.abc.MetaPathFinder):
    """Notes attempts to import the grader's packages (they are not there to import anyway)."""

    def __init__(self):
        self.attempts = []

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in FORBIDDEN_PACKAGES and len(self.attempts) < 20:
            self.attempts.append(name[:100])
        return None


def error_kind(error: BaseException) -> dict:
    """What kind of error this is for the grader (`commands` names the kinds), decided by its class."""
    if isinstance(error, MissingName) and type(error.name) is str:
        return {"kind": commands.MISSING_NAME, "name": error.name[:200]}
    if isinstance(error, UnknownCommand):
        return {"kind": commands.UNKNOWN_COMMAND}
    if isinstance(error, SystemExit):
        return {"kind": commands.EXITED}
    return {"kind": commands.RAISED}


def describe_error(error: BaseException) -> dict:
    """Kind, type, one message, and the innermost frame in a student cell."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename.startswith("<cell")]
    frame = frames[-1] if frames else None
    if isinstance(error, SystemExit):
        message = f"the code called sys.exit({error.code!r})"
    else:
        try:
            message = f"{type(error).__name__}: {error}"
        except Exception:  # a hostile __str__
            message = type(error).__name__
    try:
        kind = error_kind(error)
    except Exception:  # a hostile subclass's attributes
        kind = {"kind": commands.RAISED}
    return {
        **kind,
        "type": type(error).__name__[:100],
        "message": message[:1000],
        "cell": frame.filename if frame else None,
        "line": frame.lineno if frame else None,
    }


class Executor:
    def __init__(self, paths: dict):
        self.paths = paths
        self.namespace = {"__name__": "__main__", "__builtins__": __builtins__}
        self.device = torch.device("cpu")
        self.watch = ImportWatch()
        self.slots: dict = {}  # objects the grader made here and refers to later (models it built)
        self.progress = None
        self.out_fd = -1  # the reply pipe, set by main()
        self.blobs: list = []  # the blobs of the command being run, set by main()

    # -- commands -------------------------------------------------------------------------
    def setup(self, seed: int, preamble: str, device: str, threads: int = 0, gpu_fraction: float = 0.0):
        import random

        sys.path.insert(0, self.paths["course"])
        sys.meta_path.insert(0, self.watch)
        if threads:
            torch.set_num_threads(threads)
        self.device = torch.device(device)
        cuda = torch.cuda.is_available()
        if self.device.type == "cuda" and cuda and gpu_fraction:
            torch.cuda.set_per_process_memory_fraction(gpu_fraction)
        random.seed(seed)
        torch.manual_seed(seed)
        # Same seed, same verdict: no kernel may pick a nondeterministic algorithm (warn, not fail).
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        try:
            import numpy

            numpy.random.seed(seed % 2**32)
        except ImportError:
            pass
        exec(compile(preamble, "<preamble>", "exec"), self.namespace)
        return {
            "cuda": cuda,
            "device": str(self.device),
            "threads": torch.get_num_threads(),
            "deterministic": torch.are_deterministic_algorithms_enabled(),
        }

    def exec(self, code: str, filename: str):
        """Run a cell one top-level statement at a time: a FIXME on one line must not hide the
        definitions after it in the same cell."""
        errors = []
        for statement in ast.parse(code, filename).body:
            try:
                exec(compile(ast.Module([statement], []), filename, "exec"), self.namespace)
            except BaseException as error:  # student code can raise anything
                errors.append(describe_error(error))
        return errors

    def get(self, names: list):
        return {name: self.namespace[name] for name in names if name in self.namespace}

    def describe(self, names: list):
        """What each name is: type, defining module and name (to see delegation to helpers),
        and for tensors where they live; a device or a string also gives its value."""
        found = {}
        for name in names:
            if name not in self.namespace:
                continue
            value = self.namespace[name]
            target = getattr(value, "__func__", value)
            info: dict[str, object] = {
                "type": type(value).__name__[:100],
                "module": str(getattr(target, "__module__", ""))[:200],
                "qualname": str(getattr(target, "__qualname__", ""))[:200],
            }
            if isinstance(value, torch.Tensor):
                info.update(
                    device=str(value.device),
                    dtype=str(value.dtype),
                    shape=list(value.shape),
                    exact=type(value) is torch.Tensor,
                )
            elif type(value) in (torch.device, str, int, float, bool):
                info["value"] = str(value)[:100]
            found[name] = info
        return found

    def classes(self):
        """nn.Module classes the student's cells define, with the modules of their bases."""
        found = {}
        for name, value in list(self.namespace.items()):
            if isinstance(value, type) and issubclass(value, torch.nn.Module) and value.__module__ == "__main__":
                found[name] = sorted({base.__module__ for base in value.__mro__[1:]})
        return found

    def call(self, target: str, args=(), kwargs=None, bind=None, no_grad: bool = False):
        """Call a student object with the grader's arguments, some names temporarily rebound."""
        function = self.lookup(target)

        def run():
            with torch.no_grad() if no_grad else torch.enable_grad():
                return function(*args, **(kwargs or {}))

        return self.with_bindings(bind, run)

    def module(self, target: str, args=(), state=None, inputs=(), bind=None):
        """Build a student class, load weights strictly, run forward on the inputs (no grad)."""

        def run():
            # The weights and inputs were decoded onto the device: the module must live there too.
            instance = self.lookup(target)(*args).to(self.device)
            if state is not None:
                instance.load_state_dict(state, strict=True)
            instance.eval()
            with torch.no_grad():
                return instance(*inputs)

        return self.with_bindings(bind, run)

    def batch(self, commands: list, workers: int = 1, progress: str | None = None):
        """Several commands in one frame; each answers on its own, a failure stops none. With
        `workers` > 1 on a CPU, forked copies of this process answer them at once (fanout.py);
        with `progress`, each answer that arrives is reported under that phase."""
        unwrapped = [dict(command.get("$dict", {})) if isinstance(command, dict) else {} for command in commands]

        def on_answer(done: int) -> None:
            if type(progress) is str:
                self.send_progress(progress, done, len(unwrapped))

        if type(workers) is int and workers > 1 and self.device.type == "cpu":
            return fanout.answer_shared(self, unwrapped, workers, on_answer)
        answers = []
        for command in unwrapped:
            answers.append(self.answer(command))
            on_answer(len(answers))
        return answers

    # -- helpers --------------------------------------------------------------------------
    def lookup(self, target: str):
        name, *attributes = target.split(".")
        if name in self.slots:
            value = self.slots[name]
        elif name in self.namespace:
            value = self.namespace[name]
        else:
            raise MissingName(name)
        for attribute in attributes:
            value = getattr(value, attribute)
        return value

    def with_bindings(self, bind, function):
        saved = {}
        for name, value in (bind or {}).items():
            saved[name] = self.namespace.get(name, saved)
            self.namespace[name] = value
        try:
            return function()
        finally:
            for name, value in saved.items():
                if value is saved:
                    self.namespace.pop(name, None)
                else:
                    self.namespace[name] = value

    def make_stub(self, spec: dict):
        if "$name" in spec:
            return self.lookup(spec["$name"])
        arguments = wire.decode(spec.get("args", {}), self.blobs, self.device, self.make_stub)
        stub = stubs.KINDS[spec["$stub"]](**arguments)
        if isinstance(stub, torch.nn.Module):
            stub = stub.to(self.device)
        self.made.append((spec.get("id", spec["$stub"]), stub))
        return stub

    def handlers(self) -> dict:
        """Every command this executor answers (`commands.COMMANDS`), each to its method."""
        steps = harness.handlers(self)
        flow = course.handlers(self)
        return {
            commands.SETUP: self.setup,
            commands.EXEC: self.exec,
            commands.GET: self.get,
            commands.DESCRIBE: self.describe,
            commands.CLASSES: self.classes,
            commands.CALL: self.call,
            commands.MODULE: self.module,
            commands.BATCH: self.batch,
            commands.TRAINING_CELL: steps.training_cell,
            commands.BUILD: steps.build,
            commands.LOAD: steps.load,
            commands.TRAIN: steps.train,
            commands.COURSE_FLOW: flow.course_flow,
        }

    def answer(self, command: dict) -> dict:
        op = command.pop("op")
        command.pop("blobs", None)
        handlers = self.handlers()
        self.made: list = []
        try:
            if op not in handlers:
                raise UnknownCommand(str(op)[:100])
            if op == commands.BATCH:
                return {"ok": True, "value": handlers[op](**command)}
            arguments = {
                key: wire.decode(value, self.blobs, self.device, self.make_stub) for key, value in command.items()
            }
            value = handlers[op](**arguments)
            records = {name: stub.records for name, stub in self.made if isinstance(stub, stubs.Recorder)}
            return {"ok": True, "value": value, "records": records}
        except BaseException as error:  # student code can raise anything; report, don't die
            return {"ok": False, "error": describe_error(error)}

    def send_progress(self, phase: str, done: int, total: int) -> None:
        wire.write_frame(self.out_fd, {"progress": [phase, done, total]})


def _drop_pipes(*fds: int) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def main() -> None:
    options = json.loads(sys.argv[1])
    in_fd, out_fd = options["in_fd"], options["out_fd"]
    executor = Executor(options["paths"])
    executor.out_fd = out_fd
    # A fork of this process (the student's os.fork, a DataLoader worker) is not the executor:
    # it loses both pipes, so it can neither take the grader's commands nor answer them twice.
    owner = os.getpid()
    os.register_at_fork(after_in_child=lambda: _drop_pipes(in_fd, out_fd))
    while True:
        try:
            header, blobs = wire.read_frame(in_fd)
        except EOFError:
            break
        if header.get("op") == commands.EXIT:
            break
        executor.blobs = blobs
        request = header.pop("id", None)
        batched = header.get("commands") if header.get("op") == commands.BATCH else None
        answers = len(batched) if isinstance(batched, list) else 0
        reply = executor.answer(header)
        if os.getpid() != owner:  # a forked copy came back to this loop: it leaves quietly
            os._exit(0)
        reply["attempted_imports"] = executor.watch.attempts[-5:]
        encoder = wire.Encoder(max_items=wire.MAX_ITEMS * (1 + answers))
        tree = encoder.encode(reply)
        sys.stdout.flush()
        sys.stderr.flush()
        wire.write_frame(out_fd, {"id": request, "reply": tree}, encoder.blobs)
    # Skip interpreter teardown: student objects' __del__ or atexit hooks must not run or hang.
    os._exit(0)
