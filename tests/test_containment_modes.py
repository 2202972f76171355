"""Containment where the grader is not root, and where namespaces are not available.

Every other test runs the grader as root. Here, when the test process is root and `setpriv`
exists, whole grades run as an ordinary uid through the command line, as on a student's
laptop or a CI runner that is not root:

- with user namespaces (this kernel allows them): a representative set of the attack corpus
  gets the same verdicts as when the grader is root;
- with namespaces forced off (DLI_GRADE_SANDBOX_SKIP=namespaces, as where
  user.max_user_namespaces is 0): the Landlock fallback stops reading and writing outside the
  child's folders, TCP, signals to the grader, and daemons;
- with nothing that hides the answer key: the grader refuses, unless --allow-uncontained.

Each defence has a proof (marked slow): the same attack with the layer skipped succeeds.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from test_attacks import ATTACKS, SECRET, Attack, _hook, _processes_with, _write

import grader
import reference
from grader.sandbox.launcher import landlock_abi as launcher_abi

CHECKOUT = Path(grader.__file__).resolve().parent.parent
REFERENCE_FILE = Path(reference.__file__).resolve().parent / "diffusion.py"
USER = 62000  # an ordinary uid no account uses: no processes of its own, no files but ours
UNIT_TASKS = ("schedule", "q", "reverse_q", "blocks", "context_mask", "loss", "training_loop", "guidance")
CAN_SWITCH_USER = os.geteuid() == 0 and shutil.which("setpriv") and shutil.which("unshare")
needs_root = pytest.mark.skipif(not CAN_SWITCH_USER, reason="needs root, setpriv and unshare to run as another uid")
needs_landlock = pytest.mark.skipif(launcher_abi() < 1, reason="this kernel has no Landlock")
WITHOUT_ISOLATION = "namespaces,landlock,subreaper"
DAEMON = "time.sleep(617.25)"  # the command line of the daemon the attacks leave (Python: it may run)


def _pids_with(marker: str) -> set[str]:
    """Pids of live processes whose command line holds `marker` (the daemon an attack leaves)."""
    return {line.split()[0] for line in _processes_with(marker)}


def _closed_folder(path: str) -> Path | None:
    """The first folder above `path` that other users cannot enter (the interpreter may live in
    /root/.pyenv), or None."""
    for parent in reversed(Path(path).parents):
        if not parent.stat().st_mode & stat.S_IXOTH:
            return parent
    return None


def _reach_interpreter(keep: Path) -> list[str]:
    """Shell lines, run in a private mount namespace before dropping to USER, that make the
    interpreter reachable: each closed folder above it is covered by an open tmpfs and what
    Python needs under it is bound back (the same trick as the sandbox's view)."""
    needs: dict[Path, set[str]] = {}
    for target in {os.path.realpath(p) for p in (sys.executable, sys.base_prefix, sys.prefix)}:
        closed = _closed_folder(target)
        if closed:
            needs.setdefault(closed, set()).add(Path(target).relative_to(closed).parts[0])
    lines = []
    for n, (closed, children) in enumerate(sorted(needs.items())):
        held = [(keep / f"{n}-{m}", closed / child) for m, child in enumerate(sorted(children))]
        for spare, source in held:
            lines += [
                f"mkdir -p {shlex.quote(str(spare))}",
                f"mount --bind {shlex.quote(str(source))} {shlex.quote(str(spare))}",
            ]
        lines.append(f"mount -t tmpfs -o mode=755 tmpfs {shlex.quote(str(closed))}")
        for spare, source in held:
            lines += [
                f"mkdir -p {shlex.quote(str(source))}",
                f"mount --move {shlex.quote(str(spare))} {shlex.quote(str(source))}",
            ]
    return lines


# Run as root: `python -c RESTRICTED_KERNEL KERNEL SCRIPT ARGV...`. A user namespace (every uid
# mapped, so root stays root and setpriv can drop to USER) whose user.max_user_namespaces is 0:
# inside it, unshare(CLONE_NEWUSER) fails with ENOSPC. With "no-landlock", a seccomp filter makes
# Landlock's system calls answer ENOSYS. Then SCRIPT runs in a private mount namespace.
RESTRICTED_KERNEL = r"""
import ctypes, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
kernel, script, argv = sys.argv[1].split(","), sys.argv[2], sys.argv[3:]
ready, go = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(go)
    if libc.unshare(0x10000000 | 0x00020000) != 0:
        os._exit(90)
    os.read(ready, 1)
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)
    with open("/proc/sys/user/max_user_namespaces", "w") as handle:
        handle.write("0")
    if "no-landlock" in kernel:
        def op(code, k, jt=0, jf=0):
            return struct.pack("HBBI", code, jt, jf, k)
        program = [op(0x20, 4), op(0x15, 0xC000003E, 1, 0), op(0x06, 0x7FFF0000), op(0x20, 0)]
        for number in (444, 445, 446):
            program += [op(0x15, number, 0, 1), op(0x06, 0x00050000 | 38)]
        code = b"".join(program + [op(0x06, 0x7FFF0000)])
        buffer = ctypes.create_string_buffer(code, len(code))
        class Program(ctypes.Structure):
            _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
        libc.prctl(38, 1, 0, 0, 0)
        if libc.prctl(22, 2, ctypes.byref(Program(len(code) // 8, ctypes.addressof(buffer))), 0, 0) != 0:
            os._exit(91)
    os.execvp("sh", ["sh", "-ec", script, "sh", *argv])
os.close(ready)
while True:  # the child has unshared once its uid_map can be written
    try:
        for name in ("uid_map", "gid_map"):
            with open(f"/proc/{pid}/{name}", "w") as handle:
                handle.write("0 0 4294967295")
        break
    except OSError:
        if os.waitpid(pid, os.WNOHANG)[0]:
            sys.exit(92)
os.write(go, b"x")
sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""


class AsUser:
    """Grades run as USER through the command line, in folders USER owns."""

    def __init__(self, root: Path):
        self.root = root
        self.daemons_before: set[str] = set()
        self.home = root / "home"
        self.site = root / "user-site"  # a folder of USER's on the grader's path: its "site-packages"
        self.classroom = root / "class"
        for folder in (self.home, self.site, self.classroom):
            folder.mkdir()
        (self.classroom / "other_student.txt").write_text(SECRET)
        for folder in (root, self.home, self.site, self.classroom):
            os.chown(folder, USER, USER)
        root.chmod(0o755)

    def grade(self, attack: Attack, skip: str = "", allow_uncontained: bool = False, port: int = 0, kernel: str = ""):
        """`kernel` "no-userns" runs the grader where creating a user namespace fails as it does with
        user.max_user_namespaces=0; "no-userns,no-landlock" also answers ENOSYS to Landlock's calls,
        as a kernel without it does."""
        path = _write(attack, self.classroom)
        text = path.read_text().replace("__DIR__", repr(str(self.classroom))).replace("__PORT__", str(port))
        path.write_text(
            text.replace("__SITE__", repr(str(self.site))).replace("__REFERENCE__", repr(str(REFERENCE_FILE)))
        )
        os.chown(path, USER, USER)
        env = {
            "HOME": str(self.home),
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(self.site),
            "DLI_GRADE_TEST_SECRET": SECRET,
            "DLI_GRADE_SANDBOX_SKIP": skip,
        }
        argv = [
            sys.executable,
            "-m",
            "grader",
            str(path),
            "--tasks",
            ",".join(attack.tasks),
            "--device",
            "cpu",
            "--format",
            "json",
            "-q",
            "--seed",
            "1",
            "--timeout",
            str(attack.timeout),
            "--total-timeout",
            str(attack.total_timeout),
            # a secret on the grader's command line, for attacks that read /proc/<grader>/cmdline
            "--artifacts-dir",
            str(self.home / f"artifacts-{SECRET}"),
        ]
        if allow_uncontained:
            argv.append("--allow-uncontained")
        drop = [
            "setpriv",
            f"--reuid={USER}",
            f"--regid={USER}",
            "--clear-groups",
            "env",
            "-i",
            *(f"{name}={value}" for name, value in env.items()),
            *argv,
        ]
        lines = _reach_interpreter(self.root / "keep")
        if kernel:
            script = "\n".join(["mount --make-rprivate /", *lines, 'exec "$@"'])
            command = [sys.executable, "-I", "-c", RESTRICTED_KERNEL, kernel, script, *drop]
        elif lines:
            command = [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-ec",
                "\n".join([*lines, 'exec "$@"']),
                "sh",
                *drop,
            ]
        else:
            command = drop
        self.daemons_before = _pids_with(DAEMON)
        started = time.monotonic()
        run = subprocess.run(command, capture_output=True, text=True, cwd=CHECKOUT, timeout=attack.within + 60)
        return run, time.monotonic() - started


@pytest.fixture
def as_user():
    root = Path(tempfile.mkdtemp(prefix="dli-user-", dir="/tmp"))
    try:
        yield AsUser(root)
    finally:
        for line in _processes_with(DAEMON):  # a daemon a proof left behind
            try:
                os.kill(int(line.split()[0]), signal.SIGKILL)
            except OSError:
                pass
        shutil.rmtree(root, ignore_errors=True)


def _document(run) -> dict:
    assert run.stdout.strip(), f"no document (exit {run.returncode}): {run.stderr[-2000:]}"
    return json.loads(run.stdout, parse_constant=lambda name: pytest.fail(f"{name} in the JSON"))


def _check(attack: Attack, run, elapsed: float, daemons_before: frozenset = frozenset()) -> dict:
    """The same checks as tests/test_attacks.py's, on the command line's document."""
    document = _document(run)
    assert elapsed < attack.within + 15, f"the grade took {elapsed:.0f} s"  # + two interpreters starting
    assert SECRET not in run.stdout, "a secret reached the result"
    statuses = {task["id"]: task["status"] for task in document["tasks"]}
    messages = {task["id"]: task["message"] for task in document["tasks"]}
    assert set(statuses) == set(attack.tasks)
    assert "error" not in statuses.values(), messages
    for task_id, status in attack.statuses.items():
        assert statuses[task_id] == status, (task_id, messages)
    for task_id, phrase in attack.says.items():
        assert phrase in messages[task_id], (task_id, messages[task_id])
    for phrase in attack.integrity:
        assert any(phrase in note for note in document["integrity"]), document["integrity"]
    if attack.marker:
        time.sleep(0.3)
        assert _pids_with(attack.marker) <= daemons_before, "a process of the sandbox outlived the grade"
    return document


def _layers(document: dict) -> dict:
    return document["sandbox"]["layers"]


def _attack(name: str) -> Attack:
    return next(attack for attack in ATTACKS if attack.name == name)


# Attacks a user's own uid makes sharper: its own files, its own processes, its own /tmp.
READ_PROC = _hook(
    "import glob\nfound = []\nfor p in glob.glob('/proc/*/cmdline') + glob.glob('/proc/*/environ'):\n"
    "    try:\n        found += [part for part in open(p, 'rb').read().split(b'\\0') if b'dli-test-secret' in part]\n"
    "    except OSError:\n        pass\nraise RuntimeError(repr(found)[:300])"
)
USER_ATTACKS = {
    "read_the_answer_key": _attack("answer_key_files_cannot_be_read"),
    "write_the_installation": _attack("writing_the_installation_fails"),
    "plant_a_pth_in_the_users_site": Attack(
        "plant_a_pth",
        edits=_hook("open(__SITE__ + '/zz_evil.pth', 'w').write('import os')"),
        # The child runs `python -I`: PYTHONPATH's folder is not on its list, so it is not there at all.
        statuses={"q": "failed"},
        says={"q": "No such file"},
    ),
    "daemon_and_files_left_after_the_grade": Attack(
        "persist",
        cell="import os, sys\n_ = open('/tmp/dli-carry', 'w').write('x')\nif os.fork() == 0:\n    try:\n"
        "        _ = os.setsid()\n        if os.fork() == 0:\n"
        "            _ = os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(617.25)'])\n"
        "    finally:\n        _ = os._exit(0)\n",
        statuses={"q": "passed"},
        marker=DAEMON,
    ),
    "signal_the_parent": _attack("signalling_the_parent_reaches_only_the_sandbox"),
    "kill_every_process_of_the_uid": _attack("kill_everything_it_can_ends_only_the_sandbox"),
    "read_proc_of_the_grader": Attack("read_proc", edits=READ_PROC, statuses={"q": "failed"}),
    "grader_processes_are_not_visible": _attack("grader_processes_are_not_visible"),
}


# -- as an ordinary user, with user namespaces ------------------------------------------------
@needs_root
def test_a_correct_submission_passes_every_unit_task_as_an_ordinary_user(as_user):
    attack = Attack("correct", tasks=UNIT_TASKS, statuses=dict.fromkeys(UNIT_TASKS, "passed"), within=120)
    run, elapsed = as_user.grade(attack)
    document = _check(attack, run, elapsed, as_user.daemons_before)
    assert run.returncode == 0, run.stderr[-2000:]
    layers = _layers(document)
    assert all(layer["held"] for layer in layers.values()), layers
    assert "in a user namespace" in layers["namespaces"]["detail"]
    assert layers["unprivileged"]["detail"] == f"uid {USER}, not root"
    assert document["integrity"] == []


@needs_root
@pytest.mark.parametrize("name", list(USER_ATTACKS))
def test_attacks_get_the_same_verdicts_as_an_ordinary_user(name, as_user):
    attack = USER_ATTACKS[name]
    run, elapsed = as_user.grade(attack)
    document = _check(attack, run, elapsed, as_user.daemons_before)
    assert all(layer["held"] for layer in _layers(document).values()), _layers(document)
    assert not (as_user.site / "zz_evil.pth").exists()
    assert not Path("/tmp/dli-carry").exists()


# Proofs: the same attacks, with the isolating layers skipped (and the operator's opt-out), succeed.
@pytest.mark.slow
@needs_root
def test_without_isolation_an_ordinary_user_reads_the_answer_key(as_user):
    attack = USER_ATTACKS["read_the_answer_key"]
    document = _document(as_user.grade(attack, skip=WITHOUT_ISOLATION, allow_uncontained=True)[0])
    assert document["tasks"][0]["status"] == "passed"  # the open() did not fail


@pytest.mark.slow
@needs_root
def test_without_isolation_an_ordinary_user_plants_a_pth(as_user):
    attack = USER_ATTACKS["plant_a_pth_in_the_users_site"]
    document = _document(as_user.grade(attack, skip=WITHOUT_ISOLATION, allow_uncontained=True)[0])
    assert document["tasks"][0]["status"] == "passed"
    assert (as_user.site / "zz_evil.pth").exists()


@pytest.mark.slow
@needs_root
def test_without_isolation_a_daemon_and_its_files_outlive_the_grade(as_user):
    attack = USER_ATTACKS["daemon_and_files_left_after_the_grade"]
    try:
        document = _document(as_user.grade(attack, skip=WITHOUT_ISOLATION, allow_uncontained=True)[0])
        assert document["tasks"][0]["status"] == "passed"
        time.sleep(0.3)
        assert _processes_with(DAEMON), "the daemon did not survive"
        assert Path("/tmp/dli-carry").exists()
    finally:
        Path("/tmp/dli-carry").unlink(missing_ok=True)


@pytest.mark.slow
@needs_root
def test_without_isolation_kill_minus_one_kills_the_grader(as_user):
    run, _ = as_user.grade(
        USER_ATTACKS["kill_every_process_of_the_uid"], skip=WITHOUT_ISOLATION, allow_uncontained=True
    )
    assert run.returncode == -signal.SIGKILL and run.stdout == ""


@pytest.mark.slow
@needs_root
def test_without_isolation_the_graders_command_line_leaks(as_user):
    run, _ = as_user.grade(USER_ATTACKS["read_proc_of_the_grader"], skip=WITHOUT_ISOLATION, allow_uncontained=True)
    assert SECRET in run.stdout


# -- as an ordinary user, without namespaces: the Landlock fallback -------------------------------
FALLBACK_ATTACKS = {
    "read_the_reference_package": Attack(
        "read_reference",
        edits=_hook("open(__REFERENCE__).read()"),
        statuses={"q": "failed"},
        says={"q": "Permission denied"},
    ),
    "import_the_answer_key": Attack(
        "import_reference",
        edits=_hook("import importlib\nimportlib.import_module('ref' + 'erence.diffusion')"),
        statuses={"q": "failed"},
        integrity=("tried to import reference",),
    ),
    "read_a_neighbours_file": Attack(
        "neighbour",
        edits=_hook("open(__DIR__ + '/other_student.txt').read()"),
        statuses={"q": "failed"},
        says={"q": "Permission denied"},
    ),
    "plant_a_pth_in_site_packages": Attack(
        "plant_a_pth",
        edits=_hook("open(__SITE__ + '/zz_evil.pth', 'w').write('import os')"),
        statuses={"q": "failed"},
        says={"q": "Permission denied"},
    ),
    "write_tmp": Attack(
        "write_tmp",
        edits=_hook("open('/tmp/dli-carry', 'w').write('x')"),
        statuses={"q": "failed"},
        says={"q": "Permission denied"},
    ),
    # Without a network namespace seccomp refuses AF_INET sockets (EPERM) before Landlock's TCP rule.
    "tcp_to_the_host": Attack(
        "tcp",
        edits=_hook("import socket\nsocket.create_connection(('127.0.0.1', __PORT__), timeout=2)"),
        statuses={"q": "failed"},
        says={"q": "Operation not permitted"},
    ),
    "read_proc_of_the_grader": USER_ATTACKS["read_proc_of_the_grader"],
    # kill(-1) spares its caller; without a PID namespace the executor lives on, so q may pass:
    # what matters is that the grader, outside the Landlock domain, is not reached.
    "kill_every_process_of_the_uid": Attack(
        "kill_minus_one",
        edits=USER_ATTACKS["kill_every_process_of_the_uid"].edits,
        tasks=("q", "context_mask"),
        statuses={"context_mask": "passed"},
    ),
    "daemon_after_the_grade": Attack(
        "daemon",
        cell=USER_ATTACKS["daemon_and_files_left_after_the_grade"].cell.replace(
            "_ = open('/tmp/dli-carry', 'w').write('x')\n", ""
        ),
        statuses={"q": "passed"},
        marker=DAEMON,
    ),
}


@needs_root
@needs_landlock
def test_the_fallback_grades_a_correct_submission(as_user):
    attack = Attack(
        "correct",
        tasks=("q", "loss", "training_loop"),
        statuses={"q": "passed", "loss": "passed", "training_loop": "passed"},
    )
    run, elapsed = as_user.grade(attack, skip="namespaces")
    document = _check(attack, run, elapsed, as_user.daemons_before)
    assert run.returncode == 0
    layers = _layers(document)
    assert layers["landlock"]["held"] and layers["subreaper"]["held"] and layers["seccomp"]["held"]
    assert not layers["namespaces"]["held"] and not layers["filesystem"]["held"]
    assert any("namespaces, filesystem" in note for note in document["integrity"])


FALLBACK_IN_THE_DEFAULT_RUN = (
    "read_the_reference_package",
    "plant_a_pth_in_site_packages",
    "kill_every_process_of_the_uid",
    "daemon_after_the_grade",
)


@needs_root
@needs_landlock
@pytest.mark.parametrize(
    "name",
    [
        name if name in FALLBACK_IN_THE_DEFAULT_RUN else pytest.param(name, marks=pytest.mark.slow)
        for name in FALLBACK_ATTACKS
    ],
)
def test_the_fallback_stops(name, as_user, host_server):
    attack = FALLBACK_ATTACKS[name]
    if name == "kill_every_process_of_the_uid" and launcher_abi() < 6:
        pytest.skip("Landlock scopes signals from ABI 6")
    try:
        run, elapsed = as_user.grade(attack, skip="namespaces", port=host_server)
        document = _check(attack, run, elapsed, as_user.daemons_before)
        assert _layers(document)["landlock"]["held"]
        assert not (as_user.site / "zz_evil.pth").exists() and not Path("/tmp/dli-carry").exists()
    finally:
        Path("/tmp/dli-carry").unlink(missing_ok=True)


@pytest.mark.slow
@needs_root
@pytest.mark.parametrize(
    "name",
    [
        "read_the_reference_package",
        "plant_a_pth_in_site_packages",
        "write_tmp",
        "tcp_to_the_host",
        "read_a_neighbours_file",
    ],
)
def test_without_landlock_the_fallback_attack_succeeds(name, as_user, host_server):
    try:
        skip = "namespaces,landlock" + (",seccomp" if name == "tcp_to_the_host" else "")  # both stop TCP
        run, _ = as_user.grade(FALLBACK_ATTACKS[name], skip=skip, allow_uncontained=True, port=host_server)
        document = _document(run)
        assert document["tasks"][0]["status"] == "passed", document["tasks"][0]["message"]
        assert not _layers(document)["landlock"]["held"]
    finally:
        Path("/tmp/dli-carry").unlink(missing_ok=True)


@pytest.mark.slow
@needs_root
def test_without_the_subreaper_a_daemon_outlives_a_fallback_grade(as_user):
    document = _document(as_user.grade(FALLBACK_ATTACKS["daemon_after_the_grade"], skip="namespaces,subreaper")[0])
    assert document["tasks"][0]["status"] == "passed"
    time.sleep(0.3)
    assert _processes_with(DAEMON), "the daemon did not survive"


@needs_root
@needs_landlock
def test_where_user_namespaces_really_fail_landlock_holds(as_user):
    """No switch: creating a user namespace fails (ENOSPC, as with user.max_user_namespaces=0)."""
    attack = FALLBACK_ATTACKS["read_the_reference_package"]
    run, elapsed = as_user.grade(attack, kernel="no-userns")
    layers = _layers(_check(attack, run, elapsed, as_user.daemons_before))
    assert layers["namespaces"] == {"held": False, "detail": "unshare: No space left on device"}
    assert layers["landlock"]["held"]


@needs_root
def test_where_neither_is_available_the_command_line_refuses(as_user):
    """No switch: no user namespaces and a kernel that answers ENOSYS to Landlock."""
    run, _ = as_user.grade(Attack("correct"), kernel="no-userns,no-landlock")
    assert run.returncode == 2, run.stderr[-2000:]
    assert "--allow-uncontained" in json.loads(run.stdout)["error"]
    run, _ = as_user.grade(Attack("correct"), kernel="no-userns,no-landlock", allow_uncontained=True)
    layers = _layers(_document(run))
    assert run.returncode == 0 and not layers["landlock"]["held"] and layers["seccomp"]["held"]


# -- nothing that hides the answer key: refuse ------------------------------------------------
def test_the_grader_refuses_where_nothing_isolates(tmp_path, monkeypatch):
    """No namespaces and no Landlock: through the API (a batch), every task ends as a grader error
    that says why, and no student code runs."""
    from grader.grading.runner import grade

    monkeypatch.setenv("DLI_GRADE_SANDBOX_SKIP", "namespaces,landlock")
    marker = tmp_path / "student-code-ran"
    path = _write(Attack("marker", cell=f"open({str(marker)!r}, 'w').write('x')\n"), tmp_path)
    result = grade(path, ["q"], device="cpu", seed=1)
    assert result.tasks[0].status == "error", result.tasks[0].message
    assert "refused to run student code" in result.tasks[0].message
    assert "nor Landlock" in result.tasks[0].message
    assert not marker.exists()
    assert result.sandbox["landlock"]["held"] is False


def test_the_command_line_refuses_with_a_clear_error_unless_allowed(tmp_path):
    path = _write(Attack("correct"), tmp_path)
    env = {**os.environ, "DLI_GRADE_SANDBOX_SKIP": "namespaces,landlock", "PYTHONPATH": str(CHECKOUT)}
    argv = [sys.executable, "-m", "grader", str(path), "--tasks", "q", "--device", "cpu", "--format", "json", "-q"]
    run = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert run.returncode == 2, run.stderr[-2000:]
    document = json.loads(run.stdout)
    assert document["schema"].startswith("dli-grade/error/") and "--allow-uncontained" in document["error"]
    assert "can't contain student code" in run.stderr

    run = subprocess.run(
        [*argv, "--allow-uncontained"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
    )
    document = json.loads(run.stdout)
    assert run.returncode == 0, run.stderr[-2000:]
    assert document["tasks"][0]["status"] == "passed"
    assert any("namespaces, filesystem" in note and "landlock" in note for note in document["integrity"])


def test_landlock_grants_leave_out_what_is_hidden(tmp_path):
    """Landlock only adds access: a folder holding a hidden path is replaced by its other entries,
    and may only be listed."""
    from grader.sandbox.launcher import _grants

    site = tmp_path / "lib/python/site-packages"
    for folder in (site / "torch", site / "reference", tmp_path / "lib/other", tmp_path / "venv/bin"):
        folder.mkdir(parents=True)
    (site / "six.py").write_text("")
    readable, listable = _grants([str(tmp_path / "lib"), str(tmp_path / "venv")], [str(site / "reference")])
    assert sorted(readable) == sorted(
        str(path) for path in (site / "torch", site / "six.py", tmp_path / "lib/other", tmp_path / "venv")
    )
    assert sorted(listable) == sorted(str(path) for path in (tmp_path / "lib", tmp_path / "lib/python", site))
    # An allowed folder inside a hidden one (a venv in the checkout) stays allowed, as in the view.
    assert _grants([str(tmp_path / "venv")], [str(tmp_path)]) == ([str(tmp_path / "venv")], [])


def test_landlock_grants_never_reach_a_hidden_path_through_a_link(tmp_path):
    """A venv has lib64 -> lib: granting the link would grant lib whole, the installed answer key
    in its site-packages included (it did, in a fresh clone with a non-editable install)."""
    from grader.sandbox.launcher import _grants

    site = tmp_path / "venv/lib/python/site-packages"
    for folder in (site / "torch", site / "reference", tmp_path / "venv/bin"):
        folder.mkdir(parents=True)
    (tmp_path / "venv/lib64").symlink_to("lib")
    readable, listable = _grants([str(tmp_path / "venv")], [str(site / "reference")])
    reached = [Path(path).resolve() for path in readable]
    assert not any(site / "reference" == path or path in (site / "reference").parents for path in reached), readable
    assert site / "torch" in reached and tmp_path / "venv/bin" in reached
    assert str(site) in listable
