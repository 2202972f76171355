"""Task `blocks`: the seven U-Net block classes, named and built like the course's (seven FIXMEs).

Every nn.Module class the student defined is tried as every block kind: built with that kind's
constructor arguments, loaded strictly with the reference block's weights, and run on the same
inputs. A class is right when it computes what the reference computes under its own name; when
names are missing or swapped, the matches say which body sits under which name.
"""

from __future__ import annotations

from pathlib import Path

import torch

from reference import blocks as reference_blocks
from tasks.base import Evidence, Verdict, close, save

ID = "blocks"
TITLE = "U-Net blocks (the seven classes)"
POINTS = 7
NEEDS = ()
SETUP_FILE = "blocks_setup.pt"

# kind -> (constructor arguments, input shapes of forward); small so that every trial is quick
KINDS = {
    "DownBlock": ((4, 8, 4), [(2, 4, 8, 8)]),
    "EmbedBlock": ((8, 16), [(3, 8)]),
    "GELUConvBlock": ((4, 8, 4), [(2, 4, 8, 8)]),
    "RearrangePoolBlock": ((8, 4), [(2, 8, 8, 8)]),
    "ResidualConvBlock": ((4, 8, 4), [(2, 4, 8, 8)]),
    "SinusoidalPositionEmbedBlock": ((8,), [(5,)]),
    "UpBlock": ((8, 4, 4), [(2, 8, 4, 4), (2, 8, 4, 4)]),
}
WHAT_IT_COMPUTES = {
    "DownBlock": "two convolution blocks and a rearrange-pool (a down-sampling block)",
    "EmbedBlock": "an embedding MLP (Linear, GELU, Linear, Unflatten)",
    "GELUConvBlock": "a convolution, GroupNorm and GELU",
    "RearrangePoolBlock": "a space-to-depth rearrange followed by a convolution block",
    "ResidualConvBlock": "two convolution blocks whose outputs are added (a residual block)",
    "SinusoidalPositionEmbedBlock": "a sinusoidal embedding",
    "UpBlock": "a transposed convolution on x concatenated with skip (an up-sampling block)",
}


def _reference_module(kind: str, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return getattr(reference_blocks, kind)(*KINDS[kind][0]).eval()


def _inputs(kind: str, seed: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed + 1)
    if kind == "SinusoidalPositionEmbedBlock":
        return [torch.rand(*KINDS[kind][1][0], generator=generator)]
    return [torch.randn(*shape, generator=generator) for shape in KINDS[kind][1]]


def prepare(out_dir: Path, seed: int, analysis) -> dict:
    """Write the reference weights and inputs the child loads (parent side, before the probe)."""
    setup = {}
    for number, kind in enumerate(KINDS):
        module = _reference_module(kind, seed + number)
        setup.update({f"{kind}/state/{key}": value for key, value in module.state_dict().items()})
        setup.update({f"{kind}/input/{i}": value for i, value in enumerate(_inputs(kind, seed + number))})
    torch.save(setup, Path(out_dir) / SETUP_FILE)
    return {}


def _student_classes(namespace: dict) -> dict[str, type]:
    """nn.Module classes defined by the student's own cells (not imported ones, not the UNet)."""
    return {
        name: value for name, value in namespace.items()
        if isinstance(value, type) and issubclass(value, torch.nn.Module)
        and value.__module__ == "__main__" and name != "UNet"
    }


def _trial(cls, arguments, state, inputs) -> torch.Tensor:
    """Build `cls` with a kind's arguments, load the kind's reference weights strictly, run it."""
    module = cls(*arguments)
    module.load_state_dict(state, strict=True)
    module.eval()
    with torch.no_grad():
        out = module(*inputs)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"forward returned a {type(out).__name__}")
    return out


def probe(namespace: dict, out_dir: str) -> dict:
    """Try every student class as every kind; save outputs, report what failed and why."""
    setup = torch.load(Path(out_dir) / SETUP_FILE, map_location="cpu", weights_only=True)
    trials, outputs = {}, {}
    for name, cls in sorted(_student_classes(namespace).items()):
        trials[name] = {}
        for kind, (arguments, _) in KINDS.items():
            state = {k.split("/", 2)[2]: v for k, v in setup.items() if k.startswith(f"{kind}/state/")}
            inputs = [v for k, v in sorted(setup.items()) if k.startswith(f"{kind}/input/")]
            try:
                try:
                    out = _trial(cls, arguments, state, inputs)
                except TypeError as error:
                    if "super(" not in str(error):
                        raise
                    # `super(DownBlock, self)` in a body named otherwise: tried as DownBlock, run
                    # it with the name bound to it, as if the student had called it so.
                    had, old = kind in namespace, namespace.get(kind)
                    namespace[kind] = cls
                    try:
                        out = _trial(cls, arguments, state, inputs)
                    finally:
                        if had:
                            namespace[kind] = old
                        else:
                            namespace.pop(kind, None)
                outputs[f"{name}/{kind}"] = out
                trials[name][kind] = "ran"
            except Exception as error:  # a wrong class fails in any way; that is the finding
                trials[name][kind] = f"{type(error).__name__}: {error}"[:300]
    save(out_dir, ID, outputs)
    return {"trials": trials}


def judge(evidence: Evidence) -> Verdict:
    """One point per block name whose class computes what the reference block computes."""
    verdict = Verdict(POINTS)
    trials, outputs = evidence.value["trials"], evidence.tensors(ID)
    seed = evidence.seed
    expected = {}
    for number, kind in enumerate(KINDS):
        with torch.no_grad():
            expected[kind] = _reference_module(kind, seed + number)(*_inputs(kind, seed + number))
    matches = {name: [kind for kind in KINDS if trials[name].get(kind) == "ran"
                      and close(outputs[f"{name}/{kind}"], expected[kind], rtol=1e-4, atol=1e-5)]
               for name in trials}
    verdict.details["matches"] = matches

    def where(name):
        location = evidence.locate(name)
        return f" in cell {location.cell}" if location and location.cell else ""

    for kind in KINDS:
        if kind in matches and kind in matches[kind]:
            verdict.check(True, 1, "")
            continue
        holders = [name for name, kinds in matches.items() if kind in kinds and name not in KINDS]
        holders += [name for name, kinds in matches.items() if kind in kinds and name in KINDS and name != kind]
        if kind not in trials:
            failure = f"{kind} is not defined"
            if holders:
                failure += f"; the class named {holders[0]}{where(holders[0])} computes {WHAT_IT_COMPUTES[kind]}: that is {kind}"
            verdict.check(False, 1, failure, f"name the class that computes {WHAT_IT_COMPUTES[kind]} {kind}",
                          evidence.locate(holders[0]) if holders else None)
            continue
        own = [k for k in matches[kind] if k != kind]
        if own:
            failure = (f"the class named {kind}{where(kind)} computes {WHAT_IT_COMPUTES[own[0]]}: "
                       f"that is {own[0]}")
            if holders:
                failure += f"; the {kind} body is under the name {holders[0]}{where(holders[0])}"
            verdict.check(False, 1, failure, "match each class name to its body", evidence.locate(kind))
            continue
        reason = trials[kind].get(kind)
        detail = "its output differs from the course's" if reason == "ran" else f"it fails: {reason}"
        verdict.check(False, 1, f"{kind}{where(kind)} does not behave like the course's {kind}: {detail}",
                      f"{kind} should compute {WHAT_IT_COMPUTES[kind]}", evidence.locate(kind))
    return verdict
