"""SpikeConv2d / SpikeMaxPool2d: the results and gradients of nn.Conv2d / nn.MaxPool2d, bit for bit,
while keeping their 0/1 input for backward as bits."""
import pytest
import torch
from torch import nn

from odg.models.spike_layers import SpikeConv2d, SpikeMaxPool2d, pack_bits, unpack_bits


def _spikes(shape, seed=0, p=0.3):
    return (torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < p).float()


def _run(module, x, autocast):
    x = x.clone().requires_grad_(True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            out = module(x)
    weights = torch.linspace(-1, 1, out.numel()).reshape(out.shape)
    (out.float() * weights).sum().backward()
    activations = [t for t in saved if not isinstance(t, nn.Parameter)]
    return out, x.grad, [p.grad for p in module.parameters()], sum(t.nbytes for t in activations)


def test_pack_round_trip():
    for n in (1, 7, 8, 9, 1000):
        x = _spikes((n,), seed=n)
        packed = pack_bits(x)
        assert packed.dtype == torch.uint8 and packed.numel() == (n + 7) // 8
        assert torch.equal(unpack_bits(packed, x.shape, torch.bfloat16), x.bfloat16())


def test_pack_bit_layout_all_byte_patterns():
    """Element i lands in bit i % 8 of byte i // 8, for each of the 256 patterns of 8 flags."""
    patterns = torch.arange(256)
    flags = ((patterns.unsqueeze(1) >> torch.arange(8)) & 1).reshape(-1)
    assert torch.equal(pack_bits(flags.float()), patterns.to(torch.uint8))
    transposed = flags.reshape(16, 128).t()                  # non-contiguous, bool
    assert torch.equal(pack_bits(transposed.bool()), pack_bits(transposed.contiguous().float()))


@pytest.mark.parametrize("autocast", [False, True], ids=["fp32", "bf16-autocast"])
@pytest.mark.parametrize("stride,kernel,bias", [(1, 3, True), (2, 3, True), (2, 1, False)])
def test_spike_conv_equals_conv(autocast, stride, kernel, bias):
    torch.manual_seed(0)
    ref = nn.Conv2d(6, 8, kernel, stride=stride, padding=kernel // 2, bias=bias)
    ours = SpikeConv2d(6, 8, kernel, stride=stride, padding=kernel // 2, bias=bias)
    ours.load_state_dict(ref.state_dict())
    x = _spikes((3, 6, 15, 12))
    out_r, gx_r, gp_r, saved_r = _run(ref, x, autocast)
    out_o, gx_o, gp_o, saved_o = _run(ours, x, autocast)
    assert out_o.dtype == out_r.dtype and torch.equal(out_o, out_r)
    assert torch.equal(gx_o, gx_r)
    assert all(torch.equal(a, b) for a, b in zip(gp_o, gp_r))
    assert saved_o <= (x.numel() + 7) // 8 + 64 < saved_r          # bits instead of the input


@pytest.mark.parametrize("autocast", [False, True], ids=["fp32", "bf16-autocast"])
def test_spike_maxpool_equals_maxpool(autocast):
    x = _spikes((3, 5, 23, 17), p=0.2)                          # many ties among 0s and 1s
    out_r, gx_r, _, saved_r = _run(nn.MaxPool2d(3, 2), x, autocast)
    out_o, gx_o, _, saved_o = _run(SpikeMaxPool2d(3, 2), x, autocast)
    assert torch.equal(out_o, out_r) and torch.equal(gx_o, gx_r)
    assert gx_o.abs().sum() > 0
    assert saved_o == (x.numel() + 7) // 8 and saved_r > 8 * saved_o


def test_lif_resnet_uses_them_and_liaf_does_not():
    from odg import models
    lif, liaf = models.build("lif_resnet18", num_classes=10), models.build("liaf_resnet18", num_classes=10)
    assert isinstance(lif.layer1[0].conv1, SpikeConv2d) and isinstance(lif.conv1.pool, SpikeMaxPool2d)
    assert not isinstance(liaf.layer1[0].conv1, SpikeConv2d)
    assert not isinstance(liaf.conv1.pool, SpikeMaxPool2d)
    assert lif.state_dict().keys() == liaf.state_dict().keys()


def test_sharpened_ann_has_no_bit_layers():
    """pipeS's ANN feeds sharpened-ReLU values in [0, 1] to its convolutions: they must be plain,
    since a bit-keeping layer given other values than 0/1 gets wrong weight gradients."""
    from odg.models.pretrain import sharpen
    from odg.models.small import build_small
    lif = build_small("lif_tiny", num_classes=4)
    assert any(isinstance(m, SpikeConv2d) for m in lif.modules())
    ann = sharpen(lif)
    assert not any(isinstance(m, (SpikeConv2d, SpikeMaxPool2d)) for m in ann.modules())
    assert ann.state_dict().keys() == build_small("lif_tiny", num_classes=4).state_dict().keys()
    # why it matters: the precondition, shown
    torch.manual_seed(0)
    ref = nn.Conv2d(3, 4, 3, padding=1)
    ours = SpikeConv2d(3, 4, 3, padding=1)
    ours.load_state_dict(ref.state_dict())
    analog = torch.rand(2, 3, 8, 8)
    ref(analog).sum().backward()
    ours(analog).sum().backward()
    assert not torch.allclose(ours.weight.grad, ref.weight.grad)


def test_no_grad_runs_the_plain_layers():
    torch.manual_seed(0)
    conv, pool = SpikeConv2d(4, 5, 3, padding=1), SpikeMaxPool2d(3, stride=2)
    x = _spikes((2, 4, 9, 9), seed=7).requires_grad_(True)
    with torch.no_grad():
        a, b = conv(x), pool(x)
    assert a.grad_fn is None and b.grad_fn is None
    assert torch.equal(a, conv(x).detach()) and torch.equal(b, pool(x).detach())
    assert type(conv(x).grad_fn).__name__ == "_SpikeConv2dBackward"
