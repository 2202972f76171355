"""reference.blocks, reference.unet and reference.training: the seven blocks, the course's U-Net
and its training loop (docs/course.md, tasks 4 and 7)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import reference.training
from reference import constants
from reference.blocks import (
    BLOCK_CLASSES,
    DownBlock,
    EmbedBlock,
    GELUConvBlock,
    RearrangePoolBlock,
    ResidualConvBlock,
    SinusoidalPositionEmbedBlock,
    UpBlock,
)
from reference.schedule import make_schedule
from reference.training import shuffled_batches, train
from reference.unet import UNet, course_unet

pytestmark = pytest.mark.usefixtures("single_thread")


def rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


GN_EPS = 1e-5  # torch.nn.GroupNorm's default


def set_identity_gelu_conv(block: GELUConvBlock, bias: float = 0.0, norm_bias: float = 0.0) -> None:
    """One channel in, one out: a 3x3 kernel with 1 at its centre, GroupNorm weight 1."""
    conv, norm = block.model[0], block.model[1]
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 1, 1] = 1.0
        conv.bias.fill_(bias)
        norm.weight.fill_(1.0)
        norm.bias.fill_(norm_bias)


def standardise_then_gelu(z: torch.Tensor) -> torch.Tensor:
    """GroupNorm with one group over one channel, then exact GELU, written out from their definitions."""
    mean = z.mean(dim=(1, 2, 3), keepdim=True)
    var = ((z - mean) ** 2).mean(dim=(1, 2, 3), keepdim=True)
    u = (z - mean) / torch.sqrt(var + GN_EPS)
    return 0.5 * u * (1 + torch.erf(u / math.sqrt(2)))


# ----------------------------------------------------------------------------- blocks


def test_block_registry_has_the_seven_course_names():
    assert sorted(BLOCK_CLASSES) == [
        "DownBlock",
        "EmbedBlock",
        "GELUConvBlock",
        "RearrangePoolBlock",
        "ResidualConvBlock",
        "SinusoidalPositionEmbedBlock",
        "UpBlock",
    ]


def test_gelu_conv_block_shape_and_closed_form():
    torch.manual_seed(0)
    block = GELUConvBlock(3, 8, 4)
    x = rand(2, 3, 12, 10)
    y = block(x)
    assert y.shape == (2, 8, 12, 10)
    conv, norm = block.model[0], block.model[1]
    assert (conv.kernel_size, conv.stride, conv.padding) == ((3, 3), (1, 1), (1, 1))
    assert norm.num_groups == 4
    expected = F.gelu(F.group_norm(F.conv2d(x, conv.weight, conv.bias, padding=1), 4, norm.weight, norm.bias))
    torch.testing.assert_close(y, expected)


def test_rearrange_pool_block_shape_and_patch_order():
    torch.manual_seed(0)
    block = RearrangePoolBlock(8, 4)
    assert block(rand(2, 8, 16, 12)).shape == (2, 8, 8, 6)
    # "b c (h p1) (w p2) -> b (c p1 p2) h w": channel c*4 + p1*2 + p2 holds pixel (2h+p1, 2w+p2)
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).reshape(2, 3, 4, 6)
    r = block.rearrange(x)
    assert r.shape == (2, 12, 2, 3)
    for c in range(3):
        for p1 in range(2):
            for p2 in range(2):
                assert torch.equal(r[:, c * 4 + p1 * 2 + p2], x[:, c, p1::2, p2::2])
    assert block.conv.model[0].in_channels == 32 and block.conv.model[0].out_channels == 8


def test_down_block_shape():
    torch.manual_seed(0)
    block = DownBlock(3, 8, 4)
    assert block(rand(2, 3, 16, 16)).shape == (2, 8, 8, 8)
    assert [type(m).__name__ for m in block.model] == ["GELUConvBlock", "GELUConvBlock", "RearrangePoolBlock"]


def test_up_block_shape_and_concat_order():
    torch.manual_seed(0)
    block = UpBlock(8, 4, 4)
    x, skip = rand(2, 8, 7, 7, seed=1), rand(2, 8, 7, 7, seed=2)
    y = block(x, skip)
    assert y.shape == (2, 4, 14, 14)
    assert not torch.allclose(y, block(skip, x))
    up = block.model[0]
    assert isinstance(up, torch.nn.ConvTranspose2d)
    assert (up.in_channels, up.out_channels, up.kernel_size, up.stride) == (16, 4, (2, 2), (2, 2))
    assert sum(type(m).__name__ == "GELUConvBlock" for m in block.model) == 4


def test_up_block_with_hand_set_weights():
    """UpBlock(1, 1, 1): the transposed conv copies each pixel of x (input channel 0) into a 2x2
    patch and ignores skip (input channel 1); each of the four GELUConvBlocks is then an identity
    conv, a standardisation and a GELU. So y = f(f(f(f(nearest_upsample(x))))), f = GELU(standardise)."""
    block = UpBlock(1, 1, 1)
    with torch.no_grad():
        up = block.model[0]
        up.weight.zero_()
        up.weight[0, 0] = 1.0  # from x: all four taps
        up.bias.zero_()
    for i in range(1, 5):
        set_identity_gelu_conv(block.model[i])
    x = rand(2, 1, 3, 4, seed=3)
    skip = rand(2, 1, 3, 4, seed=4)
    z = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    for _ in range(4):
        z = standardise_then_gelu(z)
    with torch.no_grad():
        y = block(x, skip)
        assert y.shape == (2, 1, 6, 8)
        torch.testing.assert_close(y, z, rtol=1e-4, atol=1e-5)
        # skip enters as the second half of the channels: changing it changes nothing here ...
        torch.testing.assert_close(block(x, 5 * skip), y)
        # ... while the same weights read from skip when its half is the one that is set
        up.weight.zero_()
        up.weight[1, 0] = 1.0
        torch.testing.assert_close(block(x, skip), block(5 * x, skip))


def test_embed_block_shape_and_closed_form():
    torch.manual_seed(0)
    block = EmbedBlock(8, 16)
    x = rand(5, 8)
    y = block(x)
    assert y.shape == (5, 16, 1, 1)
    l1, l2 = block.model[0], block.model[2]
    expected = F.linear(F.gelu(F.linear(x, l1.weight, l1.bias)), l2.weight, l2.bias)
    torch.testing.assert_close(y.reshape(5, 16), expected)
    # inputs are flattened to (-1, input_dim) first, as the course's x.view(-1, input_dim)
    torch.testing.assert_close(block(x.reshape(5, 1, 1, 8)), y)


def test_residual_conv_block_shape():
    torch.manual_seed(0)
    block = ResidualConvBlock(3, 8, 4)
    assert block(rand(2, 3, 16, 16)).shape == (2, 8, 16, 16)


def test_residual_conv_block_returns_x1_plus_x2():
    """ResidualConvBlock(1, 1, 1) with hand-set weights. conv1: identity conv, so
    x1 = GELU(standardise(x)). conv2: zero kernel and bias 0.5, so its conv output is constant,
    GroupNorm maps it to 0 and adds its bias 1, and x2 = GELU(1) = 0.8413447460685429 everywhere
    (0.5 * (1 + erf(1 / sqrt 2)), by hand). The block returns x1 + x2."""
    block = ResidualConvBlock(1, 1, 1)
    set_identity_gelu_conv(block.conv1)
    set_identity_gelu_conv(block.conv2, bias=0.5, norm_bias=1.0)
    with torch.no_grad():
        block.conv2.model[0].weight.zero_()
        x = rand(2, 1, 5, 6, seed=5)
        y = block(x)
    expected = standardise_then_gelu(x) + 0.8413447460685429
    torch.testing.assert_close(y, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dim", [8, 32])
def test_sinusoidal_embedding_closed_form(dim):
    block = SinusoidalPositionEmbedBlock(dim)
    time = torch.tensor([0.0, 1 / 150, 0.25, 0.5, 149 / 150, 3.0])
    emb = block(time)
    assert emb.shape == (6, dim)
    half = dim // 2
    expected = torch.empty(6, dim, dtype=torch.float64)
    for i, t in enumerate(time.tolist()):
        for k in range(half):
            freq = math.exp(-k * math.log(10000) / (half - 1))
            expected[i, k] = math.sin(t * freq)
            expected[i, half + k] = math.cos(t * freq)
    torch.testing.assert_close(emb.double(), expected, rtol=1e-5, atol=1e-6)
    # t = 0 is all zeros then all ones
    assert torch.equal(emb[0], torch.cat((torch.zeros(half), torch.ones(half))))


def test_sinusoidal_embedding_course_frequencies():
    # dim 8: frequencies 1, 10000^(-1/3), 10000^(-2/3), 1e-4
    emb = SinusoidalPositionEmbedBlock(8)(torch.tensor([1.0]))
    freqs = [1.0, 10000 ** (-1 / 3), 10000 ** (-2 / 3), 1e-4]
    torch.testing.assert_close(emb[0, :4].double(), torch.tensor([math.sin(f) for f in freqs], dtype=torch.float64))
    torch.testing.assert_close(emb[0, 4:].double(), torch.tensor([math.cos(f) for f in freqs], dtype=torch.float64))


@pytest.mark.parametrize("dim", [2, 3, 7])
def test_sinusoidal_embedding_rejects_bad_dim(dim):
    with pytest.raises(ValueError, match="embedding dim"):
        SinusoidalPositionEmbedBlock(dim)


# ------------------------------------------------------------------------------- UNet


def _gelu_conv(prefix, cin, cout):
    return {
        f"{prefix}.model.0.weight": (cout, cin, 3, 3),
        f"{prefix}.model.0.bias": (cout,),
        f"{prefix}.model.1.weight": (cout,),
        f"{prefix}.model.1.bias": (cout,),
    }


def _linear(prefix, fin, fout):
    return {f"{prefix}.weight": (fout, fin), f"{prefix}.bias": (fout,)}


def _embed(prefix, fin, emb):
    return {**_linear(f"{prefix}.model.0", fin, emb), **_linear(f"{prefix}.model.2", emb, emb)}


def _down(prefix, cin, cout):
    return {
        **_gelu_conv(f"{prefix}.model.0", cin, cout),
        **_gelu_conv(f"{prefix}.model.1", cout, cout),
        **_gelu_conv(f"{prefix}.model.2.conv", 4 * cout, cout),
    }


def _up(prefix, cin, cout):
    spec = {f"{prefix}.model.0.weight": (2 * cin, cout, 2, 2), f"{prefix}.model.0.bias": (cout,)}
    for i in range(1, 5):
        spec.update(_gelu_conv(f"{prefix}.model.{i}", cout, cout))
    return spec


def course_state_spec():
    """The course notebook's UNet(150, 1, 28, (64, 64, 128), 8, 10) state_dict, written out by hand."""
    latent = 128 * 7 * 7
    return {
        **_gelu_conv("down0.conv1", 1, 64),
        **_gelu_conv("down0.conv2", 64, 64),
        **_down("down1", 64, 64),
        **_down("down2", 64, 128),
        **_linear("dense_emb.0", latent, 64),
        **_linear("dense_emb.2", 64, 64),
        **_linear("dense_emb.4", 64, latent),
        **_embed("t_emb1", 8, 128),
        **_embed("t_emb2", 8, 64),
        **_embed("c_embed1", 10, 128),
        **_embed("c_embed2", 10, 64),
        **_gelu_conv("up0.1", 128, 128),
        **_up("up1", 128, 64),
        **_up("up2", 64, 64),
        "out.0.weight": (64, 128, 3, 3),
        "out.0.bias": (64,),
        "out.1.weight": (64,),
        "out.1.bias": (64,),
        "out.3.weight": (1, 64, 3, 3),
        "out.3.bias": (1,),
    }


@pytest.fixture(scope="module")
def course_model():
    torch.manual_seed(0)
    return course_unet().eval()


def test_course_unet_parameter_count(course_model):
    assert sum(p.numel() for p in course_model.parameters()) == 2_547_457 == constants.COURSE_PARAMETERS
    assert sum(p.numel() for p in course_model.parameters() if p.requires_grad) == 2_547_457


def test_course_unet_state_dict_keys_and_shapes(course_model):
    state = course_model.state_dict()
    spec = course_state_spec()
    assert len(state) == len(spec) == 100
    assert sorted(state) == sorted(spec)
    assert {k: tuple(v.shape) for k, v in state.items()} == spec
    # a few spelled out, as the course names them
    assert tuple(state["down0.conv1.model.0.weight"].shape) == (64, 1, 3, 3)
    assert tuple(state["up1.model.0.weight"].shape) == (256, 64, 2, 2)
    assert tuple(state["down2.model.2.conv.model.0.weight"].shape) == (128, 512, 3, 3)
    assert tuple(state["dense_emb.0.weight"].shape) == (64, 6272)
    assert tuple(state["c_embed1.model.0.weight"].shape) == (128, 10)
    assert tuple(state["t_emb2.model.2.bias"].shape) == (64,)
    assert tuple(state["up0.1.model.1.weight"].shape) == (128,)
    assert tuple(state["out.3.weight"].shape) == (1, 64, 3, 3)
    assert {k.split(".")[0] for k in state} == {
        "down0",
        "down1",
        "down2",
        "dense_emb",
        "t_emb1",
        "t_emb2",
        "c_embed1",
        "c_embed2",
        "up0",
        "up1",
        "up2",
        "out",
    }


def test_course_unet_attribute_names_and_groups(course_model):
    children = [name for name, _ in course_model.named_children()]
    assert children == [
        "down0",
        "down1",
        "down2",
        "to_vec",
        "dense_emb",
        "sinusoidaltime",
        "t_emb1",
        "t_emb2",
        "c_embed1",
        "c_embed2",
        "up0",
        "up1",
        "up2",
        "out",
    ]
    assert course_model.T == 150
    assert course_model.down0.conv1.model[1].num_groups == 8  # small group size
    assert course_model.down1.model[0].model[1].num_groups == 32  # big group size
    assert course_model.up2.model[4].model[1].num_groups == 32
    assert course_model.out[1].num_groups == 8
    assert course_model.sinusoidaltime.dim == 8


def test_course_unet_forward_shape(course_model):
    x = rand(2, 1, 28, 28)
    with torch.no_grad():
        y = course_model(x, torch.tensor([0.0, 149.0]), F.one_hot(torch.tensor([3, 4]), 10).float(), torch.ones(2, 10))
    assert y.shape == (2, 1, 28, 28)
    assert torch.isfinite(y).all()


@pytest.fixture(scope="module")
def narrow():
    torch.manual_seed(0)
    return UNet(150, 1, 28, down_chs=(16, 32, 64)).eval()


def test_narrow_unet_forward_with_both_t_layouts(narrow):
    n = 3
    x = rand(n, 1, 28, 28)
    c = F.one_hot(torch.tensor([1, 5, 9]), 10).float()
    mask = torch.ones(n, 10)
    with torch.no_grad():
        flat = narrow(x, torch.tensor([0.0, 75.0, 149.0]), c, mask)
        four_d = narrow(x, torch.tensor([0, 75, 149]).reshape(n, 1, 1, 1), c, mask)
    assert flat.shape == four_d.shape == (n, 1, 28, 28)
    torch.testing.assert_close(flat, four_d)


def test_unet_divides_t_by_T(narrow):
    seen = []
    handle = narrow.sinusoidaltime.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    try:
        with torch.no_grad():
            narrow(rand(2, 1, 28, 28), torch.tensor([30, 120]), torch.zeros(2, 10), torch.ones(2, 10))
    finally:
        handle.remove()
    torch.testing.assert_close(seen[0].flatten(), torch.tensor([0.2, 0.8]))


def test_unet_output_ignores_c_when_mask_is_zero(narrow):
    x, t = rand(4, 1, 28, 28), torch.tensor([3.0, 30.0, 90.0, 140.0])
    c_a = F.one_hot(torch.tensor([0, 1, 2, 3]), 10).float()
    c_b = F.one_hot(torch.tensor([9, 8, 7, 6]), 10).float()
    zeros, ones = torch.zeros(4, 10), torch.ones(4, 10)
    with torch.no_grad():
        assert torch.equal(narrow(x, t, c_a, zeros), narrow(x, t, c_b, zeros))
        # and it does depend on c when the mask keeps it (so the check above can fail)
        assert not torch.allclose(narrow(x, t, c_a, ones), narrow(x, t, c_b, ones))
        # the mask multiplies c element-wise
        torch.testing.assert_close(narrow(x, t, c_a, c_a), narrow(x, t, c_a, ones))


@pytest.mark.parametrize("embedding", ["t_emb1", "t_emb2", "c_embed1", "c_embed2"])
def test_unet_output_uses_each_embedding(narrow, embedding):
    """Zeroing an embedding block's last layer (so it outputs zeros) must change the output."""
    x, t = rand(2, 1, 28, 28), torch.tensor([20.0, 110.0])
    c, mask = F.one_hot(torch.tensor([2, 7]), 10).float(), torch.ones(2, 10)
    last = getattr(narrow, embedding).model[2]
    saved = (last.weight.clone(), last.bias.clone())
    with torch.no_grad():
        before = narrow(x, t, c, mask)
        last.weight.zero_()
        last.bias.zero_()
        try:
            after = narrow(x, t, c, mask)
        finally:
            last.weight.copy_(saved[0])
            last.bias.copy_(saved[1])
    assert (before - after).abs().max().item() > 1e-4


def test_narrow_unet_groups_divide_channels(narrow):
    for module in narrow.modules():
        if isinstance(module, torch.nn.GroupNorm):
            assert module.num_channels % module.num_groups == 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"down_chs": (16, 32)}, "down_chs must have three entries"),
        ({"img_size": 30}, "img_size must be divisible by 4"),
    ],
)
def test_unet_rejects_bad_arguments(kwargs, message):
    args = {"T": 150, "img_ch": 1, "img_size": 28, "down_chs": (16, 32, 64)}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        UNet(**args)


# --------------------------------------------------------------------------- training

TINY_CHS = (8, 16, 16)


@pytest.fixture(scope="module")
def toy_data():
    g = torch.Generator().manual_seed(0)
    return torch.rand(200, 1, 28, 28, generator=g), torch.randint(0, 10, (200,), generator=g)


def tiny_unet(seed=0):
    torch.manual_seed(seed)
    return UNet(150, 1, 28, down_chs=TINY_CHS)


def test_train_returns_finite_losses_and_is_reproducible(toy_data):
    images, labels = toy_data
    schedule = make_schedule(150)
    first, second, third = tiny_unet(), tiny_unet(), tiny_unet()  # identical initial weights
    seen = []
    log = train(
        first,
        images,
        labels,
        schedule,
        steps=5,
        batch_size=8,
        seed=3,
        progress=lambda step, loss: seen.append((step, loss)),
    )
    assert len(log.losses) == 5
    assert all(math.isfinite(v) and v > 0 for v in log.losses)
    assert [s for s, _ in seen] == [1, 2, 3, 4, 5]
    assert [v for _, v in seen] == log.losses
    assert log.seconds > 0

    torch.rand(17)  # whatever the global RNG did before, the seed argument decides
    again = train(second, images, labels, schedule, steps=5, batch_size=8, seed=3)
    assert again.losses == log.losses
    other = train(third, images, labels, schedule, steps=5, batch_size=8, seed=4)
    assert other.losses != log.losses


def test_train_changes_weights_and_leaves_eval_mode(toy_data):
    images, labels = toy_data
    model = tiny_unet()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train(model, images, labels, make_schedule(150), steps=2, batch_size=8)
    assert not model.training
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("drop", [0.1, 1.0])
def test_train_feeds_course_batches_to_get_loss(toy_data, monkeypatch, drop):
    """Each step: a full shuffled batch, t uniform integers as floats, one-hot c, Bernoulli mask."""
    images, labels = toy_data
    calls = []
    original = reference.training.get_loss

    def spy(model, x_0, t, c_hot, c_mask, *, schedule):
        calls.append((x_0, t, c_hot, c_mask))
        return original(model, x_0, t, c_hot, c_mask, schedule=schedule)

    monkeypatch.setattr(reference.training, "get_loss", spy)
    train(tiny_unet(), images, labels, make_schedule(10), steps=3, batch_size=16, seed=5, c_drop_prob=drop)
    batches = shuffled_batches(200, 16, torch.Generator().manual_seed(5))
    masks = []
    for x_0, t, c_hot, c_mask in calls:
        index = next(batches)
        assert torch.equal(x_0, images[index])
        assert torch.equal(c_hot, F.one_hot(labels[index], 10).float())
        assert t.shape == (16,) and t.is_floating_point()
        assert torch.equal(t, t.round()) and t.min() >= 0 and t.max() <= 9
        assert c_mask.shape == (16, 10)
        masks.append(c_mask)
    assert len(calls) == 3
    # uniform over all of 0..T-1: with this seed the 48 draws reach both ends and every value between
    assert sorted(set(torch.cat([t for _, t, _, _ in calls]).long().tolist())) == list(range(10))
    if drop == 1.0:
        assert torch.equal(torch.stack(masks), torch.zeros(3, 16, 10))
    else:
        assert 0.7 < torch.stack(masks).mean().item() < 1.0


def test_train_validates_arguments(toy_data):
    images, labels = toy_data
    with pytest.raises(ValueError, match="steps must be >= 0"):
        train(tiny_unet(), images, labels, make_schedule(10), steps=-1, batch_size=8)
    with pytest.raises(ValueError, match="200 images but 199 labels"):
        train(tiny_unet(), images, labels[:-1], make_schedule(10), steps=1, batch_size=8)
    assert train(tiny_unet(), images, labels, make_schedule(10), steps=0, batch_size=8).losses == []


def test_shuffled_batches_drop_last_partial_batch():
    batches = shuffled_batches(10, 3, torch.Generator().manual_seed(0))
    for _ in range(4):  # four epochs of three full batches; index 10th left out each time
        epoch = [next(batches) for _ in range(3)]
        assert all(b.shape == (3,) for b in epoch)
        flat = torch.cat(epoch).tolist()
        assert len(set(flat)) == 9 and set(flat) <= set(range(10))


def test_shuffled_batches_cover_each_index_once_per_epoch():
    batches = shuffled_batches(12, 4, torch.Generator().manual_seed(1))
    epochs = []
    for _ in range(3):
        flat = torch.cat([next(batches) for _ in range(3)]).tolist()
        assert sorted(flat) == list(range(12))
        epochs.append(flat)
    assert epochs[0] != epochs[1] or epochs[1] != epochs[2]  # reshuffled between epochs
    assert epochs[0] != list(range(12))


def test_shuffled_batches_follow_the_generator():
    a = shuffled_batches(50, 7, torch.Generator().manual_seed(9))
    b = shuffled_batches(50, 7, torch.Generator().manual_seed(9))
    assert all(torch.equal(next(a), next(b)) for _ in range(20))


def test_shuffled_batches_need_one_full_batch():
    with pytest.raises(ValueError, match="need at least one full batch"):
        next(shuffled_batches(5, 8, torch.Generator()))
    assert next(shuffled_batches(8, 8, torch.Generator().manual_seed(0))).sort().values.tolist() == list(range(8))
