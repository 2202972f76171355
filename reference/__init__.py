"""Known-good implementation of the DLI diffusion assessment, used to grade students against.

Everything here follows the course's conventions (docs/course.md): images in [0, 1],
`T = 150` linear betas, reverse variance `B[t-1]`, guidance `(1 + w) * keep - w * drop`.
"""

from reference.schedule import Schedule, make_schedule
from reference.diffusion import q, reverse_q, get_loss
from reference.conditioning import get_context_mask, guided_noise
from reference.blocks import (
    DownBlock,
    EmbedBlock,
    GELUConvBlock,
    RearrangePoolBlock,
    ResidualConvBlock,
    SinusoidalPositionEmbedBlock,
    UpBlock,
)
from reference.unet import UNet, course_unet
from reference.sampling import sample_w

__all__ = [
    "Schedule",
    "make_schedule",
    "q",
    "reverse_q",
    "get_loss",
    "get_context_mask",
    "guided_noise",
    "DownBlock",
    "EmbedBlock",
    "GELUConvBlock",
    "RearrangePoolBlock",
    "ResidualConvBlock",
    "SinusoidalPositionEmbedBlock",
    "UpBlock",
    "UNet",
    "course_unet",
    "sample_w",
]
