"""Where the grades run: a local pool of threads (each waiting on its own grade process) or Ray.

Both call `worker.grade_one` for each job and hand every outcome to `on_done` in the calling
thread, as soon as it is ready, so the gradebook has one writer.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from grader.batch import worker
from grader.core.memory import previous_limit_for_children


@dataclass
class Job:
    student: str
    source: str
    filename: str
    data: bytes
    sha256: str
    fingerprints: dict
    wall_timeout: float
    threads: int
    id_from: str = ""


OnDone = Callable[[Job, worker.Outcome], None]  # called in the batch's thread as each grade ends


def run_local(jobs: list[Job], options: worker.GradeOptions, parallel: int, on_done: OnDone) -> None:
    with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="grade") as pool:
        pending = {
            pool.submit(worker.grade_one, job.filename, job.data, options, job.wall_timeout, job.threads): job
            for job in jobs
        }
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    job = pending.pop(future)
                    try:
                        outcome = future.result()
                    except Exception as error:  # e.g. the submission's temp copy could not be written
                        outcome = worker.Outcome(
                            "crashed", f"the batch could not run this grade: {type(error).__name__}: {error}"
                        )
                    on_done(job, outcome)
        except BaseException:
            for future in pending:
                future.cancel()
            worker.stop_all()
            raise


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def run_ray(
    jobs: list[Job],
    options: worker.GradeOptions,
    parallel: int,
    on_done: OnDone,
    address: str | None = None,
    gpus_per_grade: float = 0.0,
    empty_dir: Path | None = None,
) -> None:
    """One Ray task per submission; at most `parallel` in flight; each still grades in a subprocess.

    A task asks Ray for one CPU (and `gpus_per_grade` GPUs); the grade's torch threads are
    set through the job's `threads`, as locally.

    Ray puts the driver's working directory (often the folder of collected submissions) on
    every worker's sys.path, ahead of site-packages, unless the job names a working_dir: so it
    names an empty one, and a student's `grader.py` or `json.py` there is never imported.
    """
    if not jobs:
        return  # everything was resumed: no need to start Ray
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        empty = Path(empty_dir or tempfile.mkdtemp(prefix="dli-ray-"))
        shutil.rmtree(empty, ignore_errors=True)
        empty.mkdir(parents=True)
        with previous_limit_for_children():  # a local Ray's processes: not the batch's --grader-memory-mb
            ray.init(
                address=address,
                include_dashboard=False,
                log_to_driver=False,
                runtime_env={"working_dir": str(empty)},
                **({} if address else {"num_cpus": max(1, parallel)}),  # type: ignore[arg-type]  # one of init's ints
            )
    remote = ray.remote(num_cpus=1, num_gpus=gpus_per_grade, max_retries=0)(worker.grade_one)
    queue = list(jobs)
    in_flight: dict[ray.ObjectRef, Job] = {}
    try:
        while queue or in_flight:
            while queue and len(in_flight) < max(1, parallel):
                job = queue.pop(0)
                # ray types remote() from the function's first parameters only
                ref = remote.remote(job.filename, job.data, options, job.wall_timeout, job.threads)  # type: ignore[call-arg]
                in_flight[ref] = job
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in ready:
                job = in_flight.pop(ref)
                try:
                    outcome = ray.get(ref)
                except Exception as error:  # the Ray worker died: the grade crashed, the batch goes on
                    outcome = worker.Outcome(
                        "crashed", f"the Ray task failed: {type(error).__name__}: {str(error)[:300]}"
                    )
                on_done(job, outcome)
    except BaseException:
        for ref in in_flight:
            ray.cancel(ref, force=True)
        raise
    finally:
        if started_here:
            ray.shutdown()
