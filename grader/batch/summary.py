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
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote

from grader import __version__
from grader.batch import similarity
from grader.core import atomic, i18n
from grader.core.sanitize import one_line, safe_text

STATUS_ORDER = ("graded", "unusable", "timeout", "crashed")


def _md(text: object) -> str:
    return html.escape(str(text)).replace("|", "\\|")


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _shape(message: str) -> str:
    """Group key of a diagnosis: the message with its numbers blanked (values differ per student)."""
    return re.sub(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", "#", message)


def statistics(records: list[dict], task_ids: Iterable[str]) -> dict:
    graded = [r for r in records if r["status"] == "graded"]
    per_task = []
    for task in task_ids:
        outcomes = [(r.get("tasks") or {}).get(task) for r in graded]
        ran = [o for o in outcomes if o]
        passed = sum(1 for o in ran if o.get("status") == "passed")
        per_task.append(
            {"task": task, "graded": len(ran), "passed": passed, "rate": passed / len(ran) if ran else None}
        )
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
        frequent.append(
            {
                "where": where,
                "count": len(hits),
                "message": one_line(example, 300),
                "students": [student for _, student in hits],
            }
        )
    accuracies = [r["official_accuracy"] for r in graded if isinstance(r.get("official_accuracy"), (int, float))]
    max_scores = [r["max_score"] for r in graded if isinstance(r.get("max_score"), (int, float))]
    roster = [
        {
            "student": r["student"],
            "status": r["status"],
            "passed": bool(r.get("passed")),
            "score": float(r.get("score") or 0.0) if r["status"] == "graded" else None,
            "max_score": r.get("max_score") if isinstance(r.get("max_score"), (int, float)) else None,
        }
        for r in sorted(records, key=lambda r: r["student"])
    ]
    return {
        "total": len(records),
        "roster": roster,
        "by_status": {status: sum(1 for r in records if r["status"] == status) for status in STATUS_ORDER},
        "passed": sum(1 for r in graded if r.get("passed")),
        "scores": [float(r.get("score") or 0.0) for r in graded],
        "max_score": max(max_scores) if max_scores else 0.0,
        "per_task": per_task,
        "diagnoses": frequent[:15],
        "accuracies": Counter(round(a, 2) for a in accuracies),
        "identical": similarity.groups(records, "exact"),
        "renamed": [
            g
            for g in similarity.groups(records, "renamed")
            if len({(r.get("fingerprints") or {}).get("exact") for r in g}) > 1
        ],
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
    axes.xaxis.get_major_locator().set_params(integer=True)  # type: ignore[call-arg]  # an AutoLocator: takes it
    axes.set_xlabel("score")
    axes.set_ylabel("submissions")
    axes.set_title(f"Scores of {len(scores)} graded submissions (max {top:g})")
    axes.yaxis.get_major_locator().set_params(integer=True)  # type: ignore[call-arg]  # (see x axis)
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
        return str(row["status"])  # the batch's machine word (unusable, timeout, crashed), as in grades.csv
    return i18n._("passed") if row["passed"] else i18n._("not passed")


def _percent(rate: float | None) -> str:
    return i18n._("n/a") if rate is None else f"{rate:.0%}"


# The summary's labels, translated where the page is drawn (the histogram's PNG stays English: its font may
# have no CJK glyphs).
def _counts(stats: dict, html_page: bool = False) -> str:
    """The counts sentence; on the HTML page the template is escaped and the number passed is bold."""
    by = stats["by_status"]
    template = i18n._(
        "{total} submissions: {graded} graded, {unusable} unusable, {timeout} timed out, {crashed} "
        "crashed. Passed: {passed} of {graded} graded. Grader {version}."
    )
    passed, version = stats["passed"], __version__
    if html_page:
        template, passed, version = _e(template), f"<strong>{passed}</strong>", _e(version)
    return template.format(
        total=stats["total"],
        graded=by["graded"],
        unusable=by["unusable"],
        timeout=by["timeout"],
        crashed=by["crashed"],
        passed=passed,
        version=version,
    )


def _labels() -> dict:
    return {
        "title": i18n._("dli-grade batch summary"),
        "students": i18n._("Students"),
        "student": i18n._("student"),
        "score": i18n._("score"),
        "status": i18n._("status"),
        "report": i18n._("report"),
        "pass_rate": i18n._("Pass rate per task"),
        "task": i18n._("task"),
        "passed": i18n._("passed"),
        "graded": i18n._("graded"),
        "rate": i18n._("rate"),
        "diagnoses": i18n._("Most frequent diagnoses"),
        "count": i18n._("count"),
        "where": i18n._("task / status"),
        "message": i18n._("message (an example)"),
        "students_column": i18n._("students"),
        "none": i18n._("None: every graded task passed."),
        "scores": i18n._("Scores"),
        "histogram": i18n._("score histogram"),
        "no_grade": i18n._("No graded submission."),
        "accuracy_title": i18n._("Generation: official accuracy (of 50 digits)"),
        "accuracy": i18n._("accuracy"),
        "submissions": i18n._("submissions"),
        "identical_title": i18n._("Identical or near-identical answers"),
        "identical": i18n._("identical"),
        "renamed": i18n._("renamed"),
    }


def _no_group(label: str) -> str:
    return i18n._("{label}: no group").format(label=label)


def _group(label: str, size: int, members: str) -> str:
    return i18n._("{label}, {count} submissions: {members}").format(label=label, count=size, members=members)


def markdown(stats: dict, has_histogram: bool) -> str:
    label = _labels()

    def header(*names: str) -> list[str]:
        return ["| " + " | ".join(label[name] for name in names) + " |", "| " + " | ".join("---" for _ in names) + " |"]

    lines = [
        f"# {label['title']}",
        "",
        _counts(stats),
        "",
        f"## {label['students']}",
        "",
        *header("student", "score", "status", "report"),
    ]
    lines += [
        f"| {_md(r['student'])} | {_score(r)} | {_md(_status(r))} | [{label['report']}]({report_link(r['student'])}) |"
        for r in stats["roster"]
    ]
    lines += ["", f"## {label['pass_rate']}", "", *header("task", "passed", "graded", "rate")]
    lines += [f"| `{t['task']}` | {t['passed']} | {t['graded']} | {_percent(t['rate'])} |" for t in stats["per_task"]]
    lines += ["", f"## {label['diagnoses']}", ""]
    if stats["diagnoses"]:
        lines += header("count", "where", "message", "students_column")
        for d in stats["diagnoses"]:
            students = ", ".join(d["students"][:8]) + (" ..." if len(d["students"]) > 8 else "")
            lines.append(f"| {d['count']} | `{_md(d['where'])}` | {_md(d['message'])} | {_md(students)} |")
    else:
        lines.append(label["none"])
    lines += ["", f"## {label['scores']}", ""]
    lines.append(f"![{label['histogram']}](score_histogram.png)" if has_histogram else label["no_grade"])
    if stats["accuracies"]:
        lines += ["", f"## {label['accuracy_title']}", "", *header("accuracy", "submissions")]
        lines += [f"| {value:.0%} | {count} |" for value, count in sorted(stats["accuracies"].items())]
    lines += [
        "",
        f"## {label['identical_title']}",
        "",
        i18n._(
            "Answer cells compared after removing comments, formatting and docstrings ('identical'), "
            "and also after renaming local variables ('renamed'). Short FIXMEs have few correct "
            "answers, so groups of correct submissions are expected; groups sharing a wrong answer "
            "deserve a look."
        ),
        "",
    ]
    for kind, groups in (("identical", stats["identical"]), ("renamed", stats["renamed"])):
        if not groups:
            lines.append(f"- {_no_group(label[kind])}")
        for group in groups:
            members = ", ".join(f"{_md(r['student'])} ({float(r.get('score') or 0):g})" for r in group)
            lines.append(f"- {_group(label[kind], len(group), members)}")
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
    label = _labels()

    def header(*names: str) -> str:
        return "<table><tr>" + "".join(f"<th>{_e(label[name])}</th>" for name in names) + "</tr>"

    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{i18n.current()}"><head><meta charset="utf-8"><title>{_e(label["title"])}</title>',
        f"<style>{CSS}</style></head><body><main><h1>{_e(label['title'])}</h1>",
        f"<p>{_counts(stats, html_page=True)}</p>",
        f"<h2>{_e(label['students'])}</h2>" + header("student", "score", "status", "report"),
    ]
    parts += [
        f"<tr><td>{_e(r['student'])}</td><td>{_e(_score(r))}</td><td>{_e(_status(r))}</td>"
        f'<td><a href="{_e(report_link(r["student"]))}">{_e(label["report"])}</a></td></tr>'
        for r in stats["roster"]
    ]
    parts.append(f"</table><h2>{_e(label['pass_rate'])}</h2>" + header("task", "passed", "graded", "rate"))
    for t in stats["per_task"]:
        width = int(120 * (t["rate"] or 0))
        parts.append(
            f"<tr><td><code>{_e(t['task'])}</code></td><td>{t['passed']}</td><td>{t['graded']}</td>"
            f'<td><span class="bar bg"><span class="bar" style="width:{width}px"></span></span> '
            f"{_percent(t['rate'])}</td></tr>"
        )
    parts.append(f"</table><h2>{_e(label['diagnoses'])}</h2>")
    if stats["diagnoses"]:
        parts.append(header("count", "where", "message", "students_column"))
        for d in stats["diagnoses"]:
            students = ", ".join(d["students"][:8]) + (" ..." if len(d["students"]) > 8 else "")
            parts.append(
                f"<tr><td>{d['count']}</td><td><code>{_e(d['where'])}</code></td><td>{_e(d['message'])}</td>"
                f"<td>{_e(students)}</td></tr>"
            )
        parts.append("</table>")
    else:
        parts.append(f'<p class="muted">{_e(label["none"])}</p>')
    parts.append(f"<h2>{_e(label['scores'])}</h2>")
    if histogram:
        uri = "data:image/png;base64," + base64.b64encode(histogram).decode("ascii")
        parts.append(f'<img alt="{_e(i18n._("histogram of scores"))}" src="{uri}">')
    else:
        parts.append(f'<p class="muted">{_e(label["no_grade"])}</p>')
    if stats["accuracies"]:
        parts.append(f"<h2>{_e(label['accuracy_title'])}</h2>" + header("accuracy", "submissions"))
        parts += [
            f"<tr><td>{value:.0%}</td><td>{count}</td></tr>" for value, count in sorted(stats["accuracies"].items())
        ]
        parts.append("</table>")
    explanation = i18n._(
        "Answer cells compared after removing comments, formatting and docstrings (identical), "
        "and also after renaming local variables (renamed). Groups of correct submissions are "
        "expected for short FIXMEs; groups sharing a wrong answer deserve a look."
    )
    parts.append(f'<h2>{_e(label["identical_title"])}</h2><p class="muted">{_e(explanation)}</p><ul>')
    for kind, groups in (("identical", stats["identical"]), ("renamed", stats["renamed"])):
        if not groups:
            parts.append(f"<li>{_e(_no_group(label[kind]))}</li>")
        for group in groups:
            members = ", ".join(
                f'<a href="submissions/{_e(r["student"])}/report.html">{_e(r["student"])}</a> '
                f"({float(r.get('score') or 0):g})"
                for r in group
            )
            parts.append(f"<li>{_e(_group(label[kind], len(group), '{members}')).format(members=members)}</li>")
    parts.append("</ul></main></body></html>")
    return "\n".join(parts) + "\n"


def write(out_dir: Path, records: list[dict], task_ids: Iterable[str]) -> dict:
    stats = statistics(records, task_ids)
    histogram = histogram_png(stats["scores"], stats["max_score"])
    if histogram:
        atomic.write_bytes(out_dir / "score_histogram.png", histogram)
    atomic.write_text(out_dir / "summary.md", safe_text(markdown(stats, histogram is not None)))
    atomic.write_text(out_dir / "summary.html", safe_text(html_page(stats, histogram)))
    return stats
