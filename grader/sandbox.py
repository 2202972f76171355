"""Parent side of the trust boundary: start a child process, send it commands, survive it.

Every command has a deadline. If the child hangs it is killed; if it dies (os._exit, a signal,
running out of memory) the outcome says how, and the caller may start a fresh one. Nothing the
child returns is unpickled: replies are JSON and raw outputs are files read with
`torch.load(weights_only=True)` by the tasks.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

PR_SET_PDEATHSIG = 1
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
OUTPUT_LIMIT_BYTES = 512 * 1024**2  # per file the child writes, its log included
SIGNAL_MEANINGS = {
    signal.SIGKILL: "was killed (out of memory, or a limit was hit)",
    signal.SIGXFSZ: "wrote more than the output limit (512 MiB in one file)",
    signal.SIGSEGV: "crashed with a segmentation fault",
    signal.SIGABRT: "aborted",
    signal.SIGXCPU: "used more than its CPU time limit",
}


@dataclass
class Outcome:
    """What one command did: `status` is ok, error (student code raised), timeout or died."""

    status: str
    value: object = None
    error: str | None = None
    error_type: str | None = None
    filename: str | None = None
    line: int | None = None
    traceback: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def child_lost(self) -> bool:
        """True when the child no longer exists and must be restarted."""
        return self.status in ("timeout", "died")


@dataclass
class SandboxConfig:
    """Limits and environment of the child."""

    workdir: Path
    log_path: Path
    device: str = "cpu"            # "cpu" hides CUDA from the child
    seed: int = 0
    memory_limit_mb: int | None = None
    sys_path: list[str] = field(default_factory=list)
    preamble: str = ""
    start_timeout: float = 60.0
    isolate_network: bool = True


def _limit_child(config: SandboxConfig):
    """Runs in the child between fork and exec: resource limits and, if possible, no network."""
    def apply():
        libc = ctypes.CDLL(None, use_errno=True)
        # If the grader dies (killed, Ctrl-C), the child must not live on burning CPU.
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_FSIZE, (OUTPUT_LIMIT_BYTES, OUTPUT_LIMIT_BYTES))
        if config.memory_limit_mb:
            limit = config.memory_limit_mb * 1024**2
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        if config.isolate_network:
            # A fresh network namespace has only a downed loopback: no connection can leave.
            if libc.unshare(CLONE_NEWNET) != 0:
                libc.unshare(CLONE_NEWUSER | CLONE_NEWNET)
    return apply


def _child_environment(config: SandboxConfig) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(config.workdir),
        "MPLBACKEND": "Agg",
        "PYTHONHASHSEED": str(config.seed),
        "PYTHONUNBUFFERED": "1",
        "TMPDIR": str(config.workdir),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
    }
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if name in os.environ:
            env[name] = os.environ[name]
    if config.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


class Sandbox:
    """One child process and the commands sent to it."""

    def __init__(self, config: SandboxConfig):
        self.config = config
        self.process: subprocess.Popen | None = None
        self._replies = None
        self._commands = None
        self._buffer = b""
        self._reply_closed = False
        self.network_isolated = False

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> Outcome:
        """Spawn the child and run its setup (imports, seeds, the course's preamble)."""
        self.close()
        config = self.config
        config.workdir.mkdir(parents=True, exist_ok=True)
        command_read, command_write = os.pipe()
        reply_read, reply_write = os.pipe()
        log = open(config.log_path, "ab")
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-m", "grader.child", str(command_read), str(reply_write)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                pass_fds=(command_read, reply_write), cwd=config.workdir,
                env=_child_environment(config), start_new_session=True,
                preexec_fn=_limit_child(config),
            )
        finally:
            log.close()
            os.close(command_read)
            os.close(reply_write)
        self._commands = os.fdopen(command_write, "w", encoding="utf-8")
        self._replies = reply_read
        self._buffer = b""
        outcome = self._send(
            {"op": "setup", "workdir": str(config.workdir), "sys_path": config.sys_path,
             "seed": config.seed, "preamble": config.preamble},
            config.start_timeout,
        )
        self.network_isolated = config.isolate_network and self._in_own_network_namespace()
        return outcome

    def _in_own_network_namespace(self) -> bool:
        try:
            return os.readlink(f"/proc/{self.process.pid}/ns/net") != os.readlink("/proc/self/ns/net")
        except OSError:
            return False

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def close(self) -> None:
        """Ask the child to leave, then make sure its whole process group is gone."""
        if self.process is None:
            return
        try:
            if self.alive:
                self._commands.write('{"op": "exit"}\n')
                self._commands.flush()
                self.process.wait(timeout=2)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
        self._kill()
        for stream in (self._commands,):
            try:
                stream.close()
            except OSError:
                pass
        try:
            os.close(self._replies)
        except OSError:
            pass
        self.process = None

    def _kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    # -- commands ---------------------------------------------------------------------------
    def exec(self, code: str, filename: str, timeout: float) -> Outcome:
        """Run code in the student namespace; `filename` (e.g. '<cell 12>') labels tracebacks."""
        return self._send({"op": "exec", "code": code, "filename": filename}, timeout)

    def call(self, function: str, out_dir: Path, timeout: float, on_wait=None, **kwargs) -> Outcome:
        """Call a probe `module:function(namespace, out_dir, **kwargs)` inside the child.

        `on_wait()` is called about once a second while the child works (for progress).
        """
        return self._send(
            {"op": "call", "function": function, "out_dir": str(out_dir), "kwargs": kwargs},
            timeout, on_wait,
        )

    def _send(self, command: dict, timeout: float, on_wait=None) -> Outcome:
        started = time.monotonic()
        if not self.alive:
            return Outcome("died", error=self._death_message(), seconds=0.0)
        try:
            self._commands.write(json.dumps(command) + "\n")
            self._commands.flush()
        except (BrokenPipeError, OSError):
            return Outcome("died", error=self._death_message(), seconds=0.0)
        line = self._read_line(started + timeout, on_wait)
        seconds = time.monotonic() - started
        if line is None:
            if self._reply_closed or not self.alive:
                # The child closed its end: it is exiting or gone. Its exit status says why.
                return Outcome("died", error=self._death_message(), seconds=seconds)
            self._kill()
            return Outcome("timeout", error=f"did not finish within {timeout:g} s", seconds=seconds)
        reply = json.loads(line)
        if reply.get("ok"):
            return Outcome("ok", value=reply.get("value"), seconds=seconds)
        return Outcome(
            "error", error=reply.get("error"), error_type=reply.get("error_type"),
            filename=reply.get("filename"), line=reply.get("line"),
            traceback=reply.get("traceback"), seconds=seconds,
        )

    def _read_line(self, deadline: float, on_wait=None) -> bytes | None:
        """The next reply line, or None at the deadline or when the child closes the pipe."""
        self._reply_closed = False
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([self._replies], [], [], min(remaining, 1.0))
            if not ready:
                if not self.alive:
                    return None
                if on_wait is not None:
                    on_wait()
                continue
            chunk = os.read(self._replies, 1 << 16)
            if not chunk:
                self._reply_closed = True
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def _death_message(self) -> str:
        if self.process is None:
            return "the child process was not running"
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return "the child process stopped answering"
        if code < 0:
            meaning = SIGNAL_MEANINGS.get(-code, f"was stopped by signal {-code}")
            return f"the student's code {meaning}"
        return f"the student's code ended the process (exit code {code})"
