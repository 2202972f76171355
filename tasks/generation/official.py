"""The official check's facts and the MNIST classifier it uses (the course's bar, reproduced)."""

from __future__ import annotations

import re
from functools import lru_cache

import torch

ID = "generation"
POINTS = 28  # of 50: all or nothing, like the official grader
OFFICIAL_PER_DIGIT = 5
OFFICIAL_BAR = 0.95
NEAR_BAR = (45, 49)  # official counts (of 50) where a fresh draw could well give the other verdict
COURSE_CHS = (64, 64, 128)
# What the course's run_assessment prints last: "Final Accuracy" and a number, as a fraction or a percentage.
FINAL_ACCURACY = re.compile(r"Final Accuracy\W*?(\d+(?:\.\d+)?)\s*(%?)", re.IGNORECASE)
OFFICIAL_MARKER = "--- the course's own run_assessment ---"  # printed by the stand-in before running it


@lru_cache(maxsize=1)
def classifier_net():
    """The shipped MNIST classifier, loaded once per grader process (batch grading reuses it)."""
    from reference.classifier import load_classifier

    return load_classifier()


def classify(images: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """The classifier's predictions, with non-finite pixels blanked; also whether all were finite."""
    from reference.classifier import classify

    finite = bool(torch.isfinite(images).all())
    images = torch.nan_to_num(images, nan=0.0, posinf=0.0, neginf=0.0)
    return classify(classifier_net(), images), finite


def printed_accuracy(output: str) -> float | None:
    """The accuracy the course's own run_assessment printed in the assessment cell (after the
    stand-in's marker), as a fraction; None when it printed none. The student's code prints into
    the same cell, so this is reported beside the grader's verdict, never as it."""
    if OFFICIAL_MARKER not in output:
        return None
    found = FINAL_ACCURACY.findall(output.rsplit(OFFICIAL_MARKER, 1)[1])
    if not found:
        return None
    number, percent = found[-1]
    value = float(number)
    return value / 100 if percent or value > 1 else value
