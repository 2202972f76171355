"""A self-contained HTML report: inline CSS, the samples grid inlined as a data URI, no network.

Every string that comes from the submission or the result document goes through `html.escape`.
"""

from __future__ import annotations

import html
from pathlib import Path

from grader import __version__
from grader.core import i18n
from grader.core.images import grid_data_uri  # noqa: F401 (the reports' and the tasks' grid)
from grader.core.sanitize import one_line, safe_text
from grader.report.common import error_of, points, task_views
from tasks import find_task

CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;background:#f5f6f8;color:#1d2330}
main{max-width:1100px;margin:0 auto;padding:24px}
header{background:#1d2330;color:#fff;padding:18px 24px;border-radius:10px;display:flex;justify-content:space-between;align-items:center;gap:16px;flex-wrap:wrap}
header h1{font-size:20px;margin:0;word-break:break-all}
.score{font-size:28px;font-weight:700;white-space:nowrap}
.verdict{display:inline-block;padding:3px 10px;border-radius:999px;font-size:13px;font-weight:600;margin-left:10px;vertical-align:middle}
.verdict.pass{background:#1f9d55}.verdict.fail{background:#d64545}.verdict.error{background:#b7791f}
.meta{color:#555e6e;font-size:13px;margin:10px 2px 18px}
.meta code{font-size:12px}
table{border-collapse:collapse;width:100%;background:#fff;border-radius:10px;overflow:hidden;box-shadow:0 1px 3px rgba(0,0,0,.08)}
th,td{text-align:left;padding:10px 12px;border-bottom:1px solid #eceef2;vertical-align:top}
th{background:#fafbfc;font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:#555e6e}
tr:last-child td{border-bottom:none}
.pill{display:inline-block;min-width:64px;text-align:center;padding:2px 8px;border-radius:999px;font-size:12px;font-weight:700;color:#fff}
.passed .pill{background:#1f9d55}.failed .pill{background:#d64545}.error .pill{background:#b7791f}
tr.failed{background:#fff6f6}tr.error{background:#fffaf0}
.id{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-weight:600}
.title{color:#555e6e;font-size:13px}
.points{white-space:nowrap;font-variant-numeric:tabular-nums}
.hint{color:#2b6cb0;font-size:13px;margin-top:4px}
.where{white-space:nowrap;color:#555e6e;font-size:13px}
section{margin-top:22px}
h2{font-size:16px;margin:0 0 8px}
.box{background:#fff;border-radius:10px;padding:14px 18px;box-shadow:0 1px 3px rgba(0,0,0,.08)}
.box.problem{border-left:5px solid #d64545}
ul{margin:4px 0;padding-left:20px}
img.grid{image-rendering:pixelated;width:100%;max-width:604px;border:1px solid #d9dde5;border-radius:6px;background:#000}
footer{color:#8a93a3;font-size:12px;margin-top:24px}
"""


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def render(document: dict, base: Path | None = None) -> str:
    """The page. `base` resolves a relative samples-grid path (default: the current folder)."""
    submission = one_line(document.get("submission", "submission"), 300)
    error = error_of(document)
    if error:
        verdict, css = i18n._("NOT GRADED ({status})").format(status=error["status"].upper()), "error"
    elif document.get("passed") is True:
        verdict, css = i18n._("PASSED"), "pass"
    else:
        verdict, css = i18n._("NOT PASSED"), "fail"
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{i18n.current()}"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>dli-grade: {_e(submission)}</title><style>{CSS}</style></head><body><main>",
        f'<header><h1>{_e(submission)}</h1><div class="score">{points(document.get("score"))}'
        f' / {points(document.get("max_score"))}<span class="verdict {css}">{_e(verdict)}</span></div></header>',
    ]
    meta = [f"sha256 <code>{_e(one_line(document.get('sha256', ''), 80))}</code>"]
    for key in ("layout", "device"):
        if document.get(key):
            label = i18n._("layout") if key == "layout" else i18n._("device")
            meta.append(f"{_e(label)} {_e(one_line(document[key], 40))}")
    if isinstance(document.get("duration_s"), (int, float)):
        meta.append(f"{document['duration_s']:.1f} s")
    meta.append(_e(i18n._("cells are counted from the top of the notebook, markdown cells included")))
    parts.append(f'<div class="meta">{" · ".join(meta)}</div>')
    if error:
        parts.append(
            f'<div class="box problem"><strong>{_e(i18n._("Could not grade this submission:"))}</strong> '
            f"{_e(error['message'])}</div>"
        )
    tasks = task_views(document)
    if tasks:
        columns = (i18n._("status"), i18n._("task"), i18n._("points"), i18n._("message"), i18n._("where"))
        parts.append(
            "<table><thead><tr>" + "".join(f"<th>{_e(name)}</th>" for name in columns) + "</tr></thead><tbody>"
        )
        words = {"passed": i18n._("PASSED"), "failed": i18n._("FAILED"), "error": i18n._("ERROR")}
        for task in tasks:
            hints = "".join(
                f'<div class="hint">{_e(i18n._("hint: {hint}").format(hint=hint))}</div>' for hint in task.hints
            )
            parts.append(
                f'<tr class="{task.status}"><td><span class="pill">{_e(words[task.status])}</span></td>'
                f'<td><div class="id">{_e(task.id)}</div><div class="title">{_e(i18n._(task.title))}</div></td>'
                f'<td class="points">{points(task.score)} / {points(task.max_score)}</td>'
                f'<td>{_e(task.message)}{hints}</td><td class="where">{_e(task.where)}</td></tr>'
            )
        parts.append("</tbody></table>")
    integrity = [one_line(note) for note in document.get("integrity") or []]
    if integrity:
        items = "".join(f"<li>{_e(note)}</li>" for note in integrity)
        parts.append(
            f'<section><h2>{_e(i18n._("Integrity notes"))}</h2><div class="box"><ul>{items}</ul></div></section>'
        )
    for task in tasks:
        declared = find_task(task.id)
        if declared:  # the task's own section (a task that has none gives "")
            parts.append(declared.html_details(task.details, base))
    parts.append(
        f"<footer>dli-grade {_e(__version__)} · schema {_e(one_line(document.get('schema', ''), 60))}</footer>"
    )
    parts.append("</main></body></html>")
    return safe_text("\n".join(parts) + "\n")
