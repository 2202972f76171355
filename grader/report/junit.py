"""JUnit XML (GitLab `artifacts:reports:junit`, Jenkins, most CI test views): one testcase per task.

The output validates against the Jenkins xunit plugin's `junit-10.xsd` (tests/schemas/): a
testcase holds only failure/error/skipped and system-out/err, so each task's points, title
and location go in its `system-out`, and the suite's `properties` carry the totals. The
`gitlab` flavour adds `file` (the submission) to every testcase, which GitLab's test report
uses to link the notebook; the xunit schema has no such attribute, so it is left out otherwise.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from grader import __version__
from grader.core.i18n import _
from grader.core.sanitize import one_line, xml_text
from grader.report.common import error_of, points, task_views

CLASSNAME = "dli-grade"
FLAVOURS = ("jenkins", "gitlab")


def _properties(parent: ET.Element, values: dict) -> None:
    properties = ET.SubElement(parent, "properties")
    for name, value in values.items():
        ET.SubElement(properties, "property", name=name, value=xml_text(value))


def build(document: dict, flavour: str = "jenkins") -> ET.Element:
    if flavour not in FLAVOURS:
        raise ValueError(f"unknown JUnit flavour {flavour!r}")
    tasks = task_views(document)
    error = error_of(document)
    submission = xml_text(one_line(document.get("submission", ""), 300))
    root = ET.Element("testsuites")
    suite = ET.SubElement(root, "testsuite", name=submission or "submission")
    if submission:
        suite.set("file", submission)
    _properties(
        suite,
        {
            "submission": submission,
            "sha256": document.get("sha256", ""),
            "score": points(document.get("score")),
            "max_score": points(document.get("max_score")),
            "passed": str(document.get("passed") is True).lower(),
            "grader_version": __version__,
        },
    )
    counts = {"tests": 0, "failures": 0, "errors": 0}

    def testcase(name: str) -> ET.Element:
        case = ET.SubElement(suite, "testcase", classname=CLASSNAME, name=xml_text(name))
        if flavour == "gitlab" and submission:
            case.set("file", submission)
        counts["tests"] += 1
        return case

    if error:
        case = testcase("load")
        element = ET.SubElement(case, "error", message=xml_text(error["message"]), type=xml_text(error["status"]))
        element.text = xml_text(error["message"])
        counts["errors"] += 1
    for task in tasks:
        case = testcase(task.id)
        case.set("time", f"{float((document.get('timings') or {}).get(task.id, 0.0) or 0.0):.2f}")
        body = "\n".join(
            [task.message + (f" [{task.where}]" if task.where else "")]
            + [_("hint: {hint}").format(hint=hint) for hint in task.hints]
        )
        if task.status in ("failed", "error"):
            tag = "failure" if task.status == "failed" else "error"
            element = ET.SubElement(case, tag, message=xml_text(task.message), type=task.status)
            element.text = xml_text(body)
            counts["failures" if tag == "failure" else "errors"] += 1
        # Points, title and location: the schema allows no properties in a testcase.
        summary = _("{score}/{max_score} points: {title}").format(
            score=points(task.score), max_score=points(task.max_score), title=_(task.title)
        )
        summary += f" [{task.where}]" if task.where else ""
        if task.status == "passed" and task.message and task.message not in ("correct", _("correct")):
            summary += "\n" + body  # a passing task's note
        ET.SubElement(case, "system-out").text = xml_text(summary)
    for key, value in counts.items():
        suite.set(key, str(value))
    suite.set("time", f"{float(document.get('duration_s') or 0.0):.2f}")
    for key, value in counts.items():
        root.set(key, str(value))  # the same text as the suite's
    return root


def render(document: dict, flavour: str = "jenkins") -> str:
    root = build(document, flavour)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")
