"""The course's own flow (child side): the notebook run top to bottom in a Jupyter kernel.

This is how the DLI platform grades: every cell runs in order in an IPython kernel, and the
last one calls `run_assessment(model, sample_w, w)`. nbclient drives a kernel started here,
inside the sandbox, over IPC sockets in the working folder (the sandbox's network namespace
has no loopback shared with anyone). The run_assessment stand-in on the kernel's path saves
the 50 samples it drew (and, given the course's own helpers, runs their run_assessment too);
they are returned raw, with where the run stopped and what the assessment cell printed. The
grader judges the samples itself.
"""

import os
from collections.abc import Callable
from typing import NamedTuple

import torch

SAMPLES_FILE = "run_assessment_samples.pt"  # written by the run_assessment stand-in
MODEL_FILE = ".dli-course-model.pt"
TEXT_LIMIT = 2000
OFFICIAL_VARIABLE = "DLI_GRADE_COURSE_HELPERS"  # read by the run_assessment stand-in

# Run after the student's cells: the final model's weights, so the grader can sample them itself.
SAVE_MODEL = f"""
import torch as _dli_torch
_dli_model = getattr(model, "_orig_mod", model)
_dli_torch.save({{k: v.detach().float().cpu() for k, v in _dli_model.state_dict().items()}}, {MODEL_FILE!r})
"""


def _text(outputs) -> str:
    """What a cell printed (its streams and error lines, not the value it displays), cut to the
    last TEXT_LIMIT characters, where the assessment's verdict is."""
    parts = []
    for output in outputs:
        if output.get("output_type") == "stream":
            parts.append(output.get("text", ""))
        elif output.get("output_type") == "error":
            parts.append(f"{output.get('ename')}: {output.get('evalue')}")
    return "".join(parts)[-TEXT_LIMIT:]


def _load(path: str):
    """A tensor file the kernel wrote, read without unpickling code; None when absent or unusable."""
    if not os.path.isfile(path):
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # the student's kernel wrote it; anything may be there
        return None


class Flow(NamedTuple):
    """The course flow's command, bound to one executor."""

    course_flow: Callable


def handlers(executor) -> Flow:
    def course_flow(notebook: str, cell_timeout: float):
        """Run `notebook` (nbformat JSON) top to bottom; stop at the first error, as Run All does."""
        import nbformat
        from jupyter_client.manager import KernelManager
        from nbclient import NotebookClient
        from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

        here = os.getcwd()
        for name in ("home", "runtime", "ipython"):
            os.makedirs(os.path.join(here, ".jupyter", name), exist_ok=True)
        os.environ.update(
            HOME=os.path.join(here, ".jupyter", "home"),
            JUPYTER_RUNTIME_DIR=os.path.join(here, ".jupyter", "runtime"),
            IPYTHONDIR=os.path.join(here, ".jupyter", "ipython"),
            PYTHONPATH=executor.paths["course"],  # `from utils import ...`, `from run_assessment import ...`
        )
        if "official" in executor.paths:  # the operator's copy of the course's own run_assessment
            os.environ[OFFICIAL_VARIABLE] = executor.paths["official"]
        for stale in (SAMPLES_FILE, MODEL_FILE):
            if os.path.exists(stale):
                os.remove(stale)
        nb = nbformat.reads(notebook, as_version=4)
        nb.cells.append(nbformat.v4.new_code_cell(SAVE_MODEL))
        total = len(nb.cells)
        ran = []

        def cell_done(cell, cell_index, **_):
            ran.append(cell_index)
            executor.send_progress("course flow: cells run", len(ran), total)

        manager = KernelManager(kernel_name="python3", transport="ipc", ip=os.path.join(here, ".jupyter", "kernel"))
        client = NotebookClient(
            nb,
            km=manager,
            timeout=cell_timeout,
            allow_errors=False,
            record_timing=False,
            shutdown_kernel="immediate",
            on_cell_executed=cell_done,
            resources={"metadata": {"path": here}},
        )
        stopped: dict | None = None
        try:
            client.execute()
        except CellTimeoutError:
            stopped = {"cell": len(ran), "error": f"the cell ran longer than {cell_timeout:g} s"}
        except CellExecutionError as error:
            stopped = {"cell": ran[-1] if ran else 0, "error": f"{error.ename}: {error.evalue}"[:TEXT_LIMIT]}
        except DeadKernelError:
            stopped = {"cell": len(ran), "error": "the kernel died"}
        assessment = next(
            (
                i
                for i, cell in enumerate(nb.cells[:-1])
                if cell.cell_type == "code" and "run_assessment(" in cell.source
            ),
            None,
        )
        saved = _load(SAMPLES_FILE)
        model = _load(MODEL_FILE)
        return {
            "cells": total - 1,
            "ran": len([i for i in ran if i < total - 1]),
            "stopped": stopped if stopped is None or stopped["cell"] < total - 1 else None,
            "assessment_cell": assessment,
            "assessment_output": _text(nb.cells[assessment].get("outputs", [])) if assessment is not None else None,
            "samples": saved.get("samples") if isinstance(saved, dict) else None,
            "model_state": model if isinstance(model, dict) else None,
        }

    return Flow(course_flow=course_flow)
