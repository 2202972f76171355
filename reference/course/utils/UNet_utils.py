"""Stand-in for the course's `utils.UNet_utils`: the seven blocks, the U-Net and a context mask.

Self-contained: student code imports this module in a child process that cannot see the
grader's packages, so nothing here imports `grader`, `tasks` or `reference`. Attribute names,
nesting and shapes follow the course's classes, so state_dicts move between this `UNet`, the
course's and the grader's own, and give the same outputs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops.layers.torch import Rearrange
from torch import nn

# The course's module moves its masks to this device, so code that trusts it keeps working.
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

SMALL_GROUP_SIZE = 8
BIG_GROUP_SIZE = 32


class GELUConvBlock(nn.Module):
    """3x3 convolution (padding 1), GroupNorm with `group_size` groups, GELU."""

    def __init__(self, in_ch, out_ch, group_size):
        super().__init__()
        self.model = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 3, 1, 1), nn.GroupNorm(group_size, out_ch), nn.GELU()
        )

    def forward(self, x):
        return self.model(x)


class RearrangePoolBlock(nn.Module):
    """Halve height and width by moving 2x2 patches into channels, then a GELUConvBlock."""

    def __init__(self, in_chs, group_size):
        super().__init__()
        self.rearrange = Rearrange("b c (h p1) (w p2) -> b (c p1 p2) h w", p1=2, p2=2)
        self.conv = GELUConvBlock(4 * in_chs, in_chs, group_size)

    def forward(self, x):
        return self.conv(self.rearrange(x))


class DownBlock(nn.Module):
    """Two GELUConvBlocks then a RearrangePoolBlock: changes channels, halves resolution."""

    def __init__(self, in_chs, out_chs, group_size):
        super().__init__()
        self.model = nn.Sequential(
            GELUConvBlock(in_chs, out_chs, group_size),
            GELUConvBlock(out_chs, out_chs, group_size),
            RearrangePoolBlock(out_chs, group_size),
        )

    def forward(self, x):
        return self.model(x)


class UpBlock(nn.Module):
    """Concatenate the skip input, upsample 2x with a transposed conv, then four GELUConvBlocks."""

    def __init__(self, in_chs, out_chs, group_size):
        super().__init__()
        self.model = nn.Sequential(
            nn.ConvTranspose2d(2 * in_chs, out_chs, 2, 2),
            *(GELUConvBlock(out_chs, out_chs, group_size) for _ in range(4)),
        )

    def forward(self, x, skip):
        return self.model(torch.cat((x, skip), 1))


class SinusoidalPositionEmbedBlock(nn.Module):
    """Transformer-style sin/cos embedding of a (scaled) timestep into `dim` features."""

    def __init__(self, dim):
        super().__init__()
        if dim < 4 or dim % 2:
            raise ValueError(f"embedding dim must be an even number >= 4, got {dim}")
        self.dim = dim

    def forward(self, time):
        half_dim = self.dim // 2
        freqs = torch.exp(torch.arange(half_dim, device=time.device) * -(math.log(10000) / (half_dim - 1)))
        angles = time[:, None] * freqs[None, :]
        return torch.cat((angles.sin(), angles.cos()), dim=-1)


class EmbedBlock(nn.Module):
    """Linear, GELU, Linear, reshaped to (emb_dim, 1, 1) to scale or shift feature maps."""

    def __init__(self, input_dim, emb_dim):
        super().__init__()
        self.input_dim = input_dim
        self.model = nn.Sequential(
            nn.Linear(input_dim, emb_dim), nn.GELU(), nn.Linear(emb_dim, emb_dim),
            nn.Unflatten(1, (emb_dim, 1, 1)),
        )

    def forward(self, x):
        return self.model(x.view(-1, self.input_dim))


class ResidualConvBlock(nn.Module):
    """Two GELUConvBlocks whose outputs are summed (`x1 + x2`)."""

    def __init__(self, in_chs, out_chs, group_size):
        super().__init__()
        self.conv1 = GELUConvBlock(in_chs, out_chs, group_size)
        self.conv2 = GELUConvBlock(out_chs, out_chs, group_size)

    def forward(self, x):
        x1 = self.conv1(x)
        return x1 + self.conv2(x1)


class UNet(nn.Module):
    """U-Net predicting noise from (x_t, t, one-hot class, class mask); `t` is divided by `T`.

    At the course settings the group counts are the course's (8 and 32); a narrower `down_chs`
    lowers them to divide the channels, so the model still builds.
    """

    def __init__(self, T, img_ch, img_size, down_chs=(64, 64, 128), t_embed_dim=8, c_embed_dim=10):
        super().__init__()
        if len(down_chs) != 3:
            raise ValueError(f"down_chs must have three entries, got {down_chs!r}")
        if img_size % 4:
            raise ValueError(f"img_size must be divisible by 4, got {img_size}")
        self.T = T
        up_chs = tuple(down_chs[::-1])
        latent = img_size // 4
        small = math.gcd(SMALL_GROUP_SIZE, down_chs[0])
        big = math.gcd(BIG_GROUP_SIZE, *down_chs)
        features = down_chs[2] * latent**2

        self.down0 = ResidualConvBlock(img_ch, down_chs[0], small)
        self.down1 = DownBlock(down_chs[0], down_chs[1], big)
        self.down2 = DownBlock(down_chs[1], down_chs[2], big)
        self.to_vec = nn.Sequential(nn.Flatten(), nn.GELU())
        self.dense_emb = nn.Sequential(
            nn.Linear(features, down_chs[1]), nn.ReLU(),
            nn.Linear(down_chs[1], down_chs[1]), nn.ReLU(),
            nn.Linear(down_chs[1], features), nn.ReLU(),
        )
        self.sinusoidaltime = SinusoidalPositionEmbedBlock(t_embed_dim)
        self.t_emb1 = EmbedBlock(t_embed_dim, up_chs[0])
        self.t_emb2 = EmbedBlock(t_embed_dim, up_chs[1])
        self.c_embed1 = EmbedBlock(c_embed_dim, up_chs[0])
        self.c_embed2 = EmbedBlock(c_embed_dim, up_chs[1])
        self.up0 = nn.Sequential(
            nn.Unflatten(1, (up_chs[0], latent, latent)), GELUConvBlock(up_chs[0], up_chs[0], big)
        )
        self.up1 = UpBlock(up_chs[0], up_chs[1], big)
        self.up2 = UpBlock(up_chs[1], up_chs[2], big)
        self.out = nn.Sequential(
            nn.Conv2d(2 * up_chs[-1], up_chs[-1], 3, 1, 1), nn.GroupNorm(small, up_chs[-1]),
            nn.ReLU(), nn.Conv2d(up_chs[-1], img_ch, 3, 1, 1),
        )

    def forward(self, x, t, c, c_mask):
        down0 = self.down0(x)
        down1 = self.down1(down0)
        down2 = self.down2(down1)
        latent_vec = self.dense_emb(self.to_vec(down2))
        t = self.sinusoidaltime(t.float() / self.T)
        c = c * c_mask
        up0 = self.up0(latent_vec)
        up1 = self.up1(self.c_embed1(c) * up0 + self.t_emb1(t), down2)
        up2 = self.up2(self.c_embed2(c) * up1 + self.t_emb2(t), down1)
        return self.out(torch.cat((up2, down0), 1))


def get_context_mask(c, drop_prob, num_classes=10):
    """One-hot labels and a Bernoulli keep-mask (P(keep) = 1 - drop_prob, one draw per one-hot
    element, not per sample), both on `device`."""
    if not 0.0 <= float(drop_prob) <= 1.0:
        raise ValueError(f"drop_prob must lie in [0, 1], got {drop_prob}")
    labels = torch.as_tensor(c)
    if labels.dim() != 1:
        raise ValueError(f"c must be a 1-D tensor of class labels, got shape {tuple(labels.shape)}")
    if labels.is_floating_point() and not torch.equal(labels, labels.round()):
        raise ValueError("c must hold whole class labels")
    labels = labels.long()
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"class labels must lie in [0, {num_classes - 1}]")
    c_hot = F.one_hot(labels, num_classes)
    c_mask = torch.bernoulli(torch.ones_like(c_hot).float() - float(drop_prob))
    return c_hot.to(device), c_mask.to(device)


__all__ = [
    "DownBlock", "EmbedBlock", "GELUConvBlock", "RearrangePoolBlock", "ResidualConvBlock",
    "SinusoidalPositionEmbedBlock", "UpBlock", "UNet", "get_context_mask", "device",
]
