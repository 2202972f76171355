"""The MNIST classifier: the pytorch/examples MNIST CNN, used as the official grader uses it.

Samples are normalised with the MNIST mean and std and classified by argmax, with no clamping
or rescaling (docs/course.md, "How the official grader decides"). The classifier runs in eval mode.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from reference.weights import CLASSIFIER_FILE, load_into, weights_path

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081


class MnistClassifier(nn.Module):
    """conv 1->32 3x3, conv 32->64 3x3, max-pool 2, dropout .25, fc 9216->128, dropout .5, fc 128->10."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = self.dropout1(F.max_pool2d(x, 2))
        x = self.dropout2(F.relu(self.fc1(torch.flatten(x, 1))))
        return F.log_softmax(self.fc2(x), dim=1)


def normalise(images: torch.Tensor) -> torch.Tensor:
    """The official transform: `(x - 0.1307) / 0.3081`, nothing else."""
    return (images - MNIST_MEAN) / MNIST_STD


def load_classifier(path: Path | None = None) -> MnistClassifier:
    """The shipped classifier (or the weights at `path`), on the CPU, in eval mode."""
    return load_into(MnistClassifier(), path or weights_path(CLASSIFIER_FILE)).eval()


@torch.no_grad()
def classify(classifier: MnistClassifier, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Predicted digit for each raw sample (N, 1, 28, 28) in the course's [0, 1] scale."""
    if images.dim() != 4 or tuple(images.shape[1:]) != (1, 28, 28):
        raise ValueError(f"samples must have shape (N, 1, 28, 28), got {tuple(images.shape)}")
    if not torch.isfinite(images).all():
        raise ValueError("samples contain NaN or infinite values")
    classifier.eval()
    images = images.detach().float().cpu()
    predictions = [
        classifier(normalise(images[i : i + batch_size])).argmax(dim=1) for i in range(0, images.shape[0], batch_size)
    ]
    return torch.cat(predictions) if predictions else torch.empty(0, dtype=torch.long)


def mnist_test_accuracy(classifier: MnistClassifier | None = None) -> float:
    """The classifier's accuracy on the 10,000 MNIST test images."""
    from reference import mnist

    classifier = classifier or load_classifier()
    images, labels = mnist.load("test")
    return (classify(classifier, images) == labels).float().mean().item()
