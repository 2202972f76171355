"""Task `blocks`: the seven U-Net block classes, named and built like the course's (seven FIXMEs).

Every nn.Module class the student defined is tried as every block kind: built with that kind's
constructor arguments, loaded strictly with the reference block's weights, and run on the same
inputs. A class is right when it computes what the reference computes under its own name; when
names are missing or swapped, the matches say which body sits under which name.
"""

from __future__ import annotations

import torch

from grader.core.i18n import N_, _
from grader.sandbox.executor import commands
from reference import blocks as reference_blocks
from tasks.base import Verdict, approx_equal, kind_of, named
from tasks.context import Context
from tasks.declaration import Task

ID = "blocks"
TITLE = N_("U-Net blocks (the seven classes)")
POINTS = 7
NEEDS = ()

# kind -> (constructor arguments, input shapes of forward); small so that every trial is quick
KINDS: dict[str, tuple[tuple[int, ...], list[tuple[int, ...]]]] = {
    "DownBlock": ((4, 8, 4), [(2, 4, 8, 8)]),
    "EmbedBlock": ((8, 16), [(3, 8)]),
    "GELUConvBlock": ((4, 8, 4), [(2, 4, 8, 8)]),
    "RearrangePoolBlock": ((8, 4), [(2, 8, 8, 8)]),
    "ResidualConvBlock": ((4, 8, 4), [(2, 4, 8, 8)]),
    "SinusoidalPositionEmbedBlock": ((8,), [(5,)]),
    "UpBlock": ((8, 4, 4), [(2, 8, 4, 4), (2, 8, 4, 4)]),
}
WHAT_IT_COMPUTES = {  # translated where used
    "DownBlock": N_("two convolution blocks and a rearrange-pool (a down-sampling block)"),
    "EmbedBlock": N_("an embedding MLP (Linear, GELU, Linear, Unflatten)"),
    "GELUConvBlock": N_("a convolution, GroupNorm and GELU"),
    "RearrangePoolBlock": N_("a space-to-depth rearrange followed by a convolution block"),
    "ResidualConvBlock": N_("two convolution blocks whose outputs are added (a residual block)"),
    "SinusoidalPositionEmbedBlock": N_("a sinusoidal embedding"),
    "UpBlock": N_("a transposed convolution on x concatenated with skip (an up-sampling block)"),
}


def _reference_module(kind: str, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return getattr(reference_blocks, kind)(*KINDS[kind][0]).eval()


def _inputs(kind: str, seed: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed + 1)
    if kind == "SinusoidalPositionEmbedBlock":
        return [torch.rand(*KINDS[kind][1][0], generator=generator)]
    return [torch.randn(*shape, generator=generator) for shape in KINDS[kind][1]]


def _student_classes(context) -> tuple[list[str], list[str]]:
    """nn.Module classes of the student's own cells (not the UNet); and those that only extend
    a course helper's class (delegation: not the student's answer)."""
    classes = context.ask(commands.CLASSES)[0]
    own = sorted(name for name in classes if name != "UNet")
    delegating = [name for name in own if any(module.startswith("utils") for module in classes[name])]
    return own, delegating


def _trials(context, names: list[str]) -> tuple[dict, dict]:
    """Every class tried as every kind, in one round trip; a `super(Kind, self)` class retried
    with the kind's name bound to it, as if the student had called it so.

    Such a class fails with a TypeError (its instance is not a Kind): the retry is chosen by the
    error's type, never by its text, so a message that quotes "super(" decides nothing."""
    trials_sent, keys = [], []
    for name in names:
        for number, kind in enumerate(KINDS):
            module = _reference_module(kind, context.seed + number)
            trials_sent.append(
                {
                    "op": commands.MODULE,
                    "target": name,
                    "args": list(KINDS[kind][0]),
                    "state": dict(module.state_dict()),
                    "inputs": _inputs(kind, context.seed + number),
                }
            )
            keys.append((name, kind))
    trials: dict[str, dict[str, str]] = {name: {} for name in names}  # name -> kind -> "ran" or why not
    outputs: dict[tuple[str, str], torch.Tensor] = {}  # (name, kind) -> the output of a trial that ran
    answers = _answers(context.ask(commands.BATCH, commands=trials_sent)[0], len(trials_sent)) if trials_sent else []
    retry = []
    for (name, kind), command, answer in zip(keys, trials_sent, answers, strict=True):
        if not answer.get("ok") and _needs_binding(name, kind, answer.get("error")):
            retry.append(((name, kind), {**command, "bind": {kind: named(name)}}))
        _record(trials, outputs, name, kind, answer)
    if retry:
        answers = _answers(context.ask(commands.BATCH, commands=[command for _, command in retry])[0], len(retry))
        for ((name, kind), _), answer in zip(retry, answers, strict=True):
            _record(trials, outputs, name, kind, answer)
    return trials, outputs


def _answers(value: object, count: int) -> list[dict]:
    """The child's batch reply as `count` answers: anything but an answer dict reads as a failure."""
    items = value if isinstance(value, list) else []
    unusable: dict = {"ok": False, "error": {}}  # recorded as the trial's plain "failed"
    return [item if isinstance(item, dict) else unusable for item in items[:count]] + [unusable] * (count - len(items))


def _needs_binding(name: str, kind: str, error: object) -> bool:
    """A failed trial worth retrying with `kind` bound to the class: another name, and a TypeError."""
    return name != kind and isinstance(error, dict) and error.get("type") == "TypeError"


def _record(trials, outputs, name, kind, answer) -> None:
    if answer.get("ok") and isinstance(answer.get("value"), torch.Tensor):
        outputs[(name, kind)] = answer["value"]
        trials[name][kind] = "ran"
    elif answer.get("ok"):
        trials[name][kind] = _("forward returned a {kind}").format(kind=kind_of(answer.get("value")))
    else:
        error = answer.get("error")
        trials[name][kind] = str(error.get("message", "failed") if isinstance(error, dict) else "failed")[:300]


def check(context: Context) -> Verdict:
    """One point per block name whose class computes what the reference block computes."""
    names, delegating = _student_classes(context)
    trials, outputs = _trials(context, names)
    verdict = judge(trials, outputs, context, set(delegating))
    for name in delegating:
        verdict.integrity.append(
            _("{name} extends the course helper's class instead of defining the block").format(name=name)
        )
    return verdict


def judge(trials: dict, outputs: dict, context, delegating: set) -> Verdict:
    """Points for each kind whose class, under its own name, computes what the reference computes."""
    verdict = Verdict()
    seed = context.seed
    expected = {}
    for number, kind in enumerate(KINDS):
        with torch.no_grad():
            expected[kind] = _reference_module(kind, seed + number)(*_inputs(kind, seed + number))
    matches = {
        name: [
            kind
            for kind in KINDS
            if trials[name].get(kind) == "ran"
            and name not in delegating
            and approx_equal(outputs[(name, kind)], expected[kind], rtol=1e-4, atol=1e-5)
        ]
        for name in trials
    }
    verdict.details["matches"] = matches

    def where(name):
        location = context.locate(name)
        return _(" in cell {cell}").format(cell=location.cell) if location and location.cell else ""

    def computes(kind):
        return _(WHAT_IT_COMPUTES[kind])

    for kind in KINDS:
        if kind in matches and kind in matches[kind]:
            verdict.check(True, 1, "")
            continue
        holders = [name for name, kinds in matches.items() if kind in kinds and name not in KINDS]
        holders += [name for name, kinds in matches.items() if kind in kinds and name in KINDS and name != kind]
        if kind not in trials:
            failure = _("{kind} is not defined").format(kind=kind)
            if holders:
                failure += _("; the class named {name}{where} computes {what}: that is {kind}").format(
                    name=holders[0], where=where(holders[0]), what=computes(kind), kind=kind
                )
            verdict.check(
                False,
                1,
                failure,
                _("name the class that computes {what} {kind}").format(what=computes(kind), kind=kind),
                context.locate(holders[0]) if holders else None,
            )
            continue
        own = [k for k in matches[kind] if k != kind]
        if own:
            failure = _("the class named {name}{where} computes {what}: that is {kind}").format(
                name=kind, where=where(kind), what=computes(own[0]), kind=own[0]
            )
            if holders:
                failure += _("; the {kind} body is under the name {name}{where}").format(
                    kind=kind, name=holders[0], where=where(holders[0])
                )
            verdict.check(False, 1, failure, _("match each class name to its body"), context.locate(kind))
            continue
        reason = trials[kind].get(kind)
        detail = (
            _("its output differs from the course's")
            if reason == "ran"
            else _("it fails: {reason}").format(reason=reason)
        )
        verdict.check(
            False,
            1,
            _("{kind}{where} does not behave like the course's {kind}: {detail}").format(
                kind=kind, where=where(kind), detail=detail
            ),
            _("{kind} should compute {what}").format(kind=kind, what=computes(kind)),
            context.locate(kind),
        )
    return verdict


TASK = Task(
    id=ID,
    title=TITLE,
    points=POINTS,
    order=40,
    needs=NEEDS,
    answers=(*KINDS, "UNet"),
    check=check,
)
