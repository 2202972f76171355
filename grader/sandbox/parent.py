"""Parent side of the trust boundary: start a contained child, send it commands, survive it.

The child is started through grader/sandbox/launcher.py, which contains it and reports which layers
held. Every command has a deadline; a child that hangs is killed, one that dies is reported
with how, one that breaks the protocol is killed too, and the caller may start a fresh one.
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from grader.core.i18n import N_, _
from grader.core.memory import child_preexec
from grader.core.sanitize import inert
from grader.sandbox.executor import commands
from grader.sandbox.frames import (
    ArgumentEncoder,
    FrameReader,
    ProtocolError,
    decode_value,
    encode_frame,
    progress_event,
)

LAUNCHER = Path(__file__).with_name("launcher.py")
EXECUTOR = Path(__file__).with_name("executor")
PR_SET_DUMPABLE = 4
FILE_LIMIT_MB = 512
PROCESS_LIMIT = 256
# How the child died, by signal: whole sentences, translated where the reason is written (the grade's language).
SIGNAL_MEANINGS: dict[int, str] = {  # keyed by signal number (a Signals is an int)
    signal.SIGKILL: N_("the student's code was killed (out of memory, or a limit was hit)"),
    signal.SIGXFSZ: N_("the student's code wrote more than the output limit (512 MiB in one file)"),
    signal.SIGSEGV: N_("the student's code crashed with a segmentation fault"),
    signal.SIGABRT: N_("the student's code aborted"),
    signal.SIGXCPU: N_("the student's code used more than its CPU time limit"),
    signal.SIGSYS: N_("the student's code made a forbidden system call"),
}


# Why the launcher refused to run student code, by the code it sends beside its own English sentence.
NO_ISOLATION = "no_isolation"


def refusal_reason(status: dict) -> str:
    """The launcher's refusal in the grade's language. The launcher (standard library only) cannot translate:
    a code it names is worded here, its values quoted as sent; an unknown code shows its own sentence, inert."""
    refusal = status.get("refusal")
    if isinstance(refusal, dict) and refusal.get("code") == NO_ISOLATION:
        landlock = refusal.get("landlock")
        return _(
            "neither a private filesystem view (namespaces: {namespaces}) nor Landlock ({landlock}) is available here"
        ).format(
            namespaces=_quoted(refusal.get("namespaces")),
            landlock=_("not tried") if landlock is None else _quoted(landlock),
        )
    return inert(status.get("refused"), 400)


def _quoted(value: object) -> str:
    """A detail the launcher recorded (the system's own words, in English), shown as a quoted value."""
    return repr(inert(value, 200))


@dataclass
class Outcome:
    """What one command did: `status` is ok, error (student code raised), timeout, died or broken
    (the child broke the protocol)."""

    status: str
    value: object = None
    records: dict = field(default_factory=dict)
    error: dict | None = None  # {type, message, cell, line} for status "error"
    reason: str = ""  # why the child is gone, for timeout, died and broken

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def child_lost(self) -> bool:
        return self.status in ("timeout", "died", "broken")

    @property
    def error_kind(self) -> str | None:
        """The kind of error the child reported (`commands.ERROR_KINDS`), RAISED for anything
        else it sent; None when the command did not fail. Never read from the message's text."""
        if self.status != "error":
            return None
        kind = (self.error or {}).get("kind")
        return kind if type(kind) is str and kind in commands.ERROR_KINDS else commands.RAISED

    @property
    def missing_name(self) -> str | None:
        """The name the child had nothing under (kind MISSING_NAME), when it is a plain identifier."""
        name = (self.error or {}).get("name")
        if self.error_kind != commands.MISSING_NAME or type(name) is not str:
            return None
        return name if name.isidentifier() and len(name) <= 100 else None


@dataclass
class SandboxConfig:
    """Limits and environment of the child."""

    workdir: Path  # the grader's own folder for this child (never read back)
    data_dir: Path | None  # MNIST laid out for torchvision, bound read-only as ./data; None: no data
    course_dir: Path  # the course helper stand-ins, bound read-only on sys.path
    view: dict  # hide / expose / uid_range / uid_lock_dir, from grader.sandbox.view
    device: str = "cpu"
    seed: int = 0
    memory_limit_mb: int | None = None
    tmp_size_mb: int = 1024
    preamble: str = ""
    contain: bool = True  # False: the operator's opt-out, grade even where nothing hides the answer key
    mounts: dict = field(default_factory=dict)  # name -> folder a task asked for, bound read-only at /tmp/.dli/NAME
    gpu_fraction: float = (
        0.9  # share of the GPU's memory the child may take (grader.grading.runner.gpu_memory_fraction)
    )


def _child_environment(config: SandboxConfig) -> dict[str, str]:
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "MPLBACKEND": "Agg",
        "PYTHONHASHSEED": str(config.seed % 2**32),
        "PYTHONDONTWRITEBYTECODE": "1",
        "LANG": os.environ.get("LANG", "C.UTF-8"),
    }
    # The child's torch threads come from OMP_NUM_THREADS/MKL_NUM_THREADS, passed on as the grader got
    # them: `dli-grade batch` gives each concurrent grade its share of the cores this way.
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if name in os.environ:
            env[name] = os.environ[name]
    # The operator's choice of GPU is kept; a grade on the CPU shows the child none.
    if config.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    elif "CUDA_VISIBLE_DEVICES" in os.environ:
        env["CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"]
    if config.device == "cuda":
        env["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"  # cuBLAS's condition for deterministic results
    return env


class Sandbox:
    """One contained child process and the commands sent to it."""

    def __init__(self, config: SandboxConfig):
        self.config = config
        self.process: subprocess.Popen | None = None
        self.layers: dict = {}
        self.setup_reply: dict = {}
        self.attempted_imports: list[str] = []
        # The pipes' grader ends (fds); None until start() opens them.
        self._commands: int | None = None
        self._replies: int | None = None
        self._reader = FrameReader()
        self._next_id = 0

    # -- life cycle -------------------------------------------------------------------------
    def start(self, timeout: float) -> Outcome:
        """Spawn the launcher, read which layers held, and run the executor's setup."""
        self.close()
        _make_grader_undumpable()
        config = self.config
        config.workdir.mkdir(parents=True, exist_ok=True)
        command_read, command_write = os.pipe()
        reply_read, reply_write = os.pipe()
        launcher_config = {
            **config.view,
            "grader_pid": os.getpid(),
            "contain": config.contain,
            "device": config.device,
            "tmp_size_mb": config.tmp_size_mb,
            "file_limit_mb": FILE_LIMIT_MB,
            "process_limit": PROCESS_LIMIT,
            "memory_limit_mb": config.memory_limit_mb,
            "reply_fd": reply_write,
            "mounts": {
                **{name: str(path) for name, path in config.mounts.items()},
                "executor": str(EXECUTOR),
                "course": str(config.course_dir),
                **({"data": str(config.data_dir)} if config.data_dir else {}),
            },
            "fallback_workdir": str(config.workdir),
            "python": sys.executable,
            "env": _child_environment(config),
            "executor": {"in_fd": command_read, "out_fd": reply_write},
            "skip": skipped_layers(),
        }
        log = open(config.workdir / "child-output.log", "ab")  # noqa: SIM115 (closed below); the grader never reads it
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", LAUNCHER.read_text(), json.dumps(launcher_config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                pass_fds=(command_read, reply_write),
                cwd="/",
                start_new_session=True,
                preexec_fn=child_preexec(),
                env={"PATH": "/usr/bin:/bin"},
            )
        finally:
            log.close()
            os.close(command_read)
            os.close(reply_write)
        self._commands, self._replies = command_write, reply_read
        os.set_blocking(self._replies, False)
        self._reader = FrameReader()
        deadline = time.monotonic() + timeout
        try:
            status = self._read_frame(deadline)
        except ProtocolError as error:
            self._kill()
            return Outcome("broken", reason=_("the sandbox did not start: {error}").format(error=error))
        if status is None:
            return self._lost(deadline)
        self.layers = status[0].get("sandbox", {}) if isinstance(status[0].get("sandbox"), dict) else {}
        if "refused" in status[0]:
            self._kill()
            refused = _("the sandbox refused to run student code: {why}").format(why=refusal_reason(status[0]))
            return Outcome("died", reason=refused[:500])
        outcome = self.request(
            commands.SETUP,
            max(1.0, deadline - time.monotonic()),
            seed=config.seed,
            preamble=config.preamble,
            device=config.device,
            gpu_fraction=config.gpu_fraction if config.device == "cuda" else 0.0,
        )
        if outcome.ok and isinstance(outcome.value, dict):
            self.setup_reply = outcome.value
        return outcome

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def close(self) -> None:
        """Ask the child to leave, then make sure it and everything it started are gone."""
        if self.process is None:
            return
        try:
            if self.alive and self._commands is not None:
                os.set_blocking(self._commands, False)  # a child that reads nothing must not stall us
                os.write(self._commands, encode_frame({"op": commands.EXIT}))
                self.process.wait(timeout=1)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self._kill()
        for fd in (self._commands, self._replies):
            if fd is None:  # never opened
                continue
            try:
                os.close(fd)
            except OSError:
                pass
        self.process = None

    def _kill(self) -> None:
        # The sandbox's first process is the launcher's child, in a session of its own: kill it
        # first (that ends its PID namespace and every process in it), then the launcher. Without
        # a PID namespace the launcher is the subreaper of all the child started: kill its whole
        # tree while it lives, so that nothing is reparented to init.
        assert self.process is not None  # called only once start() has spawned the launcher
        for _attempt in range(100):
            descendants = _descendants(self.process.pid)
            if not descendants:
                break
            for child in descendants:
                try:
                    os.kill(child, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.005)
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    # -- commands ---------------------------------------------------------------------------
    def request(self, op: str, timeout: float, on_progress=None, **payload) -> Outcome:
        """Send one command and wait for its answer (progress frames go to `on_progress`)."""
        deadline = time.monotonic() + max(0.0, timeout)
        if not self.alive:
            return Outcome("died", reason=self._death_message())
        try:
            self._check_no_stray_data()
        except ProtocolError as error:
            self._kill()
            return Outcome("broken", reason=str(error))
        self._next_id += 1
        encoder = ArgumentEncoder()
        header = {"id": self._next_id, "op": op, **{k: encoder.encode(v) for k, v in payload.items()}}
        try:
            self._write_all(encode_frame(header, encoder.blobs), deadline)
        except (BrokenPipeError, OSError):
            return self._lost(deadline)
        try:
            while True:
                frame = self._read_frame(deadline)
                if frame is None:
                    return self._lost(deadline)
                header, blobs = frame
                if "progress" in header:
                    phase, done, total = progress_event(header)
                    if on_progress:
                        on_progress(inert(phase, 60), done, total)
                    continue
                return self._reply(header, blobs)
        except ProtocolError as error:
            self._kill()
            return Outcome("broken", reason=_("the child broke the protocol: {error}").format(error=error))
        except MemoryError:  # reading, decoding or checking a reply past --grader-memory-mb (or the machine's)
            self._kill()
            too_much = _("the child sent more than the grader's memory allows")
            return Outcome("broken", reason=_("the child broke the protocol: {error}").format(error=too_much))

    def limit_received(self, limit: int | None) -> None:
        """From now on, the child may send at most `limit` bytes of frames (None: no limit); the
        grader sets it at the start of each task, so one task cannot make it hold unbounded data."""
        self._reader.allowance = limit

    def _reply(self, header: dict, blobs: list[bytearray]) -> Outcome:
        if header.get("id") != self._next_id:
            raise ProtocolError(_("an answer to a command that was not sent"))
        reply = decode_value(header.get("reply"), blobs)
        if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
            raise ProtocolError(_("an answer without a status"))
        imports = reply.get("attempted_imports")
        if isinstance(imports, list):
            self.attempted_imports += [
                inert(name, 100) for name in imports[:20] if type(name) is str and name not in self.attempted_imports
            ][:20]
        self._check_no_stray_data()
        return answer_outcome(reply)

    def _check_no_stray_data(self) -> None:
        """Bytes nobody asked for (a forged or extra answer) break the protocol."""
        if self._reader.pending:
            raise ProtocolError(_("data after an answer"))
        assert self._replies is not None  # only asked while a child runs, after start() opened the pipes
        try:
            data = os.read(self._replies, 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            return
        if data:
            raise ProtocolError(_("data nobody asked for"))

    def _write_all(self, data: bytes, deadline: float) -> None:
        assert self._commands is not None  # commands go only to a started child, after start() opened the pipes
        view = memoryview(data)
        while view:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.alive:
                raise OSError("the child did not read its command")
            _readable, writable, _errors = select.select([], [self._commands], [], min(remaining, 1.0))
            if writable:
                view = view[os.write(self._commands, view[: 1 << 16]) :]

    def _read_frame(self, deadline: float):
        """The next frame, or None at the deadline or when the child closed the pipe."""
        assert self._replies is not None  # read only once start() opened the pipes
        while True:
            frame = self._reader.next_frame()
            if frame is not None:
                return frame
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _writable, _errors = select.select([self._replies], [], [], min(remaining, 1.0))
            if not ready:
                if not self.alive:
                    return None
                continue
            try:
                chunk = os.read(self._replies, 1 << 20)
            except BlockingIOError:
                continue
            if not chunk:
                return None
            self._reader.feed(chunk)

    def _lost(self, deadline: float) -> Outcome:
        if self.alive and time.monotonic() >= deadline:
            self._kill()
            return Outcome("timeout", reason=_("did not finish in time"))
        self._kill()
        return Outcome("died", reason=self._death_message())

    def _death_message(self) -> str:
        if self.process is None:
            return _("the child process was not running")
        code = self.process.poll()
        if code is None:
            return _("the child process stopped answering")
        if code == 70:
            return _("the sandbox could not be set up")
        return death_reason(code)


def death_reason(code: int) -> str:
    """How a process of the student's code ended, from its return code (minus the signal, or the exit code)."""
    if code < 0:
        if -code in SIGNAL_MEANINGS:
            return _(SIGNAL_MEANINGS[-code])
        return _("the student's code was stopped by signal {signal}").format(signal=-code)
    return _("the student's code ended the process (exit code {code})").format(code=code)


def answer_outcome(answer: dict) -> Outcome:
    """One answer with its status (a reply, or one answer of a batch) as an Outcome. An answer
    of a batch may say that the forked copy meant to give it ended first (executor/fanout.py):
    that is the child lost, as it would have been had the commands run one after another."""
    if answer.get("ok") is True:
        records = answer.get("records")
        return Outcome("ok", value=answer.get("value"), records=records if isinstance(records, dict) else {})
    lost = answer.get("lost")
    if isinstance(lost, dict):
        code = lost.get("code")
        if type(code) is int and -256 < code < 256:
            return Outcome("died", reason=death_reason(code))
        why = _("a forked copy of the child sent an answer that could not be read")
        return Outcome("broken", reason=_("the child broke the protocol: {error}").format(error=why))
    error = answer.get("error")
    return Outcome("error", error=error if isinstance(error, dict) else {"type": "?", "message": "?"})


def _children(pid: int) -> list[int]:
    """Process ids of `pid`'s children, from /proc (empty where that is not available)."""
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found += [int(part) for part in handle.read().split()]
    except (OSError, ValueError):
        pass
    return found


def _descendants(pid: int) -> list[int]:
    """Every living process below `pid` (zombies left out: they are already dead)."""
    found: list[int] = []
    queue = _children(pid)
    while queue and len(found) < 100_000:
        child = queue.pop()
        if not _is_zombie(child):
            found.append(child)
        queue += _children(child)
    return found


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")
    except (OSError, IndexError):
        return True  # gone


SKIP_VARIABLE = "DLI_GRADE_SANDBOX_SKIP"
SKIPPABLE = ("namespaces", "landlock", "subreaper", "seccomp")


def skipped_layers() -> list[str]:
    """Layers the launcher must not build, from DLI_GRADE_SANDBOX_SKIP (comma-separated,
    from SKIPPABLE). For tests that prove a layer is what stops an attack, and that
    force the fallback; a skipped layer is reported as not held like any other."""
    names = os.environ.get(SKIP_VARIABLE, "")
    return sorted({name.strip() for name in names.split(",") if name.strip() in SKIPPABLE})


def probe_isolation() -> dict:
    """What this machine allows, asked of a throwaway launcher: {root, namespaces,
    namespaces_error, landlock_abi, isolated} (isolated: a private view or Landlock is possible)."""
    run = subprocess.run(
        [sys.executable, "-I", "-S", "-c", LAUNCHER.read_text(), json.dumps({"probe": True})],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin"},
    )
    try:
        found = json.loads(run.stdout)
    except ValueError:
        found = {
            "root": os.geteuid() == 0,
            "namespaces": False,
            "landlock_abi": 0,
            "namespaces_error": _("the probe failed: {error}").format(error=run.stderr.strip()[-300:]),
        }
    skip = skipped_layers()
    if "namespaces" in skip:
        found["namespaces"], found["namespaces_error"] = False, _("skipped ({variable})").format(variable=SKIP_VARIABLE)
    if "landlock" in skip:
        found["landlock_abi"] = 0
    found["isolated"] = bool(found["namespaces"] or found["landlock_abi"])
    return found


def _make_grader_undumpable() -> None:
    """No process of the same uid may read this one's memory or /proc entries."""
    try:
        ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass
