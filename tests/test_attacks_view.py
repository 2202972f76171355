"""Attacks on the sandbox's filesystem view, its sockets and its identity (issue 14).

The view is an allow-list: the child starts from an empty root holding read-only binds of what
the runtime needs, so a file anywhere else is not there, whether or not the grader knows its
path. Each case grades a hostile variant of examples/submission.py and asserts the exact outcome.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from test_attacks import EXAMPLE, SECRET, WRONG_Q, Attack, _hook, _write

import reference
from grader.grading.runner import grade
from grader.sandbox import launcher

REFERENCE_FILE = Path(reference.__file__).resolve().parent / "diffusion.py"
CHECKOUT = REFERENCE_FILE.parent.parent

# Probe every planted path from inside q: read it, and look for its name in its folder's listing.
# q then raises with what it reached, so the task's message says exactly that.
# (Paths by their index in the list: a message is cut to one line.)
PROBE = (
    "import os\nreached = []\nfor i, p in enumerate(__PLANTED__):\n"
    "    try:\n        open(p).read()\n        reached.append(f'read #{i}')\n    except OSError:\n        pass\n"
    "    try:\n        if os.path.basename(p) in os.listdir(os.path.dirname(p)):\n"
    "            reached.append(f'listed #{i}')\n    except OSError:\n        pass\n"
    "raise RuntimeError('reached: ' + (', '.join(reached) or 'nothing'))"
)


@pytest.fixture
def outside(tmp_path):
    """A folder of its own at the top of the filesystem (a class folder on a server is rarely under
    /tmp, which a view may keep private anyway); removed afterwards."""
    base = Path(f"/dli-view-{uuid.uuid4().hex[:8]}") if os.access("/", os.W_OK) else tmp_path / "outside"
    base.mkdir()
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def planted(outside):
    """A secret file at many places outside the allow-list, most of them named nowhere in the
    grader's code; removed afterwards. Returns (the class folder, the planted paths)."""
    tag = outside.name
    classroom = outside / "class"
    (classroom / "bob").mkdir(parents=True)
    second = outside / "second-checkout"  # another copy of this project on the machine
    shutil.copytree(CHECKOUT / "reference", second / "reference", ignore=shutil.ignore_patterns("*.pt", "__pycache__"))
    (second / "pyproject.toml").write_text("")
    system = [
        Path(f"/srv/{tag}/secret.txt"),
        Path(f"/autograder/source/{tag}/secret.txt"),
        Path(f"/var/tmp/{tag}.txt"),
        Path(f"/etc/{tag}.conf"),
        Path(f"/opt/{tag}/secret.txt"),
        Path(f"/mnt/{tag}.txt"),
        Path(f"/usr/share/{tag}.txt"),
    ]
    created = [Path(f"/srv/{tag}"), Path(f"/autograder/source/{tag}"), Path(f"/opt/{tag}")]
    if not Path("/autograder").exists():
        created.append(Path("/autograder"))
    files = [
        classroom / "bob" / "beside.txt",  # beside the submission
        classroom / "alice" / "submission.py",  # a sibling student's folder
        outside / "batch-in" / "carol" / "submission.py",  # a batch's input and output folders
        outside / "batch-out" / "grades.csv",
        second / "reference" / "diffusion.py",
        *system,
    ]
    try:
        for path in list(files):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                if not path.exists():
                    path.write_text(SECRET)
            except PermissionError:  # not root: the system folders stay out of the probe
                files.remove(path)
        yield classroom, [str(path) for path in files]
    finally:
        for path in system:
            path.unlink(missing_ok=True)
        for folder in created:
            shutil.rmtree(folder, ignore_errors=True)


def _probe_attack(paths: list) -> Attack:
    return Attack(
        "probe_planted_files",
        edits=_hook(PROBE.replace("__PLANTED__", repr(paths))),
        statuses={"q": "failed"},
        says={"q": "reached: nothing"},
    )


def _grade(attack: Attack, folder: Path):
    result = grade(
        _write(attack, folder),
        list(attack.tasks),
        device="cpu",
        seed=1,
        timeout=attack.timeout,
        total_timeout=attack.total_timeout,
    )
    statuses = {task.id: task.status for task in result.tasks}
    messages = {task.id: task.message for task in result.tasks}
    for task_id, status in attack.statuses.items():
        assert statuses[task_id] == status, (task_id, messages)
    for task_id, phrase in attack.says.items():
        assert phrase in messages[task_id], (task_id, messages[task_id])
    assert SECRET not in str(result.to_json())
    return result, messages


@pytest.mark.parametrize("skip", ["", "namespaces"], ids=["view", "landlock_fallback"])
def test_nothing_outside_the_allow_list_can_be_read_or_listed(planted, skip, monkeypatch):
    """Under the view and under the Landlock fallback alike (without the view, or with the old
    deny-list view, q's message lists every planted path: checked by reverting the fix)."""
    monkeypatch.setenv("DLI_GRADE_SANDBOX_SKIP", skip)
    classroom, paths = planted
    result, messages = _grade(_probe_attack(paths), classroom / "bob")
    assert messages["q"].endswith("reached: nothing"), messages["q"]
    assert result.sandbox["filesystem" if not skip else "landlock"]["held"]


def test_without_isolation_the_planted_files_are_read(planted, monkeypatch):
    """The proof that the probe can see what is there: with neither the view nor Landlock (and the
    operator's opt-out) it reads every planted file."""
    monkeypatch.setenv("DLI_GRADE_SANDBOX_SKIP", "namespaces,landlock")
    classroom, paths = planted
    attack = _probe_attack(paths)
    result = grade(_write(attack, classroom / "bob"), ["q"], device="cpu", seed=1, contain=False)
    message = result.tasks[0].message
    reached = message.split("reached: ", 1)[1].split(", ")
    assert [f"read #{index}" for index in range(len(paths))] == reached[::2], message


def _classmate_attack(outside: Path, **outcome) -> Attack:
    """Bob's q is wrong; his last cell runs the correct q from Alice's notebook beside his."""
    alice = outside / "class" / "alice"
    alice.mkdir(parents=True)
    shutil.copy(EXAMPLE, alice / "submission.py")
    (outside / "class" / "bob").mkdir()
    steal = (
        f"try:\n    _src, _ns = open({str(alice / 'submission.py')!r}).read(), {{}}\n"
        "    _start = _src.index('def q(')\n    exec(_src[_start:_src.index('\\n# %%', _start)], globals(), _ns)\n"
        "    return _ns['q'](x_0, t)\nexcept OSError:\n    pass"
    )
    return Attack("classmate_q", edits=(WRONG_Q, *_hook(steal)), **outcome)


def test_a_classmates_correct_q_does_not_make_a_wrong_one_pass(outside):
    attack = _classmate_attack(outside, statuses={"q": "failed"}, says={"q": "swaps its coefficients"})
    _grade(attack, outside / "class" / "bob")


def test_without_isolation_a_classmates_q_passes(outside, monkeypatch):
    """The proof that the theft works where the file can be read."""
    monkeypatch.setenv("DLI_GRADE_SANDBOX_SKIP", "namespaces,landlock")
    attack = _classmate_attack(outside)
    result = grade(_write(attack, outside / "class" / "bob"), ["q"], device="cpu", seed=1, contain=False)
    assert result.tasks[0].status == "passed", result.tasks[0].message


# Netlink's uevent family (15) talks to the kernel's device events; NETLINK_ROUTE (0) stays open for
# getifaddrs, which the course flow's Jupyter kernel needs (test_course_profile.py).
SOCKETS = (
    "import socket\nmade = []\nfor name in ('AF_VSOCK', 'AF_NETLINK', 'AF_PACKET'):\n"
    "    try:\n        socket.socket(getattr(socket, name), socket.SOCK_RAW if name == 'AF_NETLINK' "
    "else socket.SOCK_DGRAM if name == 'AF_PACKET' else socket.SOCK_STREAM,\n"
    "                      15 if name == 'AF_NETLINK' else 0)\n"
    "        made.append(name)\n"
    "    except OSError as error:\n        made.append(f'{name} refused: {error.strerror}')\n"
    "raise RuntimeError('; '.join(made))"
)


def test_vsock_netlink_and_packet_sockets_are_refused():
    attack = Attack(
        "sockets",
        edits=_hook(SOCKETS),
        statuses={"q": "failed"},
        says={
            "q": "AF_VSOCK refused: Operation not permitted; AF_NETLINK refused: Operation not "
            "permitted; AF_PACKET refused: Operation not permitted"
        },
    )
    with tempfile.TemporaryDirectory() as folder:
        result, _ = _grade(attack, Path(folder))
    assert "sockets: AF_UNIX, AF_INET and AF_INET6" in result.sandbox["seccomp"]["detail"]


def test_without_the_socket_filter_vsock_and_netlink_sockets_are_made(monkeypatch, tmp_path):
    """The proof: the network namespace alone lets both through (vsock where the kernel has it)."""
    monkeypatch.setenv("DLI_GRADE_SANDBOX_SKIP", "seccomp")
    result = grade(_write(Attack("sockets", edits=_hook(SOCKETS)), tmp_path), ["q"], device="cpu", seed=1)
    message = result.tasks[0].message
    assert "AF_NETLINK;" in message or message.split("; ")[1] == "AF_NETLINK", message
    if Path("/dev/vsock").exists():
        assert message.split(": ", 1)[1].startswith("AF_VSOCK;"), message


ROUTE_PROBE = """
import ctypes, socket, sys
from grader.sandbox import launcher
ctypes.CDLL(None).prctl(38, 1, 0, 0, 0)  # no_new_privs, as the launcher sets it first
launcher._install_seccomp(inet=False)
found = []
for protocol in (0, 9, 15):  # NETLINK_ROUTE, NETLINK_AUDIT, NETLINK_KOBJECT_UEVENT
    try:
        socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, protocol).close()
        found.append(f"{protocol} made")
    except OSError as error:
        found.append(f"{protocol} {error.strerror}")
print("; ".join(found))
"""


def test_only_netlink_route_sockets_are_made():
    """getifaddrs needs NETLINK_ROUTE (the course flow's kernel aborts without it); the rest stay shut."""
    done = subprocess.run([sys.executable, "-c", ROUTE_PROBE], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "0 made; 9 Operation not permitted; 15 Operation not permitted", done.stderr


def test_the_fallback_refuses_inet_sockets_too():
    """Without a network namespace only AF_UNIX sockets can be made."""
    program = launcher._seccomp_program("x86_64", inet=False)
    with_inet = launcher._seccomp_program("x86_64", inet=True)
    assert len(with_inet) - len(program) == 2 * 2 * 8  # two more family checks in socket and socketpair


# -- the identity: a uid of its own per sandbox -----------------------------------------------------
def test_two_live_sandboxes_never_claim_the_same_uid(tmp_path):
    first_uid, first_fd = launcher.claim_identity(70_000, 3, str(tmp_path / "locks"), start=1)
    second_uid, second_fd = launcher.claim_identity(70_000, 3, str(tmp_path / "locks"), start=1)
    assert first_uid == 70_001 and second_uid == 70_002
    third_uid, third_fd = launcher.claim_identity(70_000, 3, str(tmp_path / "locks"), start=1)
    assert third_uid == 70_000
    with pytest.raises(OSError, match="held by a live sandbox"):
        launcher.claim_identity(70_000, 3, str(tmp_path / "locks"))
    os.close(first_fd)  # that sandbox is gone: its uid is free again
    assert launcher.claim_identity(70_000, 3, str(tmp_path / "locks"), start=1)[0] == 70_001
    for fd in (second_fd, third_fd):
        os.close(fd)


def test_a_uid_that_still_has_processes_is_passed_over(tmp_path):
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to start a process of another uid")
    survivor = subprocess.Popen(["setpriv", "--reuid=70005", "--regid=70005", "--clear-groups", "sleep", "30"])
    try:
        for _ in range(100):
            if launcher._user_tasks(70_005):
                break
            time.sleep(0.05)
        uid, fd = launcher.claim_identity(70_005, 2, str(tmp_path / "locks"))
        os.close(fd)
        assert uid == 70_006
    finally:
        survivor.kill()
        survivor.wait()


def test_a_lock_folder_others_can_write_is_refused(tmp_path):
    folder = tmp_path / "locks"
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)
    with pytest.raises(OSError, match="not a folder of this user's alone"):
        launcher.claim_identity(70_000, 3, str(folder))


@pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox changes uid only when the grader is root")
def test_the_sandbox_runs_as_a_uid_of_the_reserved_range(tmp_path):
    from grader.sandbox.view import SANDBOX_UIDS

    probe = _hook("import os\nraise RuntimeError(f'uid {os.getuid()} gid {os.getgid()} groups {os.getgroups()}')")
    result, messages = _grade(Attack("identity", edits=probe, statuses={"q": "failed"}), tmp_path)
    uid = int(messages["q"].split("uid ")[1].split()[0])
    assert SANDBOX_UIDS[0] <= uid < SANDBOX_UIDS[0] + SANDBOX_UIDS[1]
    assert f"gid {uid} groups []" in messages["q"]
    assert f"uid {uid}, gid {uid}" in result.sandbox["unprivileged"]["detail"]


# A hog's own processes sleep past the test: they hold its uid's RLIMIT_NPROC count while the
# neighbour starts. Reports how many it forked and whether the kernel refused the next one.
FORK_TO_THE_LIMIT = (
    "import os, time\nforked, refused = 0, None\nwhile forked < 1000:\n    try:\n        pid = os.fork()\n"
    "    except OSError as error:\n        refused = error.errno\n        break\n    if pid == 0:\n"
    "        time.sleep(120)\n        os._exit(0)\n    forked += 1\nuid = os.getuid()\n"
)
START_ONE_PROCESS = (
    "import os\nuid = os.getuid()\npid = os.fork()\nif pid == 0:\n    os._exit(7)\n"
    "started = os.WEXITSTATUS(os.waitpid(pid, 0)[1]) == 7\n"
)


def _live_sandbox(folder: Path):
    from grader.sandbox import view
    from grader.sandbox.parent import Sandbox, SandboxConfig
    from reference.course_path import course_path

    (folder / "data").mkdir(parents=True)
    sandbox = Sandbox(
        SandboxConfig(
            workdir=folder / "child",
            data_dir=folder / "data",
            course_dir=course_path(),
            view=view.view_config(folder / "submission.py"),
        )
    )
    outcome = sandbox.start(60.0)
    return sandbox, outcome


def _run(sandbox, code: str, *names: str) -> dict:
    errors = sandbox.request("exec", 60.0, code=code, filename="<cell 1>")
    assert errors.ok and errors.value == [], (errors.status, errors.value, errors.reason)
    values = sandbox.request("get", 10.0, names=list(names))
    assert values.ok, values.reason
    return values.value


@pytest.mark.skipif(os.geteuid() != 0, reason="separate uids per sandbox need root")
def test_a_sandbox_at_its_process_limit_does_not_stop_a_live_neighbour_from_starting_one(tmp_path):
    """RLIMIT_NPROC counts per uid: the hog's 256 are its own only if its neighbour's uid differs.
    With one uid for every sandbox (claim_identity bypassed by hand), the neighbour's fork is
    refused (EAGAIN) while the hog holds its processes, and this test fails."""
    from grader.sandbox.view import SANDBOX_UIDS

    hog, neighbour = None, None
    try:
        hog, started = _live_sandbox(tmp_path / "hog")
        assert started.ok, started.reason
        held = _run(hog, FORK_TO_THE_LIMIT, "forked", "refused", "uid")
        assert held["refused"] == 11 and 200 < held["forked"] < 256, held  # EAGAIN at its own limit
        neighbour, started = _live_sandbox(tmp_path / "neighbour")
        assert started.ok, started.reason
        found = _run(neighbour, START_ONE_PROCESS, "uid", "started")
        assert found["started"] is True
        assert found["uid"] != held["uid"]
        assert {found["uid"], held["uid"]} <= set(range(SANDBOX_UIDS[0], SANDBOX_UIDS[0] + SANDBOX_UIDS[1]))
    finally:
        for sandbox in (hog, neighbour):
            if sandbox is not None:
                sandbox.close()


# -- CUDA: the NVIDIA device nodes, in the view and the fallback ------------------------------------
def test_the_nvidia_device_nodes_are_granted_only_on_cuda(tmp_path):
    dev = tmp_path / "dev"
    (dev / "nvidia-caps").mkdir(parents=True)
    for name in ("null", "zero", "full", "random", "urandom", "nvidia0", "nvidiactl", "nvidia-uvm", "kvm", "vsock"):
        (dev / name).write_text("")
    basic = [str(dev / name) for name in ("null", "zero", "full", "random", "urandom")]
    assert launcher.device_nodes("cpu", str(dev)) == basic
    assert launcher.device_nodes("cuda", str(dev)) == basic + [
        str(dev / name) for name in ("nvidia-caps", "nvidia-uvm", "nvidia0", "nvidiactl")
    ]
    config = {"expose": [], "device": "cuda"}
    assert "/sys" in launcher.read_paths(config)
    assert "/sys" not in launcher.read_paths({**config, "device": "cpu"})


def test_the_fallback_grants_the_device_list_it_is_given(monkeypatch):
    """_landlock_view passes device_nodes(device) to Landlock (with ioctl), the same list as the view."""
    seen = {}
    monkeypatch.setattr(launcher, "_landlock", lambda read, write, listable, devices: seen.update(devices=devices))
    monkeypatch.setattr(launcher, "device_nodes", lambda device, dev="/dev": [f"nodes for {device}"])
    config = {"expose": [], "mounts": {}, "hide": [], "device": "cuda"}
    launcher._landlock_view(config, {"workdir": "/nonexistent"})
    assert seen["devices"] == ["nodes for cuda"]


# -- a process hog beside good submissions in one batch ------------------------------------------------
GOOD = ("good1", "good2", "good3")


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="separate uids per sandbox need root")
def test_a_process_hog_does_not_stop_its_neighbours_in_a_batch(tmp_path):
    """Four submissions, two at a time: the hog (graded first) forks until refused and holds its
    processes while its neighbours are graded; sharing one uid, their RLIMIT_NPROC was the hog's."""
    subs = tmp_path / "subs"
    # Correct, and starting a thread as tqdm's monitor does: a thread counts against RLIMIT_NPROC.
    good = Attack("good", cell="import threading\n_t = threading.Thread(target=print)\n_t.start()\n_t.join()\n")
    for name in GOOD:
        (subs / name).mkdir(parents=True)
        _write(good, subs / name)
    hog = Attack(
        "hog",
        cell="import os, time\nfor _ in range(1000):\n    try:\n        if os.fork() == 0:\n"
        "            time.sleep(60)\n            os._exit(0)\n    except OSError:\n        break\n"
        "time.sleep(20)\n",
    )
    (subs / "a-hog").mkdir()  # graded first, beside good1; good2 follows while the hog holds its processes
    _write(hog, subs / "a-hog")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "grader",
            "batch",
            "subs",
            "--out",
            "out",
            "--jobs",
            "2",
            "--tasks",
            "q,loss",
            "--device",
            "cpu",
            "--timeout",
            "60",
            "-q",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(CHECKOUT)},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    with open(tmp_path / "out" / "grades.csv", newline="", encoding="utf-8") as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    for name in GOOD:
        assert (rows[name]["status"], rows[name]["q"], rows[name]["loss"]) == ("graded", "passed", "passed"), rows[name]
