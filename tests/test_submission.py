"""Loading submissions: notebooks, modules, unusable input, IPython syntax."""

import ast
import hashlib
import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_raw_cell

from grader.core.errors import UnusableInput
from grader.submission.cells import load_submission
from grader.submission.ipython_syntax import neutralise


def write_notebook(tmp_path, cells, name="submission.ipynb", minor=None):
    nb = new_notebook(cells=cells)
    if minor is not None:
        nb.nbformat_minor = minor
        if minor < 5:
            for cell in nb.cells:
                cell.pop("id", None)
    path = tmp_path / name
    path.write_text(nbformat.writes(nb, version=4), encoding="utf-8")
    return path


def write_text(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def unusable(path):
    with pytest.raises(UnusableInput) as info:
        load_submission(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    return message


# --- notebooks that load ---------------------------------------------------------------------


@pytest.mark.parametrize("minor", [0, 4, 5])
def test_nbformat_4_minor_versions_load(tmp_path, minor):
    path = write_notebook(
        tmp_path,
        [new_markdown_cell("# Title"), new_code_cell("x = 1"), new_raw_cell("raw"), new_code_cell("y = 2")],
        minor=minor,
    )
    sub = load_submission(path)
    assert sub.kind == "notebook"
    assert [c.number for c in sub.cells] == [2, 4]
    assert [c.source for c in sub.cells] == ["x = 1", "y = 2"]
    assert sub.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_source_as_list_of_lines_is_joined(tmp_path):
    raw = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "metadata": {},
                "outputs": [],
                "source": ["a = 1\n", "b = 2"],
            }
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 2,
    }
    path = write_text(tmp_path, "nb.ipynb", json.dumps(raw))
    assert load_submission(path).cells[0].source == "a = 1\nb = 2"


def test_missing_cell_ids_in_4_5_are_tolerated(tmp_path):
    path = write_notebook(tmp_path, [new_code_cell("x = 1")])
    raw = json.loads(path.read_text())
    del raw["cells"][0]["id"]
    path.write_text(json.dumps(raw))
    assert load_submission(path).cells[0].source == "x = 1"


def test_utf8_bom_is_tolerated(tmp_path):
    path = write_notebook(tmp_path, [new_code_cell("x = '\u00e9'")])
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert load_submission(path).cells[0].source == "x = '\u00e9'"


# --- unusable input --------------------------------------------------------------------------


def test_missing_file(tmp_path):
    assert "no such file" in unusable(tmp_path / "nothere.ipynb")


def test_directory(tmp_path):
    folder = tmp_path / "folder.ipynb"
    folder.mkdir()
    assert "directory" in unusable(folder)


def test_wrong_suffix(tmp_path):
    assert "expected a .ipynb notebook or a .py module" in unusable(write_text(tmp_path, "a.txt", "x = 1"))


@pytest.mark.parametrize("content", ["", "  \n\n"])
def test_empty_notebook_file(tmp_path, content):
    assert "empty file" in unusable(write_text(tmp_path, "submission.ipynb", content))


def test_binary_notebook(tmp_path):
    path = tmp_path / "submission.ipynb"
    path.write_bytes(b"PK\x03\x04\x00\x00binary zip")
    assert "binary" in unusable(path)


def test_undecodable_bytes(tmp_path):
    path = tmp_path / "submission.ipynb"
    path.write_bytes(b'{"cells": "\xff\xfe"}')
    assert "not UTF-8" in unusable(path)


def test_invalid_json_reports_line_and_column(tmp_path):
    path = write_text(tmp_path, "submission.ipynb", '{\n  "cells": [\n    ,\n  ]\n}')
    message = unusable(path)
    assert message == f"{path}: not valid JSON (line 3, column 5: Expecting value)"


def test_json_list_is_not_a_notebook(tmp_path):
    message = unusable(write_text(tmp_path, "submission.ipynb", "[1, 2]"))
    assert "not a Jupyter notebook" in message and "array" in message


def test_nbformat_3_is_rejected(tmp_path):
    raw = {"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": [{"cells": []}]}
    message = unusable(write_text(tmp_path, "submission.ipynb", json.dumps(raw)))
    assert "nbformat 3" in message


def test_missing_cells(tmp_path):
    raw = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}}
    assert "no 'cells' list" in unusable(write_text(tmp_path, "submission.ipynb", json.dumps(raw)))


def test_missing_nbformat_field(tmp_path):
    raw = {"cells": [], "metadata": {}}
    assert "not a Jupyter notebook" in unusable(write_text(tmp_path, "submission.ipynb", json.dumps(raw)))


def test_schema_violation_names_the_cell(tmp_path):
    path = write_notebook(tmp_path, [new_markdown_cell("hi"), new_code_cell("x = 1")], minor=4)
    raw = json.loads(path.read_text())
    del raw["cells"][1]["outputs"]
    path.write_text(json.dumps(raw))
    message = unusable(path)
    assert "fails nbformat validation at cell 2" in message and "outputs" in message


def test_bad_source_type_fails_validation(tmp_path):
    path = write_notebook(tmp_path, [new_code_cell("x = 1")])
    raw = json.loads(path.read_text())
    raw["cells"][0]["source"] = 5
    path.write_text(json.dumps(raw))
    assert "fails nbformat validation" in unusable(path)


def test_notebook_without_code_cells(tmp_path):
    path = write_notebook(tmp_path, [new_markdown_cell("only words")])
    assert "no code cells" in unusable(path)


def test_notebook_with_only_empty_code_cells(tmp_path):
    path = write_notebook(tmp_path, [new_code_cell(""), new_code_cell("  \n"), new_markdown_cell("x")])
    assert "empty" in unusable(path)


def test_empty_module(tmp_path):
    assert "empty file" in unusable(write_text(tmp_path, "answers.py", ""))


def test_module_with_only_comments(tmp_path):
    assert "no Python code" in unusable(write_text(tmp_path, "answers.py", "# %%\n# just a comment\n"))


def test_undecodable_module(tmp_path):
    path = tmp_path / "answers.py"
    path.write_bytes(b"x = '\xff'\n")
    assert "not UTF-8" in unusable(path)


# --- modules ---------------------------------------------------------------------------------


def test_module_without_markers_is_one_cell(tmp_path):
    sub = load_submission(write_text(tmp_path, "answers.py", "import torch\nx = 1\n"))
    assert sub.kind == "module"
    assert [(c.number, c.source) for c in sub.cells] == [(1, "import torch\nx = 1\n")]


def test_module_split_at_percent_markers(tmp_path):
    text = (
        "# ---\n# jupyter:\n#   kernelspec: {}\n# ---\n\n"
        "# %%\nimport torch\n\n"
        "# %% [markdown]\n# Some words\n\n"
        "# %% schedule\nB = 1\na = 1 - B\n"
    )
    sub = load_submission(write_text(tmp_path, "answers.py", text))
    assert [c.number for c in sub.cells] == [1, 3]
    assert sub.cells[0].source.splitlines() == ["# %%", "import torch", ""]
    # Line numbers are relative to the cell: the marker is line 1.
    assert sub.cells[1].code.splitlines()[2] == "a = 1 - B"


def test_module_code_before_first_marker_is_a_cell(tmp_path):
    sub = load_submission(write_text(tmp_path, "answers.py", "import os\n# %%\nx = 1\n"))
    assert [(c.number, c.source.splitlines()[-1]) for c in sub.cells] == [(1, "import os"), (2, "x = 1")]


def test_module_cell_magic_comment_is_not_a_marker(tmp_path):
    sub = load_submission(write_text(tmp_path, "answers.py", "# %%\n# %%time\nx = 1\n"))
    assert len(sub.cells) == 1


# --- IPython syntax --------------------------------------------------------------------------


def same_shape(source):
    code = neutralise(source)
    assert len(code.split("\n")) == len(source.split("\n"))
    ast.parse(code)
    return code.split("\n")


def test_line_magics_and_shell_become_pass_at_their_indentation():
    source = "import os\n%matplotlib inline\n!nvidia-smi\nif x:\n    !pip install einops\n    y = 1"
    lines = same_shape(source)
    assert lines == ["import os", "pass", "pass", "if x:", "    pass", "    y = 1"]


def test_magic_assignments_bind_none():
    lines = same_shape("files = !ls\nt = %timeit -o f()\na, b = !echo 1 2")
    assert lines == ["files = None", "t = None", "a, b = None"]


def test_help_syntax():
    lines = same_shape("torch.randn?\n??torch\nx = 1  # why?\ns = 'what?'")
    assert lines == ["pass", "pass", "x = 1  # why?", "s = 'what?'"]


def test_modulo_continuation_and_strings_are_not_magics():
    source = 'y = (a\n     % b)\ns = """\n%d items\n!"""\nz = a \\\n    % b'
    assert neutralise(source) == source


def test_shell_line_continued_with_backslash():
    lines = same_shape("!pip install a \\\n    b\nx = 1")
    assert lines == ["pass", "", "x = 1"]


@pytest.mark.parametrize("magic", ["%%time", "%%timeit -n 1", "%%capture out"])
def test_body_keeping_cell_magics(magic):
    lines = same_shape(f"{magic}\nx = 1\n!ls")
    assert lines == ["", "x = 1", "pass"]


@pytest.mark.parametrize("magic", ["%%bash", "%%writefile utils.py", "%%html"])
def test_other_cell_magics_blank_the_cell(magic):
    lines = same_shape(f"{magic}\necho hi\n<b>x</b>")
    assert lines == ["", "", ""]


def test_get_ipython_calls_are_left_alone():
    source = "get_ipython().run_line_magic('matplotlib', 'inline')"
    assert neutralise(source) == source


def test_notebook_cells_carry_neutralised_code(tmp_path):
    path = write_notebook(tmp_path, [new_code_cell("!pip install x\nimport x")])
    cell = load_submission(path).cells[0]
    assert cell.source == "!pip install x\nimport x"
    assert cell.code == "pass\nimport x"


def test_module_split_at_nbconvert_markers(tmp_path):
    text = "#!/usr/bin/env python\n# coding: utf-8\n\n# In[1]:\n\n\nimport torch\n\n\n# In[ ]:\n\n\nx = 1\n"
    sub = load_submission(write_text(tmp_path, "answers.py", text))
    assert [(c.number, c.source.split("\n")[3]) for c in sub.cells] == [(1, "import torch"), (2, "x = 1")]


def test_absurdly_nested_json(tmp_path):
    assert "not valid JSON" in unusable(write_text(tmp_path, "submission.ipynb", "[" * 100000 + "]" * 100000))
