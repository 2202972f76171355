"""`dli-grade selfcheck`: verify what every grade depends on, on this machine."""

from __future__ import annotations

import platform

import torch
import torchvision

from reference import mnist
from reference.classifier import load_classifier, mnist_test_accuracy
from reference.unet import course_unet
from reference.weights import UNET_FILE, load_into, weights_path

CLASSIFIER_MINIMUM = 0.99


def run_selfcheck() -> dict:
    """Collect the facts and say whether each holds; `ok` is True only if all do."""
    report = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
    }
    files = mnist.verify()
    report["data_files"] = files
    report["data_ok"] = all(files.values())
    try:
        report["classifier_test_accuracy"] = round(mnist_test_accuracy(load_classifier()), 4)
        report["classifier_ok"] = report["classifier_test_accuracy"] >= CLASSIFIER_MINIMUM
    except Exception as error:  # report every failure, don't stop at the first
        report["classifier_test_accuracy"] = 0.0
        report["classifier_ok"] = False
        report["classifier_error"] = str(error)
    try:
        load_into(course_unet(), weights_path(UNET_FILE))
        report["unet_ok"] = True
    except Exception as error:
        report["unet_ok"] = False
        report["unet_error"] = str(error)
    report["ok"] = report["data_ok"] and report["classifier_ok"] and report["unet_ok"]
    return report


def render_selfcheck(report: dict) -> str:
    """The report as aligned lines for a terminal."""

    def mark(ok):
        return "ok" if ok else "FAILED"

    lines = [
        f"python       {report['python']}",
        f"torch        {report['torch']}",
        f"torchvision  {report['torchvision']}",
        f"device       {report['device']}",
        f"MNIST data   {mark(report['data_ok'])}"
        + (
            ""
            if report["data_ok"]
            else "  (bad: " + ", ".join(n for n, ok in report["data_files"].items() if not ok) + ")"
        ),
        f"classifier   {mark(report['classifier_ok'])}  test accuracy {report['classifier_test_accuracy']:.2%}"
        + (f"  ({report['classifier_error']})" if "classifier_error" in report else ""),
        f"U-Net        {mark(report['unet_ok'])}" + (f"  ({report['unet_error']})" if "unet_error" in report else ""),
        "",
        "selfcheck passed" if report["ok"] else "selfcheck FAILED",
    ]
    return "\n".join(lines)
