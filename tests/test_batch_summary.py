"""The class report (summary.md / summary.html): a roster linking every report, aligned histogram bins."""

from __future__ import annotations

import itertools
import re
from html.parser import HTMLParser

from grader.batch import summary


def record(student, status="graded", score=0.0, passed=False):
    return {
        "student": student,
        "source": f"{student}.ipynb",
        "sha256": "",
        "status": status,
        "message": "" if status == "graded" else "x.ipynb: not valid JSON",
        "score": score,
        "max_score": 50.0 if status == "graded" else None,
        "passed": passed,
        "tasks": {
            "q": {
                "status": "passed" if passed else "failed",
                "score": 2.0 if passed else 0.0,
                "max_score": 2.0,
                "message": "correct" if passed else "wrong",
            }
        },
        "official_accuracy": None,
        "fingerprints": {},
    }


RECORDS = [record("bo", score=12.0), record("ann", score=50.0, passed=True), record("cy", status="unusable")]


def links(page: str) -> list[str]:
    found = []

    class Parser(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag == "a":
                found.append(dict(attrs)["href"])

    Parser().feed(page)
    return found


def test_the_roster_lists_every_student_with_score_status_and_a_link_to_the_report(tmp_path):
    stats = summary.write(tmp_path, RECORDS, ["q"])
    assert [(r["student"], r["score"], r["status"]) for r in stats["roster"]] == [
        ("ann", 50.0, "graded"),
        ("bo", 12.0, "graded"),
        ("cy", None, "unusable"),
    ]
    markdown = (tmp_path / "summary.md").read_text()
    rows = re.findall(r"^\| (\w+) \| (\S+) \| ([\w ]+) \| \[report\]\((\S+)\) \|$", markdown, re.M)
    assert rows == [
        ("ann", "50/50", "passed", "submissions/ann/report.html"),
        ("bo", "12/50", "not passed", "submissions/bo/report.html"),
        ("cy", "-", "unusable", "submissions/cy/report.html"),
    ]
    page = (tmp_path / "summary.html").read_text()
    assert [link for link in links(page) if link.endswith("report.html")][:3] == [
        "submissions/ann/report.html",
        "submissions/bo/report.html",
        "submissions/cy/report.html",
    ]


def test_histogram_bins_are_centred_on_whole_scores():
    # 0..50 points: 51 bins of one point, each integer score in the middle of its own bin
    edges = summary.histogram_edges([0.0, 12.0, 50.0], 50.0)
    assert len(edges) == 52 and edges[0] == -0.5 and edges[-1] == 50.5
    for score in range(51):
        index = next(i for i in range(len(edges) - 1) if edges[i] <= score < edges[i + 1])
        assert edges[index] + 0.5 == score
    # a larger scale: whole bins of several points, still starting half a point below 0
    wide = summary.histogram_edges([0.0, 120.0], 120.0)
    steps = {round(b - a, 9) for a, b in itertools.pairwise(wide)}
    assert steps == {3} and wide[0] == -0.5 and wide[-1] >= 120
