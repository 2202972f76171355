"""The course's class-conditioned U-Net, state_dict-compatible with the notebook's model."""

from __future__ import annotations

import math

import torch
from torch import nn

from reference import constants
from reference.blocks import (
    DownBlock,
    EmbedBlock,
    GELUConvBlock,
    ResidualConvBlock,
    SinusoidalPositionEmbedBlock,
    UpBlock,
)

SMALL_GROUP_SIZE = 8
BIG_GROUP_SIZE = 32


def _groups(preferred: int, *channels: int) -> int:
    """The course's group count, reduced only where a narrow model's channels cannot take it."""
    return math.gcd(preferred, *channels)


class UNet(nn.Module):
    """U-Net predicting noise from (x_t, t, one-hot class, class mask).

    At the course settings the group counts are the course's (8 and 32); a narrower
    `down_chs` lowers them to divide the channels, so the model still builds.
    """

    def __init__(
        self,
        T: int,
        img_ch: int,
        img_size: int,
        down_chs: tuple[int, ...] = constants.DOWN_CHS,
        t_embed_dim: int = constants.T_EMBED_DIM,
        c_embed_dim: int = constants.N_CLASSES,
    ) -> None:
        super().__init__()
        if len(down_chs) != 3:
            raise ValueError(f"down_chs must have three entries, got {down_chs!r}")
        if img_size % 4:
            raise ValueError(f"img_size must be divisible by 4, got {img_size}")
        self.T = T
        up_chs = tuple(down_chs[::-1])
        latent_size = img_size // 4
        small = _groups(SMALL_GROUP_SIZE, down_chs[0])
        big = _groups(BIG_GROUP_SIZE, *down_chs)

        self.down0 = ResidualConvBlock(img_ch, down_chs[0], small)
        self.down1 = DownBlock(down_chs[0], down_chs[1], big)
        self.down2 = DownBlock(down_chs[1], down_chs[2], big)
        self.to_vec = nn.Sequential(nn.Flatten(), nn.GELU())

        latent_features = down_chs[2] * latent_size**2
        self.dense_emb = nn.Sequential(
            nn.Linear(latent_features, down_chs[1]),
            nn.ReLU(),
            nn.Linear(down_chs[1], down_chs[1]),
            nn.ReLU(),
            nn.Linear(down_chs[1], latent_features),
            nn.ReLU(),
        )
        self.sinusoidaltime = SinusoidalPositionEmbedBlock(t_embed_dim)
        self.t_emb1 = EmbedBlock(t_embed_dim, up_chs[0])
        self.t_emb2 = EmbedBlock(t_embed_dim, up_chs[1])
        self.c_embed1 = EmbedBlock(c_embed_dim, up_chs[0])
        self.c_embed2 = EmbedBlock(c_embed_dim, up_chs[1])

        self.up0 = nn.Sequential(
            nn.Unflatten(1, (up_chs[0], latent_size, latent_size)),
            GELUConvBlock(up_chs[0], up_chs[0], big),
        )
        self.up1 = UpBlock(up_chs[0], up_chs[1], big)
        self.up2 = UpBlock(up_chs[1], up_chs[2], big)
        self.out = nn.Sequential(
            nn.Conv2d(2 * up_chs[-1], up_chs[-1], 3, 1, 1),
            nn.GroupNorm(small, up_chs[-1]),
            nn.ReLU(),
            nn.Conv2d(up_chs[-1], img_ch, 3, 1, 1),
        )

    def forward(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor, c_mask: torch.Tensor) -> torch.Tensor:
        down0 = self.down0(x)
        down1 = self.down1(down0)
        down2 = self.down2(down1)
        latent_vec = self.dense_emb(self.to_vec(down2))

        t = self.sinusoidaltime(t.float() / self.T)  # timesteps scaled to [0, 1)
        t_emb1 = self.t_emb1(t)
        t_emb2 = self.t_emb2(t)

        c = c * c_mask
        c_emb1 = self.c_embed1(c)
        c_emb2 = self.c_embed2(c)

        up0 = self.up0(latent_vec)
        up1 = self.up1(c_emb1 * up0 + t_emb1, down2)
        up2 = self.up2(c_emb2 * up1 + t_emb2, down1)
        return self.out(torch.cat((up2, down0), 1))


def course_unet(down_chs: tuple[int, ...] = constants.DOWN_CHS) -> UNet:
    """The assessment's model: `UNet(T, IMG_CH, IMG_SIZE, down_chs, 8, N_CLASSES)`."""
    return UNet(
        constants.T,
        constants.IMG_CH,
        constants.IMG_SIZE,
        down_chs,
        constants.T_EMBED_DIM,
        constants.N_CLASSES,
    )
