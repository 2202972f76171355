"""Task `generation`: the student's model draws digits that the judge recognises (the official bar).

Child side: the student's own model class, sample_w and w make the images. On a GPU the model
is trained from scratch through the student's training cell (its q, get_loss, get_context_mask
and c_drop_prob, as written); on a CPU it gets the shipped reference weights instead (which also
proves the architecture), and a short narrow training run through the same cell checks that the
student's pipeline learns to predict noise as well as the reference pipeline does.
Parent side: the judge classifies the raw samples exactly as the official grader does.
"""

from __future__ import annotations

import time
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F

from reference import narrow
from reference.unet import UNet
from tasks import guidance
from tasks.base import StudentRaised, Verdict, derive_seed, kind_of, plain_tensor

ID = "generation"
TITLE = "Generated digits recognised by the judge (official bar: 48 of 50)"
POINTS = 28
NEEDS = ("sample_w", "model")
USES_TRAINING_CELL = True
OFFICIAL_PER_DIGIT = 5
OFFICIAL_BAR = 0.95
NEAR_BAR = (45, 49)  # official counts (of 50) where a fresh draw could well give the other verdict
COURSE_CHS = (64, 64, 128)


# -- driving the child ------------------------------------------------------------------------
class StageFailure(Exception):
    """The model could not be made or sampled; `info` says at which stage and why."""

    def __init__(self, stage: str, problem):
        super().__init__(stage)
        self.stage, self.problem = stage, problem


def _training_cell(context) -> dict | None:
    facts = context.analysis.training_cell()
    if facts is None or facts.tree is None:
        return None
    return {"code": facts.cell.code, "filename": f"<cell {facts.cell.number}>",
            "epochs": _harness_epochs(facts.tree)}


def _harness_epochs(tree) -> int | None:
    """The constant the cell assigns to `epochs`, if any (to split a batch budget over epochs)."""
    import ast

    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) \
                and any(isinstance(t, ast.Name) and t.id == "epochs" for t in node.targets) \
                and isinstance(node.value.value, int) and node.value.value > 0:
            return node.value.value
    return None


def _draw(context, target: str, per_digit: int, w: float, phase: str, bf16: bool) -> torch.Tensor:
    """per_digit samples of each digit through the student's sample_w, checked and on the CPU."""
    value, _ = context.ask("sample", target=target, per_digit=per_digit, w=w, bf16=bf16, phase=phase,
                           seed=derive_seed(context.seed, ID, phase))
    if not (isinstance(value, list) and len(value) == 10):
        raise StageFailure("sampling", f"sample_w returned {kind_of(value)} values, expected images")
    images = []
    for digit, out in enumerate(value):
        out = plain_tensor(out, f"the images sample_w returned for digit {digit}", finite=False)
        if out.numel() != per_digit * 28 * 28:
            raise StageFailure("sampling", f"sample_w returned shape {tuple(out.shape)} for {per_digit} "
                               f"images of digit {digit}; expected ({per_digit}, 1, 28, 28)")
        images.append(out.float().reshape(per_digit, 1, 28, 28))
    return torch.cat(images)


def _train(context, target: str, steps: int, training: dict, batch_size: int, bf16: bool) -> dict:
    """Train a model in the child through the student's cell on the grader's shuffled epochs."""
    batches_per_epoch = max(1, -(-steps // (training.get("epochs") or 1)))
    order = _order(context, target, steps, batch_size)
    info, _ = context.ask("train", target=target, code=training["code"], filename=training["filename"],
                          order=order, batch_size=batch_size, batches_per_epoch=batches_per_epoch, steps=steps,
                          seed=derive_seed(context.seed, ID, "train", target), bf16=bf16)
    if not isinstance(info, dict):
        raise StageFailure("training", "the training run returned no records")
    return {**info, "batches_per_epoch": batches_per_epoch, "steps_asked": steps}


def _order(context, target: str, steps: int, batch_size: int) -> torch.Tensor:
    """Shuffled epochs of the 70,000 images, as the course's DataLoader(shuffle=True) draws them."""
    generator = context.generator(ID, "order", target)
    epochs = -(-(steps + 1) * batch_size // 70_000)
    return torch.cat([torch.randperm(70_000, generator=generator) for _ in range(epochs)])


def _load_or_fail(context, target: str, state: dict) -> None:
    value, _ = context.ask("load", target=target, state=state)
    if isinstance(value, dict) and "mismatch" in value:
        raise StageFailure("weights", value["mismatch"])
    if isinstance(value, dict) and "not_a_module" in value:
        raise StageFailure("model", f"model is a {value['not_a_module']}, not a torch module")
    if not (isinstance(value, dict) and value.get("loaded") is True):
        raise StageFailure("weights", f"loading the weights answered {kind_of(value)}")


def check(context) -> Verdict:
    """Make the model (reference weights, or trained here from a seeded start), sample it through
    the student's sample_w, sample it again on the grader's own trusted path, and judge both."""
    from reference.weights import UNET_FILE, read_state_dict, weights_path

    options = context.options
    profile = options.get("profile", "transplant")
    verdict_info = {"profile": profile, "profile_reason": options.get("profile_reason"), "timings": {},
                    "failed_before": list(context.failed_before)}
    bf16 = context.device.type == "cpu" and narrow.bf16_here()
    w = guidance.student_w(context)
    verdict_info["w"] = w
    training = _training_cell(context)
    started = time.perf_counter()
    samples = {}
    try:
        if profile == "course":
            samples["official"], state, verdict_info["course_flow"] = _course_flow(context)
            verdict_info["timings"]["course_flow_s"] = time.perf_counter() - started
        elif profile == "transplant":
            state = read_state_dict(weights_path(UNET_FILE))
            _load_or_fail(context, "model", state)
            target = "model"
        else:
            if training is None:
                raise StageFailure("training", "no training loop found to train the model with")
            state = _seeded_start(context, options.get("down_chs", COURSE_CHS))
            context.ask("build", slot="trained", down_chs=list(options.get("down_chs", COURSE_CHS)))
            _load_or_fail(context, "trained", state)
            verdict_info["training"] = _train(context, "trained", options["train_steps"], training,
                                              options.get("batch_size", 128), bf16=False)
            if verdict_info["training"].get("error"):
                raise StageFailure("training", verdict_info["training"]["error"])
            verdict_info["training"]["masks"] = _judged_masks(verdict_info["training"], context, "trained",
                                                              options["train_steps"], options.get("batch_size", 128))
            target = "trained"
            state = _returned_state(context, "trained", state)
        if profile != "course":
            verdict_info["timings"]["model_s"] = time.perf_counter() - started
            started = time.perf_counter()
            sample_w_value = w if w is not None else 0.0
            samples["official"] = _draw(context, target, OFFICIAL_PER_DIGIT, sample_w_value, "official sample", bf16)
            extra = options.get("per_digit", 10) - OFFICIAL_PER_DIGIT
            verdict_info["larger_sample"] = _larger_sample_plan(samples["official"], extra,
                                                                options.get("larger_sample", "always"))
            if verdict_info["larger_sample"].startswith("drawn"):
                samples["extra"] = _draw(context, target, extra, sample_w_value, "larger sample", bf16)
            verdict_info["timings"]["sampling_s"] = time.perf_counter() - started
    except StageFailure as failure:
        return _stage_failure(Verdict(POINTS, location=context.locate("sample_w")),
                              {**verdict_info, "stage": failure.stage, "problem": failure.problem})
    started = time.perf_counter()
    effective_w = _effective_w(context, w)
    verdict_info["effective_w"] = effective_w
    if state is not None:
        samples["grader"] = trusted_samples(state, effective_w, options.get("grader_per_digit", 1),
                                            derive_seed(context.seed, ID, "trusted"), context.progress)
    verdict_info["timings"]["trusted_path_s"] = time.perf_counter() - started
    if profile == "transplant" and options.get("check_steps") and training is not None:
        started = time.perf_counter()
        verdict_info["narrow"] = _short_training(context, options["check_steps"], training, bf16)
        verdict_info["timings"]["short_training_s"] = time.perf_counter() - started
    verdict_info["stage"] = "done"
    started = time.perf_counter()
    verdict = judge(verdict_info, samples, context.locate, context.seed, **options)
    verdict_info["timings"]["judge_s"] = time.perf_counter() - started
    return verdict


def _course_flow(context) -> tuple[torch.Tensor, dict | None, dict]:
    """The notebook run top to bottom in a kernel, as the DLI platform runs it: the 50 samples its
    run_assessment drew, the final model's weights when they fit the course's U-Net (for the
    trusted path), and how far the run got."""
    import nbformat

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell.source) for cell in context.cells])
    value, _ = context.ask("course_flow", notebook=nbformat.writes(notebook), cell_timeout=float(context.timeout))
    if not isinstance(value, dict):
        raise StageFailure("course flow", f"the course flow answered {kind_of(value)}")
    numbers = [cell.number for cell in context.cells]
    stopped, assessment = value.get("stopped"), value.get("assessment_cell")
    flow = {"cells": value.get("cells"), "ran": value.get("ran"),
            "assessment_output": str(value.get("assessment_output") or "")}
    if isinstance(stopped, dict) and type(stopped.get("cell")) is int and 0 <= stopped["cell"] < len(numbers):
        flow["stopped"] = {"cell": numbers[stopped["cell"]], "error": str(stopped.get("error"))}
        raise StageFailure("course flow", f"the notebook stopped at cell {flow['stopped']['cell']} "
                                          f"({flow['stopped']['error']}) before the assessment ran")
    if type(assessment) is not int:
        raise StageFailure("course flow", "no cell calls run_assessment(model, sample_w, w)")
    images = value.get("samples")
    if images is None:
        raise StageFailure("course flow", f"cell {numbers[assessment]} ran, but run_assessment saved no samples")
    images = plain_tensor(images, "the samples run_assessment drew", finite=False)
    if tuple(images.shape) != (10 * OFFICIAL_PER_DIGIT, 1, 28, 28):
        raise StageFailure("course flow", f"run_assessment drew shape {tuple(images.shape)}, not (50, 1, 28, 28)")
    return images.float(), _course_shaped(value.get("model_state")), flow


def _course_shaped(state) -> dict | None:
    """`state` when it is a state dict of plain tensors that loads into the course's U-Net."""
    if not isinstance(state, dict):
        return None
    expected = UNet(150, 1, 28, COURSE_CHS).state_dict()
    if set(state) != set(expected) or not all(type(state[k]) is torch.Tensor and state[k].shape == v.shape
                                              for k, v in expected.items()):
        return None
    return state


def _larger_sample_plan(official: torch.Tensor, extra: int, when: str) -> str:
    """Whether to draw `extra` more digits of each kind, and why. The verdict is the official
    draw of 50, as the course's; more digits only narrow the interval reported beside it, which
    matters where the official count sits near the bar ("near_bar"), or always ("always")."""
    if extra <= 0:
        return "not drawn: no larger sample was asked for"
    correct = int((_classify(official)[0] == torch.arange(10).repeat_interleave(OFFICIAL_PER_DIGIT)).sum())
    low, high = NEAR_BAR
    if when == "always":
        return f"drawn: {extra} more of each digit"
    if low <= correct <= high:
        return f"drawn: {correct} of 50 is near the bar of 48, so {extra} more of each digit were drawn"
    return f"not drawn: {correct} of 50 is not near the bar of 48 (more digits are drawn from {low} to {high})"


def _effective_w(context, w) -> float:
    """The course's w that the student's sample_w applies at their w (1.0 when unknown)."""
    if w is None:
        w = 0.0
    try:
        found = guidance.identify(context)
    except Exception:  # the guidance task reports what is wrong; sample the trusted path at w
        return float(w)
    if not found["called_reverse_q"] or w not in found["e_t"]:
        return float(w)
    alpha, beta, error = guidance.fit(found["e_t"][w], found["keep"], found["drop"])
    return float(alpha - 1) if error < 1e-3 and abs(alpha + beta - 1) < 1e-3 else float(w)


def _seeded_start(context, down_chs) -> dict:
    torch.manual_seed(derive_seed(context.seed, ID, "start"))
    return UNet(150, 1, 28, tuple(down_chs)).state_dict()


def _returned_state(context, target: str, start: dict) -> dict:
    """The trained weights as the child returns them: plain tensors with the start's keys and shapes."""
    value, _ = context.call(f"{target}.state_dict")
    if not (isinstance(value, dict) and set(value) == set(start)
            and all(isinstance(value[k], torch.Tensor) and value[k].shape == start[k].shape for k in start)):
        raise StageFailure("weights", {"missing": [], "unexpected": [], "wrong_shape": ["(returned weights)"]})
    if all(torch.equal(value[k].float(), start[k].float()) for k in start):
        raise StageFailure("training", "the model's weights did not change during training")
    return value


def _short_training(context, steps: int, training: dict, bf16: bool) -> dict:
    """Train a narrow copy of the student's model briefly; its prediction on the held-out batch."""
    try:
        context.ask("build", slot="narrow", down_chs=list(narrow.WIDTHS))
    except StudentRaised as error:  # the class may not take down_chs; that is a finding
        return {"build_error": error.describe()}
    start = narrow.start_state()
    try:
        _load_or_fail(context, "narrow", start)
    except StageFailure:
        pass  # a different layout trains from its own start
    info = _train(context, "narrow", steps, training, 128, bf16)
    batch = heldout_batch(context.seed)
    info["masks"] = _judged_masks(info, context, "narrow", steps, 128)
    prediction, _ = context.call("narrow", batch["x_t"], batch["t"], batch["c_hot"],
                                 torch.ones_like(batch["c_hot"]), no_grad=True)
    info["heldout_prediction"] = prediction
    return info


def _judged_masks(info: dict, context, target: str, steps: int, batch_size: int) -> list[dict]:
    """The recorded masks that reached get_loss, each with a plain drop probability (or None) and
    whether its context was the labels the grader put in that batch."""
    from reference import mnist

    _, labels = mnist.load("all")
    order = _order(context, target, steps, batch_size)
    masks = [m for m in info.get("masks", []) if isinstance(m, dict)]
    used = {b.get("mask_call") for b in info.get("batches", []) if isinstance(b, dict)}
    judged = []
    for index, mask in enumerate(masks):
        if index not in used:
            continue  # the preview's own mask does not describe training
        drop, c = mask.get("drop_prob"), mask.get("c")
        epoch, step = mask.get("epoch"), mask.get("step")
        expected = None
        if type(epoch) is int and type(step) is int and epoch >= 0 and step >= 0:
            first = (epoch * info.get("batches_per_epoch", 1) + step) * batch_size % len(order)
            expected = labels[order[first:first + batch_size]]
        judged.append({"drop_prob": float(drop) if type(drop) in (int, float) else None,
                       "labels_from_batch": bool(isinstance(c, torch.Tensor) and expected is not None
                                                 and c.shape == expected.shape and torch.equal(c.long(), expected))})
    return judged


def trusted_samples(state: dict, w: float, per_digit: int, seed: int, progress=None) -> torch.Tensor:
    """Digits drawn in the grader from the given weights with the reference sampler and its own noise."""
    from reference.sampling import sample_w
    from reference.schedule import make_schedule

    model = UNet(150, 1, 28, _widths(state)).eval()
    model.load_state_dict({k: v.float() for k, v in state.items()})
    torch.manual_seed(seed)
    schedule = make_schedule(150)
    c_hot = F.one_hot(torch.arange(10).repeat_interleave(per_digit), 10).float()
    report = (lambda step: progress("trusted sample", step, schedule.T)) if progress else None
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=narrow.bf16_here()):
        return sample_w(model, c_hot, w, schedule, progress=report).float()


def _widths(state: dict) -> tuple:
    """down_chs of a U-Net state_dict, read off its down blocks' first convolutions."""
    return (int(state["down0.conv1.model.0.weight"].shape[0]),
            int(state["down1.model.0.model.0.weight"].shape[0]),
            int(state["down2.model.0.model.0.weight"].shape[0]))


# -- parent side -----------------------------------------------------------------------------
HELDOUT_SIZE = 256
LOSS_SLACK = (1.25, 0.02)
NEAR_COPY_LIMIT = 0.2
TRUSTED_MARGIN = 0.1  # the trusted path's 95% upper bound may fall this far below the official accuracy  # the student's held-out loss may exceed the reference's by 25% + 0.02


def heldout_batch(seed: int, T: int = 150) -> dict[str, torch.Tensor]:
    """Test images noised by the reference q, chosen and noised from the grade's own seed."""
    from reference import mnist
    from reference.diffusion import q
    from reference.schedule import make_schedule

    images, labels = mnist.load("test")
    generator = torch.Generator().manual_seed(derive_seed(seed, ID, "heldout"))
    index = torch.randperm(images.shape[0], generator=generator)[:HELDOUT_SIZE]
    t = torch.randint(0, T, (HELDOUT_SIZE,), generator=generator).float()
    noise = torch.randn(HELDOUT_SIZE, 1, 28, 28, generator=generator)
    x_t, _ = q(images[index], t, make_schedule(T), noise=noise)
    return {"x_t": x_t, "t": t, "noise": noise, "c_hot": F.one_hot(labels[index], 10).float()}


def reference_heldout_loss(steps: int, seed: int) -> float:
    """Held-out loss of the reference pipeline on this grade's held-out batch."""
    batch = heldout_batch(seed)
    model = narrow.reference_model(steps)
    with torch.no_grad():
        prediction = model(batch["x_t"], batch["t"], batch["c_hot"], torch.ones_like(batch["c_hot"]))
    return F.mse_loss(prediction, batch["noise"]).item()


def wilson_interval(successes: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a binomial proportion."""
    if total == 0:
        return (0.0, 1.0)
    p = successes / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * ((p * (1 - p) / total + z * z / (4 * total * total)) ** 0.5) / (1 + z * z / total)
    return (max(0.0, centre - half), min(1.0, centre + half))


@lru_cache(maxsize=1)
def _judge_net():
    """The shipped judge, loaded once per grader process (batch grading reuses it)."""
    from reference.judge import load_judge

    return load_judge()


def _classify(images: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """The judge's predictions, with non-finite pixels blanked; also whether all were finite."""
    from reference.judge import classify

    finite = bool(torch.isfinite(images).all())
    images = torch.nan_to_num(images, nan=0.0, posinf=0.0, neginf=0.0)
    return classify(_judge_net(), images), finite


def _by_digit(official: torch.Tensor, extra: torch.Tensor | None) -> torch.Tensor:
    """Official and extra draws merged and ordered by digit (rows of the grid)."""
    if extra is None:
        return official
    rows = [torch.cat((official.view(10, -1, 1, 28, 28)[d], extra.view(10, -1, 1, 28, 28)[d])) for d in range(10)]
    return torch.cat(rows)


def _confusions(predictions: torch.Tensor, per_digit: int) -> list[str]:
    """For each digit drawn badly, what the judge read instead, worst first."""
    lines = []
    for digit in range(10):
        got = predictions[digit * per_digit:(digit + 1) * per_digit]
        wrong = got[got != digit]
        if len(wrong):
            common = torch.mode(wrong).values.item()
            count = int((got == common).sum())
            lines.append((len(wrong), f"digits drawn for {digit} are classified as {common} in {count} of {per_digit}"))
    return [text for _, text in sorted(lines, key=lambda item: -item[0])]


def _near_copies(images: torch.Tensor, threshold: float = 2.0) -> float:
    """Fraction of samples within `threshold` (L2, pixels in [0, 1]) of some MNIST image, train or test."""
    from reference import mnist

    train, _ = mnist.load("all")
    train = train.flatten(1)
    samples = images.clamp(0, 1).flatten(1)
    nearest = torch.cat([torch.cdist(chunk, train).min(dim=1).values for chunk in samples.split(128)])
    return (nearest < threshold).float().mean().item()


def _save_grid(images: torch.Tensor, per_digit: int, path: Path) -> str:
    from torchvision.utils import save_image

    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(images.clamp(0, 1), path, nrow=per_digit, padding=2, pad_value=0.5)
    return str(path)


def _stage_failure(verdict: Verdict, info: dict) -> Verdict:
    stage, problem = info["stage"], info.get("problem")
    if stage == "weights":
        verdict.check(False, POINTS, "the reference U-Net weights do not load into your model: "
                      f"missing {problem['missing']}, unexpected {problem['unexpected']}, "
                      f"wrong shape {problem['wrong_shape']}",
                      "keep the course's attribute names and layer sizes in the blocks and the UNet")
    elif stage == "training":
        where = f" at line {problem['line']}" if isinstance(problem, dict) and problem.get("line") else ""
        text = problem["error"] if isinstance(problem, dict) else problem
        verdict.check(False, POINTS, f"training your model through your training cell failed{where}: {text}")
    else:
        verdict.check(False, POINTS, str(problem))
    return verdict


def judge(info: dict, data: dict, locate, seed: int, artifacts_dir=None, stem: str = "submission",
          check_steps: int = 40, **_) -> Verdict:
    """Official verdict (5 per digit, >= 95%) plus a larger sample, interval, grid and integrity checks.

    `data` holds the digits drawn through the student's sample_w ("official", and "extra" for
    the larger sample) and on the grader's trusted path ("grader")."""
    verdict = Verdict(POINTS, location=locate("sample_w"))
    verdict.details["profile"] = info.get("profile")
    verdict.details["profile_reason"] = info.get("profile_reason")
    verdict.details["w"] = info.get("w")
    verdict.details["effective_w"] = info.get("effective_w")
    if "course_flow" in info:
        verdict.details["course_flow"] = info["course_flow"]
    if info["stage"] != "done":
        return _stage_failure(verdict, info)
    official, official_finite = _classify(data["official"])
    official_labels = torch.arange(10).repeat_interleave(OFFICIAL_PER_DIGIT)
    official_accuracy = (official == official_labels).float().mean().item()
    larger_images = _by_digit(data["official"], data.get("extra"))
    per_digit = larger_images.shape[0] // 10
    larger, larger_finite = _classify(larger_images)
    larger_labels = torch.arange(10).repeat_interleave(per_digit)
    correct = int((larger == larger_labels).sum())
    trusted = data.get("grader")  # None when the grader could not sample the model itself
    if trusted is not None:
        grader, _ = _classify(trusted)
        trusted_correct = int((grader == torch.arange(10).repeat_interleave(trusted.shape[0] // 10)).sum())
        grader_accuracy = trusted_correct / len(grader)
    else:
        grader_accuracy = None
    verdict.details.update(
        official_accuracy=official_accuracy,
        official_passed=official_accuracy >= OFFICIAL_BAR,
        official_predictions={str(d): official[d * 5:(d + 1) * 5].tolist() for d in range(10)},
        accuracy=correct / len(larger_labels),
        accuracy_ci95=list(wilson_interval(correct, len(larger_labels))),
        samples=len(larger_labels),
        per_digit_accuracy={str(d): (larger[d * per_digit:(d + 1) * per_digit] == d).float().mean().item()
                            for d in range(10)},
        confusions=_confusions(larger, per_digit),
        reference_sampler_accuracy=grader_accuracy,
        larger_sample=info.get("larger_sample", "drawn"),
        timings=info.get("timings", {}),
    )
    if info.get("w") is None:
        verdict.note("w is not set to a number; sampled with w = 0.0, the notebook's default")
    if artifacts_dir is not None:
        verdict.details["grid"] = _save_grid(larger_images, per_digit, Path(artifacts_dir) / f"{stem}.samples.png")
    if not (official_finite and larger_finite):
        verdict.note("some samples contain NaN or infinite values (counted as blank images)")
    copies = _near_copies(larger_images)
    verdict.details["near_copy_fraction"] = copies
    if copies > NEAR_COPY_LIMIT:
        verdict.check(False, POINTS, f"{copies:.0%} of the generated digits are near copies of MNIST images")
        verdict.integrity.append(f"{copies:.0%} of the generated digits are near copies of MNIST images")
    if trusted is None:
        verdict.note("the grader could not sample your model itself (its weights do not fit the course's "
                     "U-Net), so the digits were judged only as your sample_w drew them")
    elif official_accuracy >= OFFICIAL_BAR \
            and wilson_interval(trusted_correct, len(grader))[1] < official_accuracy - TRUSTED_MARGIN:
        message = (f"sample_w draws digits the judge recognises ({official_accuracy:.0%}) but the same model, "
                   f"sampled by the grader at your guidance weight, does not ({grader_accuracy:.0%})")
        verdict.check(False, POINTS, message, "sample_w must draw its digits from the model it is given")
        verdict.integrity.append(message)

    confusion = _confusions(official, OFFICIAL_PER_DIGIT)
    if not verdict.check(official_accuracy >= OFFICIAL_BAR, POINTS,
                         f"official check: {int(round(official_accuracy * 50))} of 50 digits recognised "
                         f"({official_accuracy:.0%}; 48 needed)" + (f"; {confusion[0]}" if confusion else "")):
        verdict.hints.extend(_likely_causes(info, official_accuracy, grader_accuracy))
    if info.get("profile") == "transplant" and "narrow" in info:
        _check_short_training(verdict, info["narrow"], seed, check_steps)
    if info.get("profile") == "train" and "training" in info:
        _check_training_records(verdict, info["training"], info["training"].get("steps_asked", 0))
    verdict.earned = POINTS if verdict.passed else 0.0  # all or nothing, like the official grader
    return verdict


# Guided-sample accuracy of the shipped reference weights (docs/weights.md has the commands).
REFERENCE_ACCURACY_W1 = 0.997
REFERENCE_ACCURACY_W0 = 0.90
SAMPLING_RELIES_ON = ("schedule", "reverse_q", "blocks", "guidance")
TRAINING_RELIES_ON = ("q", "context_mask", "loss", "training_loop")


def _likely_causes(info: dict, official_accuracy: float, grader_accuracy: float) -> list[str]:
    """Hints for a failed official check: a guidance weight that switches guidance off, a sampler
    that does worse than the grader's on the same weights, unit tasks failed above."""
    hints = []
    w, effective = info.get("w"), info.get("effective_w")
    shown = "unset (0.0)" if w is None else f"{w:g}"
    if effective is not None and effective == 0:
        hints.append(f"your w = {shown} switches guidance off: sample_w draws plain conditional samples, "
                     f"which the reference weights recognise only {REFERENCE_ACCURACY_W0:.0%} of the time, "
                     f"under the 95% bar; with w = 1 they reach {REFERENCE_ACCURACY_W1:.1%}: set w = 1")
    elif effective is not None and effective < 0:
        hints.append(f"at your w = {shown}, sample_w weighs the unconditional prediction above the conditional "
                     f"one (the course's weight would be {effective:g}), so the digits drift to any class; choose w "
                     f"so that the course's weight is about 1 (w = 1 in the course's form, w = 2 in the form "
                     f"w * keep + (1 - w) * drop), where the reference weights reach {REFERENCE_ACCURACY_W1:.1%}")
    elif grader_accuracy is not None and grader_accuracy > official_accuracy + 0.3:
        hints.append("the grader's own sampler draws better digits from the same weights at your w: "
                     "check the guidance formula in sample_w")
    relevant = SAMPLING_RELIES_ON + (TRAINING_RELIES_ON if info.get("profile") == "train" else ())
    causes = [task for task in relevant if task in info.get("failed_before", ())]
    if causes:
        hints.append(f"likely cause: the {', '.join(causes)} task{'s' if len(causes) > 1 else ''} failed above; "
                     f"fix {'them' if len(causes) > 1 else 'it'} first")
    return hints


def _check_training_records(verdict: Verdict, training: dict, steps: int) -> None:
    """On every profile: the batches trained are the ones asked for, each conditioned on its own
    labels with a drop probability strictly between 0 and 1."""
    count = training.get("batch_count")
    verdict.details.setdefault("training_batches", count)
    if count != steps:
        verdict.check(False, POINTS, f"your training cell trained {count} of the {steps} batches it was given",
                      "train inside `for step, batch in enumerate(dataloader)` and call get_loss once a batch")
    masks = training.get("masks", [])
    drops = [m["drop_prob"] for m in masks if m["drop_prob"] is not None]
    if masks and not all(m["labels_from_batch"] for m in masks):
        verdict.check(False, POINTS, "trained as written, your loop conditions on something other than "
                      "the batch's labels, so the model cannot learn which digit to draw", None)
    elif len(drops) < len(masks) or not all(0 < p < 1 for p in drops):
        verdict.check(False, POINTS, "trained as written, your loop uses c_drop_prob values of 0 or 1 (or not "
                      "a number), so the model cannot learn guided generation (see the training_loop task)")


def _check_short_training(verdict: Verdict, narrow: dict, seed: int, steps: int) -> None:
    """CPU profile: after the same short training, the student's pipeline predicts noise about as well."""
    if "build_error" in narrow:
        verdict.check(False, 0, f"your UNet cannot be built at a narrow width {narrow.WIDTHS}: {narrow['build_error']}")
        return
    if isinstance(narrow.get("error"), dict):
        line = narrow["error"].get("line")
        verdict.check(False, 0, "the short training run through your training cell failed"
                      + (f" at line {line}" if type(line) is int else "") + f": {narrow['error'].get('message')}")
        return
    _check_training_records(verdict, narrow, steps)
    batch = heldout_batch(seed)
    prediction = narrow.get("heldout_prediction")
    if not (isinstance(prediction, torch.Tensor) and prediction.shape == batch["noise"].shape):
        verdict.check(False, POINTS, "after the short training your model's prediction on held-out images "
                      f"is a {kind_of(prediction)}, not a batch of noise estimates")
        return
    prediction = torch.nan_to_num(prediction.float(), nan=1e6)
    student_loss = F.mse_loss(prediction, batch["noise"]).item()
    reference_loss = reference_heldout_loss(steps, seed)
    verdict.details["short_training"] = {"steps": steps, "batches": narrow.get("batch_count"),
                                         "heldout_loss": student_loss, "reference_heldout_loss": reference_loss}
    ratio, slack = LOSS_SLACK
    verdict.check(student_loss <= max(reference_loss * ratio, reference_loss + slack), POINTS,
                  f"after {steps} training steps your pipeline's model predicts the noise worse than the "
                  f"reference pipeline's (held-out loss {student_loss:.3f} vs {reference_loss:.3f})",
                  "check q, get_loss and the training loop: the model must learn to predict the noise q added")
