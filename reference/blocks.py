"""The seven U-Net building blocks of the assessment, with the course's module layout.

Attribute names and nesting match the course's classes so that state_dicts move between them.
"""

from __future__ import annotations

import math

import torch
from einops.layers.torch import Rearrange
from torch import nn


class GELUConvBlock(nn.Module):
    """3x3 convolution (padding 1), GroupNorm with `group_size` groups, GELU."""

    def __init__(self, in_ch: int, out_ch: int, group_size: int):
        super().__init__()
        self.model = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 3, 1, 1),
            nn.GroupNorm(group_size, out_ch),
            nn.GELU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class RearrangePoolBlock(nn.Module):
    """Halve height and width by moving 2x2 patches into channels, then a GELUConvBlock."""

    def __init__(self, in_chs: int, group_size: int):
        super().__init__()
        self.rearrange = Rearrange("b c (h p1) (w p2) -> b (c p1 p2) h w", p1=2, p2=2)
        self.conv = GELUConvBlock(4 * in_chs, in_chs, group_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.rearrange(x))


class DownBlock(nn.Module):
    """Two GELUConvBlocks then a RearrangePoolBlock: changes channels, halves resolution."""

    def __init__(self, in_chs: int, out_chs: int, group_size: int):
        super().__init__()
        self.model = nn.Sequential(
            GELUConvBlock(in_chs, out_chs, group_size),
            GELUConvBlock(out_chs, out_chs, group_size),
            RearrangePoolBlock(out_chs, group_size),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class UpBlock(nn.Module):
    """Concatenate the skip input, upsample 2x with a transposed conv, then four GELUConvBlocks."""

    def __init__(self, in_chs: int, out_chs: int, group_size: int):
        super().__init__()
        self.model = nn.Sequential(
            nn.ConvTranspose2d(2 * in_chs, out_chs, 2, 2),
            GELUConvBlock(out_chs, out_chs, group_size),
            GELUConvBlock(out_chs, out_chs, group_size),
            GELUConvBlock(out_chs, out_chs, group_size),
            GELUConvBlock(out_chs, out_chs, group_size),
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.model(torch.cat((x, skip), 1))


class SinusoidalPositionEmbedBlock(nn.Module):
    """Transformer-style sin/cos embedding of a (scaled) timestep into `dim` features."""

    def __init__(self, dim: int):
        super().__init__()
        if dim < 4 or dim % 2:
            raise ValueError(f"embedding dim must be an even number >= 4, got {dim}")
        self.dim = dim

    def forward(self, time: torch.Tensor) -> torch.Tensor:
        half_dim = self.dim // 2
        scale = math.log(10000) / (half_dim - 1)
        freqs = torch.exp(torch.arange(half_dim, device=time.device) * -scale)
        angles = time[:, None] * freqs[None, :]
        return torch.cat((angles.sin(), angles.cos()), dim=-1)


class EmbedBlock(nn.Module):
    """Linear, GELU, Linear, reshaped to (emb_dim, 1, 1) to scale or shift feature maps."""

    def __init__(self, input_dim: int, emb_dim: int):
        super().__init__()
        self.input_dim = input_dim
        self.model = nn.Sequential(
            nn.Linear(input_dim, emb_dim),
            nn.GELU(),
            nn.Linear(emb_dim, emb_dim),
            nn.Unflatten(1, (emb_dim, 1, 1)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.view(-1, self.input_dim))


class ResidualConvBlock(nn.Module):
    """Two GELUConvBlocks whose outputs are summed (`x1 + x2`)."""

    def __init__(self, in_chs: int, out_chs: int, group_size: int):
        super().__init__()
        self.conv1 = GELUConvBlock(in_chs, out_chs, group_size)
        self.conv2 = GELUConvBlock(out_chs, out_chs, group_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.conv1(x)
        x2 = self.conv2(x1)
        return x1 + x2


BLOCK_CLASSES = {
    cls.__name__: cls
    for cls in (
        DownBlock,
        EmbedBlock,
        GELUConvBlock,
        RearrangePoolBlock,
        ResidualConvBlock,
        SinusoidalPositionEmbedBlock,
        UpBlock,
    )
}
