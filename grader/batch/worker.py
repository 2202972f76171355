"""Grade ONE submission in its own process: the single place the batch runs the grader.

The grader runs as `python -m grader grade FILE --format json --output RESULT -q` in a
fresh session, with its share of the CPU threads and a wall-clock limit. Whatever happens
to it (exit, crash, hang, garbage on stdout) becomes one `Outcome`; nothing propagates.
`grade_one` takes the submission's bytes and returns plain data, so a Ray worker on another
machine can run it too.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import grader
from grader.core.sanitize import one_line

STATUSES = ("graded", "unusable", "timeout", "crashed")
MAX_ARTIFACT_BYTES = 8 * 1024 * 1024
PROJECT_ROOT = str(Path(grader.__file__).resolve().parent.parent)

_running: set[subprocess.Popen] = set()  # so an interrupted batch can stop every grade
_running_lock = threading.Lock()


@dataclass
class GradeOptions:
    tasks: tuple[str, ...]
    device: str = "auto"
    seed: int | None = None  # None: each grade draws its own (reported in its result), so no class can predict it
    timeout: float = 60.0
    total_timeout: float = 1800.0
    lang: str = "en"  # the language of the messages in result.json (grader/core/i18n.py)
    # Each grade's bound on its own memory (--grader-memory-mb), passed on its command line: a Ray
    # worker inherits neither the batch's environment nor its limit. Not in `key`: it is a resource
    # of the machine, as --jobs is.
    grader_memory_mb: int | None = None

    def key(self) -> dict:
        """What changes a grade's outcome; a resumed batch regrades when any of it differs."""
        key = {
            "tasks": list(self.tasks),
            "device": self.device,
            "seed": self.seed,
            "timeout": self.timeout,
            "total_timeout": self.total_timeout,
        }
        if self.lang != "en":  # the messages' language; English keys stay as before, so old results are reused
            key["lang"] = self.lang
        return key


@dataclass
class Outcome:
    status: str  # graded, unusable, timeout, crashed
    message: str = ""
    document: dict | None = None
    artifacts: dict[str, bytes] = field(default_factory=dict)  # file name -> bytes (the samples PNG)
    duration_s: float = 0.0


def command(path: Path, result_file: Path, artifacts: Path, options: GradeOptions) -> list[str]:
    # -P: the grade's working directory (where a student could have left a grader.py or json.py)
    # is never put on its sys.path; PYTHONSAFEPATH in `environment` carries that to its children.
    seed = [] if options.seed is None else ["--seed", str(options.seed)]
    memory = ["--grader-memory-mb", str(options.grader_memory_mb)] if options.grader_memory_mb else []
    return [
        sys.executable,
        "-P",
        "-m",
        "grader",
        "grade",
        str(path),
        "--format",
        "json",
        "--output",
        str(result_file),
        "-q",
        "--tasks",
        ",".join(options.tasks),
        "--device",
        options.device,
        *seed,
        "--timeout",
        f"{options.timeout:g}",
        "--total-timeout",
        f"{options.total_timeout:g}",
        "--artifacts-dir",
        str(artifacts),
        "--lang",
        options.lang,
        *memory,
    ]


def _trusted_path_entries(value: str | None) -> list[str]:
    """The inherited PYTHONPATH without relative entries or the working directory (student files may sit there)."""
    here = os.path.realpath(os.getcwd())
    return [
        entry
        for entry in (value or "").split(os.pathsep)
        if entry and os.path.isabs(entry) and os.path.realpath(entry) != here
    ]


def environment(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    # Each concurrent grade gets its share of the cores; torch would otherwise take them all.
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = str(max(1, threads))
    env["PYTHONPATH"] = os.pathsep.join([PROJECT_ROOT, *_trusted_path_entries(env.get("PYTHONPATH"))])
    env["PYTHONSAFEPATH"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def gpu_share_environment() -> dict[str, str]:
    """Under Ray with --gpus-per-grade below 1, the grade's child may take only its share of the GPU's
    memory (0.9 of that share, as a grade alone takes 0.9), through grader.grading.runner's DLI_GRADE_GPU_FRACTION."""
    ray = sys.modules.get("ray")  # imported in a Ray worker; never imported here for its sake
    try:
        if ray is None or not ray.is_initialized():
            return {}
        share = float(ray.get_runtime_context().get_assigned_resources().get("GPU", 0.0))
    except Exception:  # an older Ray without the call: the default fraction stands
        return {}
    if not 0 < share < 1:
        return {}
    return {"DLI_GRADE_GPU_FRACTION": f"{0.9 * share:.4g}"}


def _die_with_parent() -> None:  # runs in the child before exec: a killed batch leaves no orphan grades
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def stop_all() -> None:
    """Kill every grade still running (the batch was interrupted)."""
    with _running_lock:
        processes = list(_running)
    for process in processes:
        _kill(process)


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _last_error(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    line = lines[-1]
    for prefix in ("dli-grade: error: ", "dli-grade: internal error: "):
        if line.startswith(prefix):
            return line[len(prefix) :]
    return line


def _read_document(result_file: Path, temp_prefix: str) -> dict | None:
    try:
        # messages name the file; name it as the student did, not by our temporary copy
        document = json.loads(result_file.read_text(encoding="utf-8").replace(temp_prefix, ""))
    except (OSError, ValueError):
        return None
    ok = (
        isinstance(document, dict)
        and str(document.get("schema", "")).startswith("dli-grade/result/")
        and isinstance(document.get("tasks"), list)
    )
    return document if ok else None


def _artifacts(folder: Path) -> dict[str, bytes]:
    found = {}
    for path in sorted(folder.glob("*.png")):
        if path.is_file() and not path.is_symlink() and path.stat().st_size <= MAX_ARTIFACT_BYTES:
            found[path.name] = path.read_bytes()
    return found


def grade_one(filename: str, data: bytes, options: GradeOptions, wall_timeout: float, threads: int = 1) -> Outcome:
    """Grade the submission `data` (saved as `filename`) in a subprocess; never raises for its sake."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="dli-batch-") as temp_name:
        temp = Path(temp_name)
        submission, result_file, artifacts = temp / "in" / Path(filename).name, temp / "result.json", temp / "artifacts"
        submission.parent.mkdir()
        artifacts.mkdir()
        submission.write_bytes(data)
        process = subprocess.Popen(
            command(submission, result_file, artifacts, options),
            cwd=temp,
            env={**environment(threads), **gpu_share_environment()},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        with _running_lock:
            _running.add(process)
        try:
            try:
                _, stderr = process.communicate(timeout=wall_timeout)
            except subprocess.TimeoutExpired:
                _kill(process)
                try:
                    process.communicate(timeout=30)
                except subprocess.TimeoutExpired:  # a grandchild still holds the pipes; give up on them
                    pass
                return Outcome(
                    "timeout",
                    f"the grade took longer than {wall_timeout:g} s and was stopped",
                    duration_s=time.monotonic() - started,
                )
        finally:
            with _running_lock:
                _running.discard(process)
        temp_prefix = str(submission.parent) + os.sep
        errors = stderr.decode("utf-8", "replace").replace(temp_prefix, "")
        elapsed = time.monotonic() - started
        code = process.returncode
        if code == 2:
            return Outcome("unusable", one_line(_last_error(errors) or "unusable input", 1000), duration_s=elapsed)
        document = _read_document(result_file, temp_prefix) if code in (0, 1, 3) else None
        if document is None:
            how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
            detail = one_line(_last_error(errors), 500)
            return Outcome(
                "crashed",
                f"the grader process ended without a result ({how})" + (f": {detail}" if detail else ""),
                duration_s=elapsed,
            )
        return Outcome("graded", "", document, _artifacts(artifacts), elapsed)
