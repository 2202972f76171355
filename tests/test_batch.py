"""`dli-grade batch`: inputs, statuses, the gradebook, the summary, resuming, archives and git.

One mixed batch (run once per module through the installed script, unit tasks q and loss
only) backs most assertions; discovery, archives, ids, the CSV and the worker's crash
handling are tested directly without grading.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from grader import __version__
from grader.batch import inputs, worker
from grader.batch.gradebook import Gradebook
from grader.batch.worker import GradeOptions, Outcome

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "examples" / "submission.ipynb"
MODULE = ROOT / "examples" / "submission.py"
SCRIPT = shutil.which("dli-grade") or str(Path(sys.executable).parent / "dli-grade")
TASKS = "q,loss"
GIT = shutil.which("git")


def batch(*args, cwd, timeout=600):
    done = subprocess.run([SCRIPT, "batch", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=timeout)
    return done.returncode, done.stdout, done.stderr


def edited_module(path: Path, old: str, new: str) -> Path:
    """The example module with one exact replacement (which must match exactly once)."""
    text = MODULE.read_text(encoding="utf-8")
    assert text.count(old) == 1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def swapped_q(path: Path) -> Path:
    return edited_module(
        path,
        "    x_t = sqrt_a_bar_t * x_0 + sqrt_one_minus_a_bar_t * noise\n",
        "    x_t = sqrt_one_minus_a_bar_t * x_0 + sqrt_a_bar_t * noise\n",
    )


def make_repo(folder: Path) -> None:
    """A student repository: v1 (tag) holds the correct notebook, the branch head a broken one."""
    folder.mkdir(parents=True)
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "s",
        "GIT_AUTHOR_EMAIL": "s@x",
        "GIT_COMMITTER_NAME": "s",
        "GIT_COMMITTER_EMAIL": "s@x",
    }

    def git(*args):
        subprocess.run(["git", *args], cwd=folder, env=env, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    shutil.copy(NOTEBOOK, folder / "06_Assessment.ipynb")
    (folder / "helper.py").write_text("x = 1\n")
    git("add", ".")
    git("commit", "-q", "-m", "v1")
    git("tag", "v1")
    (folder / "06_Assessment.ipynb").write_text("{ broken")
    git("commit", "-q", "-am", "later")


def read_csv(path: Path) -> dict[str, dict]:
    return {row["student"]: row for row in csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")))}


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """One batch over correct, broken, malformed, duplicate, hostile, zipped and git submissions."""
    base = tmp_path_factory.mktemp("mixed")
    subs = base / "subs"
    for student in ("alice", "bob"):  # duplicates: the same file name and bytes, two students
        (subs / student).mkdir(parents=True)
        shutil.copy(NOTEBOOK, subs / student / "submission.ipynb")
    swapped_q(subs / "dave.py")
    (subs / "carol.ipynb").write_text("{ this is not json", encoding="utf-8")
    loss_head = "def get_loss(model, x_0, t, *model_args):\n"
    edited_module(subs / "erin" / "exits.py", loss_head, loss_head + "    import os; os._exit(0)\n")
    q_head = "def q(x_0, t):\n"
    edited_module(subs / "frank" / "loops.py", q_head, q_head + "    while True:\n        pass\n")
    (subs / "alice" / ".ipynb_checkpoints").mkdir()
    shutil.copy(NOTEBOOK, subs / "alice" / ".ipynb_checkpoints" / "submission-checkpoint.ipynb")
    shutil.copy(MODULE, base / "@SUM(1+1).py")  # a name a spreadsheet would evaluate
    with zipfile.ZipFile(base / "export.zip", "w") as bundle:
        bundle.write(NOTEBOOK, "export/grace/submission.ipynb")
        bundle.write(NOTEBOOK, "export/heidi/submission.ipynb")
        bundle.writestr("../evil.py", "print('escaped')\n")
    make_repo(base / "ivan-dli")
    started = time.monotonic()
    code, out, err = batch(
        "subs",
        "export.zip",
        "ivan-dli",
        "@SUM(1+1).py",
        "--ref",
        "v1",
        "--out",
        "out",
        "--jobs",
        "2",
        "--tasks",
        TASKS,
        "--device",
        "cpu",
        "--timeout",
        "120",
        "--submission-timeout",
        "60",
        cwd=base,
    )
    return {
        "base": base,
        "out": base / "out",
        "code": code,
        "stdout": out,
        "stderr": err,
        "seconds": time.monotonic() - started,
    }


def test_mixed_batch_has_one_row_each_with_the_right_status(mixed):
    assert mixed["code"] == 0, mixed["stderr"]
    rows = read_csv(mixed["out"] / "grades.csv")
    assert set(rows) == {
        "alice",
        "bob",
        "carol",
        "dave",
        "erin",
        "frank",
        "grace",
        "heidi",
        "evil",
        "ivan-dli",
        "SUM_1_1",
    }
    status = {student: row["status"] for student, row in rows.items()}
    assert status == {
        "alice": "graded",
        "bob": "graded",
        "carol": "unusable",
        "dave": "graded",
        "erin": "graded",
        "frank": "timeout",
        "grace": "graded",
        "heidi": "graded",
        "evil": "unusable",
        "ivan-dli": "graded",
        "SUM_1_1": "graded",
    }
    for student in ("alice", "bob", "grace", "heidi", "ivan-dli", "SUM_1_1"):
        row = rows[student]
        assert (row["score"], row["max_score"], row["passed"], row["q"], row["loss"]) == (
            "3.0",
            "3",
            "true",
            "passed",
            "passed",
        )
        assert (row["q_points"], row["loss_points"]) == ("2.0", "1.0")
    dave = rows["dave"]
    assert (dave["q"], dave["loss"], dave["loss_points"], dave["passed"]) == ("failed", "passed", "1.0", "false")
    assert float(dave["q_points"]) < 2 and float(dave["score"]) < 3
    erin = rows["erin"]  # os._exit(0) inside get_loss: the loss task fails, the batch goes on
    assert (erin["q"], erin["loss"], erin["loss_points"], erin["passed"]) == ("passed", "failed", "0.0", "false")
    assert "not valid JSON" in rows["carol"]["message"] and "carol.ipynb" in rows["carol"]["message"]
    assert "/tmp/dli-batch-" not in rows["carol"]["message"]
    assert "'..' path component" in rows["evil"]["message"]
    assert "longer than 60 s" in rows["frank"]["message"]
    assert all(row["grader_version"] == __version__ and row["graded_at"] for row in rows.values())
    assert rows["alice"]["sha256"] == rows["bob"]["sha256"] == rows["grace"]["sha256"]
    assert "v1" in rows["ivan-dli"]["submission"]
    assert not (mixed["base"] / "evil.py").exists() and not (mixed["out"] / "evil.py").exists()


def test_csv_cells_cannot_become_formulas(mixed):
    lines = (mixed["out"] / "grades.csv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    assert header[:7] == ["student", "submission", "sha256", "score", "max_score", "passed", "status"]
    assert header[7:] == ["q", "loss", "q_points", "loss_points", "grader_version", "graded_at", "message", "id_from"]
    rows = read_csv(mixed["out"] / "grades.csv")
    assert rows["SUM_1_1"]["submission"] == "'@SUM(1+1).py"
    for row in rows.values():
        assert not any(str(cell).startswith(("=", "+", "-", "@")) for cell in row.values())


def test_each_submission_has_result_report_and_record(mixed):
    folder = mixed["out"] / "submissions"
    dave = json.loads((folder / "dave" / "result.json").read_text())
    assert dave["schema"] == "dli-grade/result/v1" and dave["submission"] == "subs/dave.py"
    assert [t["id"] for t in dave["tasks"]] == ["q", "loss"] and dave["tasks"][0]["status"] == "failed"
    carol = json.loads((folder / "carol" / "result.json").read_text())
    assert carol["error"]["status"] == "unusable" and carol["tasks"] == []
    page = (folder / "dave" / "report.html").read_text()
    assert "swaps its coefficients" in page and "FAILED" in page
    assert "NOT GRADED (TIMEOUT)" in (folder / "frank" / "report.html").read_text()
    record = json.loads((folder / "alice" / "record.json").read_text())
    assert record["options"]["tasks"] == ["q", "loss"] and record["status"] == "graded"


def test_summary_reports_rates_diagnoses_histogram_and_lookalikes(mixed):
    md = (mixed["out"] / "summary.md").read_text()
    assert "11 submissions: 8 graded, 2 unusable, 1 timed out, 0 crashed. Passed: 6 of 8 graded." in md
    assert "| `q` | 7 | 8 | 88% |" in md
    assert "| `loss` | 7 | 8 | 88% |" in md
    assert "swaps its coefficients" in md
    assert "![score histogram](score_histogram.png)" in md
    assert (mixed["out"] / "score_histogram.png").read_bytes().startswith(b"\x89PNG")
    identical = [line for line in md.splitlines() if line.startswith("- identical")]
    assert any("alice" in line and "bob" in line and "grace" in line for line in identical)
    page = (mixed["out"] / "summary.html").read_text()
    assert 'src="data:image/png;base64,' in page and "http" not in page.replace("https://", "").split("<style>")[0]


def test_progress_lines_and_closing_message(mixed):
    lines = [line for line in mixed["stderr"].splitlines() if line.startswith("dli-grade batch [")]
    assert len(lines) == 10  # one per graded submission (the refused zip member never ran)
    assert lines[-1].startswith("dli-grade batch [############################] 10/10")
    assert "left" in lines[0]
    assert "11 submissions" in mixed["stdout"] and "grades.csv" in mixed["stdout"]


def test_resume_after_a_killed_batch_regrades_only_the_rest(tmp_path):
    subs = tmp_path / "subs"
    for n, student in enumerate(("ann", "ben", "cat")):
        (subs / student).mkdir(parents=True)
        text = MODULE.read_text(encoding="utf-8") + f"\n_variant = {n}\n"  # distinct bytes
        (subs / student / "submission.py").write_text(text, encoding="utf-8")
    args = [SCRIPT, "batch", "subs", "--out", "out", "--tasks", "q", "--device", "cpu", "--jobs", "1", "-q"]
    process = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records = tmp_path / "out" / "submissions"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(records.glob("*/record.json")):
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)  # the harshest interruption: no cleanup at all
    process.wait(timeout=30)
    finished = {
        p.parent.name: (p.stat().st_mtime_ns, json.loads(p.read_text())["graded_at"])
        for p in records.glob("*/record.json")
    }
    assert 1 <= len(finished) < 3
    time.sleep(1.1)  # graded_at has one-second resolution
    done = subprocess.run([*args, "--resume"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"({3 - len(finished)} graded now, {len(finished)} reused)" in done.stdout
    for student, (mtime, graded_at) in finished.items():
        record = records / student / "record.json"
        assert record.stat().st_mtime_ns == mtime and json.loads(record.read_text())["graded_at"] == graded_at
    rows = read_csv(tmp_path / "out" / "grades.csv")
    assert sorted(rows) == ["ann", "ben", "cat"] and all(row["status"] == "graded" for row in rows.values())
    assert all(row["q"] == "passed" for row in rows.values())
    assert not list((tmp_path / "out").rglob(".*.tmp"))


@pytest.mark.slow  # 8-24 s: in CI's slow run, out of the default one (about 15 minutes)
def test_ray_backend_grades_each_submission_and_resumes(tmp_path):
    """Starts a local Ray (about 12 s on 2 cores), grades two submissions on it, then resumes."""
    # The test extra brings ray (pyproject.toml): without it this is a broken install, not a skip.
    import ray  # noqa: F401

    for student in ("ann", "ben"):
        (tmp_path / "subs" / student).mkdir(parents=True)
    shutil.copy(MODULE, tmp_path / "subs" / "ann" / "submission.py")
    swapped_q(tmp_path / "subs" / "ben" / "submission.py")
    args = ["subs", "--out", "out", "--backend", "ray", "--jobs", "2", "--tasks", "q", "--device", "cpu", "-q"]
    code, out, err = batch(*args, cwd=tmp_path)
    assert code == 0, err
    rows = read_csv(tmp_path / "out" / "grades.csv")
    assert (rows["ann"]["status"], rows["ann"]["q"]) == ("graded", "passed")
    assert (rows["ben"]["status"], rows["ben"]["q"]) == ("graded", "failed")
    code, out, err = batch(*args, "--resume", cwd=tmp_path)
    assert code == 0 and "(0 graded now, 2 reused)" in out, err


def test_ray_backend_is_refused_clearly_without_ray(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from grader.batch import backends
    from grader.cli import main

    monkeypatch.setattr(backends, "ray_available", lambda: False)
    result = CliRunner().invoke(main, ["batch", str(MODULE), "--out", str(tmp_path / "out"), "--backend", "ray"])
    assert result.exit_code == 2 and "pip install 'dli-grade[ray]'" in result.output
    assert not (tmp_path / "out").exists()


# -- without grading ----------------------------------------------------------------------------


def test_gradebook_reuses_only_matching_records(tmp_path):
    book = Gradebook(tmp_path)
    options = GradeOptions(("q",), "cpu")
    document = {
        "schema": "dli-grade/result/v1",
        "submission": "x",
        "score": 2.0,
        "max_score": 2,
        "passed": True,
        "tasks": [{"id": "q", "status": "passed", "score": 2.0, "max_score": 2, "message": "correct"}],
    }
    book.save("ann", "subs/ann.py", "a" * 64, Outcome("graded", "", document), options)
    assert book.previous("ann", "a" * 64, options)["score"] == 2.0
    assert book.previous("ann", "b" * 64, options) is None  # other bytes
    assert book.previous("ann", "a" * 64, GradeOptions(("q",), "cpu", seed=1)) is None  # other options
    book.save("ann", "subs/ann.py", "a" * 64, Outcome("crashed", "boom"), options)
    assert book.previous("ann", "a" * 64, options) is None  # a crash is always retried
    record = json.loads((tmp_path / "submissions" / "ann" / "record.json").read_text())
    record["grader_version"] = "0.0.0"
    (tmp_path / "submissions" / "ann" / "record.json").write_text(json.dumps(record))
    assert book.previous("ann", "a" * 64, options) is None  # another grader version


def test_csv_escapes_every_student_cell(tmp_path):
    book = Gradebook(tmp_path)
    record = {
        "student": "-x",
        "source": "=cmd|' /C calc'!A0",
        "sha256": "",
        "status": "unusable",
        "score": 0.0,
        "max_score": None,
        "passed": False,
        "tasks": {},
        "message": "+1\nsecond line",
        "graded_at": "t",
        "grader_version": "v",
    }
    path = book.write_csv([record], ["q"])
    row = next(csv.DictReader(path.open()))
    assert row["student"] == "'-x" and row["submission"].startswith("'=cmd") and row["message"] == "'+1 second line"


def test_ids_are_safe_and_unique():
    items = [inputs.Item(name, name, None) for name in ("alice", "Alice", "alice", "../x", ".hidden", "", "a b/c")]
    ids = [item.student for item in inputs.assign_ids(items)]
    assert ids == ["alice", "Alice-2", "alice-3", "x", "hidden", "submission", "a_b_c"]
    assert inputs._lms_name("smith_LATE_12345_678_06_Assessment") == "smith"
    assert inputs._lms_name("Alice Smith_42_assignsubmission_file_") == "Alice Smith"


# A Gradescope export's metadata as Gradescope (Ruby) writes it: symbol keys, a quoted SID, a
# group of two, a Ruby-tagged score, a submitter known only by email, and one without any id.
GRADESCOPE_EXPORT_METADATA = """\
submission_111:
  :submitters:
  - :name: Ann Lee
    :sid: '100'
    :email: ann@example.edu
  :created_at: 2026-11-27 14:22:32.365935000 -08:00
  :score: !ruby/object:BigDecimal 18:0.5e2
submission_222:
  :submitters:
  - :name: Bo Chen
    :sid: '200'
  - :name: Cy Diaz
    :sid: '201'
submission_333:
  :submitters:
  - :name: Di Eng
    :email: di@example.edu
submission_444:
  :submitters:
  - :name:
"""


def _gradescope_export(folder: Path) -> list[str]:
    """An unpacked export: five submission folders, the metadata naming four of them."""
    names = ["submission_111", "submission_222", "submission_333", "submission_444", "submission_555"]
    for name in names:
        (folder / name).mkdir(parents=True)
        shutil.copy(MODULE, folder / name / "answer.py")
    (folder / "submission_metadata.yml").write_text(GRADESCOPE_EXPORT_METADATA)
    return names


def test_gradescope_export_metadata_gives_student_ids(tmp_path):
    _gradescope_export(tmp_path / "export")
    expected = ["100", "200_201", "di_example.edu", "submission_444", "submission_555"]  # '+', '@' made file-safe
    items = inputs.collect([tmp_path / "export"], tmp_path / "work")
    assert [item.student for item in items] == expected
    archive = tmp_path / "export.zip"  # as downloaded: everything inside one wrapping folder
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted((tmp_path / "export").rglob("*")):
            if path.is_file():
                bundle.write(path, f"assignment_9_export/{path.relative_to(tmp_path / 'export').as_posix()}")
    items = inputs.collect([archive], tmp_path / "work")
    assert [item.student for item in items] == expected
    assert items[0].source.endswith("!submission_111/answer.py")


def test_gradescope_export_metadata_that_is_odd_leaves_folder_names(tmp_path):
    from grader.batch import gradescope_export

    for text in (
        "",
        "- a list\n",
        "submission_1: [1, 2]\n",
        "key: {unclosed",
        "a: &x [*x]\n",
        "!!python/object:os.system x\n",
    ):
        assert gradescope_export.student_ids(text) == {}, text
    names = _gradescope_export(tmp_path / "export")
    (tmp_path / "export" / "submission_metadata.yml").write_text("{ not yaml")
    assert [item.student for item in inputs.collect([tmp_path / "export"], tmp_path / "work")] == names


def test_archive_members_that_escape_are_refused(tmp_path):
    archive = tmp_path / "lms.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.write(NOTEBOOK, "alice/submission.ipynb")
        bundle.writestr("../evil.py", "x = 1\n")
        bundle.writestr("/abs.py", "x = 1\n")
        bundle.writestr("bob/../../up.py", "x = 1\n")
        link = zipfile.ZipInfo("link.ipynb")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        bundle.writestr(link, "/etc/passwd")
        bundle.writestr("__MACOSX/alice/._submission.ipynb", "junk")
        bundle.writestr("alice/.ipynb_checkpoints/submission-checkpoint.ipynb", "{}")
    items = inputs.collect([archive], tmp_path / "work")
    by_id = {item.student: item for item in items}
    assert set(by_id) == {"alice", "evil", "abs", "up", "link"}
    assert by_id["alice"].path.read_bytes() == NOTEBOOK.read_bytes() and by_id["alice"].problem is None
    assert "'..' path component" in by_id["evil"].problem and "'..' path component" in by_id["up"].problem
    assert "absolute path" in by_id["abs"].problem and "symbolic link" in by_id["link"].problem
    assert all(str(archive) in item.problem for item in items if item.problem)
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p != archive]
    assert written == [by_id["alice"].path]  # nothing else, and nothing outside the work folder
    assert not (tmp_path / "evil.py").exists() and not Path("/abs.py").exists()


def test_archive_extraction_is_capped(tmp_path):
    archive = tmp_path / "big.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("a/one.py", "x = 1\n")
        # incompressible text, so the per-member ratio check passes and the archive's cap must stop it
        bundle.writestr("b/big.py", "# " + base64.b64encode(os.urandom(3 * 2**20)).decode())
    items = inputs.collect([archive], tmp_path / "work", max_extract_bytes=2**20)
    by_id = {item.student: item for item in items}
    assert by_id["a"].problem is None and "exceed 1 MiB" in by_id["b"].problem
    assert sum(p.stat().st_size for p in (tmp_path / "work").rglob("*") if p.is_file()) < 2**20


def test_a_file_that_is_not_a_zip_is_one_unusable_row(tmp_path):
    fake = tmp_path / "class.zip"
    fake.write_text("not a zip")
    [item] = inputs.collect([fake], tmp_path / "work")
    assert item.student == "class" and "not a readable zip archive" in item.problem


def test_missing_input_is_an_error_naming_it(tmp_path):
    from grader.core.errors import UnusableInput

    with pytest.raises(UnusableInput, match=r"nope\.ipynb: no such file"):
        inputs.collect([tmp_path / "nope.ipynb"], tmp_path / "work")


def test_links_inside_folders_are_not_followed(tmp_path):
    (tmp_path / "subs" / "eve").mkdir(parents=True)
    (tmp_path / "subs" / "eve" / "submission.ipynb").symlink_to("/etc/passwd")
    [item] = inputs.collect([tmp_path / "subs"], tmp_path / "work")
    assert item.student == "eve" and item.path is None and "symbolic link" in item.problem


@pytest.mark.skipif(GIT is None, reason="git is not installed")
def test_git_inputs_clone_at_a_ref_and_find_the_notebook(tmp_path):
    make_repo(tmp_path / "alice-dli")
    [tagged] = inputs.collect([tmp_path / "alice-dli"], tmp_path / "work", ref="v1")
    assert tagged.student == "alice-dli" and tagged.problem is None
    assert tagged.path.read_bytes() == NOTEBOOK.read_bytes() and "@v1" in tagged.source
    [head] = inputs.collect([tmp_path / "alice-dli"], tmp_path / "work")
    assert head.path.read_text() == "{ broken"  # the branch head
    [py] = inputs.collect([tmp_path / "alice-dli"], tmp_path / "work", notebook="helper.py")
    assert py.path.name == "helper.py"
    [missing] = inputs.collect([tmp_path / "alice-dli"], tmp_path / "work", notebook="*.txt")
    assert "no file matching '*.txt'" in missing.problem
    [bad_ref] = inputs.collect([tmp_path / "alice-dli"], tmp_path / "work", ref="v9")
    assert "no branch, tag or commit named 'v9'" in bad_ref.problem
    [hostile] = inputs.collect([tmp_path / "alice-dli"], tmp_path / "work", ref="--upload-pack=touch x")
    assert "may not start with '-'" in hostile.problem


# -- the worker's view of a grade process that misbehaves ---------------------------------------


@pytest.mark.parametrize(
    "script, status, phrase",
    [
        ("print('garbage')", "crashed", "exit code 0"),
        ("import os; os.kill(os.getpid(), 9)", "crashed", "killed by signal 9"),
        ("import sys; print('dli-grade: error: x.py: bad', file=sys.stderr); sys.exit(2)", "unusable", "x.py: bad"),
        ("import time; time.sleep(30)", "timeout", "longer than 1 s"),
    ],
)
def test_worker_turns_every_ending_into_one_status(monkeypatch, script, status, phrase):
    monkeypatch.setattr(worker, "command", lambda *args: [sys.executable, "-c", script])
    started = time.monotonic()
    outcome = worker.grade_one("x.py", b"x = 1\n", GradeOptions(("q",)), wall_timeout=1.0)
    assert outcome.status == status and phrase in outcome.message and outcome.document is None
    assert time.monotonic() - started < 20


def test_worker_gives_each_grade_its_share_of_threads():
    env = worker.environment(3)
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "3"
    assert worker.environment(0)["OMP_NUM_THREADS"] == "1"
