"""How the reports show the generation task's figures: the declaration's report hooks.

`text_details` gives the lines under the task's row of the text report, `html_details` the HTML
section after the table, `result_fields` the official verdict at the top of the result document.
Each reads only the task's result details, so a report rendered from a saved document says the same.
"""

from __future__ import annotations

import html
from pathlib import Path

from grader.core import i18n
from grader.core.i18n import _
from grader.core.images import grid_data_uri
from grader.core.sanitize import one_line


def escape(text: object) -> str:
    return html.escape(str(text), quote=True)


def result_fields(details: dict) -> dict:
    """The official grader's verdict, for the top of the result document, once it was reached."""
    if "official_accuracy" not in details:
        return {}
    return {"official_accuracy": details["official_accuracy"], "official_passed": details["official_passed"]}


def text_details(details: dict) -> list[str]:
    """The figures behind the generation verdict: official bar, larger sample, grid (none before judging)."""
    if "official_accuracy" not in details:
        return []
    low, high = details["accuracy_ci95"]
    trusted = details.get("reference_sampler_accuracy")
    official = _("passed") if details["official_passed"] else _("not passed")
    lines = [
        _("official check ({profile} profile, w = {w}): {accuracy} of 50, {official} (48 needed)").format(
            profile=details["profile"],
            w=details["w"],
            accuracy=f"{details['official_accuracy']:.0%}",
            official=official,
        ),
        _(
            "all digits drawn: {accuracy} of {samples} (95% interval {low} to {high}); the grader's own sampler: "
            "{trusted}"
        ).format(
            accuracy=f"{details['accuracy']:.1%}",
            samples=details["samples"],
            low=f"{low:.1%}",
            high=f"{high:.1%}",
            trusted=_("not run") if trusted is None else f"{trusted:.0%}",
        ),
    ]
    if details.get("profile_reason"):
        lines.append(
            _("profile {profile}: {reason}").format(profile=details["profile"], reason=details["profile_reason"])
        )
    if "course_flow" in details:
        flow = details["course_flow"]
        lines.append(
            _("course flow: {ran} of {cells} cells run in a Jupyter kernel; run_assessment printed: {output}").format(
                ran=flow["ran"],
                cells=flow["cells"],
                output=one_line(flow["assessment_output"])[-200:] or _("(nothing)"),
            )
        )
    plan = details.get("larger_sample")
    if isinstance(plan, dict) and plan.get("state") == "not_drawn":
        lines.append(_("larger sample {why}").format(why=plan.get("why", "")))
    plan = details.get("trusted_path")
    if isinstance(plan, dict) and plan.get("state") == "not_drawn":
        lines.append(_("the grader's own sampler {why}").format(why=plan.get("why", "")))
    weak = {d: a for d, a in details["per_digit_accuracy"].items() if a < 1.0}
    if weak:
        lines.append(
            _("per digit: {accuracies}").format(accuracies=", ".join(f"{d}: {a:.0%}" for d, a in sorted(weak.items())))
        )
    lines += details.get("confusions", [])[:3]
    if "short_training" in details:
        st = details["short_training"]
        lines.append(
            _("short training ({steps} steps): held-out loss {loss}, reference {reference}").format(
                steps=st["steps"], loss=f"{st['heldout_loss']:.3f}", reference=f"{st['reference_heldout_loss']:.3f}"
            )
        )
    if details.get("grid"):
        lines.append(_("samples: {path}").format(path=details["grid"]))
    return lines


def html_details(details: dict, base: Path | None) -> str:
    """The HTML section of the generation verdict's figures and the grid of samples, escaped; "" for none."""
    rows = []
    if "official_accuracy" in details:
        official = details.get("official_accuracy")
        verdict = i18n._("passed") if details.get("official_passed") else i18n._("not passed")
        text = i18n._("official check ({profile} profile, w = {w}): {accuracy} of 50, {official} (48 needed)").format(
            profile=details.get("profile", "?"),
            w=details.get("w", "?"),
            official=verdict,
            accuracy=f"{official:.0%}" if isinstance(official, (int, float)) else official,
        )
        rows.append(f"<li>{escape(text)}</li>")
    if isinstance(details.get("accuracy"), (int, float)):
        rows.append(
            "<li>"
            + escape(
                i18n._("all digits drawn: {accuracy} of {samples}").format(
                    accuracy=f"{details['accuracy']:.1%}", samples=details.get("samples", "?")
                )
            )
            + "</li>"
        )
    per_digit = details.get("per_digit_accuracy")
    if isinstance(per_digit, dict):
        cells = " ".join(
            f"<span>{escape(d)}: {a:.0%}</span>" for d, a in sorted(per_digit.items()) if isinstance(a, (int, float))
        )
        rows.append("<li>" + escape(i18n._("per digit: {accuracies}")).format(accuracies=cells) + "</li>")
    for line in (details.get("confusions") or [])[:3]:
        rows.append(f"<li>{escape(one_line(line))}</li>")
    uri = grid_data_uri(details.get("grid"), base)
    alt = escape(i18n._("generated digits, one row per digit 0 to 9"))
    image = f'<p><img class="grid" alt="{alt}" src="{uri}"></p>' if uri else ""
    if not rows and not image:
        return ""
    return (
        f'<section><h2>{escape(i18n._("Generated digits"))}</h2><div class="box"><ul>{"".join(rows)}</ul>{image}'
        "</div></section>"
    )
