"""`dli_grade.check` inside the notebook: through a real Jupyter kernel (nbclient), and its parts.

The kernel runs the example's schedule and `q` (examples/submission.py), then checks, then a `q`
with its coefficients swapped, then checks again; the assertions read what the kernel displayed.
"""

from __future__ import annotations

import html
import json
import sys
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager
from nbclient import NotebookClient

import dli_grade
import tasks
from dli_grade import history, runner

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "submission.py"
CORRECT_Q = "x_t = sqrt_a_bar_t * x_0 + sqrt_one_minus_a_bar_t * noise"
SWAPPED_Q = "x_t = sqrt_one_minus_a_bar_t * x_0 + sqrt_a_bar_t * noise"
HOSTILE = "<script>alert(1)</script>"
GRADER_PACKAGES = ("grader", "reference", "tasks")


def example_cell(marker: str) -> str:
    """The body of the one `# %%` cell of the example that contains `marker`."""
    found = [cell.split("\n", 1)[1] for cell in EXAMPLE.read_text().split("# %%") if marker in cell]
    assert len(found) == 1, marker
    return found[0]


def kernel_cells() -> list[str]:
    correct_q = example_cell("def q(x_0, t):")
    assert correct_q.count(CORRECT_Q) == 1
    return [
        # 1: nothing run yet (this cell is still running, so it does not count)
        "import dli_grade\ntry:\n    dli_grade.check('q')\nexcept dli_grade.NoCellsRunError as error:\n"
        "    print('NoCellsRunError:', error)",
        "import torch\ndevice = torch.device('cpu')",  # 2
        example_cell("a_bar = torch.cumprod(a, dim=0)"),  # 3
        correct_q,  # 4
        "dli_grade.check('q')",  # 5
        correct_q.replace(CORRECT_Q, SWAPPED_Q),  # 6
        "dli_grade.check('q')",  # 7
        "try:\n    dli_grade.check('q', 'no_such_task')\nexcept dli_grade.UnknownTaskError as error:\n"
        "    print('UnknownTaskError:', error)",  # 8
        # 9: a reverse_q whose error message is markup, for check_all's table
        f"def reverse_q(x_t, t, e_t):\n    raise ValueError({HOSTILE!r})",
        "dli_grade.check_all()",  # 10
        "import sys, json\nprint(json.dumps(sorted(name for name in sys.modules\n"
        f"    if name.split('.')[0] in {(*GRADER_PACKAGES, 'dli_grade')!r})))",  # 11
    ]


@pytest.fixture(scope="module")
def kernel_folder(tmp_path_factory):
    """The kernel's working folder, holding modules named like the grader's packages: a folder of
    the student's that a grade started there would import instead of the grader's own."""
    folder = tmp_path_factory.mktemp("kernel")
    for name in ("grader.py", "tasks.py"):
        (folder / name).write_text(f"raise SystemExit('the student folder\\'s {name} was imported')\n")
    return folder


@pytest.fixture(scope="module")
def outputs(kernel_folder):
    """Each cell's outputs after running the notebook in a fresh kernel of this interpreter."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell) for cell in kernel_cells()])
    folder = kernel_folder
    client = NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}})
    client.execute()
    return [cell.outputs for cell in notebook.cells]


def stdout(cell_outputs) -> str:
    return "".join(out.get("text", "") for out in cell_outputs if out.get("output_type") == "stream")


def shown(cell_outputs, mime: str) -> str:
    found = [out["data"][mime] for out in cell_outputs if out.get("output_type") == "execute_result"]
    assert len(found) == 1, cell_outputs
    return found[0]


class _Frames(HTMLParser):
    def __init__(self):
        super().__init__()
        self.srcdocs, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "iframe":
            self.srcdocs.append(dict(attrs)["srcdoc"])


def test_nothing_run_yet_is_a_clear_error(outputs):
    assert stdout(outputs[0]).startswith("NoCellsRunError: no cells run yet in this kernel")


def test_correct_q_passes(outputs):
    text = shown(outputs[4], "text/plain")
    assert "PASS  q" in text and "Score 2/2: PASSED" in text
    assert "FAIL" not in text


def test_students_folder_cannot_shadow_the_grader(kernel_folder, outputs):
    assert (kernel_folder / "grader.py").is_file() and (kernel_folder / "tasks.py").is_file()
    assert "Score 2/2: PASSED" in shown(outputs[4], "text/plain")


def test_swapped_q_fails_with_the_clis_message_and_its_cell(outputs):
    text = shown(outputs[6], "text/plain")
    assert "FAIL  q" in text and "Score 1/2: NOT PASSED" in text
    # the CLI's diagnosis, located in the cell that defined the swapped q: In [6]
    assert "q swaps its coefficients" in text and "[cell 6, line" in text
    assert "hint: x_t = sqrt_a_bar_t * x_0 + sqrt_one_minus_a_bar_t * noise" in text
    assert "cell N is In [N]" in text


def test_html_is_the_clis_page_in_a_script_free_frame(outputs):
    parser = _Frames()
    parser.feed(shown(outputs[6], "text/html"))
    # one iframe holding the whole page: nothing of the page leaks into the notebook's own markup
    assert parser.tags == ["iframe", "p", "small"] and len(parser.srcdocs) == 1
    page = parser.srcdocs[0]
    assert page.startswith("<!DOCTYPE html>") and "q swaps its coefficients" in page
    assert 'sandbox="allow-same-origin"' in shown(outputs[6], "text/html")  # no allow-scripts


def test_unknown_task_lists_the_graders_ids(outputs):
    message = stdout(outputs[7])
    assert message.startswith("UnknownTaskError: unknown task id 'no_such_task'; choose from ")
    assert message.strip().endswith(", ".join(tasks.TASK_IDS))


def test_check_all_shows_every_unit_task_and_escapes_student_text(outputs):
    text = shown(outputs[9], "text/plain")
    rows = [line.split()[1] for line in text.splitlines() if line.startswith(("  PASS", "  FAIL", "  ERROR"))]
    assert rows == list(tasks.UNIT_TASK_IDS)  # generation only when asked
    assert "PASS  schedule" in text and "FAIL  q" in text and "FAIL  reverse_q" in text
    parser = _Frames()
    parser.feed(shown(outputs[9], "text/html"))
    page = parser.srcdocs[0]
    assert "<script" not in page.lower() and html.escape(HOSTILE) in page


def test_kernel_holds_only_the_thin_client(outputs):
    modules = json.loads(stdout(outputs[10]))
    assert "dli_grade" in modules
    assert not [name for name in modules if name.split(".")[0] in GRADER_PACKAGES]
    assert "dli_grade.grader_side" not in modules


def test_client_statements_are_blanked_keeping_line_numbers():
    sources = [
        "import dli_grade as dg\nx = 1",
        "y = 2\ndg.check(\n    'q')\nz = 3",
        "from dli_grade import check_all\n%matplotlib inline\ncheck_all()\nw = 4",
        "%%timeit\ndli_grade.check('q')",
    ]
    cleaned = history.without_client(sources, TransformerManager().transform_cell)
    assert cleaned == [
        "\nx = 1",
        "y = 2\n\n\nz = 3",
        "\n%matplotlib inline\n\nw = 4",
        "%%timeit\ndli_grade.check('q')",  # a cell magic's lines cannot be mapped: kept as written
    ]


def test_outside_a_kernel_is_a_clear_error():
    with pytest.raises(dli_grade.NotInKernelError, match="outside one, grade the file with `dli-grade"):
        dli_grade.check("q")


def test_task_ids_come_from_the_graders_list():
    assert dli_grade.task_ids() == list(tasks.TASK_IDS)
    assert dli_grade.task_ids(generation=False) == list(tasks.UNIT_TASK_IDS)


@pytest.mark.parametrize(
    "script, expected",
    [
        (
            "import sys; sys.stderr.write('Traceback ...\\nRuntimeError: boom\\n'); sys.exit(3)",
            r"the grader failed \(exit 3\): Traceback ...\nRuntimeError: boom",
        ),
        ("import os; os.kill(os.getpid(), 9)", r"the grader failed \(exit -9\): \(no error output\)"),
    ],
)
def test_grader_failure_shows_its_stderr_tail(monkeypatch, script, expected):
    monkeypatch.setattr(runner, "GRADER_COMMAND", (sys.executable, "-c", script))
    with pytest.raises(dli_grade.GraderFailedError, match=expected):
        runner.grade_cells(["x = 1"], ["q"])
