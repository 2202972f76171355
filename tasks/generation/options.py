"""The generation task's options: which profile runs, and its budgets on this device.

The runner asks every task's declaration for its options (`Task.options`) and passes them to
its `check` as `context.options`; this task's `choose_options` picks the profile (`auto`: train
with CUDA, else transplant) and says why, and refuses what cannot be done here (a ValueError,
which the runner reports as unusable input).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from grader.core.i18n import N_, _
from tasks.declaration import TaskOptions
from tasks.generation.official import COURSE_CHS, OFFICIAL_PER_DIGIT

GPU_TRAIN_STEPS = 2000  # about 1,000 eager steps reach 98-99.6% at w = 1 on an H100 (docs/calibration.md)
CPU_TRAIN_STEPS = 200  # the train profile on a CPU: the whole path at a width and length a test affords
CPU_TRAIN_CHS = (32, 32, 64)
CPU_CHECK_STEPS = 40
GENERATION_TIMEOUT = 900.0
COURSE_FLOW_TIMEOUT = 24 * 3600.0


@dataclass(frozen=True)
class GenerationOptions(TaskOptions):
    """The generation task's profile and budgets (`timeout`, `child_mounts` and `profile` are read by the grader)."""

    profile: str = "transplant"
    profile_reason: str | None = None
    train_steps: int = CPU_TRAIN_STEPS
    down_chs: tuple[int, ...] = COURSE_CHS
    batch_size: int = 128
    per_digit: int = 10  # digits of each kind in all: the official 5 and the larger sample's
    larger_sample: str = "always"  # "near_bar": only where the official count sits near the bar; "asked": never unasked
    grader_per_digit: int = 1  # digits of each kind the grader's trusted path draws
    check_steps: int = 0  # transplant: steps of the narrow training run (0: none)
    artifacts_dir: str | Path | None = None  # where the grid of samples is written
    stem: str = "submission"  # the submission's file name without its suffix, for the artifacts' names


# Why each profile is what it is; translated where the reason is written (in the grade's language).
PROFILE_REASONS = {
    "train": N_("the student's model trained from a seeded start through their training cell"),
    "transplant": N_("the reference weights loaded into the student's model"),
    "course": N_("the notebook run top to bottom in a Jupyter kernel, as the DLI platform runs it"),
}


def choose_options(
    device: str,
    profile: str = "auto",
    train_steps: int | None = None,
    per_digit: int | None = None,
    artifacts_dir: Path | None = None,
    stem: str = "submission",
    down_chs: tuple | None = None,
    force: bool = False,
    course_helpers: str | Path | None = None,
) -> GenerationOptions:
    """Budgets of the generation task for its profile (train: from a seeded start; transplant:
    the reference weights; course: the notebook as written). On a CPU the train profile runs
    narrow and short: it checks the whole path, and its accuracy is not the verdict a GPU would
    give (the report says which profile ran and why). The course profile trains as the notebook
    does, hours on a CPU: there it needs `force`. `course_helpers`, a folder holding the course's own
    `run_assessment.py`, has the course flow run it too and report the accuracy it printed."""
    gpu = device == "cuda"
    if profile == "auto":
        profile = "train" if gpu else "transplant"
        template = (
            _("auto: a CUDA device is available, so {reason}")
            if gpu
            else _("auto: no CUDA device is available, so {reason}")
        )
        why = template.format(reason=_(PROFILE_REASONS[profile]))
    elif profile in PROFILE_REASONS:
        why = _("asked for: {reason}").format(reason=_(PROFILE_REASONS[profile]))
    else:
        raise ValueError(
            _("--profile must be auto, train, transplant or course, not {profile}").format(profile=repr(profile))
        )
    if profile == "course" and not gpu and not force:
        raise ValueError(
            _(
                "--profile course runs the notebook as written, its training included, which takes "
                "hours on a CPU: grade on a GPU, or pass --force to run it here anyway"
            )
        )
    mounts: dict[str, Path] = {}
    if course_helpers is not None:
        mounts["official"] = _course_helpers(course_helpers, profile)
    if profile == "course":  # the notebook as written reads ./data; no other profile's child is given data
        from tasks.generation.course_data import mnist_for_the_notebook

        mounts["data"] = mnist_for_the_notebook()
    return GenerationOptions(
        profile=profile,
        profile_reason=why,
        train_steps=train_steps or (GPU_TRAIN_STEPS if gpu else CPU_TRAIN_STEPS),
        down_chs=tuple(down_chs or ((64, 64, 128) if gpu else CPU_TRAIN_CHS)),
        per_digit=OFFICIAL_PER_DIGIT if profile == "course" else per_digit or (50 if gpu else 10),
        larger_sample=_larger_sample(gpu, profile, per_digit),
        grader_per_digit=10 if gpu else 1,
        check_steps=CPU_CHECK_STEPS if profile == "transplant" else 0,
        artifacts_dir=artifacts_dir,
        stem=stem,
        # The course flow trains as the notebook does; only the grade's own deadline bounds it.
        timeout=COURSE_FLOW_TIMEOUT if profile == "course" else GENERATION_TIMEOUT,
        child_mounts=mounts,  # the grader binds these into the child, read-only
    )


def _larger_sample(gpu: bool, profile: str, per_digit: int | None) -> str:
    """When the digits past the official 50 are drawn. They never change the verdict (the official
    draw of 50 is it, as the course's); they narrow the interval reported beside it, and cost 35 to
    50 s on a CPU. On a CPU's transplant profile the weights are the reference's, which sit near the
    bar in most grades (48 or 49 of 50 in 5 seeds of 5, 2026-12-06): more digits would measure those
    weights, not the student's work, and double the grade's time, so they are drawn only when asked."""
    if gpu or per_digit:
        return "always"
    return "asked" if profile == "transplant" else "near_bar"


def _course_helpers(folder: str | Path, profile: str) -> Path:
    """The operator's copy of the course's helpers: a folder with the course's run_assessment.py."""
    if profile != "course":
        raise ValueError(
            _("--course-helpers runs the course's own run_assessment in the course flow: it needs --profile course")
        )
    folder = Path(folder).expanduser().resolve()
    if not (folder / "run_assessment.py").is_file():
        raise ValueError(
            _(
                "--course-helpers {folder}: no run_assessment.py in that folder (copy the course's "
                "run_assessment.py, and what it loads, from the DLI environment)"
            ).format(folder=folder)
        )
    return folder
