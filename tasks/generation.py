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

from tasks import _harness
from tasks._schedule_ref import notebook_T, notebook_device
from tasks.base import Evidence, Verdict, require, save

ID = "generation"
TITLE = "Generated digits recognised by the judge (official bar: 48 of 50)"
POINTS = 28
NEEDS = ("sample_w", "model")
OFFICIAL_PER_DIGIT = 5
OFFICIAL_BAR = 0.95
NARROW_CHS = (32, 32, 64)  # the course's 32 GroupNorm groups need at least 32 channels everywhere
HELDOUT_FILE = "heldout.pt"


# -- child side ------------------------------------------------------------------------------
class _Progress:
    """Writes 'phase done total' to a file the grader polls for its progress bar."""

    def __init__(self, out_dir: str):
        self.path = Path(out_dir) / "progress.txt"

    def __call__(self, phase: str, done: int, total: int) -> None:
        self.path.write_text(f"{phase}\t{done}\t{total}\n")


class _Bfloat16(torch.nn.Module):
    """Runs the wrapped model under CPU bf16 autocast (AMX makes sampling ~4x faster)."""

    def __init__(self, model):
        super().__init__()
        self.inner = model

    def forward(self, *args, **kwargs):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return self.inner(*args, **kwargs).float()

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:  # a sampler may read attributes of the model, such as T
            return getattr(self.inner, name)


def _fast_on_cpu(model, device):
    """The model wrapped for bf16 autocast where the CPU supports it; unchanged elsewhere."""
    supported = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    return _Bfloat16(model) if device.type == "cpu" and supported() else model


def _unwrap(model):
    return getattr(model, "_orig_mod", model)  # a torch.compile wrapper keeps the module here


def _student_w(namespace: dict):
    w = namespace.get("w")
    return float(w) if isinstance(w, (int, float)) and not isinstance(w, bool) else None


def _draw(sample_w, model, per_digit: int, w: float, device, progress, phase) -> torch.Tensor:
    """per_digit samples of each digit 0..9, called as the official grader calls sample_w."""
    images = []
    for digit in range(10):
        c_hot = F.one_hot(torch.full((per_digit,), digit), 10).float().to(device)
        out = sample_w(model, c_hot, w=w)
        if isinstance(out, (tuple, list)):  # some samplers also return their stored steps
            out = out[0]
        images.append(torch.as_tensor(out).detach().float().cpu().reshape(per_digit, 1, 28, 28))
        progress(phase, digit + 1, 10)
    return torch.cat(images)


def _build(cls, namespace, down_chs):
    return cls(notebook_T(namespace), namespace.get("IMG_CH", 1), namespace.get("IMG_SIZE", 28),
               down_chs=down_chs, t_embed_dim=8, c_embed_dim=namespace.get("N_CLASSES", 10))


def _train_through_cell(namespace, model, device, steps, training, seed, progress, phase):
    """Train `model` for `steps` batches by running the student's training cell on real MNIST."""
    from reference import mnist

    images, labels = mnist.load("all")
    images, labels = images.to(device), labels.to(device)
    batch_size = namespace.get("BATCH_SIZE", 128)
    epochs = training.get("epochs") or 1
    loader = _harness.BatchLoader(images, labels, batch_size, max(1, -(-steps // epochs)), seed)
    student_loss = namespace.get("get_loss")
    student_mask = namespace.get("get_context_mask")
    seen = {"batches": 0, "masks": []}
    made = {}  # id of a mask get_context_mask returned (and "latest") -> what it was made from

    def counting_loss(*args, **kwargs):
        if seen["batches"] >= steps:
            raise _harness.StopTraining
        seen["batches"] += 1
        progress(phase, seen["batches"], steps)
        # Only masks that reach get_loss describe training; the preview's own mask does not.
        used = made.get(id(args[4])) if len(args) > 4 else None
        seen["masks"].append(used or made.get("latest") or {"drop_prob": None, "labels_from_batch": False})
        made.clear()  # ids can be reused once tensors are freed
        return student_loss(*args, **kwargs)

    def recording_mask(c, drop_prob, *args, **kwargs):
        labels_now = loader.current[1] if loader.current is not None else None
        c_tensor = torch.as_tensor(c)
        result = student_mask(c, drop_prob, *args, **kwargs)
        if isinstance(result, (tuple, list)) and len(result) == 2:
            made[id(result[1])] = made["latest"] = {
                "drop_prob": float(drop_prob) if isinstance(drop_prob, (int, float)) else None,
                "labels_from_batch": bool(labels_now is not None and c_tensor.shape == labels_now.shape
                                          and torch.equal(c_tensor.to(labels_now.device).long(), labels_now)),
            }
        return result

    torch.manual_seed(seed)
    model.train()
    error = _harness.run_training_cell(
        namespace, training["code"], training["filename"], training["loaders"], loader,
        {"model": model, "get_loss": counting_loss, "get_context_mask": recording_mask},
    )
    model.eval()
    return {"batches": seen["batches"], "error": error, "masks": seen["masks"][-200:]}


def probe(namespace: dict, out_dir: str, profile: str = "cpu", train_steps: int = 0,
          per_digit: int = 10, grader_per_digit: int = 2, check_steps: int = 0,
          training: dict | None = None, weights_file: str = "", seed: int = 0) -> dict:
    """Make the model (reference weights on CPU, trained from scratch on GPU) and sample it."""
    from reference.sampling import sample_w as grader_sample_w
    from reference.schedule import make_schedule

    sample_w = require(namespace, "sample_w")
    model = _unwrap(require(namespace, "model"))
    if not isinstance(model, torch.nn.Module):
        return {"stage": "model", "problem": f"model is a {type(model).__name__}, not a torch module"}
    device = notebook_device(namespace)
    progress = _Progress(out_dir)
    info = {"profile": profile, "w": _student_w(namespace), "timings": {}}
    w = info["w"] if info["w"] is not None else 0.0
    started = time.perf_counter()

    if profile == "cpu":
        state = torch.load(weights_file, map_location="cpu", weights_only=True)
        own = model.state_dict()
        mismatch = {
            "missing": sorted(set(own) - set(state))[:10],
            "unexpected": sorted(set(state) - set(own))[:10],
            "wrong_shape": sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)[:10],
        }
        if any(mismatch.values()):
            return {**info, "stage": "weights", "problem": mismatch}
        model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})
        model.to(device).eval()
    else:
        if training is None:
            return {**info, "stage": "training", "problem": "no training loop found to train the model with"}
        model = _build(type(model), namespace, namespace.get("down_chs", (64, 64, 128))).to(device)
        info["training"] = _train_through_cell(namespace, model, device, train_steps, training, seed,
                                               progress, "training")
        if info["training"]["error"]:
            return {**info, "stage": "training", "problem": info["training"]["error"]}
    info["timings"]["model_s"] = time.perf_counter() - started

    started = time.perf_counter()
    torch.manual_seed(seed)
    sampled = _fast_on_cpu(model, device)
    info["bf16_sampling"] = sampled is not model
    tensors = {"official": _draw(sample_w, sampled, OFFICIAL_PER_DIGIT, w, device, progress, "official sample")}
    extra = per_digit - OFFICIAL_PER_DIGIT  # the larger sample is the official one plus more draws
    if extra > 0:
        tensors["extra"] = _draw(sample_w, sampled, extra, w, device, progress, "larger sample")
    schedule = make_schedule(notebook_T(namespace), device=device)
    tensors["grader"] = _draw(lambda m, c, w: grader_sample_w(m, c, w, schedule), sampled,
                              grader_per_digit, 1.0, device, progress, "reference sampler")
    info["timings"]["sampling_s"] = time.perf_counter() - started

    if profile == "cpu" and check_steps and training is not None:
        started = time.perf_counter()
        try:
            narrow = _build(type(model), namespace, NARROW_CHS).to(device)
        except Exception as error:  # the class may not take down_chs; that is a finding
            info["narrow"] = {"error": f"{type(error).__name__}: {error}"[:300]}
        else:
            start = _narrow_start(namespace, seed)
            if _fits(narrow, start):  # both pipelines then start from the same weights
                narrow.load_state_dict(start)
            info["narrow"] = _train_through_cell(namespace, _fast_on_cpu(narrow, device), device,
                                                 check_steps, training, seed, progress, "short training")
            heldout = torch.load(Path(out_dir) / HELDOUT_FILE, weights_only=True)
            with torch.no_grad():
                tensors["heldout_prediction"] = narrow(
                    heldout["x_t"].to(device), heldout["t"].to(device),
                    heldout["c_hot"].to(device), torch.ones_like(heldout["c_hot"]).to(device))
        info["timings"]["short_training_s"] = time.perf_counter() - started
    save(out_dir, ID, tensors)
    return {**info, "stage": "done"}


def _narrow_start(namespace: dict, seed: int) -> dict:
    """The reference narrow model's initial weights, so both pipelines start from the same point."""
    from reference.unet import UNet

    torch.manual_seed(seed)
    return UNet(notebook_T(namespace), 1, 28, NARROW_CHS).state_dict()


def _fits(model, state: dict) -> bool:
    own = model.state_dict()
    return set(own) == set(state) and all(own[k].shape == state[k].shape for k in own)


# -- parent side -----------------------------------------------------------------------------
HELDOUT_SIZE = 256
LOSS_SLACK = (1.25, 0.02)  # the student's held-out loss may exceed the reference's by 25% + 0.02


def heldout_batch(seed: int, T: int = 150) -> dict[str, torch.Tensor]:
    """A fixed batch of test images noised by the reference q (deterministic in the seed)."""
    from reference import mnist
    from reference.diffusion import q
    from reference.schedule import make_schedule

    images, labels = mnist.load("test")
    generator = torch.Generator().manual_seed(seed + 7)
    index = torch.randperm(images.shape[0], generator=generator)[:HELDOUT_SIZE]
    t = torch.randint(0, T, (HELDOUT_SIZE,), generator=generator).float()
    noise = torch.randn(HELDOUT_SIZE, 1, 28, 28, generator=generator)
    x_t, _ = q(images[index], t, make_schedule(T), noise=noise)
    return {"x_t": x_t, "t": t, "noise": noise, "c_hot": F.one_hot(labels[index], 10).float()}


_REFERENCE_LOSS_CACHE: dict[tuple, float] = {}


def reference_heldout_loss(steps: int, seed: int) -> float:
    """Held-out loss of the reference pipeline after the same short narrow training (cached)."""
    key = (steps, seed)
    if key not in _REFERENCE_LOSS_CACHE:
        from reference import mnist
        from reference.schedule import make_schedule
        from reference.training import train
        from reference.unet import UNet

        torch.manual_seed(seed)
        model = UNet(150, 1, 28, NARROW_CHS)
        images, labels = mnist.load("all")
        bf16 = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)()
        train(model, images, labels, make_schedule(), steps=steps, seed=seed,
              autocast_dtype=torch.bfloat16 if bf16 else None)
        batch = heldout_batch(seed)
        with torch.no_grad():
            prediction = model(batch["x_t"], batch["t"], batch["c_hot"], torch.ones_like(batch["c_hot"]))
        _REFERENCE_LOSS_CACHE[key] = F.mse_loss(prediction, batch["noise"]).item()
    return _REFERENCE_LOSS_CACHE[key]


def prepare(out_dir, seed: int, analysis, profile: str = "cpu", train_steps: int = 2000,
            per_digit: int = 10, grader_per_digit: int = 2, check_steps: int = 40, **_) -> dict:
    """Everything the child needs: budgets, the training cell, the weights and a held-out batch."""
    from reference.weights import UNET_FILE, weights_path

    facts = analysis.training_cell()
    training = None
    if facts is not None and facts.tree is not None:
        training = {"code": facts.cell.code, "filename": f"<cell {facts.cell.number}>",
                    "loaders": _harness.loader_names(facts.tree),
                    "epochs": _harness.epochs_assigned(facts.tree)}
    if profile == "cpu" and check_steps:
        torch.save(heldout_batch(seed), Path(out_dir) / HELDOUT_FILE)
    return {"profile": profile, "train_steps": train_steps, "per_digit": per_digit,
            "grader_per_digit": grader_per_digit, "check_steps": check_steps, "training": training,
            "weights_file": str(weights_path(UNET_FILE)), "seed": seed}


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
    """Fraction of samples within `threshold` (L2, pixels in [0, 1]) of some MNIST training image."""
    from reference import mnist

    train, _ = mnist.load("train")
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


def judge(evidence: Evidence, artifacts_dir=None, stem: str = "submission", check_steps: int = 40,
          **_) -> Verdict:
    """Official verdict (5 per digit, >= 95%) plus a larger sample, interval, grid and integrity checks."""
    info = evidence.value
    verdict = Verdict(POINTS, location=evidence.locate("sample_w"))
    verdict.details["profile"] = info.get("profile")
    verdict.details["w"] = info.get("w")
    if info["stage"] != "done":
        return _stage_failure(verdict, info)
    data = evidence.tensors(ID)
    official, official_finite = _classify(data["official"])
    official_labels = torch.arange(10).repeat_interleave(OFFICIAL_PER_DIGIT)
    official_accuracy = (official == official_labels).float().mean().item()
    larger_images = _by_digit(data["official"], data.get("extra"))
    per_digit = larger_images.shape[0] // 10
    larger, larger_finite = _classify(larger_images)
    larger_labels = torch.arange(10).repeat_interleave(per_digit)
    correct = int((larger == larger_labels).sum())
    grader, _ = _classify(data["grader"])
    grader_accuracy = (grader == torch.arange(10).repeat_interleave(data["grader"].shape[0] // 10)).float().mean().item()
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
        timings=info.get("timings", {}),
    )
    if info.get("w") is None:
        verdict.note("w is not set to a number; sampled with w = 0.0, the notebook's default")
    if artifacts_dir is not None:
        verdict.details["grid"] = _save_grid(larger_images, per_digit, Path(artifacts_dir) / f"{stem}.samples.png")
    integrity = []
    if not (official_finite and larger_finite):
        verdict.note("some samples contain NaN or infinite values (counted as blank images)")
    copies = _near_copies(larger_images)
    verdict.details["near_copy_fraction"] = copies
    if copies > 0.2:
        integrity.append(f"{copies:.0%} of the generated digits are near copies of MNIST training images")
    if official_accuracy >= OFFICIAL_BAR and grader_accuracy < 0.5:
        integrity.append("sample_w draws recognisable digits but the model itself, sampled by the grader, "
                         f"does not ({grader_accuracy:.0%}): check that sample_w uses the model")
    verdict.details["integrity"] = integrity

    confusion = _confusions(official, OFFICIAL_PER_DIGIT)
    verdict.check(official_accuracy >= OFFICIAL_BAR, POINTS,
                  f"official check: {int(round(official_accuracy * 50))} of 50 digits recognised "
                  f"({official_accuracy:.0%}; 48 needed)" + (f"; {confusion[0]}" if confusion else ""),
                  "check the guidance formula and your w" if grader_accuracy > official_accuracy + 0.3 else None)
    if info.get("profile") == "cpu" and "narrow" in info:
        _check_short_training(verdict, info["narrow"], data, evidence.seed, check_steps)
    verdict.earned = POINTS if verdict.passed else 0.0  # all or nothing, like the official grader
    return verdict


def _check_short_training(verdict: Verdict, narrow: dict, data, seed: int, steps: int) -> None:
    """CPU profile: after the same short training, the student's pipeline predicts noise about as well."""
    if "error" in narrow and isinstance(narrow["error"], str):
        verdict.check(False, 0, f"your UNet cannot be built at a narrow width {NARROW_CHS}: {narrow['error']}")
        return
    if narrow.get("error"):
        line = narrow["error"].get("line")
        verdict.check(False, 0, "the short training run through your training cell failed"
                      + (f" at line {line}" if line else "") + f": {narrow['error']['error']}")
        return
    masks = narrow.get("masks", [])
    drops = [m["drop_prob"] for m in masks if m["drop_prob"] is not None]
    if masks and not all(m["labels_from_batch"] for m in masks):
        verdict.check(False, POINTS, "trained as written, your loop conditions on something other than "
                      "the batch's labels, so the model cannot learn which digit to draw", None)
    elif drops and not all(0 < p < 1 for p in drops):
        verdict.check(False, POINTS, "trained as written, your loop uses c_drop_prob values of 0 or 1, so "
                      "the model cannot learn guided generation (see the training_loop task)")
    batch = heldout_batch(seed)
    prediction = data["heldout_prediction"].float()
    student_loss = F.mse_loss(prediction, batch["noise"]).item()
    reference_loss = reference_heldout_loss(steps, seed)
    verdict.details["short_training"] = {"steps": steps, "batches": narrow.get("batches"),
                                         "heldout_loss": student_loss, "reference_heldout_loss": reference_loss}
    ratio, slack = LOSS_SLACK
    verdict.check(student_loss <= max(reference_loss * ratio, reference_loss + slack), POINTS,
                  f"after {steps} training steps your pipeline's model predicts the noise worse than the "
                  f"reference pipeline's (held-out loss {student_loss:.3f} vs {reference_loss:.3f})",
                  "check q, get_loss and the training loop: the model must learn to predict the noise q added")
