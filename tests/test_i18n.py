"""Feedback in the course's languages: the catalogs, the choice of language, and grades read in Chinese.

English is the source text itself (grader/core/i18n.py); zh-CN comes from grader/core/locale/zh_CN/LC_MESSAGES/.
The catalog checks use Babel (the test extra); the grader itself only uses the standard library's gettext.
"""

from __future__ import annotations

import json
import re
import string
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader.core import i18n
from grader.core.i18n import UnknownLanguage, resolve, use_language

babel = pytest.importorskip("babel", reason="the catalog checks need Babel: pip install -e '.[test]'")
from grader.core import i18n_catalog  # noqa: E402 (needs babel)

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(autouse=True)
def english_afterwards():
    """The CLI sets the language for the rest of its process; give the next test English back."""
    yield
    i18n.set_language("en")


EXAMPLE = str(Path(__file__).resolve().parent.parent / "examples" / "submission.py")
CJK = re.compile(r"[\u4e00-\u9fff]")
ENGLISH_WORDS = re.compile(r"[A-Za-z][a-z']+(?: [A-Za-z][a-z']+){2,}")  # three English words in a row


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def ids_and_strings(message) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A catalog entry's msgid (and plural) and its translations, as tuples either way."""
    ids = message.id if isinstance(message.id, tuple) else (message.id,)
    strings = message.string if isinstance(message.string, tuple) else (message.string,)
    return ids, strings


def zh_catalog():
    return i18n_catalog.read("zh-CN")


def english_fragments() -> set[str]:
    """The English runs of three words or more in the catalog's msgids that no translation keeps
    (code such as `x_t = sqrt_a_bar_t * x_0` stays as it is in both languages)."""
    catalog = zh_catalog()
    translations = " ".join(
        s for m in catalog if m.id for s in (m.string if isinstance(m.string, tuple) else (m.string,))
    )
    fragments = set()
    for message in catalog:
        for msgid in message.id if isinstance(message.id, tuple) else (message.id,):
            for literal, *_ in string.Formatter().parse(msgid or ""):
                fragments.update(f for f in ENGLISH_WORDS.findall(literal) if f not in translations)
    return fragments


def assert_reads_in_chinese(text: str, fragments: set[str]) -> None:
    """No English sentence of the catalog left in `text` (student-derived text may still be English)."""
    left = sorted(fragment for fragment in fragments if fragment in text)
    assert not left, f"untranslated {left[:5]} in: {text[:400]}"


# -- the catalogs ---------------------------------------------------------------------------------


def test_english_is_the_source_text():
    with use_language("en"):
        assert i18n._("correct") == "correct"
        assert i18n.ngettext("one {tasks} task", "{tasks} tasks", 2) == "{tasks} tasks"
    with use_language("zh-CN"):
        assert i18n._("correct") == "正确"  # the catalog is really used
        assert i18n._("a string no catalog holds") == "a string no catalog holds"


def test_every_extracted_message_is_translated_and_none_is_fuzzy_or_stale():
    template = i18n_catalog.extract()
    catalog = zh_catalog()
    assert len(template) > 200  # the tasks', the reports' and the grading run's strings are all marked
    assert i18n_catalog.untranslated(catalog, template) == []
    extracted = {m.id for m in template if m.id}
    stale = [m.id for m in catalog if m.id and m.id not in extracted]
    assert stale == [], "entries the code no longer uses: run python -m grader.core.i18n_catalog"
    assert not catalog.fuzzy


def test_the_shipped_mo_is_compiled_from_the_po():
    shipped = i18n_catalog.po_path("zh-CN").with_suffix(".mo").read_bytes()
    assert shipped == i18n_catalog.compiled(zh_catalog()), "recompile: python -m grader.core.i18n_catalog"


def test_every_message_renders_in_both_languages_with_the_same_placeholders():
    catalog = zh_catalog()
    rendered = 0
    for message in catalog:
        if not message.id:
            continue
        ids, strings = ids_and_strings(message)
        names = placeholders(ids[0])
        values = {name: f"<{name}>" for name in names}
        for text in (*ids, *strings):
            assert placeholders(text) == names, (message.id, text)
            text.format(**values)  # a stray brace in a translation would raise here
        for lang, expected in (("en", ids[0]), ("zh-CN", strings[0])):
            with use_language(lang):
                got = i18n.ngettext(ids[0], ids[1], 1) if len(ids) > 1 else i18n._(ids[0])
            assert got.format(**values) == expected.format(**values)
        assert CJK.search(strings[0]) or not ENGLISH_WORDS.search(strings[0]), message.id  # code stays code
        rendered += 1
    assert rendered == len([m for m in catalog if m.id])


# -- choosing the language ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "asked, environ, expected",
    [
        (None, {}, "en"),
        ("zh-CN", {}, "zh-CN"),
        ("zh_CN", {}, "zh-CN"),
        ("en", {"LANG": "zh_CN.UTF-8"}, "en"),  # --lang wins over the locale
        (None, {"LANG": "zh_CN.UTF-8"}, "zh-CN"),
        (None, {"LC_MESSAGES": "zh_TW"}, "zh-CN"),
        (None, {"LC_ALL": "zh_CN.UTF-8", "LANG": "en_US.UTF-8"}, "zh-CN"),
        (None, {"LANGUAGE": "en_GB:zh_CN", "LANG": "zh_CN.UTF-8"}, "en"),  # LANGUAGE first, its first entry
        (None, {"LANGUAGE": "zh_CN:en", "LC_ALL": "C"}, "zh-CN"),
        (None, {"LANG": "fr_FR.UTF-8"}, "en"),  # a locale we have no catalog for: English, never an error
    ],
)
def test_lang_and_the_locale_variables_choose_the_language(asked, environ, expected):
    assert resolve(asked, environ) == expected


def test_an_unknown_lang_is_an_error():
    with pytest.raises(UnknownLanguage, match="choose from en, zh-CN"):
        resolve("fr")


@pytest.mark.parametrize("command", ["grade", "batch"])
def test_an_unknown_lang_exits_2_naming_the_choices(tmp_path, command):
    from grader.cli import main

    args = [command, EXAMPLE, "--lang", "klingon"]
    if command == "batch":
        args += ["--out", str(tmp_path / "book")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert "unknown language 'klingon'; choose from en, zh-CN" in result.output
    assert not (tmp_path / "book").exists()


def test_the_batch_passes_the_language_to_every_grade_and_keys_resumes_on_it():
    from grader.batch.worker import GradeOptions, command

    english, chinese = GradeOptions(("q",)), GradeOptions(("q",), lang="zh-CN")
    assert command(Path("s.py"), Path("r.json"), Path("a"), chinese)[-2:] == ["--lang", "zh-CN"]
    assert "lang" not in english.key()  # results graded before languages existed are still reused
    assert english.key() != chinese.key()  # a batch resumed in another language regrades


# -- grades read in Chinese -----------------------------------------------------------------------


def _unit_tasks():
    import tasks

    return tuple(tasks.UNIT_TASK_IDS)


def assert_task_reads_in_chinese(task, fragments: set[str]) -> None:
    """A task's message and hints: no English sentence of the catalog, and a failure's message in Chinese."""
    for text in [task.message, *task.hints]:
        assert_reads_in_chinese(text, fragments)
    if task.status != "passed":
        assert CJK.search(task.message), task.message


@pytest.fixture(scope="module")
def example_in_chinese():
    from grader.grading.runner import grade

    return grade(EXAMPLE, _unit_tasks(), device="cpu", lang="zh-CN")


def test_the_example_reads_in_chinese_in_the_text_report_and_keeps_its_machine_fields(example_in_chinese):
    from grader.report.text import render_json, render_text

    result, fragments = example_in_chinese, english_fragments()
    assert [task.status for task in result.tasks] == ["passed"] * len(result.tasks)  # same verdict as in English
    assert result.score == result.max_score == 22
    with use_language("zh-CN"):
        text = render_text(result)
    assert_reads_in_chinese(text, fragments)
    assert "得分 22/22：通过" in text and "前向扩散 q(x_0, t)" in text and "  通过 " in text
    assert "Score" not in text and "PASS " not in text
    document = json.loads(render_json(result))  # machine fields stay as they are; titles stay English
    assert {task["status"] for task in document["tasks"]} == {"passed"}
    assert [task["id"] for task in document["tasks"]] == list(_unit_tasks())
    assert document["tasks"][1]["title"] == "Forward diffusion q(x_0, t)"
    assert all(task["message"].startswith("正确") for task in document["tasks"])  # human text: translated
    with use_language("en"):  # the same result drawn in English: the chrome follows the reader's language
        assert "Score 22/22: PASSED" in render_text(result)


def test_the_example_html_report_reads_in_chinese(example_in_chinese):
    from grader.report import html

    with use_language("zh-CN"):
        page = html.render(example_in_chinese.to_json())
    assert '<html lang="zh-CN">' in page
    for label in ("状态", "任务", "分数", "消息", "位置", "通过", "单元格从 Notebook 顶部开始计数"):
        assert label in page
    visible = re.sub(r"<style>.*?</style>|<[^>]+>", " ", page, flags=re.S)
    assert_reads_in_chinese(visible, english_fragments())
    assert ">status<" not in page and "PASSED" not in page


def test_a_mutant_fails_the_same_task_in_chinese_with_a_chinese_diagnosis_and_hint(tmp_path):
    from corpus import mutants as corpus  # tests/ is on sys.path
    from grader.grading.runner import grade

    case = next(case for case in corpus.MUTANTS if case.name == "schedule_missing_sqrt")
    path = corpus.write_case(case, tmp_path)
    result = grade(str(path), ("schedule", "q"), device="cpu", lang="zh-CN")
    schedule, q = result.tasks
    assert (schedule.status, q.status) == ("failed", "passed")  # the verdict does not depend on the language
    assert "sqrt_a_bar 等于 a_bar：缺少平方根" in schedule.message
    assert q.message.startswith("正确（") and "基于你的调度张量，q 是正确的" in q.message
    fragments = english_fragments()
    for task in result.tasks:
        assert_task_reads_in_chinese(task, fragments)
    assert i18n.current() == "en"  # the language was set for that grade only


@pytest.mark.parametrize("variable", ["LANG", "LC_ALL", "LANGUAGE"])
def test_the_locale_chooses_chinese_and_lang_overrides_it(variable):
    from grader.cli import main

    args = [EXAMPLE, "--tasks", "schedule", "--device", "cpu", "-q"]
    environment = {"LANG": None, "LC_ALL": None, "LC_MESSAGES": None, "LANGUAGE": None, variable: "zh_CN.UTF-8"}
    chinese = CliRunner().invoke(main, args, env=environment)
    assert chinese.exit_code == 0, chinese.output
    assert "得分 5/5：通过" in chinese.output and "DDPM 调度" in chinese.output
    english = CliRunner().invoke(main, [*args, "--lang", "en"], env=environment)
    assert english.exit_code == 0, english.output
    assert "Score 5/5: PASSED" in english.output


def no_english_sentence(text: str) -> list[str]:
    """Every run of three English words or more in `text`: a sentence nobody translated, whether or not the
    catalog holds it (the texts checked with this quote no student-written words)."""
    return ENGLISH_WORDS.findall(text)


def test_a_failing_grade_reads_in_chinese_down_to_the_sandbox_the_progress_and_the_ci_formats(tmp_path):
    """q ends the child with sys.exit, reverse_q with os._exit(3): the sandbox's and the grading run's words
    about it, the progress lines and the JUnit and GitHub outputs are all Chinese."""
    import io

    from corpus import mutants as corpus  # tests/ is on sys.path
    from grader.grading.runner import grade
    from grader.report import github, junit
    from grader.report.progress import ProgressReporter
    from grader.report.text import render_text

    hooks = (
        ("def q(x_0, t):\n", "def q(x_0, t):\n    import sys\n    sys.exit(0)\n"),
        ("def reverse_q(x_t, t, e_t):\n", "def reverse_q(x_t, t, e_t):\n    import os\n    os._exit(3)\n"),
    )
    path = corpus.write_case(corpus.Case("exits", edits=hooks), tmp_path)
    stream = io.StringIO()
    result = grade(str(path), ("q", "reverse_q"), device="cpu", lang="zh-CN", progress=ProgressReporter(stream=stream))
    q, reverse_q = result.tasks
    assert (q.status, reverse_q.status) == ("failed", "failed")
    assert q.message == "检查 q 时，学生代码调用了 sys.exit(0)", q.message
    assert reverse_q.message == "检查 reverse_q 时，学生代码结束了进程（退出码 3）", reverse_q.message
    assert "dli-grade: 正在启动学生代码" in stream.getvalue() and "dli-grade: 正在检查 reverse_q" in stream.getvalue()
    with use_language("zh-CN"):
        document = result.to_json()
        outputs = {
            "progress": stream.getvalue(),
            "text": render_text(result),
            "junit": junit.render(document),
            "annotations": "\n".join(github.annotation_lines(document)),
            "summary": github.summary_markdown(document),
        }
    assert "提示：" in outputs["junit"] and "分：反向扩散步骤" in outputs["junit"]
    assert "title=q (单元格 " in outputs["annotations"] and "得分 0/5：未通过" in outputs["annotations"]
    for name, text in outputs.items():
        assert no_english_sentence(text) == [], (name, text)


def test_progress_phases_are_shown_in_chinese_and_a_phase_the_child_made_up_as_sent():
    import io

    from grader.report.progress import ProgressReporter

    stream = io.StringIO()
    with use_language("zh-CN"):
        progress = ProgressReporter(stream=stream)
        progress(("generation", "official sample", 1, 10))
        progress(("generation", "correct", 1, 10))  # a catalog msgid, but no phase of ours: never translated
        progress.finish()
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("dli-grade: generation: 官方样本") and "official" not in lines[0], lines
    assert lines[1].startswith("dli-grade: generation: correct"), lines


@pytest.mark.parametrize(
    "name, content, says",
    [
        ("notes.txt", "x = 1\n", "应为 .ipynb Notebook 或 .py 模块，实际为 .txt"),
        ("empty.py", "", "文件为空"),
        ("list.ipynb", "[]", "不是 Jupyter Notebook（JSON 是数组，不是对象）"),
        ("old.ipynb", '{"nbformat": 3, "cells": []}', "这是 nbformat 3 的 Notebook；只支持 nbformat 4"),
    ],
)
def test_an_unusable_submission_is_refused_in_chinese_naming_the_file(tmp_path, name, content, says):
    from grader.cli import main

    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    for output_format in ("text", "github"):
        result = CliRunner().invoke(main, [str(path), "--lang", "zh-CN", "--format", output_format])
        assert result.exit_code == 2, result.output
        assert f"dli-grade: 错误：{path}：" in result.output and says in result.output, result.output
        assert no_english_sentence(result.output) == [], result.output
    assert "title=dli-grade：提交 unusable" in result.output  # the status word stays the machine's


def test_a_bad_setting_is_refused_in_chinese(monkeypatch):
    from grader.cli import main

    monkeypatch.setenv("DLI_GRADE_GPU_FRACTION", "lots")
    result = CliRunner().invoke(main, [EXAMPLE, "--tasks", "schedule", "--device", "cpu", "--lang", "zh-CN", "-q"])
    assert result.exit_code == 2, result.output
    assert "dli-grade: 错误：DLI_GRADE_GPU_FRACTION='lots' 不是数字" in result.output, result.output
    assert no_english_sentence(result.output) == [], result.output


# -- dli_grade.check in the notebook: the language goes to the grader it runs ---------------------------


@pytest.fixture
def kernel_that_ran_the_schedule(monkeypatch):
    """A stand-in for the Jupyter kernel (its history: the imports and the example's schedule cell, then the
    cell calling the check); everything after it, the CLI grade and the text renderer, runs for real."""
    from types import SimpleNamespace

    from test_notebook_check import example_cell  # tests/ is on sys.path

    import dli_grade

    cells = ["", "import torch\ndevice = torch.device('cpu')", example_cell("a_bar = torch.cumprod(a, dim=0)"), "check"]
    history = SimpleNamespace(input_hist_raw=cells)
    shell = SimpleNamespace(history_manager=history, execution_count=3, transform_cell=lambda source: source)
    monkeypatch.setattr(dli_grade, "_kernel", lambda: shell)
    for variable in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(variable, raising=False)
    return dli_grade


def assert_checked_in_chinese(result) -> None:
    assert result.passed and [task["id"] for task in result.tasks] == ["schedule"]
    assert result.tasks[0]["message"] == "正确" and result.tasks[0]["status"] == "passed"  # machine field as is
    assert "得分 5/5：通过" in result.text and "DDPM 调度" in result.text, result.text
    assert no_english_sentence(result.text) == [], result.text
    assert '<html lang="zh-CN">' in result.page


def test_dli_grade_check_honours_lang(kernel_that_ran_the_schedule, monkeypatch):
    monkeypatch.setenv("LANG", "en_US.UTF-8")  # the kernel's locale says English; lang= wins
    assert_checked_in_chinese(kernel_that_ran_the_schedule.check("schedule", lang="zh-CN"))


def test_dli_grade_check_follows_the_kernels_locale_as_the_cli_does(kernel_that_ran_the_schedule, monkeypatch):
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")  # the text report is rendered in its own process: it reads it too
    assert_checked_in_chinese(kernel_that_ran_the_schedule.check("schedule"))


# -- the class summary of a batch -----------------------------------------------------------------


def test_the_class_summary_reads_in_chinese():
    from collections import Counter

    from grader.batch import summary

    stats = {
        "total": 3,
        "by_status": {"graded": 2, "unusable": 1, "timeout": 0, "crashed": 0},
        "passed": 1,
        "roster": [
            {"student": "ann", "status": "graded", "passed": True, "score": 22.0, "max_score": 22},
            {"student": "bo", "status": "unusable", "passed": False, "score": None, "max_score": None},
        ],
        "per_task": [
            {"task": "q", "graded": 2, "passed": 1, "rate": 0.5},
            {"task": "loss", "graded": 0, "passed": 0, "rate": None},
        ],
        "diagnoses": [{"where": "q", "count": 2, "message": "q 把两个系数用反了", "students": ["ann", "cy"]}],
        "identical": [[{"student": "ann", "score": 3}, {"student": "cy", "score": 4}]],
        "renamed": [],
        "accuracies": Counter({0.96: 2}),
        "scores": [22.0],
        "max_score": 22,
    }
    with use_language("zh-CN"):
        markdown, page = summary.markdown(stats, True), summary.html_page(stats, b"png")
    fragments = english_fragments()
    assert_reads_in_chinese(markdown, fragments)
    assert_reads_in_chinese(re.sub(r"<style>.*?</style>|<[^>]+>", " ", page, flags=re.S), fragments)
    assert "共 3 份提交：已评分 2 份" in markdown and "| 学员 | 得分 | 状态 | 报告 |" in markdown
    assert "| ann | 22/22 | 通过 |" in markdown and "| bo | - | unusable |" in markdown  # the batch's status word
    assert "已评分的 2 份中通过 <strong>1</strong> 份" in page and '<html lang="zh-CN">' in page
    assert "相同，2 份提交" in page and "batch summary" not in page


# -- generation's messages, through its judge (a generation grade takes minutes) ------------------


def test_generation_failures_and_hints_read_in_chinese(tmp_path):
    from test_generation import _digits, _failing_official  # tests/ is on sys.path

    from tasks import generation

    def judge(official, **info):
        data = {"official": official, "grader": official[::5]}
        info = {"stage": "done", "profile": "transplant", "w": 1.0, "timings": {}, **info}
        return generation.judge(info, data, lambda name: None, 0, artifacts_dir=tmp_path, stem="alice")

    weights = {"missing": ["down0.conv"], "unexpected": [], "wrong_shape": []}
    with use_language("zh-CN"):
        verdicts = [
            judge(_failing_official(), w=0.0, effective_w=0.0, failed_before=["q", "reverse_q"]),
            judge(_failing_official(), w=0.0, effective_w=-1.0),
            judge(_digits("test", 5), w=None, narrow={"build_error": "TypeError: down_chs"}),
            judge(_digits("test", 5), narrow={"error": {"line": 7, "message": "NameError: x"}}),
            generation.judge(
                {"stage": "weights", "problem": weights, "profile": "transplant", "w": 1.0}, {}, lambda name: None, 0
            ),
            generation.judge(
                {"stage": "training", "problem": {"line": 3, "error": "ValueError: y"}, "profile": "train", "w": 1.0},
                {},
                lambda name: None,
                0,
            ),
        ]
    fragments = english_fragments()
    assert all(not verdict.passed for verdict in verdicts)  # as in English (tests/test_generation.py)
    texts = [text for verdict in verdicts for text in [*verdict.failures, *verdict.hints, *verdict.notes]]
    for text in texts:
        assert_reads_in_chinese(text, fragments)
        assert CJK.search(text), text
    joined = "\n".join(texts)
    assert "官方检查：50 个数字中识别出 40 个" in joined and "可能的原因：上面的 reverse_q 任务未通过" in joined
    assert "参考 U-Net 权重无法加载到你的模型中：缺少 ['down0.conv']" in joined
    assert "TypeError: down_chs" in joined and "NameError: x" in joined  # student-derived text stays as it is


def test_the_generation_report_names_its_profile_and_larger_sample_in_chinese(tmp_path):
    """The profile's reason and the larger sample's plan are written in the grade's language (they were English
    text, outside the catalog, so only a look for any English sentence finds them); the plan's state stays a
    machine field."""
    from test_generation import _digits  # tests/ is on sys.path

    from grader.grading.result import GradeResult, TaskResult
    from grader.report.text import render_text
    from tasks import generation

    drawn = _digits("test", 5)  # moved two pixels: recognised, and no near copies of MNIST
    with use_language("zh-CN"):
        options = generation.choose_options("cpu", stem="alice", artifacts_dir=tmp_path)
        plan = generation._larger_sample_plan(_digits("test", 5, moved=False), extra=5, when="near_bar")
        info = {"stage": "done", "profile": options.profile, "profile_reason": options.profile_reason}
        info.update(w=1.0, timings={}, larger_sample=plan)
        data = {"official": drawn, "grader": drawn[::5]}
        verdict = generation.judge(info, data, lambda name: None, 0, artifacts_dir=tmp_path, stem="alice")
        message = verdict.message(i18n._("correct"))
        task = TaskResult(
            generation.ID,
            generation.TITLE,
            verdict.earned,
            generation.POINTS,
            "passed",
            message,
            details=verdict.details,
        )
        text = render_text(GradeResult("alice.py", "0" * 64, "module", "cpu", [task]))
    assert verdict.passed and options.profile == "transplant" and plan["state"] == "not_drawn"
    assert "自动：没有可用的 CUDA 设备，因此将参考权重加载到学员的模型中" in text
    assert "更大样本未抽取：50 个中识别出 50 个，离 48 个的及格线较远" in text
    assert ENGLISH_WORDS.findall(text) == [], text


# -- every corpus case, graded in Chinese (minutes: slow) -----------------------------------------


@pytest.mark.slow
def test_every_corpus_case_reads_in_chinese_with_the_same_verdict(tmp_path):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from corpus import mutants as corpus
    from grader.grading.runner import grade

    fragments = english_fragments()
    paths = {case.name: corpus.write_case(case, tmp_path) for case in corpus.CASES}
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {
            case.name: pool.submit(
                grade, str(paths[case.name]), task_ids=_unit_tasks(), timeout=case.timeout, device="cpu", lang="zh-CN"
            )
            for case in corpus.CASES
        }
        for case in corpus.CASES:
            result = futures[case.name].result()
            for task in result.tasks:
                assert task.status == ("failed" if task.id in case.failed else "passed"), (case.name, task)
                assert_task_reads_in_chinese(task, fragments)


# -- the batch's own words: refused archive members, git errors, the operator's summary line ------

QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")  # values quoted as they are: member names, git's own words


def _corrupt_member(path: Path, name: str) -> None:
    """Flip a byte of a stored member's data: its CRC no longer matches (zipfile raises BadZipFile)."""
    import zipfile

    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as bundle:
        info = bundle.getinfo(name)
    start = info.header_offset + 30 + int.from_bytes(data[info.header_offset + 26 : info.header_offset + 28], "little")
    start += int.from_bytes(data[info.header_offset + 28 : info.header_offset + 30], "little")
    data[start] ^= 0xFF
    path.write_bytes(bytes(data))


def _refusals_only_archive(path: Path) -> Path:
    """Every kind of member the archive refuses before grading, and nothing to grade (no grade runs)."""
    import zipfile

    from test_attacks_batch import _mark_encrypted, _symlink

    with zipfile.ZipFile(path, "w") as bundle:
        _symlink(bundle, "link/answer.py", "/etc/passwd")
        bundle.writestr("/abs.py", "x = 1\n")
        bundle.writestr("../up.py", "x = 1\n")
        bundle.writestr("deep/" * 40 + "answer.py", "x = 1\n")
        bundle.writestr(("long" * 75) + "/answer.py", "x = 1\n")
        bundle.writestr("locked/answer.py", b"\x00" * 64)
        bundle.writestr(zipfile.ZipInfo("bomb/answer.py"), "#" * (4 * 2**20), compress_type=zipfile.ZIP_DEFLATED)
        bundle.writestr("corrupt/answer.py", "x = 1\n" * 10)
    _mark_encrypted(path, "locked/answer.py")
    _corrupt_member(path, "corrupt/answer.py")
    return path


def test_every_refused_archive_member_reads_in_chinese(tmp_path):
    """The reason of each hostile member (the attack corpus of tests/test_attacks_batch.py and a corrupt one)."""
    from test_attacks_batch import HOSTILE_MEMBERS, hostile_archive

    from grader.batch import inputs

    hostile, refused = hostile_archive(tmp_path / "class.zip"), _refusals_only_archive(tmp_path / "more.zip")
    with use_language("zh-CN"):
        problems = {item.source: item.problem for item in inputs.collect([hostile, refused], tmp_path / "work")}
    members = [f"{hostile}!{member}" for member in HOSTILE_MEMBERS] + [f"{refused}!corrupt/answer.py"]
    for source in members:
        problem = problems[source]
        assert CJK.search(problem) and not no_english_sentence(QUOTED.sub("", problem)), problem
    assert "需要的文件夹与另一成员的文件同名" in problems[f"{hostile}!clash.py/inner.py"]
    assert "压缩比超过 200 比 1" in problems[f"{hostile}!bomb/answer.py"]
    assert "无法解压（BadZipFile）" in problems[f"{refused}!corrupt/answer.py"]  # zipfile's English is not shown


def test_a_chinese_batch_over_a_hostile_zip_and_a_broken_repository_writes_chinese_rows(tmp_path):
    """`dli-grade batch --lang zh-CN`: every row of grades.csv, the class summary and the operator's line."""
    import csv
    import html

    from test_batch import batch

    archive = _refusals_only_archive(tmp_path / "class.zip")
    (tmp_path / "broken-repo" / ".git").mkdir(parents=True)  # looks like a repository; git cannot clone it
    code, out, err = batch(archive, tmp_path / "broken-repo", "--out", "out", "--lang", "zh-CN", "-q", cwd=tmp_path)
    assert code == 0, err
    rows = list(csv.DictReader((tmp_path / "out" / "grades.csv").open(encoding="utf-8")))
    assert len(rows) == 9 and {row["status"] for row in rows} == {"unusable"}  # machine values stay English
    for row in rows:
        assert CJK.search(row["message"]) and not no_english_sentence(QUOTED.sub("", row["message"])), row
    git_row = next(row for row in rows if row["submission"].endswith("broken-repo"))
    assert "无法克隆：git clone 失败，退出码 128；git 的输出：" in git_row["message"]  # git's own words quoted
    summary = html.unescape((tmp_path / "out" / "summary.md").read_text(encoding="utf-8"))  # quotes are escaped
    assert "是符号链接；压缩包中的链接一律不跟随" in summary and "已加密；提交不得需要密码" in summary
    assert not no_english_sentence(QUOTED.sub("", summary)), summary
    assert "共 9 份提交（本次评分 0 份，沿用 0 份）" in out and not no_english_sentence(out), out


# -- the grader's own limits: its memory bound and why a child's reply was refused ----------------


def test_the_graders_out_of_memory_message_reads_in_chinese():
    from grader.core.memory import out_of_memory_message

    with use_language("zh-CN"):
        bounded, unbounded = out_of_memory_message(200), out_of_memory_message(None)
    for message in (bounded, unbounded):
        assert CJK.search(message) and not no_english_sentence(message), message
    assert "200 MB" in bounded and "--grader-memory-mb" in bounded and "--jobs" in unbounded


def _protocol_refusals() -> list[str]:
    """The message of every kind of malformed frame, value and progress event the reader refuses."""
    import struct

    from grader.sandbox import frames

    def frame(body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + body

    refusals = []

    def refused(action) -> None:
        with pytest.raises(frames.ProtocolError) as caught:
            action()
        refusals.append(str(caught.value))

    refused(lambda: frames.FrameReader().feed(b"\xff\xff\xff\xff"))  # a header of 4 GiB
    refused(lambda: frames.FrameReader().feed(frame(b"[1, 2]")))
    refused(lambda: frames.FrameReader().feed(frame(b'{"a": NaN}')))
    refused(lambda: frames.FrameReader().feed(frame(b'{"blobs": [-1]}')))
    refused(lambda: frames.FrameReader(allowance=10).feed(frame(b'{"blobs": [100]}')))
    refused(lambda: frames.FrameReader().feed(frame(b"{}") + b"\x00" * (frames.MAX_HEADER + 2 * frames.READ_SLACK)))
    tensor = {"$tensor": 0, "dtype": "float32", "shape": [1]}
    values = [
        ([1], []),
        ({}, []),
        ({"$float": "1e400"}, []),
        ({"$tensor": 0, "dtype": "complex64", "shape": [1]}, [b"12345678"]),
        ({"$tensor": 0, "dtype": "float32", "shape": [0, 2**62, 2**62]}, [b""]),
        ({"$tuple": [tensor, tensor]}, [b"1234"]),
        ({"$tensor": 0, "dtype": "float32", "shape": [3]}, [b"1234"]),
    ]
    for tree, blobs in values:
        refused(lambda tree=tree, blobs=blobs: frames.decode_value(tree, [bytearray(b) for b in blobs]))
    deep: object = 1
    for _level in range(frames.MAX_DEPTH + 2):
        deep = {"$list": [deep]}
    refused(lambda: frames.decode_value(deep, []))
    for header in (
        {"progress": ["training", 1, 10], "blobs": [4]},
        {"progress": "training 1/10"},
        {"progress": ["x" * 201, 1, 10]},
        {"progress": ["training", 11, 10]},
    ):
        refused(lambda header=header: frames.progress_event(header))
    return refusals


def test_every_protocol_refusal_reads_in_chinese():
    """Why the grader refused a child's reply (the details after "the child broke the protocol")."""
    with use_language("zh-CN"):
        refusals = _protocol_refusals()
    assert len(refusals) == 18
    for refusal in refusals:
        assert CJK.search(refusal) and not no_english_sentence(refusal), refusal


def test_every_protocol_refusal_of_the_reader_is_marked_for_translation():
    """Each `raise ProtocolError(...)` of frames.py says its text through `_()` (so none is added in English)."""
    import ast
    import inspect

    from grader.sandbox import frames

    raises = [
        node.exc
        for node in ast.walk(ast.parse(inspect.getsource(frames)))
        if isinstance(node, ast.Raise)
        and isinstance(node.exc, ast.Call)
        and ast.unparse(node.exc.func) == "ProtocolError"
    ]
    assert len(raises) >= 20
    for call in raises:
        text = ast.unparse(call.args[0])
        assert text.startswith("_("), text


def test_the_childs_english_words_for_an_unsendable_value_are_reworded_by_the_grader():
    """The child (English only) describes what it cannot send; the grader keeps only the value."""
    from grader.sandbox.frames import decode_value

    with use_language("zh-CN"):
        said = {
            what: str(decode_value({"$opaque": what}, []))
            for what in ("tensor subclass _T", "tensor on the meta device (no values)", "too deep or too many items")
        }
        assert str(decode_value({"$opaque": "Model"}, [])) == "Model"  # a type name: a value, as sent
    assert said["tensor subclass _T"] == "张量子类 _T"
    for text in said.values():
        assert CJK.search(text) and not no_english_sentence(text), text


def test_a_hostile_reply_and_an_unsendable_value_read_in_chinese_through_a_real_grade(tmp_path):
    """q breaks the protocol with a forged progress count, reverse_q returns a meta tensor (which the child
    describes in English): the zh-CN messages say both in Chinese, quoting only values."""
    from grader.grading.runner import grade

    text = Path(EXAMPLE).read_text(encoding="utf-8")
    forged = "    import executor.wire as _w, json, sys\n"
    forged += "    _w.write_frame(json.loads(sys.argv[1])['out_fd'], {'progress': ['training', 5, 2]})\n"
    meta = "    return torch.empty(x_t.shape, device='meta')\n"
    for head, body in (("def q(x_0, t):\n", forged), ("def reverse_q(x_t, t, e_t):\n", meta)):
        assert text.count(head) == 1
        text = text.replace(head, head + body)
    path = tmp_path / "submission.py"
    path.write_text(text, encoding="utf-8")
    result = grade(str(path), ("q", "reverse_q"), device="cpu", seed=1, timeout=20, total_timeout=120, lang="zh-CN")
    q, reverse_q = result.tasks
    assert (q.status, reverse_q.status) == ("failed", "failed"), (q.message, reverse_q.message)
    assert "进度帧" in q.message and "meta" in reverse_q.message, (q.message, reverse_q.message)
    for message in (q.message, reverse_q.message, *result.integrity):
        assert not no_english_sentence(message), message


# -- the last English a zh-CN user could meet: the sandbox's own refusals, the batch's, the notebook client's ---


def test_the_sandboxs_own_protocol_refusals_read_in_chinese(tmp_path):
    """The four ways a reply breaks the protocol that the parent itself finds (a forged answer id, an answer
    with no status, bytes behind an answer, bytes nobody asked for), read as the grade's language sees them."""
    import os

    from grader.sandbox.frames import FrameReader, ProtocolError, encode_frame
    from grader.sandbox.parent import Sandbox, SandboxConfig

    sandbox = Sandbox(SandboxConfig(tmp_path, None, tmp_path, {}))
    replies, child_end = os.pipe()
    os.set_blocking(replies, False)
    sandbox._replies, sandbox._next_id = replies, 2

    def refusal(action) -> str:
        with pytest.raises(ProtocolError) as caught:
            action()
        return str(caught.value)

    try:
        with use_language("zh-CN"):
            said = [
                refusal(lambda: sandbox._reply({"id": 1, "reply": 5}, [])),  # the answer to command 1, not 2
                refusal(lambda: sandbox._reply({"id": 2, "reply": 5}, [])),  # 5: no {"ok": ...}
            ]
            sandbox._reader.feed(encode_frame({"id": 3}))  # a whole second frame behind the answer
            said.append(refusal(sandbox._check_no_stray_data))
            sandbox._reader = FrameReader()
            os.write(child_end, b"\x00")  # one byte on the pipe between two commands
            said.append(refusal(sandbox._check_no_stray_data))
    finally:
        os.close(replies)
        os.close(child_end)
    assert said == ["应答对应的命令并未发出", "应答缺少状态", "应答之后还有多余数据", "收到了未请求的数据"], said
    for text in said:
        assert not no_english_sentence(text), text


def test_the_sandboxs_refusal_to_run_uncontained_reads_in_chinese(monkeypatch, tmp_path):
    """No namespaces and no Landlock: the launcher (English only) refuses, the grader words why in Chinese and
    quotes only the layers' own details."""
    from grader.grading.runner import grade

    monkeypatch.setenv("DLI_GRADE_SANDBOX_SKIP", "namespaces,landlock")
    marker = tmp_path / "student-code-ran"
    path = tmp_path / "submission.py"
    path.write_text(f"open({str(marker)!r}, 'w').write('x')\n" + Path(EXAMPLE).read_text(encoding="utf-8"))
    (task,) = grade(str(path), ["q"], device="cpu", seed=1, lang="zh-CN").tasks
    assert task.status == "error" and not marker.exists(), task.message
    assert "沙箱拒绝运行学生代码：私有文件系统视图（命名空间：'skipped (DLI_GRADE_SANDBOX_SKIP" in task.message
    assert "与 Landlock（'skipped" in task.message and "）在此均不可用" in task.message, task.message
    assert not no_english_sentence(QUOTED.sub("", task.message)), task.message


def test_a_refusal_the_grader_has_no_words_for_is_shown_as_sent_but_inert():
    from grader.sandbox.parent import refusal_reason

    with use_language("zh-CN"):
        known = refusal_reason({"refused": "x", "refusal": {"code": "no_isolation", "namespaces": "EPERM"}})
        unknown = refusal_reason({"refused": "::error::forged\n\x1b[2Jnext", "refusal": {"code": "new_reason"}})
    assert known == "私有文件系统视图（命名空间：'EPERM'）与 Landlock（未尝试）在此均不可用", known
    assert unknown == ": :error: :forged next", unknown


def test_a_batch_row_for_a_file_too_large_or_gone_reads_in_chinese(tmp_path, monkeypatch):
    """The batch's own checks before a grade: a file past the submission limit (sparse, nothing written), and
    one that vanished between collecting and reading it (its row says so, the batch goes on)."""
    from grader.batch import engine, inputs
    from grader.batch.worker import GradeOptions

    big, gone = tmp_path / "big.py", tmp_path / "gone.py"
    with big.open("wb") as handle:
        handle.truncate(engine.MAX_BYTES + 1)
    collect = inputs.collect
    monkeypatch.setattr(
        inputs, "collect", lambda *args, **kwargs: [*collect(*args, **kwargs), inputs.Item("gone", str(gone), gone)]
    )
    with use_language("zh-CN"):
        report = engine.run_batch([big], tmp_path / "out", GradeOptions(("q",), lang="zh-CN"), quiet=True)
    rows = {record["student"]: record for record in report.records}
    assert {row["status"] for row in rows.values()} == {"unusable"} and len(rows) == 2, rows
    assert rows["big"]["message"] == f"{big}：大于 200 MiB，不是一份提交", rows["big"]
    assert rows["gone"]["message"] == f"{gone}：无法读取：'No such file or directory'", rows["gone"]
    for row in rows.values():
        assert not no_english_sentence(QUOTED.sub("", row["message"])), row


def _fake_kernel(monkeypatch, cells: list[str]):
    """A stand-in for the Jupyter kernel whose history is `cells` (In [1], In [2], ...; the last one is running)."""
    from types import SimpleNamespace

    import dli_grade

    history = SimpleNamespace(input_hist_raw=["", *cells])
    shell = SimpleNamespace(history_manager=history, execution_count=len(cells), transform_cell=lambda source: source)
    monkeypatch.setattr(dli_grade, "_kernel", lambda: shell)
    return dli_grade


@pytest.mark.parametrize("how", ["lang", "locale"])
def test_the_notebook_clients_own_errors_read_in_chinese(monkeypatch, how):
    """Outside a kernel, no cell run yet, a task id the grader lacks: the client's errors follow lang= or the
    kernel's locale, as the CLI does."""
    import dli_grade

    for variable in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(variable, raising=False)
    if how == "locale":
        monkeypatch.setenv("LC_ALL", "zh_CN.UTF-8")
    lang = {"lang": "zh-CN"} if how == "lang" else {}
    said = []
    with pytest.raises(dli_grade.NotInKernelError) as caught:
        dli_grade.check("q", **lang)
    said.append(str(caught.value))
    client = _fake_kernel(monkeypatch, ["dli_grade.check('q')"])
    with pytest.raises(dli_grade.NoCellsRunError) as caught:
        client.check("q", **lang)
    said.append(str(caught.value))
    with pytest.raises(dli_grade.UnknownTaskError) as caught:
        client.check("q", "no_such_task", **lang)
    said.append(str(caught.value))
    with pytest.raises(dli_grade.UnknownTaskError) as caught:
        client.check(**lang)
    said.append(str(caught.value))
    assert said[0].startswith("dli_grade.check 评分的是 Jupyter 内核已运行的单元格"), said
    assert said[1] == "本内核尚未运行任何单元格：请先运行定义你答案的单元格，再重新检查", said
    assert said[2].startswith("未知的任务 ID 'no_such_task'；可选：schedule, q"), said
    assert said[3].startswith("请指定要检查的任务，可选：schedule, q"), said
    for text in said:
        assert not no_english_sentence(text), text
    monkeypatch.setenv("LC_ALL", "zh_CN.UTF-8")
    with pytest.raises(dli_grade.NoCellsRunError, match=r"^no cells run yet in this kernel"):
        client.check("q", lang="en")  # lang= wins over the locale


def test_the_notebook_clients_note_and_grader_failures_read_in_chinese(monkeypatch):
    """The note shown under a check's report, in the language of the check, and a grader that fails."""
    import sys

    from dli_grade import runner

    reports = runner.Reports({"tasks": [{"id": "q"}], "passed": True}, "得分 5/5：通过", "<p>报告</p>")
    client = _fake_kernel(monkeypatch, ["x = 1", "dli_grade.check('q')"])
    monkeypatch.setattr(runner, "grade_cells", lambda *args: reports)
    monkeypatch.setattr(runner, "checked_ids", list)  # no task list asked of the grader
    result = client.check("q", lang="zh-CN")
    shown = [repr(result), re.sub(r"<[^>]+>", " ", result._repr_html_())]
    assert "（此处第 N 个单元格即 In [N]" in shown[0] and 'title="dli-grade 报告"' in result._repr_html_()
    for text in shown:
        assert not no_english_sentence(text), text
    assert "cell N is In [N]" in repr(client.check("q", lang="en"))

    monkeypatch.undo()
    monkeypatch.setattr(runner, "GRADER_COMMAND", (sys.executable, "-c", "import sys; sys.exit(3)"))
    from dli_grade.language import use_language as client_language

    with client_language("zh-CN"), pytest.raises(runner.GraderFailedError) as caught:
        runner.grade_cells(["x = 1"], ["q"])
    assert str(caught.value) == "评分器运行失败（退出码 3）：（无错误输出）", str(caught.value)


@pytest.mark.parametrize(
    "asked, environ",
    [
        (None, {}),
        ("zh-CN", {}),
        ("zh_CN", {"LANG": "en_US.UTF-8"}),
        ("en", {"LANG": "zh_CN.UTF-8"}),
        (None, {"LANG": "zh_CN.UTF-8"}),
        (None, {"LC_MESSAGES": "zh_TW"}),
        (None, {"LC_ALL": "zh_CN.UTF-8", "LANG": "en_US.UTF-8"}),
        (None, {"LANGUAGE": "en_GB:zh_CN", "LANG": "zh_CN.UTF-8"}),
        (None, {"LANGUAGE": "zh_CN:en", "LC_ALL": "C"}),
        (None, {"LANG": "fr_FR.UTF-8"}),
    ],
)
def test_the_notebook_client_chooses_its_language_as_the_grader_does(asked, environ):
    """The client repeats grader/core/i18n.py's choice (it may not import it into the kernel): both agree."""
    from dli_grade import language

    assert language.resolve(asked, environ) == resolve(asked, environ)


def test_a_machine_that_cannot_contain_is_refused_in_chinese_naming_why(monkeypatch):
    """The command's refusal before grading quotes the probe's reason, which the parent writes: Chinese too."""
    from grader.cli import main

    monkeypatch.setenv("DLI_GRADE_SANDBOX_SKIP", "namespaces,landlock")
    result = CliRunner().invoke(main, [EXAMPLE, "--tasks", "q", "--device", "cpu", "--lang", "zh-CN", "-q"])
    assert result.exit_code == 2, result.output
    assert "（已跳过（DLI_GRADE_SANDBOX_SKIP））" in result.output, result.output
    assert not no_english_sentence(result.output), result.output


# -- click's own usage errors ---------------------------------------------------------------------
def test_clicks_usage_errors_are_in_the_commands_language():
    """Before, a zh-CN command still said "Error: No such option '--bogus'." and "Try ... for help."."""
    from grader.cli import main

    chinese = CliRunner().invoke(main, ["--lang", "zh-CN", EXAMPLE, "--bogus"], prog_name="dli-grade")
    assert chinese.exit_code == 2
    assert "错误：没有选项 '--bogus'。" in chinese.output
    assert "运行 'dli-grade grade --help' 查看帮助。" in chinese.output
    by_locale = CliRunner().invoke(main, [EXAMPLE, "--device", "gpu"], env={"LANG": "zh_CN.UTF-8", "LANGUAGE": ""})
    assert by_locale.exit_code == 2
    assert "错误：'--device' 的值无效：'gpu' 不是可选值之一：'auto', 'cpu', 'cuda'。" in by_locale.output
    english = CliRunner().invoke(main, [EXAMPLE, "--bogus"], env={"LANG": "C.UTF-8", "LANGUAGE": ""})
    assert english.exit_code == 2 and "Error: No such option '--bogus'." in english.output
    assert not CJK.search(english.output)
    wins = CliRunner().invoke(main, [EXAMPLE, "--bogus", "--lang", "en"], env={"LANG": "zh_CN.UTF-8"})
    assert "Error: No such option '--bogus'." in wins.output  # --lang before the locale, as for the grade


@pytest.mark.parametrize(
    ("args", "asked"),
    [
        (["x.ipynb", "--lang", "zh-CN"], "zh-CN"),
        (["--lang=zh_CN", "x.ipynb"], "zh_CN"),
        (["--lang", "en", "x", "--lang", "zh-CN"], "zh-CN"),
        (["x", "--", "--lang", "zh-CN"], None),
        (["x", "--lang"], None),
    ],
)
def test_the_language_a_command_line_asks_for(args, asked):
    from grader.core.click_language import language_asked

    assert language_asked(args) == asked


def test_the_click_catalog_is_compiled_and_translates_only_what_click_says():
    """Its msgids are click's own (a click that rewords one leaves it English: this says which), and
    each translation uses only the placeholders click fills in."""
    import os

    import click
    from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir

    from grader.core.click_language import DOMAIN as CLICK_DOMAIN

    catalog = i18n_catalog.read("zh-CN", CLICK_DOMAIN)
    shipped = i18n_catalog.po_path("zh-CN", CLICK_DOMAIN).with_suffix(".mo").read_bytes()
    assert shipped == i18n_catalog.compiled(catalog), "recompile: python -m grader.core.i18n_catalog"
    said = set()
    for _file, _line, message, *_ in extract_from_dir(
        os.path.dirname(click.__file__), method_map=[("**.py", "python")], keywords=DEFAULT_KEYWORDS
    ):
        said |= set(message) if isinstance(message, tuple) else {message}
    translated = 0
    for message in catalog:
        if not message.id:
            continue
        ids, strings = ids_and_strings(message)
        assert set(ids) <= said, ids
        assert all(strings) and all(CJK.search(text) for text in strings), ids
        offered = set().union(*(placeholders(text) for text in ids))
        assert all(placeholders(text) <= offered for text in strings), ids
        translated += 1
    assert translated >= 20
