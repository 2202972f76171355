"""Where the stand-ins for the course's helper modules live (`utils/`, `run_assessment.py`)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def course_path() -> Path:
    """The folder to put on a student child process's sys.path so `from utils import ...` works."""
    # Not a package of its own: the folder goes on sys.path only for student code, so that
    # `utils` and `run_assessment` never shadow anything in the grader's own process.
    return Path(str(resources.files("reference") / "course"))
