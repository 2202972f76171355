"""Train the MNIST classifier with the pytorch/examples MNIST recipe: `python -m reference.train_classifier`.

Adadelta lr 1.0, StepLR gamma 0.7 each epoch, 14 epochs, batch 64, seed 1, normalised inputs.
"""

from __future__ import annotations

import json
import sys
import time

import click
import torch
import torch.nn.functional as F

from reference import mnist
from reference.classifier import MnistClassifier, classify, normalise
from reference.weights import CLASSIFIER_FILE, save_state_dict, weights_path


@click.command(help=__doc__.split("\n\n")[0])
@click.option("--epochs", type=int, default=14, show_default=True)
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--lr", type=float, default=1.0, show_default=True)
@click.option("--gamma", type=float, default=0.7, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--out",
    default=str(weights_path(CLASSIFIER_FILE)),
    show_default="reference/data/mnist_classifier.pt",
    help="Where to write the weights.",
)
def main(epochs: int, batch_size: int, lr: float, gamma: float, seed: int, out: str) -> None:
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    train_x, train_y = mnist.load("train")
    test_x, test_y = mnist.load("test")
    train_x = normalise(train_x)
    model = MnistClassifier()
    optimizer = torch.optim.Adadelta(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=gamma)
    started = time.time()
    accuracy = 0.0
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(train_x.shape[0], generator=generator)
        for start in range(0, train_x.shape[0], batch_size):
            index = order[start : start + batch_size]
            optimizer.zero_grad()
            loss = F.nll_loss(model(train_x[index]), train_y[index])
            loss.backward()  # type: ignore[no-untyped-call]  # unannotated in torch
            optimizer.step()
        scheduler.step()
        accuracy = (classify(model.eval(), test_x) == test_y).float().mean().item()
        print(
            f"epoch {epoch}: test accuracy {accuracy:.4f} ({time.time() - started:.0f} s)", file=sys.stderr, flush=True
        )
    save_state_dict(model, out)
    print(
        json.dumps(
            {
                "epochs": epochs,
                "seed": seed,
                "test_accuracy": accuracy,
                "seconds": round(time.time() - started, 1),
                "torch": torch.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
