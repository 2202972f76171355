"""The attack corpus: hostile submissions, each graded, each with the exact outcome it must get.

Every case is the bundled example (correct) or a wrong variant of it, with hostile code added
as a cell or in a function. A case says which tasks to grade and what must hold afterwards:
task statuses, phrases in messages and integrity notes, secrets that must appear nowhere in
the result, and a time bound. Each defence of the containment has at least one case here
that fails without it (see docs/security.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import grader
from grader.grading.runner import grade

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "submission.py"
PACKAGE_FILE = Path(grader.__file__).resolve().parent / "grading" / "runner.py"
SECRET = "dli-test-secret-7f3a"
WRONG_Q = (
    "    x_t = sqrt_a_bar_t * x_0 + sqrt_one_minus_a_bar_t * noise\n",
    "    x_t = sqrt_one_minus_a_bar_t * x_0 + sqrt_a_bar_t * noise\n",
)
Q_BODY = "def q(x_0, t):\n    t = t.int()\n"


@dataclass(frozen=True)
class Attack:
    name: str
    cell: str = ""  # appended as a last cell
    edits: tuple = ()  # exact replacements in the example
    tasks: tuple = ("q",)
    statuses: dict = field(default_factory=dict)  # task -> status it must get
    says: dict = field(default_factory=dict)  # task -> phrase its message must contain
    integrity: tuple = ()  # phrases some integrity note must contain
    total_timeout: float = 120.0
    timeout: float = 20.0
    within: float = 90.0  # seconds the whole grade may take
    marker: str = ""  # a process whose command line holds this must not survive


def _hook(body: str) -> tuple:
    """An edit that runs `body` (indented 4) at the start of every call of q."""
    return (
        (Q_BODY, "def q(x_0, t):\n" + "".join(f"    {line}\n" for line in body.splitlines()) + "    t = t.int()\n"),
    )


ATTACKS = [
    # -- forging through the executor, the pipe and patched torch functions --------------------
    Attack(
        "patched_torch_functions_do_not_change_inputs",
        cell="torch.rand = lambda *a, **k: torch.zeros(*a)\ntorch.randn = lambda *a, **k: torch.zeros(*a)\n"
        "torch.equal = lambda *a: True\ntorch.allclose = lambda *a, **k: True\ntorch.save = lambda *a, **k: None\n",
        edits=(WRONG_Q,),
        statuses={"q": "failed"},
        says={"q": "swaps its coefficients"},
    ),
    Attack(
        "patched_executor_answer_cannot_pass_a_wrong_q",
        cell="import executor.main as _m\n_orig = _m.Executor.answer\n"
        "def _forge(self, command):\n    reply = _orig(self, command)\n    reply['value'] = reply.get('value')\n"
        "    return reply\n_m.Executor.answer = _forge\n",
        edits=(WRONG_Q,),
        statuses={"q": "failed"},
        says={"q": "swaps its coefficients"},
    ),
    Attack(
        "forged_reply_frame_breaks_the_protocol",
        edits=(
            WRONG_Q,
            *_hook(
                "import os, json, struct, sys\n"
                "_fd = json.loads(sys.argv[1])['out_fd']\n"
                "_b = json.dumps({'id': 2, 'reply': {'$dict': {'ok': True, 'value': None}}, 'blobs': []}).encode()\n"
                "os.write(_fd, struct.pack('>I', len(_b)) + _b)"
            ),
        ),
        tasks=("q", "context_mask"),
        statuses={"q": "failed", "context_mask": "passed"},
        says={"q": "protocol"},
        integrity=("protocol",),
    ),
    Attack(
        "invalid_bytes_on_the_reply_pipe_fail_only_that_task",
        edits=_hook("import os, json, sys\nos.write(json.loads(sys.argv[1])['out_fd'], b'\\x00\\x00\\x00\\x05{{{{{')"),
        tasks=("q", "context_mask"),
        statuses={"q": "failed", "context_mask": "passed"},
        says={"q": "protocol"},
    ),
    Attack(
        "oversized_frame_header_is_refused",
        edits=_hook(
            "import os, json, sys\nos.write(json.loads(sys.argv[1])['out_fd'], b'\\xff\\xff\\xff\\xff' + b'x' * 100)"
        ),
        tasks=("q", "context_mask"),
        statuses={"q": "failed", "context_mask": "passed"},
        says={"q": "protocol"},
    ),
    Attack(
        "float_subclass_drop_probability_fails_the_training_loop",
        cell="class _F(float):\n    pass\n",
        edits=(("c_drop_prob = 0.1", "c_drop_prob = _F(0.1)"),),
        tasks=("training_loop",),
        statuses={"training_loop": "failed"},
        says={"training_loop": "not a number"},
    ),
    Attack(
        "tensor_subclass_result_fails_with_a_message",
        cell="class _T(torch.Tensor):\n    pass\n_q = q\n"
        "def q(x_0, t):\n    a, b = _q(x_0, t)\n    return a.as_subclass(_T), b\n",
        statuses={"q": "failed"},
        says={"q": "tensor subclass"},
    ),
    Attack(
        "meta_tensor_result_fails_with_a_message",
        cell="def q(x_0, t):\n"
        "    return torch.empty(x_0.shape, device='meta'), torch.empty(x_0.shape, device='meta')\n",
        statuses={"q": "failed"},
        says={"q": "meta device"},
    ),
    Attack(
        "tuple_subclass_result_is_not_trusted",
        cell="class _P(tuple):\n    def __len__(self):\n        return 2\n"
        "_q = q\ndef q(x_0, t):\n    return _P(_q(x_0, t))\n",
        statuses={"q": "failed"},
        says={"q": "returned a _P"},
    ),
    Attack(
        "nan_noise_is_a_failure_and_strict_json",
        cell="def q(x_0, t):\n    n = torch.full_like(x_0, float('nan'))\n    return x_0 + n, n\n",
        statuses={"q": "failed"},
    ),
    # -- the answer key --------------------------------------------------------------------------
    Attack(
        "import_reference_fails_and_is_recorded",
        cell="try:\n    from reference.diffusion import q as _ref_q\nexcept ImportError:\n    pass\n",
        edits=(WRONG_Q,),
        statuses={"q": "failed"},
        integrity=("import",),
    ),
    Attack(
        "obfuscated_import_of_the_answer_key_is_recorded",
        edits=(WRONG_Q, *_hook("import importlib\nimportlib.import_module('ref' + 'erence.diffusion')")),
        statuses={"q": "failed"},
        says={"q": "No module named"},
        integrity=("tried to import reference",),
    ),
    Attack(
        "sys_modules_holds_no_answer_key",
        edits=_hook("import sys\nsys.modules['reference'].diffusion"),
        statuses={"q": "failed"},
        says={"q": "KeyError"},
    ),
    Attack(
        "answer_key_files_cannot_be_read",
        edits=_hook(f"open({str(PACKAGE_FILE)!r}).read()"),
        statuses={"q": "failed"},
        says={"q": "No such file"},
    ),
    Attack(
        "judge_weights_cannot_be_read",
        edits=_hook(
            f"open({str(PACKAGE_FILE.parents[2] / 'reference' / 'data' / 'mnist_classifier.pt')!r}, 'rb').read()"
        ),
        statuses={"q": "failed"},
        says={"q": "No such file"},
    ),
    Attack(
        "delegating_to_the_course_helper_fails",
        cell="from utils import ddpm_utils as _du\n_ddpm = _du.DDPM(B, device)\nq = _ddpm.q\n",
        statuses={"q": "failed"},
        says={"q": "not a function your notebook defines"},
    ),
    Attack(
        "subclassing_a_course_block_does_not_earn_it",
        cell="from utils import UNet_utils as _U\nclass DownBlock(_U.DownBlock):\n    pass\n",
        tasks=("blocks",),
        statuses={"blocks": "failed"},
        integrity=("DownBlock extends the course helper",),
    ),
    # -- persistence -----------------------------------------------------------------------------
    Attack(
        "writing_the_installation_fails",
        edits=_hook(f"open({str(PACKAGE_FILE)!r}, 'a').write('#')"),
        statuses={"q": "failed"},
        says={"q": "No such file"},
    ),
    Attack(
        "planting_a_pth_file_fails",
        edits=_hook("import site\nopen(site.getsitepackages()[0] + '/zz_evil.pth', 'w').write('import os')"),
        statuses={"q": "failed"},
        says={"q": "Read-only file system"},
    ),
    Attack(
        "writing_the_interpreter_prefix_fails",
        edits=_hook("import sys\nopen(sys.prefix + '/evil.txt', 'w')"),
        statuses={"q": "failed"},
        says={"q": "Read-only file system"},
    ),
    # -- leaks -----------------------------------------------------------------------------------
    Attack(
        "grader_environment_is_not_readable",
        edits=_hook(
            "import glob\nraise RuntimeError(repr([open(p, 'rb').read()[:4000] for p in glob.glob('/proc/*/environ')]))"
        ),
        statuses={"q": "failed"},
    ),
    Attack(
        "grader_processes_are_not_visible",
        edits=_hook("import os\nraise RuntimeError('pids ' + ' '.join(p for p in os.listdir('/proc') if p.isdigit()))"),
        statuses={"q": "failed"},
        says={"q": "pids 1"},
    ),
    Attack(
        "neighbouring_files_are_not_readable",
        edits=_hook(
            "import os\n"
            "raise RuntimeError(repr([open(os.path.join(d, f)).read() for d in (__DIR__,) for f in os.listdir(d)]))"
        ),
        statuses={"q": "failed"},
        says={"q": "No such file"},
    ),
    Attack(
        "environment_of_the_child_holds_no_secret",
        edits=_hook("import os\nraise RuntimeError(repr(dict(os.environ)))"),
        statuses={"q": "failed"},
    ),
    # -- network and kernel ----------------------------------------------------------------------
    Attack(
        "no_network_to_the_host",
        edits=_hook("import socket\nsocket.create_connection(('127.0.0.1', __PORT__), timeout=2)"),
        statuses={"q": "failed"},
        says={"q": "unreachable"},
    ),
    Attack(
        "setns_into_another_namespace_is_refused",
        edits=_hook(
            "import ctypes, os\nfd = os.open('/proc/1/ns/net', os.O_RDONLY)\n"
            "r = ctypes.CDLL(None, use_errno=True).setns(fd, 0)\n"
            "raise RuntimeError(f'setns {r} errno {ctypes.get_errno()}')"
        ),
        statuses={"q": "failed"},
        says={"q": "setns -1 errno 1"},
    ),
    Attack(
        "unshare_a_user_namespace_is_refused",
        edits=_hook(
            "import ctypes\nr = ctypes.CDLL(None, use_errno=True).unshare(0x10000000)\n"
            "raise RuntimeError(f'unshare {r} errno {ctypes.get_errno()}')"
        ),
        statuses={"q": "failed"},
        says={"q": "unshare -1 errno 1"},
    ),
    Attack(
        "mount_is_refused",
        edits=_hook(
            "import ctypes\nr = ctypes.CDLL(None, use_errno=True).mount(b'none', b'/tmp', b'tmpfs', 0, None)\n"
            "raise RuntimeError(f'mount {r} errno {ctypes.get_errno()}')"
        ),
        statuses={"q": "failed"},
        says={"q": "mount -1 errno 1"},
    ),
    Attack(
        "ptrace_is_refused",
        edits=_hook(
            "import ctypes\nr = ctypes.CDLL(None, use_errno=True).ptrace(16, 1, 0, 0)\n"
            "raise RuntimeError(f'ptrace {r} errno {ctypes.get_errno()}')"
        ),
        statuses={"q": "failed"},
        says={"q": "ptrace -1 errno 1"},
    ),
    Attack(
        "pidfd_getfd_is_refused",
        edits=_hook(
            "import ctypes\nr = ctypes.CDLL(None, use_errno=True).syscall(438, 0, 1, 0)\n"
            "raise RuntimeError(f'pidfd_getfd {r} errno {ctypes.get_errno()}')"
        ),
        statuses={"q": "failed"},
        says={"q": "pidfd_getfd -1 errno 1"},
    ),
    Attack(
        "signalling_the_parent_reaches_only_the_sandbox",
        cell="import os, signal\ntry:\n    os.kill(os.getppid(), signal.SIGINT)\nexcept BaseException:\n    pass\n",
        tasks=("q", "context_mask"),
        statuses={"q": "passed", "context_mask": "passed"},
    ),
    Attack(
        "kill_everything_it_can_ends_only_the_sandbox",
        edits=_hook("import os, signal\nos.kill(-1, signal.SIGKILL)"),
        tasks=("q", "context_mask"),
        statuses={"q": "failed", "context_mask": "passed"},
    ),
    # -- crashes, hangs and floods ---------------------------------------------------------------
    Attack(
        "immutable_files_cannot_be_made",
        edits=_hook("import fcntl, struct\nf = open('x', 'w')\nfcntl.ioctl(f, 0x40086602, struct.pack('i', 0x10))"),
        statuses={"q": "failed"},
        says={"q": "Operation not permitted"},
    ),
    Attack(
        "a_fifo_in_the_work_folder_stalls_nothing",
        cell="import os\nos.mkfifo('progress.txt')\n",
        tasks=("q",),
        statuses={"q": "passed"},
    ),
    Attack(
        "hanging_cells_respect_the_total_timeout",
        cell="def _hang():\n    while True:\n        pass\n_ = _hang()\n",
        edits=(
            (
                "# %%\ndef get_loss",
                "# %%\ndef _hang():\n    while True:\n        pass\n_ = _hang()\n\n# %%\ndef get_loss",
            ),
        ),
        tasks=("q", "context_mask", "loss"),
        total_timeout=12,
        timeout=5,
        within=40,
    ),
    Attack(
        "a_hanging_function_fails_its_task_only",
        edits=_hook("while True:\n    pass"),
        tasks=("q", "context_mask"),
        timeout=4,
        statuses={"q": "failed", "context_mask": "passed"},
        says={"q": "did not finish"},
    ),
    Attack(
        "os_exit_fails_its_task_only",
        edits=_hook("import os\nos._exit(3)"),
        tasks=("q", "context_mask"),
        statuses={"q": "failed", "context_mask": "passed"},
        says={"q": "exit code 3"},
    ),
    Attack(
        "sys_exit_fails_its_task_only",
        edits=_hook("import sys\nsys.exit(0)"),
        tasks=("q", "context_mask"),
        statuses={"q": "failed", "context_mask": "passed"},
        says={"q": "sys.exit"},
    ),
    Attack(
        "a_memory_bomb_fails_its_task_only",
        edits=_hook("x = bytearray(64 * 1024 ** 3)"),
        tasks=("q", "context_mask"),
        statuses={"q": "failed", "context_mask": "passed"},
    ),
    Attack(
        "a_disk_bomb_stops_at_the_private_tmp",
        cell="try:\n    with open('/tmp/fill', 'wb') as f:\n"
        "        for _ in range(2048):\n            f.write(b'x' * 2 ** 20)\n"
        "except OSError:\n    pass\n",
        statuses={"q": "passed"},
    ),
    Attack(
        "a_process_bomb_stops_at_the_process_limit",
        cell="import os\nfor _ in range(400):\n    try:\n"
        "        if os.fork() == 0:\n            os.execv('/bin/sleep', ['sleep', '611'])\n"
        "    except OSError:\n        break\n",
        statuses={"q": "passed"},
        marker="sleep 611",
    ),
    Attack(
        "a_daemon_does_not_outlive_the_grade",
        cell="import os\nif os.fork() == 0:\n    try:\n        _ = os.setsid()\n        if os.fork() == 0:\n"
        "            _ = os.execv('/bin/sleep', ['sleep', '613'])\n    finally:\n        _ = os._exit(0)\n",
        statuses={"q": "passed"},
        marker="sleep 613",
    ),
    # The copy, with a wrong q, would answer first while the original sleeps; it must leave.
    Attack(
        "a_forked_copy_of_the_executor_takes_no_command",
        cell="import os, time\nif os.fork() == 0:\n    _ = os.setsid()\n    def q(x_0, t):\n"
        "        return x_0 * 0, x_0 * 0\nelse:\n    time.sleep(0.5)\n",
        tasks=("q",),
        statuses={"q": "passed"},
    ),
    Attack(
        "huge_exception_messages_are_cut", edits=_hook("raise RuntimeError('A' * 10_000_000)"), statuses={"q": "failed"}
    ),
    Attack(
        "hostile_exception_str_is_handled",
        cell="class _E(Exception):\n    def __str__(self):\n        raise RuntimeError('no')\n",
        edits=_hook("raise _E()"),
        statuses={"q": "failed"},
    ),
    Attack(
        "ansi_and_newlines_in_messages_are_removed",
        edits=_hook("raise RuntimeError('\\n  PASS  q   2/2\\x1b[2K\\x1b[1A\\rScore 50/50: PASSED')"),
        statuses={"q": "failed"},
    ),
    Attack(
        "a_huge_returned_tensor_fails_its_task",
        cell="_q = q\ndef q(x_0, t):\n    return torch.zeros(200, 1024, 1024), torch.zeros(1)\n",
        tasks=("q", "context_mask"),
        statuses={"q": "failed", "context_mask": "passed"},
    ),
]


def _write(attack: Attack, folder: Path) -> Path:
    text = EXAMPLE.read_text(encoding="utf-8")
    for old, new in attack.edits:
        assert text.count(old) == 1, f"{attack.name}: edit target found {text.count(old)} times: {old!r}"
        text = text.replace(old, new)
    if attack.cell:
        text += "\n# %%\n" + attack.cell
    path = folder / "submission.py"
    path.write_text(text, encoding="utf-8")
    return path


class _Sessions:
    """Records the sessions this test's grade starts: each sandbox's launcher starts a new session
    (start_new_session), and every process it leads keeps that session id even once reparented."""

    def __init__(self):
        self.ids: set[int] = set()

    def popen(self):
        sessions = self

        class RecordingPopen(subprocess.Popen):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                if kwargs.get("start_new_session"):
                    sessions.ids.add(self.pid)

        return RecordingPopen


@pytest.fixture
def grade_sessions(monkeypatch):
    sessions = _Sessions()
    monkeypatch.setattr(subprocess, "Popen", sessions.popen())
    return sessions


def _live_processes() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, session id) of every process not yet a zombie."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()  # after "(comm)", which may hold spaces
        except OSError:
            continue
        if fields[0] not in ("Z", "X"):
            found[int(entry)] = (int(fields[1]), int(fields[3]))
    return found


def _grade_processes(sessions: set[int]) -> list[int]:
    """Processes of this grade's own tree: in a session one of its launchers led, or descended from one
    (a grade run beside the suite by someone else is not counted)."""
    processes = _live_processes()

    def ours(pid, hops=0):
        if pid in sessions or processes[pid][1] in sessions:
            return True
        parent = processes[pid][0]
        return parent in processes and hops < 64 and ours(parent, hops + 1)

    return sorted(pid for pid in processes if ours(pid))


def _processes_with(marker: str) -> list[str]:
    out = subprocess.run(["ps", "-ww", "-e", "-o", "pid=,stat=,args="], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if marker in line and " Z" not in line]


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_attack(attack, tmp_path, host_server, monkeypatch, grade_sessions):
    monkeypatch.setenv("DLI_GRADE_TEST_SECRET", SECRET)
    submission_dir = tmp_path / "class"
    submission_dir.mkdir()
    (submission_dir / "other_student.txt").write_text(SECRET)
    path = _write(attack, submission_dir)
    path.write_text(
        path.read_text().replace("__DIR__", repr(str(submission_dir))).replace("__PORT__", str(host_server))
    )
    started = time.monotonic()
    result = grade(
        path, list(attack.tasks), device="cpu", seed=1, timeout=attack.timeout, total_timeout=attack.total_timeout
    )
    elapsed = time.monotonic() - started
    document = json.dumps(result.to_json(), allow_nan=False)

    assert elapsed < attack.within, f"the grade took {elapsed:.0f} s"
    assert SECRET not in document, "a secret reached the result"
    assert "\x1b" not in document and "\\u001b" not in document
    statuses = {task.id: task.status for task in result.tasks}
    assert set(statuses) == set(attack.tasks)
    assert "error" not in statuses.values(), [t.message for t in result.tasks]
    for task_id, status in attack.statuses.items():
        assert statuses[task_id] == status, (task_id, [t.message for t in result.tasks])
    messages = {task.id: task.message for task in result.tasks}
    for task_id, phrase in attack.says.items():
        assert phrase in messages[task_id], (task_id, messages[task_id])
    for phrase in attack.integrity:
        assert any(phrase in note for note in result.integrity), result.integrity
    assert all(task.message.count("\n") == 0 for task in result.tasks)
    assert all(layer["held"] for layer in result.sandbox.values()), result.sandbox
    assert json.loads(document)["sandbox"]["layers"] == result.sandbox
    time.sleep(0.3)
    assert grade_sessions.ids, "the grade started no sandbox"
    assert _grade_processes(grade_sessions.ids) == [], "a process of the sandbox outlived its grade"
    if attack.marker:
        assert _processes_with(attack.marker) == [], "a process of the sandbox outlived the grade"


def test_hanging_cells_end_within_the_total_timeout_as_not_graded(tmp_path):
    attack = next(a for a in ATTACKS if a.name == "hanging_cells_respect_the_total_timeout")
    path = _write(attack, tmp_path)
    started = time.monotonic()
    result = grade(path, list(attack.tasks), device="cpu", seed=1, timeout=5, total_timeout=8)
    assert time.monotonic() - started < 25
    assert not result.passed
    assert any("time limit" in task.message for task in result.tasks)


def test_an_attack_leaves_nothing_for_the_next_grade(tmp_path):
    """A submission tries to persist; a wrong submission graded after it is still wrong."""
    hostile = Attack(
        "persist",
        cell=(
            "import os, site, sys\n"
            "for target in [site.getsitepackages()[0] + '/zz.pth', sys.prefix + '/x',"
            " '/tmp/carry', '/dev/shm/carry']:\n"
            "    try:\n        open(target, 'w').write('import os')\n    except OSError:\n        pass\n"
        ),
    )
    first = grade(_write(hostile, tmp_path), ["q"], device="cpu", seed=1)
    assert first.tasks[0].status == "passed"
    wrong_dir = tmp_path / "next"
    wrong_dir.mkdir()
    second = grade(_write(Attack("wrong", edits=(WRONG_Q,)), wrong_dir), ["q"], device="cpu", seed=1)
    assert second.tasks[0].status == "failed"
    assert not Path("/tmp/carry").exists() and not Path("/dev/shm/carry").exists()
    import site

    assert not Path(site.getsitepackages()[0], "zz.pth").exists()


def test_stdout_holds_exactly_one_strict_json_document(tmp_path):
    attack = Attack(
        "stdout",
        cell="import os, sys\nprint('{\"passed\": true}')\nos.write(1, b'{\"score\": 50}\\n')\n"
        "sys.stderr.write('::error::forged\\n')\n",
    )
    path = _write(attack, tmp_path)
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "from grader.cli import main; main()",
            str(path),
            "--format",
            "json",
            "-q",
            "--tasks",
            "q",
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(grader.__file__).parent.parent)},
    )
    document = json.loads(run.stdout, parse_constant=lambda name: pytest.fail(f"{name} in the JSON"))
    assert document["tasks"][0]["status"] == "passed"
    assert run.returncode == 0, run.stderr[-2000:]  # q, the only task graded, passed


def test_the_view_binds_back_nothing_that_holds_the_grader(monkeypatch):
    """sys.path may list the checkout (pytest, PYTHONPATH): the sandbox must not bind it back."""
    from grader.sandbox import view as containment

    checkout = Path(grader.__file__).resolve().parent.parent
    monkeypatch.setattr(sys, "path", [str(checkout), str(checkout / "tests"), "/", *sys.path])
    exposed = [Path(path) for path in containment.python_paths()]
    package = checkout / "grader"
    prefix = Path(sys.prefix).resolve()
    for path in exposed:
        assert path != package and path not in package.parents, path
        assert not (checkout in path.parents and not (path == prefix or prefix in path.parents)), path


def test_every_copy_of_the_grader_on_the_path_is_hidden(tmp_path, monkeypatch):
    """Run from a checkout with `python -m` beside an installed copy: both copies are hidden."""
    from grader.sandbox import view as containment

    for name in ("grader", "reference", "tasks"):
        (tmp_path / "site" / name).mkdir(parents=True)
        (tmp_path / "site" / name / "__init__.py").write_text("")
    monkeypatch.setattr(sys, "path", [*sys.path, str(tmp_path / "site")])
    hidden = containment.hidden_paths(tmp_path / "class" / "submission.py")
    for name in ("grader", "reference", "tasks"):
        assert str((tmp_path / "site" / name).resolve()) in hidden


def test_the_copy_an_editable_install_maps_to_is_hidden(tmp_path, monkeypatch):
    """Run from one checkout while an editable install (a finder on sys.meta_path, not a sys.path
    entry) maps the packages to another: the other checkout is hidden too."""
    import importlib.machinery

    from grader.sandbox import view as containment

    other = tmp_path / "other-checkout"
    for name in ("grader", "reference", "tasks"):
        (other / name).mkdir(parents=True)
        (other / name / "__init__.py").write_text("")
    (other / "pyproject.toml").write_text("")

    class EditableFinder:  # what setuptools' editable install puts on sys.meta_path
        @staticmethod
        def find_spec(name, path=None, target=None):
            if name not in ("grader", "reference", "tasks"):
                return None
            spec = importlib.machinery.ModuleSpec(name, None, origin=str(other / name / "__init__.py"), is_package=True)
            spec.submodule_search_locations.append(str(other / name))
            return spec

    monkeypatch.setattr(sys, "meta_path", [*sys.meta_path, EditableFinder])
    assert str(other.resolve()) in containment.hidden_paths(tmp_path / "class" / "submission.py")


def test_leftovers_are_this_grades_own_processes_only(grade_sessions):
    """Another grade's executor beside the suite is not a leftover of this one; a process of this grade's
    session that outlived its leader (reparented away from the tree) still is."""
    foreign = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "executor.main"])
    own = subprocess.Popen(
        ["sh", "-c", "sleep 61 & echo $!"], stdout=subprocess.PIPE, start_new_session=True, text=True
    )
    orphan = int(own.stdout.readline())
    own.wait()
    try:
        assert _grade_processes(grade_sessions.ids) == [orphan]  # not foreign.pid, whose argv names the executor
    finally:
        for pid in (foreign.pid, orphan):
            os.kill(pid, 9)
        foreign.wait()
