"""Stand-in for the course's `run_assessment`: draws the assessment's samples; the grader classifies them.

`run_assessment(model, sample_func, w)` draws exactly what the official grader draws: for each
digit 0..9 in turn it builds a float one-hot of five copies of the digit (drop probability 0,
on the model's device) and calls `sample_func(model, c_hot, w=w)` (`w` by keyword).

Unlike the course's module it does not classify and prints no accuracy or pass/fail verdict:
the student's code runs where the grader's judge and its weights cannot be reached. Instead it
  - keeps the 50 samples in the module-level `last_samples` (float32, CPU, shape (50, 1, 28, 28),
    digits in order 0..9, five each) and their digits in `last_labels` (int64, shape (50,));
  - saves both with `torch.save({"samples": ..., "labels": ...}, "run_assessment_samples.pt")`
    in the current folder;
  - prints a line per digit saying its samples were drawn and a final line saying that the
    grader classifies them (MNIST normalisation, argmax, pass at 95%, i.e. 48 of 50);
  - returns the samples tensor (the same object as `last_samples`).
Each image must come back as 1x28x28 (five per call); anything else raises ValueError.

Where the grader was given the course's own helpers (`dli-grade --profile course --course-helpers
DIR`), the folder is named by the DLI_GRADE_COURSE_HELPERS environment variable: after saving its
samples, this stand-in runs that folder's `run_assessment(model, sample_func, w)` as well, after
a line OFFICIAL_MARKER, so that the verdict the course prints can be read next to the grader's.
Self-contained: nothing here imports `grader`, `tasks` or `reference`.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import torch
import torch.nn.functional as F

DIGITS = range(10)
SAMPLES_PER_DIGIT = 5
N_CLASSES = 10
IMAGE_SHAPE = (1, 28, 28)
PASS_ACCURACY = 0.95  # the official bar, applied by the grader to the saved samples
SAMPLES_FILE = "run_assessment_samples.pt"
OFFICIAL_VARIABLE = "DLI_GRADE_COURSE_HELPERS"
OFFICIAL_MARKER = "--- the course's own run_assessment ---"

last_samples = None  # float32 CPU tensor (50, 1, 28, 28) after a successful run
last_labels = None  # int64 CPU tensor (50,): 0 x5, 1 x5, ..., 9 x5


def _model_device(model) -> torch.device:
    parameters = getattr(model, "parameters", None)
    parameter = next(iter(parameters()), None) if callable(parameters) else None
    return parameter.device if parameter is not None else torch.device("cpu")


def run_assessment(model, sample_func, w):
    """Draw five samples of each digit with `sample_func(model, c_hot, w=w)`; returns them (50, 1, 28, 28)."""
    global last_samples, last_labels
    last_samples = last_labels = None
    device = _model_device(model)
    drawn = []
    for digit in DIGITS:
        labels = torch.full((SAMPLES_PER_DIGIT,), digit, device=device)
        # Float one-hots, so a sampler whose mask is ones_like(c) still feeds floats to Linear layers.
        c_hot = F.one_hot(labels, N_CLASSES).float()
        samples = sample_func(model, c_hot, w=w)
        if not isinstance(samples, torch.Tensor):
            raise ValueError(f"sample_func returned {type(samples).__name__} for digit {digit}, not a tensor")
        wanted = (SAMPLES_PER_DIGIT, *IMAGE_SHAPE)
        if tuple(samples.shape) != wanted:
            raise ValueError(
                f"sample_func returned shape {tuple(samples.shape)} for digit {digit}; "
                f"the assessment needs {wanted} (one 1x28x28 image per row of c_hot)"
            )
        drawn.append(samples.detach().to("cpu", torch.float32))
        print(f"Digit {digit}: drew {SAMPLES_PER_DIGIT} samples")
    samples = torch.cat(drawn)
    labels = torch.arange(len(DIGITS)).repeat_interleave(SAMPLES_PER_DIGIT)
    torch.save({"samples": samples, "labels": labels}, SAMPLES_FILE)
    last_samples, last_labels = samples, labels
    print(
        f"Drew {len(samples)} samples with w={w} and saved them to {SAMPLES_FILE}; the grader "
        f"classifies them (the official check passes at {PASS_ACCURACY:.0%} accuracy)."
    )
    if os.environ.get(OFFICIAL_VARIABLE):
        _run_official(os.environ[OFFICIAL_VARIABLE], model, sample_func, w)
    return samples


def _run_official(folder: str, model, sample_func, w) -> None:
    """The course's own run_assessment from `folder`, run in that folder (it finds its judge there)."""
    print(OFFICIAL_MARKER, flush=True)
    spec = importlib.util.spec_from_file_location("_course_run_assessment", os.path.join(folder, "run_assessment.py"))
    module = importlib.util.module_from_spec(spec)
    here = os.getcwd()
    sys.path.append(folder)
    try:
        os.chdir(folder)
        spec.loader.exec_module(module)
        module.run_assessment(model, sample_func, w)
    except Exception as error:  # report it in the cell's output; the grader's own verdict stands
        print(f"the course's run_assessment raised {type(error).__name__}: {error}")
    finally:
        os.chdir(here)
        sys.path.remove(folder)
