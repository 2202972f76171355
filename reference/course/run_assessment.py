"""Stand-in for the course's `run_assessment`: the official pass/fail check, with our judge.

For each digit, five guided samples are drawn and classified raw (MNIST normalisation, argmax,
no clamping); the model passes at 95% accuracy (48 of 50).
"""

from __future__ import annotations

import torch

from reference.conditioning import get_context_mask
from reference.judge import classify, load_judge

DIGITS = range(10)
SAMPLES_PER_DIGIT = 5
PASS_ACCURACY = 0.95
PASS_LINE = "Passed: the judge recognised the digits your model drew. Well done!"
FAIL_PREFIX = "Not passed:"


def _model_device(model) -> torch.device:
    parameter = next(iter(model.parameters()), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def run_assessment(model, sample_func, w):
    """Judge `sample_func(model, c_hot, w=w)` on five samples of each digit; returns the accuracy."""
    device = _model_device(model)
    judge = load_judge()
    correct = 0
    for digit in DIGITS:
        labels = torch.full((SAMPLES_PER_DIGIT,), digit, device=device)
        c_hot, _ = get_context_mask(labels, 0.0)
        # Float one-hots, so a sampler whose mask is ones_like(c) still feeds floats to Linear layers.
        samples = sample_func(model, c_hot.float(), w=w)
        predictions = classify(judge, samples)
        correct += int((predictions == digit).sum())
        print(f"Digit {digit}: predicted {predictions.tolist()}")
    accuracy = correct / (len(DIGITS) * SAMPLES_PER_DIGIT)
    print(f"Final Accuracy: {accuracy}")
    if accuracy >= PASS_ACCURACY:
        print(PASS_LINE)
    else:
        print(
            f"{FAIL_PREFIX} the judge recognised {correct} of {len(DIGITS) * SAMPLES_PER_DIGIT} "
            f"digits; at least {PASS_ACCURACY:.0%} is needed. Train longer or adjust w."
        )
    return accuracy
