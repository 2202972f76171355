"""Known-good implementation of the DLI diffusion assessment, used to grade students against.

Everything here follows the course's conventions (docs/course.md): images in [0, 1],
`T = 150` linear betas, reverse variance `B[t-1]`, guidance `(1 + w) * keep - w * drop`.
"""

from reference.blocks import (
    DownBlock,
    EmbedBlock,
    GELUConvBlock,
    RearrangePoolBlock,
    ResidualConvBlock,
    SinusoidalPositionEmbedBlock,
    UpBlock,
)
from reference.conditioning import get_context_mask, guided_noise
from reference.diffusion import get_loss, q, reverse_q
from reference.sampling import sample_w
from reference.schedule import Schedule, make_schedule
from reference.unet import UNet, course_unet

__all__ = [
    "DownBlock",
    "EmbedBlock",
    "GELUConvBlock",
    "RearrangePoolBlock",
    "ResidualConvBlock",
    "Schedule",
    "SinusoidalPositionEmbedBlock",
    "UNet",
    "UpBlock",
    "course_unet",
    "get_context_mask",
    "get_loss",
    "guided_noise",
    "make_schedule",
    "q",
    "reverse_q",
    "sample_w",
]
