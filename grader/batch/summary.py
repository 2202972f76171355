"""summary.md and summary.html: a roster, pass rates, frequent diagnoses, score histogram, look-alikes.

Everything is computed from the gradebook's records. Student-derived text is one line,
escaped for Markdown tables and for HTML.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from collections import Counter
from pathlib import Path
from urllib.parse import quote

from grader import __version__, atomic
from grader.batch import similarity
from grader.sanitize import one_line, safe_text

STATUS_ORDER = ("graded", "unusable", "timeout", "crashed")


def _md(text) -> str:
    return html.escape(str(text)).replace("|", "\\|")


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _shape(message: str) -> str:
    """Group key of a diagnosis: the message with its numbers blanked (values differ per student)."""
    return re.sub(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", "#", message)


def statistics(records: list[dict], task_ids) -> dict:
    graded = [r for r in records if r["status"] == "graded"]
    per_task = []
    for task in task_ids:
        outcomes = [(r.get("tasks") or {}).get(task) for r in graded]
        ran = [o for o in outcomes if o]
        passed = sum(1 for o in ran if o.get("status") == "passed")
        per_task.append({"task": task, "graded": len(ran), "passed": passed,
                         "rate": passed / len(ran) if ran else None})
    diagnoses: dict[tuple[str, str], list] = {}
    for record in records:
        if record["status"] != "graded":
            key = (record["status"], _shape(record.get("message", "")))
            diagnoses.setdefault(key, []).append((record.get("message", ""), record["student"]))
            continue
        for task, outcome in (record.get("tasks") or {}).items():
            if outcome.get("status") in ("failed", "error"):
                key = (task, _shape(outcome.get("message", "")))
                diagnoses.setdefault(key, []).append((outcome.get("message", ""), record["student"]))
    frequent = []
    for (where, _), hits in sorted(diagnoses.items(), key=lambda item: (-len(item[1]), item[0])):
        example = Counter(message for message, _ in hits).most_common(1)[0][0]
        frequent.append({"where": where, "count": len(hits), "message": one_line(example, 300),
                         "students": [student for _, student in hits]})
    accuracies = [r["official_accuracy"] for r in graded if isinstance(r.get("official_accuracy"), (int, float))]
    max_scores = [r["max_score"] for r in graded if isinstance(r.get("max_score"), (int, float))]
    roster = [{"student": r["student"], "status": r["status"], "passed": bool(r.get("passed")),
               "score": float(r.get("score") or 0.0) if r["status"] == "graded" else None,
               "max_score": r.get("max_score") if isinstance(r.get("max_score"), (int, float)) else None}
              for r in sorted(records, key=lambda r: r["student"])]
    return {
        "total": len(records), "roster": roster,
        "by_status": {status: sum(1 for r in records if r["status"] == status) for status in STATUS_ORDER},
        "passed": sum(1 for r in graded if r.get("passed")),
        "scores": [float(r.get("score") or 0.0) for r in graded],
        "max_score": max(max_scores) if max_scores else 0.0,
        "per_task": per_task, "diagnoses": frequent[:15],
        "accuracies": Counter(round(a, 2) for a in accuracies),
        "identical": similarity.groups(records, "exact"),
        "renamed": [g for g in similarity.groups(records, "renamed")
                    if len({(r.get("fingerprints") or {}).get("exact") for r in g}) > 1],
    }


def report_link(student: str) -> str:
    """The student's report, relative to the summary (ids are file-name safe; quoted all the same)."""
    return f"submissions/{quote(student)}/report.html"


def histogram_edges(scores: list[float], max_score: float) -> list[float]:
    """Bin edges half a step either side of whole scores, so each bar stands on the scores it counts.

    One point a bin up to 50 points; beyond, a whole number of points a bin (at most about 50 bins).
    """
    top = max([max_score, 1.0, *scores])
    step = max(1, math.ceil(top / 50))
    count = math.ceil((top + 0.5) / step) + 1
    return [-0.5 + step * k for k in range(count)]


def histogram_png(scores: list[float], max_score: float) -> bytes | None:
    if not scores:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 3.2), dpi=100)
    axes = figure.subplots()
    top = max(max_score, max(scores), 1.0)
    edges = histogram_edges(scores, max_score)
    axes.hist(scores, bins=edges, color="#3b82f6", edgecolor="white")
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.set_xlabel("score")
    axes.set_ylabel("submissions")
    axes.set_title(f"Scores of {len(scores)} graded submissions (max {top:g})")
    axes.yaxis.get_major_locator().set_params(integer=True)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _score(row: dict) -> str:
    if row["score"] is None:
        return "-"
    return f"{row['score']:g}" + (f"/{row['max_score']:g}" if row["max_score"] is not None else "")


def _status(row: dict) -> str:
    if row["status"] != "graded":
        return row["status"]
    return "passed" if row["passed"] else "not passed"


def _percent(rate) -> str:
    return "n/a" if rate is None else f"{rate:.0%}"


def markdown(stats: dict, has_histogram: bool) -> str:
    by = stats["by_status"]
    graded = by["graded"]
    lines = ["# dli-grade batch summary", "",
             f"{stats['total']} submissions: {graded} graded, {by['unusable']} unusable, {by['timeout']} timed out, "
             f"{by['crashed']} crashed. Passed: {stats['passed']} of {graded} graded. Grader {__version__}.", "",
             "## Students", "", "| student | score | status | report |", "| --- | --- | --- | --- |"]
    lines += [f"| {_md(r['student'])} | {_score(r)} | {_md(_status(r))} | [report]({report_link(r['student'])}) |"
              for r in stats["roster"]]
    lines += ["", "## Pass rate per task", "", "| task | passed | graded | rate |", "| --- | --- | --- | --- |"]
    lines += [f"| `{t['task']}` | {t['passed']} | {t['graded']} | {_percent(t['rate'])} |" for t in stats["per_task"]]
    lines += ["", "## Most frequent diagnoses", ""]
    if stats["diagnoses"]:
        lines += ["| count | task / status | message (an example) | students |", "| --- | --- | --- | --- |"]
        for d in stats["diagnoses"]:
            students = ", ".join(d["students"][:8]) + (" ..." if len(d["students"]) > 8 else "")
            lines.append(f"| {d['count']} | `{_md(d['where'])}` | {_md(d['message'])} | {_md(students)} |")
    else:
        lines.append("None: every graded task passed.")
    lines += ["", "## Scores", ""]
    lines.append("![score histogram](score_histogram.png)" if has_histogram else "No graded submission.")
    if stats["accuracies"]:
        lines += ["", "## Generation: official accuracy (of 50 digits)", "", "| accuracy | submissions |", "| --- | --- |"]
        lines += [f"| {value:.0%} | {count} |" for value, count in sorted(stats["accuracies"].items())]
    lines += ["", "## Identical or near-identical answers", "",
              "Answer cells compared after removing comments, formatting and docstrings ('identical'), "
              "and also after renaming local variables ('renamed'). Short FIXMEs have few correct "
              "answers, so groups of correct submissions are expected; groups sharing a wrong answer "
              "deserve a look.", ""]
    for label, groups in (("identical", stats["identical"]), ("renamed", stats["renamed"])):
        if not groups:
            lines.append(f"- {label}: no group")
        for group in groups:
            members = ", ".join(f"{_md(r['student'])} ({float(r.get('score') or 0):g})" for r in group)
            lines.append(f"- {label}, {len(group)} submissions: {members}")
    return "\n".join(lines) + "\n"


CSS = """body{font:15px/1.45 system-ui,sans-serif;margin:0;background:#f5f6f8;color:#1d2330}
main{max-width:1100px;margin:0 auto;padding:24px}h1{font-size:22px}h2{font-size:17px;margin-top:26px}
table{border-collapse:collapse;background:#fff;box-shadow:0 1px 3px rgba(0,0,0,.08);border-radius:8px;overflow:hidden}
th,td{padding:7px 12px;border-bottom:1px solid #eceef2;text-align:left;vertical-align:top}
th{background:#fafbfc;font-size:12px;text-transform:uppercase;color:#555e6e}code{font-size:13px}
.bar{display:inline-block;height:10px;background:#1f9d55;border-radius:3px;vertical-align:middle}
.bar.bg{background:#e2e5ea;width:120px;position:relative}.bar.bg .bar{position:absolute;left:0;top:0}
img{max-width:100%;background:#fff;border-radius:8px}.muted{color:#6b7280}"""


def html_page(stats: dict, histogram: bytes | None) -> str:
    by = stats["by_status"]
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8"><title>dli-grade batch summary</title>',
             f"<style>{CSS}</style></head><body><main><h1>dli-grade batch summary</h1>",
             f"<p>{stats['total']} submissions: {by['graded']} graded, {by['unusable']} unusable, "
             f"{by['timeout']} timed out, {by['crashed']} crashed. Passed: <strong>{stats['passed']}</strong> of "
             f"{by['graded']} graded. Grader {_e(__version__)}.</p>",
             "<h2>Students</h2><table><tr><th>student</th><th>score</th><th>status</th><th>report</th></tr>"]
    parts += [f"<tr><td>{_e(r['student'])}</td><td>{_e(_score(r))}</td><td>{_e(_status(r))}</td>"
              f'<td><a href="{_e(report_link(r["student"]))}">report</a></td></tr>' for r in stats["roster"]]
    parts.append("</table><h2>Pass rate per task</h2><table><tr><th>task</th><th>passed</th><th>graded</th>"
                 "<th>rate</th></tr>")
    for t in stats["per_task"]:
        width = int(120 * (t["rate"] or 0))
        parts.append(f"<tr><td><code>{_e(t['task'])}</code></td><td>{t['passed']}</td><td>{t['graded']}</td>"
                     f'<td><span class="bar bg"><span class="bar" style="width:{width}px"></span></span> '
                     f"{_percent(t['rate'])}</td></tr>")
    parts.append("</table><h2>Most frequent diagnoses</h2>")
    if stats["diagnoses"]:
        parts.append("<table><tr><th>count</th><th>task / status</th><th>message (an example)</th><th>students</th></tr>")
        for d in stats["diagnoses"]:
            students = ", ".join(d["students"][:8]) + (" ..." if len(d["students"]) > 8 else "")
            parts.append(f"<tr><td>{d['count']}</td><td><code>{_e(d['where'])}</code></td><td>{_e(d['message'])}</td>"
                         f"<td>{_e(students)}</td></tr>")
        parts.append("</table>")
    else:
        parts.append('<p class="muted">None: every graded task passed.</p>')
    parts.append("<h2>Scores</h2>")
    if histogram:
        uri = "data:image/png;base64," + base64.b64encode(histogram).decode("ascii")
        parts.append(f'<img alt="histogram of scores" src="{uri}">')
    else:
        parts.append('<p class="muted">No graded submission.</p>')
    if stats["accuracies"]:
        parts.append("<h2>Generation: official accuracy (of 50 digits)</h2><table><tr><th>accuracy</th><th>submissions</th></tr>")
        parts += [f"<tr><td>{value:.0%}</td><td>{count}</td></tr>" for value, count in sorted(stats["accuracies"].items())]
        parts.append("</table>")
    parts.append("<h2>Identical or near-identical answers</h2><p class=\"muted\">Answer cells compared after removing "
                 "comments, formatting and docstrings (identical), and also after renaming local variables (renamed). "
                 "Groups of correct submissions are expected for short FIXMEs; groups sharing a wrong answer deserve a look.</p><ul>")
    for label, groups in (("identical", stats["identical"]), ("renamed", stats["renamed"])):
        if not groups:
            parts.append(f"<li>{label}: no group</li>")
        for group in groups:
            members = ", ".join(f'<a href="submissions/{_e(r["student"])}/report.html">{_e(r["student"])}</a> '
                                f"({float(r.get('score') or 0):g})" for r in group)
            parts.append(f"<li>{label}, {len(group)} submissions: {members}</li>")
    parts.append("</ul></main></body></html>")
    return "\n".join(parts) + "\n"


def write(out_dir: Path, records: list[dict], task_ids) -> dict:
    stats = statistics(records, task_ids)
    histogram = histogram_png(stats["scores"], stats["max_score"])
    if histogram:
        atomic.write_bytes(out_dir / "score_histogram.png", histogram)
    atomic.write_text(out_dir / "summary.md", safe_text(markdown(stats, histogram is not None)))
    atomic.write_text(out_dir / "summary.html", safe_text(html_page(stats, histogram)))
    return stats
