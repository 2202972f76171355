"""The official check's facts and the judge network it uses (the course's bar, reproduced)."""

from __future__ import annotations

from functools import lru_cache

import torch

ID = "generation"
POINTS = 28  # of 50: all or nothing, like the official grader
OFFICIAL_PER_DIGIT = 5
OFFICIAL_BAR = 0.95
NEAR_BAR = (45, 49)  # official counts (of 50) where a fresh draw could well give the other verdict
COURSE_CHS = (64, 64, 128)


@lru_cache(maxsize=1)
def judge_net():
    """The shipped judge, loaded once per grader process (batch grading reuses it)."""
    from reference.judge import load_judge

    return load_judge()


def classify(images: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """The judge's predictions, with non-finite pixels blanked; also whether all were finite."""
    from reference.judge import classify

    finite = bool(torch.isfinite(images).all())
    images = torch.nan_to_num(images, nan=0.0, posinf=0.0, neginf=0.0)
    return classify(judge_net(), images), finite
