"""Attacks on `dli-grade batch` itself: its inputs, the driver process and the Ray/local workers.

Each case is a hostile class member (or operator mistake) with the exact outcome the batch must
give: one unusable row for the hostile member and every other student still graded, nothing
from the inputs or the working directory ever imported, grades no student can predict.
Batches grade the unit task q only, so each grade takes seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from test_batch import MODULE, batch, read_csv  # tests/ is on sys.path (pytest's default import mode)

from grader.batch import gradescope_export, inputs, similarity

GOOD = MODULE.read_bytes()


def _rows_by_submission(out: Path) -> dict[str, dict]:
    return {row["submission"]: row for row in read_csv(out / "grades.csv").values()}


# ---------------------------------------------------------------- archive members, one row each


def _symlink(bundle: zipfile.ZipFile, name: str, target: str) -> None:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    bundle.writestr(info, target)


def _mark_encrypted(path: Path, name: str) -> None:
    """Set the 'encrypted' flag of member `name` in its local and central headers (zipfile cannot write one)."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as bundle:
        data[bundle.getinfo(name).header_offset + 6] |= 0x1
    at = data.find(b"PK\x01\x02")
    while at != -1:
        length = int.from_bytes(data[at + 28 : at + 30], "little")
        if data[at + 46 : at + 46 + length] == name.encode():
            data[at + 8] |= 0x1
        at = data.find(b"PK\x01\x02", at + 4)
    path.write_bytes(bytes(data))


# member name -> the phrase of its row's message
HOSTILE_MEMBERS = {
    "clash.py/inner.py": "needs a folder where another member is a file",
    ("long" * 75) + "/answer.py": "longer than 200 bytes",
    "deep/" * 40 + "answer.py": "is nested 40 folders deep",
    "bomb/answer.py": "compressed more than 200 to 1",
    "locked/answer.py": "is encrypted",
    "twin/answer.py": "same name as an earlier member",
    "Case/ANSWER.py": "same name as an earlier member",
    "cafe\u0301/answer.py": "same name as an earlier member",  # café, decomposed
    "/abs.py": "has an absolute path",
    "../up.py": "has a '..' path component",
    "link/answer.py": "is a symbolic link",
}


def hostile_archive(path: Path) -> Path:
    """A class archive: alice's good submission beside every kind of hostile or broken member."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("alice/submission.py", GOOD)
        bundle.writestr("clash.py", GOOD)  # a file, then a folder of the same name
        for name in HOSTILE_MEMBERS:
            if name == "bomb/answer.py":
                bundle.writestr(name, "#" * (4 * 2**20))  # 4 MiB of one byte: a few KiB compressed
            elif name == "locked/answer.py":
                bundle.writestr(name, b"\x00" * 64)  # flagged encrypted below
            elif name == "link/answer.py":
                _symlink(bundle, name, "/etc/passwd")
            elif name in ("twin/answer.py", "Case/ANSWER.py", "cafe\u0301/answer.py"):
                continue  # written after their first twins below
            else:
                bundle.writestr(name, GOOD)
        with pytest.warns(UserWarning, match="Duplicate name"):
            bundle.writestr("twin/answer.py", GOOD)
            bundle.writestr("twin/answer.py", b"x = 'the second twin'\n")
        bundle.writestr("case/answer.py", GOOD)
        bundle.writestr("Case/ANSWER.py", GOOD)
        bundle.writestr("caf\u00e9/answer.py", GOOD)
        bundle.writestr("cafe\u0301/answer.py", GOOD)
    _mark_encrypted(path, "locked/answer.py")
    return path


def test_each_hostile_archive_member_is_its_own_unusable_row(tmp_path):
    archive = hostile_archive(tmp_path / "class.zip")
    items = inputs.collect([archive], tmp_path / "work")
    by_source = {item.source: item for item in items}
    good = by_source[f"{archive}!alice/submission.py"]
    assert good.problem is None and good.student == "alice" and good.path.read_bytes() == GOOD
    for member, phrase in HOSTILE_MEMBERS.items():
        item = by_source[f"{archive}!{member}"]
        assert item.path is None and phrase in item.problem and repr(member) in item.problem, (member, item.problem)
    # the first of each colliding pair is graded, with the bytes it holds
    assert by_source[f"{archive}!twin/answer.py"].problem is not None
    assert by_source[f"{archive}!case/answer.py"].problem is None
    assert by_source[f"{archive}!caf\u00e9/answer.py"].problem is None
    assert not Path("/abs.py").exists() and not (tmp_path / "work" / "up.py").exists()
    written = [p for p in (tmp_path / "work").rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in written) < 2**20 and not any(p.is_symlink() for p in written)


@pytest.mark.slow  # a batch of several grades (10-25 s); the unit tests above cover each case
def test_a_hostile_archive_grades_its_good_student(tmp_path):
    """The whole batch, driver included: alice is graded; every hostile member is one unusable row."""
    archive = hostile_archive(tmp_path / "class.zip")
    code, _, err = batch(archive, "--out", "out", "--tasks", "q", "--device", "cpu", "-q", cwd=tmp_path)
    assert code == 0, err
    rows = _rows_by_submission(tmp_path / "out")
    alice = rows[f"{archive}!alice/submission.py"]
    assert (alice["student"], alice["status"], alice["q"]) == ("alice", "graded", "passed")
    for member, phrase in HOSTILE_MEMBERS.items():
        row = rows[f"{archive}!{member}"]
        assert row["status"] == "unusable" and phrase in row["message"], (member, row)


def test_a_file_where_a_folder_was_is_refused_in_either_order(tmp_path):
    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("x.py/answer.py", GOOD)  # the folder first, then a file of its name
        bundle.writestr("x.py", GOOD)
        bundle.writestr("bob/answer.py", GOOD)
    by_source = {item.source: item for item in inputs.collect([archive], tmp_path / "work")}
    assert by_source[f"{archive}!x.py/answer.py"].problem is None
    assert "needs a folder where another member is a file" in by_source[f"{archive}!x.py"].problem
    assert by_source[f"{archive}!bob/answer.py"].problem is None


# ------------------------------------------------ nothing is imported from the working directory


def _plant_hostile_modules(folder: Path, marks: Path, names) -> None:
    """Modules named like ours or the standard library's that, imported, leave a mark and lie."""
    marks.mkdir()
    for name in names:
        (folder / f"{name}.py").write_text(
            f"import os\nopen(os.path.join({str(marks)!r}, {name!r}), 'w').close()\n"
            "def grade_one(*args, **kwargs):\n    raise SystemExit('row rewritten')\n",
            encoding="utf-8",
        )


def test_local_batch_never_imports_a_module_beside_it(tmp_path):
    """`python -m grader batch` run from the folder of collected submissions."""
    subs, marks = tmp_path / "subs", tmp_path / "marks"
    (subs / "class" / "alice").mkdir(parents=True)
    (subs / "class" / "alice" / "submission.py").write_bytes(GOOD)
    _plant_hostile_modules(subs, marks, ["json", "tasks", "torch", "click", "yaml", "reference"])
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "grader",
            "batch",
            "class",
            "--out",
            str(tmp_path / "out"),
            "--tasks",
            "q",
            "--device",
            "cpu",
            "-q",
        ],
        cwd=subs,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert sorted(p.name for p in marks.iterdir()) == [], done.stderr
    assert done.returncode == 0, done.stderr
    row = read_csv(tmp_path / "out" / "grades.csv")["alice"]
    assert (row["status"], row["q"]) == ("graded", "passed")


@pytest.mark.slow  # 8-24 s: in CI's slow run, out of the default one (about 15 minutes)
def test_ray_batch_never_imports_a_module_beside_it(tmp_path):
    """Ray puts the driver's working directory on its workers' sys.path (a local Ray, about 12 s)."""
    import ray  # noqa: F401  (the test extra brings it)

    subs, marks = tmp_path / "subs", tmp_path / "marks"
    (subs / "class" / "alice").mkdir(parents=True)
    (subs / "class" / "alice" / "submission.py").write_bytes(GOOD)
    _plant_hostile_modules(subs, marks, ["grader", "json", "tasks", "torch", "subprocess", "tempfile"])
    code, _, err = batch(
        "class", "--out", tmp_path / "out", "--backend", "ray", "--tasks", "q", "--device", "cpu", "-q", cwd=subs
    )
    assert sorted(p.name for p in marks.iterdir()) == [], err
    assert code == 0, err
    row = read_csv(tmp_path / "out" / "grades.csv")["alice"]
    assert (row["status"], row["q"]) == ("graded", "passed")


def _memory_job():
    from grader.batch import backends

    return backends.Job("alice", "alice/submission.py", "submission.py", GOOD, "", {}, 300.0, 1)


@pytest.mark.slow  # 8-24 s: in CI's slow run, out of the default one (about 15 minutes)
def test_a_ray_worker_bounds_its_grade_as_the_local_backend_does(tmp_path):
    """--grader-memory-mb reaches each grade on its command line: a Ray worker inherits neither the
    batch's environment nor (on another node) its limit. A bound of 200 MB, too small for any grade
    (importing torch fails), ends the grade with the grader's own message on both backends; before,
    the Ray worker's grade ran unbounded and passed (a local Ray, about 12 s)."""
    import ray  # noqa: F401  (the test extra brings it)

    from grader.batch import backends, worker

    options = worker.GradeOptions(("q",), device="cpu", grader_memory_mb=200)
    outcomes = {}
    backends.run_local([_memory_job()], options, 1, lambda job, outcome: outcomes.update(local=outcome))
    backends.run_ray(
        [_memory_job()], options, 1, lambda job, outcome: outcomes.update(ray=outcome), empty_dir=tmp_path / "empty"
    )
    for backend, outcome in outcomes.items():
        assert outcome.status == "crashed", (backend, outcome)
        assert "the grader ran out of memory: it reached its limit of 200 MB (--grader-memory-mb)" in outcome.message


def test_a_local_ray_is_started_with_the_limit_from_before_the_batchs_bound(tmp_path, monkeypatch):
    """Ray's daemons and workers are started by ray.init: under the batch's own bound they would keep
    it, and every grade would hand it to its sandbox as the operator's limit (checked without
    previous_limit_for_children: ray.init then saw the bound)."""
    import resource

    import ray

    from grader.batch import backends, worker
    from grader.core import memory

    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    bound = 64 * 1024**3 if soft == resource.RLIM_INFINITY else soft - 4096  # above what pytest holds
    seen = {}

    def fake_init(**kwargs):
        seen["limit"] = resource.getrlimit(resource.RLIMIT_DATA)[0]
        raise RuntimeError("stop before starting Ray")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", fake_init)
    monkeypatch.setattr(memory, "_previous", soft)  # as `batch --grader-memory-mb` leaves it
    resource.setrlimit(resource.RLIMIT_DATA, (bound, hard))
    try:
        with pytest.raises(RuntimeError, match="stop before"):
            backends.run_ray([_memory_job()], worker.GradeOptions(("q",)), 1, None, empty_dir=tmp_path / "empty")
        after = resource.getrlimit(resource.RLIMIT_DATA)[0]
    finally:
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))
    assert seen["limit"] == soft
    assert after == bound  # the batch itself is bounded again


def test_grade_processes_do_not_put_their_folder_on_the_path():
    from grader.batch import worker

    cmd = worker.command(Path("s.py"), Path("r.json"), Path("a"), worker.GradeOptions(("q",)))
    assert cmd[:4] == [sys.executable, "-P", "-m", "grader"]
    env = worker.environment(1)
    assert env["PYTHONSAFEPATH"] == "1"


# ----------------------------------------------------------- hostile text parsed by the driver

DEEP_CELLS = {
    "binary chain": "def q(x_0, t):\n    return " + "+".join(["x_0"] * 100_000) + "\n",
    "unary nesting": "def q(x_0, t):\n    return " + "-" * 100_000 + "x_0\n",
    "parentheses": "def q(x_0, t):\n    return " + "(" * 100_000 + "x_0" + ")" * 100_000 + "\n",
    "lists": "def q(x_0, t):\n    return " + "[" * 100_000 + "]" * 100_000 + "\n",
}


@pytest.mark.parametrize("kind", DEEP_CELLS)
def test_fingerprints_survive_expressions_nested_100000_deep(tmp_path, kind):
    path = tmp_path / "deep.py"
    path.write_text(DEEP_CELLS[kind], encoding="utf-8")
    found = similarity.fingerprints(path)  # must return, not raise RecursionError or MemoryError
    assert set(found) == {"exact", "renamed", "cells"} and found["cells"] == 1


def test_fingerprints_of_a_notebook_nested_100000_deep_are_empty(tmp_path):
    path = tmp_path / "deep.ipynb"
    path.write_text('{"cells": ' + "[" * 100_000 + "]" * 100_000 + "}", encoding="utf-8")
    assert similarity.fingerprints(path) == {}


HOSTILE_METADATA = {
    "a 5,000-digit SID": "submission_1:\n  :submitters:\n  - :sid: 0x" + "f" * 5000 + "\n",
    "a 5,000-digit folder": "0x" + "f" * 5000 + ":\n  :submitters:\n  - :sid: '1'\n",
    "a billion laughs": "a: &a ['x','x','x','x','x','x','x','x','x']\n"
    + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
        f"*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n"
        for i in range(9)
    )
    + "submission_1:\n  :submitters:\n  - :sid: *j\n",
    "a nested SID": "submission_1:\n  :submitters:\n  - :sid: " + "[" * 50_000 + "]" * 50_000 + "\n",
}


@pytest.mark.parametrize("kind", HOSTILE_METADATA)
def test_hostile_export_metadata_gives_no_ids_instead_of_failing(kind):
    assert gradescope_export.student_ids(HOSTILE_METADATA[kind]) == {}


@pytest.mark.slow  # a batch of several grades (10-25 s); the unit tests above cover each case
def test_hostile_metadata_and_deep_answers_in_one_batch_still_give_a_gradebook(tmp_path):
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("submission_metadata.yml", HOSTILE_METADATA["a 5,000-digit SID"])
        bundle.writestr("submission_1/answer.py", GOOD)
        bundle.writestr("submission_2/answer.py", DEEP_CELLS["binary chain"])
    code, _, err = batch(archive, "--out", "out", "--tasks", "q", "--device", "cpu", "-q", cwd=tmp_path)
    assert code == 0, err
    rows = read_csv(tmp_path / "out" / "grades.csv")
    assert (rows["submission_1"]["status"], rows["submission_1"]["q"]) == ("graded", "passed")
    assert rows["submission_2"]["status"] in ("graded", "unusable") and rows["submission_2"]["q"] != "passed"


# ----------------------------------------------------------------------- unpredictable grades


def _seeds(out: Path) -> dict[str, str]:
    seeds = {}
    for folder in sorted((out / "submissions").iterdir()):
        record = json.loads((folder / "record.json").read_text(encoding="utf-8"))
        result = json.loads((folder / "result.json").read_text(encoding="utf-8"))
        assert record["seed"] == result["seed"]  # recorded, so the grade can be reproduced
        seeds[folder.name] = record["seed"]
    return seeds


@pytest.mark.slow  # 8-24 s: in CI's slow run, out of the default one (about 15 minutes)
def test_each_grade_draws_its_own_seed_unless_the_operator_fixes_one(tmp_path):
    for student in ("ann", "ben"):
        (tmp_path / "subs" / student).mkdir(parents=True)
        (tmp_path / "subs" / student / "submission.py").write_bytes(GOOD)
    code, _, err = batch("subs", "--out", "drawn", "--jobs", "2", "--tasks", "q", "--device", "cpu", "-q", cwd=tmp_path)
    assert code == 0, err
    drawn = _seeds(tmp_path / "drawn")
    assert sorted(drawn) == ["ann", "ben"] and all(s.isdigit() for s in drawn.values())
    assert drawn["ann"] != drawn["ben"] and "0" not in drawn.values()
    code, _, err = batch(
        "subs", "--out", "fixed", "--jobs", "2", "--tasks", "q", "--device", "cpu", "-q", "--seed", "7", cwd=tmp_path
    )
    assert code == 0, err
    assert _seeds(tmp_path / "fixed") == {"ann": "7", "ben": "7"}


# ------------------------------------------------------------------------------ identities


def test_no_name_inside_an_archive_takes_another_students_id(tmp_path):
    (tmp_path / "alice.py").write_bytes(GOOD)
    (tmp_path / "alice-2.py").write_bytes(GOOD)
    (tmp_path / "张伟.py").write_bytes(GOOD)
    with zipfile.ZipFile(tmp_path / "mallory.zip", "w") as bundle:
        bundle.writestr("alice/answer.py", GOOD)  # claims alice's id
        bundle.writestr("张伟/answer.py", GOOD)
    order = [tmp_path / "mallory.zip", tmp_path / "alice.py", tmp_path / "alice-2.py", tmp_path / "张伟.py"]
    items = inputs.collect(order, tmp_path / "work")
    ids = {item.source.replace(str(tmp_path) + "/", ""): (item.student, item.id_from) for item in items}
    assert ids == {
        "mallory.zip!alice/answer.py": ("alice-3", "name inside archive"),
        "mallory.zip!张伟/answer.py": ("张伟-2", "name inside archive"),
        "alice.py": ("alice", "file name"),
        "alice-2.py": ("alice-2", "file name"),
        "张伟.py": ("张伟", "file name"),
    }
    again = inputs.collect(order, tmp_path / "work")  # stable: a rerun (--resume) finds the same ids
    assert [item.student for item in again] == [item.student for item in items]


@pytest.mark.parametrize(
    "name, expected",
    [
        ("张伟", "张伟"),
        ("José Núñez", "José_Núñez"),
        ("Jose\u0301", "José"),
        ("مريم", "مريم"),
        ("a\u202eb", "a_b"),
        ("../etc", "etc"),
        ("龍" * 100, "龍" * 32),
    ],
)
def test_ids_stay_readable_in_any_script_and_safe(name, expected):
    assert inputs.safe_id(name) == expected


def test_the_gradebook_says_where_each_id_came_from(tmp_path):
    (tmp_path / "subs" / "ann").mkdir(parents=True)
    (tmp_path / "subs" / "ann" / "submission.py").write_text("{ broken", encoding="utf-8")
    with zipfile.ZipFile(tmp_path / "class.zip", "w") as bundle:
        bundle.writestr("ann/x.py", "../")
    code, _, err = batch("subs", "class.zip", "--out", "out", "--tasks", "q", "--device", "cpu", "-q", cwd=tmp_path)
    assert code == 0, err
    rows = read_csv(tmp_path / "out" / "grades.csv")
    assert (rows["ann"]["id_from"], rows["ann"]["submission"]) == ("folder name", "subs/ann/submission.py")
    assert (rows["ann-2"]["id_from"], rows["ann-2"]["submission"]) == ("name inside archive", "class.zip!ann/x.py")


# ------------------------------------------------------------------------------- resuming


@pytest.mark.slow  # 8-24 s: in CI's slow run, out of the default one (about 15 minutes)
def test_resume_regrades_a_timeout_made_under_a_shorter_submission_timeout(tmp_path):
    (tmp_path / "ann.py").write_bytes(GOOD)
    args = ["ann.py", "--out", "out", "--tasks", "q", "--device", "cpu", "-q"]
    code, out, err = batch(*args, "--submission-timeout", "1", cwd=tmp_path)  # too short to even import torch
    assert code == 0 and read_csv(tmp_path / "out" / "grades.csv")["ann"]["status"] == "timeout", err
    code, out, err = batch(*args, "--submission-timeout", "1", "--resume", cwd=tmp_path)
    assert code == 0 and "(0 graded now, 1 reused)" in out, err  # the same limit: the same outcome
    code, out, err = batch(*args, "--submission-timeout", "300", "--resume", cwd=tmp_path)
    assert code == 0 and "(1 graded now, 0 reused)" in out, err
    row = read_csv(tmp_path / "out" / "grades.csv")["ann"]
    assert (row["status"], row["q"]) == ("graded", "passed")


# ------------------------------------------------------------------------ analysis in bounded time


def _notebook_of(cells: int):
    from grader.submission.cells import Cell, Submission

    code = [f"x{n} = {n}\n" for n in range(cells - 1)] + ["def train():\n    for b in data:\n        loss.backward()\n"]
    return Submission(
        Path("big.ipynb"), "notebook", "0" * 64, tuple(Cell(n + 1, text, text) for n, text in enumerate(code))
    )


def test_analysis_finds_the_training_functions_once(monkeypatch):
    from grader.submission import analysis

    calls = []
    real = analysis.trainers
    monkeypatch.setattr(analysis, "trainers", lambda cells: calls.append(1) or real(cells))
    result = analysis.analyse(_notebook_of(50))
    for facts in result.cells:
        result.executable_code(facts)
    assert len(calls) == 1


def test_a_20000_cell_notebook_is_analysed_in_bounded_time():
    from grader.submission import analysis

    started = time.monotonic()
    result = analysis.analyse(_notebook_of(20_000))
    codes = [result.executable_code(facts) for facts in result.cells]
    elapsed = time.monotonic() - started
    assert codes[0] == "x0 = 0\n" and "train" in result._trainers()
    assert elapsed < 60, f"{elapsed:.0f} s for 20,000 cells (was 292 s when it grew with their square)"


# ---------------------------------------------------------------------------- git inputs


def _git(folder: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "s",
        "GIT_AUTHOR_EMAIL": "s@x",
        "GIT_COMMITTER_NAME": "s",
        "GIT_COMMITTER_EMAIL": "s@x",
    }
    subprocess.run(
        ["git", "-c", "protocol.file.allow=always", *args], cwd=folder, env=env, check=True, capture_output=True
    )


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_inputs_run_no_hook_filter_or_submodule_and_follow_no_link(tmp_path, monkeypatch):
    """The repository brings a submodule, an LFS-filtered notebook and a committed link; the
    operator's git config would run hooks, the LFS filter and submodule checkouts."""
    library = tmp_path / "library"
    library.mkdir()
    _git(library, "init", "-q", "-b", "main")
    (library / "helper.py").write_text("x = 1\n")
    _git(library, "add", ".")
    _git(library, "commit", "-q", "-m", "lib")
    repo = tmp_path / "alice-dli"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "06_Assessment.ipynb").write_bytes(GOOD)
    (repo / "link.ipynb").symlink_to("/etc/passwd")
    _git(repo, "submodule", "add", "-q", str(library), "lib")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "v2")
    _git(repo, "tag", "v2")
    (repo / ".gitattributes").write_text("*.ipynb filter=lfs\n")  # added after v2: the branch head uses it
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "lfs")

    marks, hooks = tmp_path / "marks", tmp_path / "hooks"
    marks.mkdir()
    hooks.mkdir()
    for hook in ("post-checkout", "post-merge", "reference-transaction", "post-index-change"):
        (hooks / hook).write_text(f"#!/bin/sh\ntouch {marks}/{hook}\n")
        (hooks / hook).chmod(0o755)
    config = tmp_path / "gitconfig"
    config.write_text(
        f"[core]\n\thooksPath = {hooks}\n[filter \"lfs\"]\n\tsmudge = sh -c 'touch {marks}/lfs; cat'\n"
        f'\trequired = true\n[submodule]\n\trecurse = true\n[protocol "file"]\n\tallow = always\n'
    )
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))

    for ref in ("v2", None):
        found = {item.path.name: item for item in inputs.collect([repo], tmp_path / "work", ref=ref)}
        assert sorted(found) == ["06_Assessment.ipynb", "link.ipynb"] and all(i.problem is None for i in found.values())
        assert found["06_Assessment.ipynb"].path.read_bytes() == GOOD
        link = found["link.ipynb"].path
        assert not link.is_symlink() and link.read_text() == "/etc/passwd"  # the link's text, not the file
        assert list((link.parent / "lib").iterdir()) == []  # the submodule was not fetched
    assert sorted(p.name for p in marks.iterdir()) == []
