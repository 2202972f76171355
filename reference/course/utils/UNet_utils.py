"""Stand-in for the course's `utils.UNet_utils`: the seven blocks, the U-Net and a context mask.

The classes are `reference`'s, whose state_dicts are interchangeable with the course's.
"""

from __future__ import annotations

import torch

from reference import conditioning
from reference.blocks import (
    DownBlock,
    EmbedBlock,
    GELUConvBlock,
    RearrangePoolBlock,
    ResidualConvBlock,
    SinusoidalPositionEmbedBlock,
    UpBlock,
)
from reference.unet import UNet

# The course's module moves its masks to this device, so code that trusts it keeps working.
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def get_context_mask(c, drop_prob, num_classes=10):
    """One-hot labels and a Bernoulli keep-mask (P(keep) = 1 - drop_prob), on `device`."""
    c_hot, c_mask = conditioning.get_context_mask(c, drop_prob, num_classes)
    return c_hot.to(device), c_mask.to(device)


__all__ = [
    "DownBlock", "EmbedBlock", "GELUConvBlock", "RearrangePoolBlock", "ResidualConvBlock",
    "SinusoidalPositionEmbedBlock", "UpBlock", "UNet", "get_context_mask", "device",
]
