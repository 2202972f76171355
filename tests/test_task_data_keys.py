"""The names of a task's data are made by one helper per kind (tasks/_schedule_runs.py), where the data
is filled and where it is read, so a misspelt name fails loudly instead of finding nothing."""

from __future__ import annotations

import pytest
import torch

from tasks import _schedule_runs
from tasks._schedule_runs import SCHEDULE_NAMES, run_key, schedule_data, schedule_key, schedules_to_try, step_output


@pytest.mark.parametrize("call", [lambda: run_key("your", "x_t"), lambda: schedule_key("sqrt_abar")])
def test_a_misspelt_run_or_schedule_name_raises(call):
    with pytest.raises(KeyError):
        call()


def test_the_students_schedule_is_found_where_the_task_put_it():
    """The tensors the task stores (schedule_data) are those schedules_to_try offers as "yours"."""
    T = 5
    own = {name: torch.full((T,), float(number)) for number, name in enumerate(SCHEDULE_NAMES)}

    class Context:
        def get(self, *names):
            return {name: own[name] for name in names}

    data = schedule_data(Context())
    offered = dict(schedules_to_try(T, data))
    assert set(offered) == {"reference", "yours"}
    assert all(torch.equal(offered["yours"][name], own[name].double()) for name in SCHEDULE_NAMES)


def test_each_run_keeps_its_outputs_under_its_own_key():
    """run_twice stores what describe_result made under run_key, which the judges read."""
    calls = []

    class Context:
        def describe(self, *names):
            return {}

        def call(self, function, *arguments, bind=None):
            calls.append(bind is None)
            return (torch.tensor([1.0 if bind is None else 2.0]), None)

    runs, tensors = _schedule_runs.run_twice(
        Context(), "f", (), lambda value: ({"returned": "x"}, {step_output(3): value})
    )
    assert calls == [True, False]
    assert runs == {"yours": {"returned": "x"}, "course": {"returned": "x"}}
    assert tensors[run_key("yours", step_output(3))].item() == 1.0
    assert tensors[run_key("course", step_output(3))].item() == 2.0
