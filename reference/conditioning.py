"""Class conditioning: the context mask for classifier-free training, and guided noise."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from reference.constants import N_CLASSES


def get_context_mask(
    c: torch.Tensor, drop_prob: float, n_classes: int = N_CLASSES
) -> tuple[torch.Tensor, torch.Tensor]:
    """One-hot labels and a Bernoulli keep-mask, one draw per one-hot element, P(keep) = 1 - drop_prob."""
    if not 0.0 <= float(drop_prob) <= 1.0:
        raise ValueError(f"drop_prob must lie in [0, 1], got {drop_prob}")
    labels = torch.as_tensor(c)
    if labels.dim() != 1:
        raise ValueError(f"c must be a 1-D tensor of class labels, got shape {tuple(labels.shape)}")
    if labels.is_floating_point() and not torch.equal(labels, labels.round()):
        raise ValueError("c must hold whole class labels")
    labels = labels.long()
    if labels.numel() and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"class labels must lie in [0, {n_classes - 1}]")
    c_hot = F.one_hot(labels, n_classes)
    c_mask = torch.bernoulli(torch.ones_like(c_hot).float() - float(drop_prob))
    return c_hot, c_mask


def guided_noise(e_t_keep_c: torch.Tensor, e_t_drop_c: torch.Tensor, w: float | torch.Tensor) -> torch.Tensor:
    """Classifier-free guidance as the course writes it: `(1 + w) * keep - w * drop`."""
    return (1 + w) * e_t_keep_c - w * e_t_drop_c
