"""Train the judge with the pytorch/examples MNIST recipe: `python -m reference.train_judge`.

Adadelta lr 1.0, StepLR gamma 0.7 each epoch, 14 epochs, batch 64, seed 1, normalised inputs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch
import torch.nn.functional as F

from reference import mnist
from reference.judge import JudgeNet, classify, normalise
from reference.weights import JUDGE_FILE, save_state_dict, weights_path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=14)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1.0)
    parser.add_argument("--gamma", type=float, default=0.7)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default=str(weights_path(JUDGE_FILE)))
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    train_x, train_y = mnist.load("train")
    test_x, test_y = mnist.load("test")
    train_x = normalise(train_x)
    model = JudgeNet()
    optimizer = torch.optim.Adadelta(model.parameters(), lr=args.lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=args.gamma)
    started = time.time()
    accuracy = 0.0
    for epoch in range(1, args.epochs + 1):
        model.train()
        order = torch.randperm(train_x.shape[0], generator=generator)
        for start in range(0, train_x.shape[0], args.batch_size):
            index = order[start:start + args.batch_size]
            optimizer.zero_grad()
            loss = F.nll_loss(model(train_x[index]), train_y[index])
            loss.backward()
            optimizer.step()
        scheduler.step()
        accuracy = (classify(model.eval(), test_x) == test_y).float().mean().item()
        print(f"epoch {epoch}: test accuracy {accuracy:.4f} ({time.time() - started:.0f} s)",
              file=sys.stderr, flush=True)
    save_state_dict(model, args.out)
    print(json.dumps({"epochs": args.epochs, "seed": args.seed, "test_accuracy": accuracy,
                      "seconds": round(time.time() - started, 1), "torch": torch.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
