"""A check's verdict as rich output: the CLI's text report and its HTML report.

Both come from the grader's own renderers (grader/report/text.py, grader/report/html.py), which
make every student-derived string one clean line and HTML-escape it. The HTML page is shown in
an iframe so its stylesheet cannot restyle the notebook; the page is escaped once more to sit
in the `srcdoc` attribute, and the frame may not run scripts.
"""

from __future__ import annotations

import html

from dli_grade.language import ENGLISH, N_, in_language

CELL_NOTE = N_("(here cell N is In [N], the cell this kernel ran N-th)")
FRAME_TITLE = N_("dli-grade report")
ROW_PX, FRAME_PX = 64, 200


class CheckResult:
    """The verdict of `dli_grade.check(...)` or `check_all()`: the CLI's report, shown by Jupyter."""

    def __init__(self, document: dict, text: str, page: str, lang: str = ENGLISH):
        self.document = document
        self.text = text
        self.page = page
        self.lang = lang  # the language it was checked in: the note under it is shown in the same

    @property
    def cell_note(self) -> str:
        return in_language(CELL_NOTE, self.lang)

    @property
    def passed(self) -> bool:
        return self.document.get("passed") is True

    @property
    def score(self) -> float:
        return self.document.get("score", 0.0)

    @property
    def max_score(self) -> float:
        return self.document.get("max_score", 0.0)

    @property
    def tasks(self) -> list[dict]:
        """Each task's id, status, message, hints and location, as in the JSON result."""
        return list(self.document.get("tasks") or [])

    def __repr__(self) -> str:
        return f"{self.text}\n{self.cell_note}"

    def _repr_html_(self) -> str:
        height = FRAME_PX + ROW_PX * len(self.tasks)
        return (
            f'<iframe sandbox="allow-same-origin" title="{html.escape(in_language(FRAME_TITLE, self.lang))}" '
            f'srcdoc="{html.escape(self.page)}" '
            f'style="width:100%;height:{height}px;border:0" '
            "onload=\"this.style.height=(this.contentDocument.documentElement.scrollHeight+4)+'px'\"></iframe>"
            f"<p><small>{html.escape(self.cell_note)}</small></p>"
        )
