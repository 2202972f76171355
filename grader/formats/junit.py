"""JUnit XML (GitLab `artifacts:reports:junit`, Jenkins, most CI test views): one testcase per task."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from grader import __version__
from grader.formats.common import error_of, points, task_views
from grader.sanitize import one_line, xml_text

CLASSNAME = "dli-grade"


def _properties(parent: ET.Element, values: dict) -> None:
    properties = ET.SubElement(parent, "properties")
    for name, value in values.items():
        ET.SubElement(properties, "property", name=name, value=xml_text(value))


def build(document: dict) -> ET.Element:
    tasks = task_views(document)
    error = error_of(document)
    suite_name = xml_text(one_line(document.get("submission", "submission"), 300))
    root = ET.Element("testsuites")
    suite = ET.SubElement(root, "testsuite", name=suite_name)
    _properties(suite, {
        "submission": one_line(document.get("submission", ""), 300), "sha256": document.get("sha256", ""),
        "score": points(document.get("score")), "max_score": points(document.get("max_score")),
        "passed": str(document.get("passed") is True).lower(), "grader_version": __version__,
    })
    counts = {"tests": 0, "failures": 0, "errors": 0}
    if error:
        case = ET.SubElement(suite, "testcase", classname=CLASSNAME, name="load")
        element = ET.SubElement(case, "error", message=xml_text(error["message"]), type=xml_text(error["status"]))
        element.text = xml_text(error["message"])
        counts["tests"] += 1
        counts["errors"] += 1
    for task in tasks:
        case = ET.SubElement(suite, "testcase", classname=CLASSNAME, name=xml_text(task.id))
        case.set("time", f"{float((document.get('timings') or {}).get(task.id, 0.0) or 0.0):.2f}")
        _properties(case, {"score": points(task.score), "max_score": points(task.max_score),
                           "title": task.title, "location": task.where})
        counts["tests"] += 1
        body = "\n".join([task.message + (f" [{task.where}]" if task.where else "")]
                         + [f"hint: {hint}" for hint in task.hints])
        if task.status in ("failed", "error"):
            tag = "failure" if task.status == "failed" else "error"
            element = ET.SubElement(case, tag, message=xml_text(task.message), type=task.status)
            element.text = xml_text(body)
            counts["failures" if tag == "failure" else "errors"] += 1
        elif task.message and task.message != "correct":
            ET.SubElement(case, "system-out").text = xml_text(body)  # a passing task's note
    for key, value in counts.items():
        suite.set(key, str(value))
    suite.set("time", f"{float(document.get('duration_s') or 0.0):.2f}")
    for key in counts:
        root.set(key, suite.get(key))
    return root


def render(document: dict) -> str:
    root = build(document)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")
