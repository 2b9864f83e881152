"""TA-SNN networks and inference-time frame skipping."""
import pytest
import torch
from torch import nn

from odg import models
from odg.models.tasnn import TASNN, TASNNConfig

SMALL = TASNNConfig(convs=((8, 1), (16, 2), (16, 2)), fcs=(32,), steps=8, reduction=4,
                    input_size=(2, 16, 16))


def small_model(seed=0):
    torch.manual_seed(seed)
    model = TASNN(SMALL, num_classes=5).double()
    for m in model.modules():                            # non-trivial BN statistics ...
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            with torch.no_grad():                        # and activity in every layer
                m.weight.uniform_(1.0, 2.0)
                m.bias.uniform_(0.0, 0.3)
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.2, 0.6)
    return model.eval()


def events(batch, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand((SMALL.steps, batch) + SMALL.input_size, generator=g) < 0.3).double()


def masked_lif(y, alive, p=models.TASNNLIFParams()):
    """The TA-SNN LIF where a dropped frame does not happen: state kept, no spike."""
    h, outs = torch.zeros_like(y[0]), []
    for t in range(y.shape[0]):
        u = h + y[t]
        s = (u >= p.v_th).to(y.dtype)
        a = alive[t].reshape((-1,) + (1,) * (y.dim() - 2))
        h = torch.where(a, (s * p.v_th + (1 - s) * u) * p.alpha + p.beta, h)
        outs.append(s * a)
    return torch.stack(outs)


def dense_reference(model, x, d_th):
    """Every frame through every layer, with dropped frames masked out (squeeze 0, no neuron step)."""
    steps, batch = x.shape[:2]
    alive = torch.ones(steps, batch, dtype=torch.bool)
    for layer in model.layers:
        y = layer.synaptic_input(x)
        z = y.flatten(2).mean(dim=2) * alive
        d = layer.attention.excite(z)
        alive = alive & (d >= d_th)
        x = masked_lif(y * d.reshape(d.shape + (1,) * (y.dim() - 2)), alive)
    return x.sum(dim=0) / steps, alive


def force_scores(attention, low_frames):
    """Make an attention layer score ~0 on `low_frames` and ~1 elsewhere, whatever its input."""
    with torch.no_grad():
        attention.fc2.weight.zero_()
        attention.fc2.bias.fill_(20.0)
        attention.fc2.bias[list(low_frames)] = -20.0


def frames_seen(model, x, d_th):
    seen = {}
    hooks = [m.register_forward_hook(lambda mod, inp, out, n=n: seen.setdefault(n, []).append(inp[0].shape[0]))
             for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear)) and "attention" not in n]
    try:
        out = model.forward_pruned(x, d_th)
    finally:
        for h in hooks:
            h.remove()
    return out, {n: sum(v) for n, v in seen.items()}


def test_no_pruning_equals_forward():
    model, x = small_model(), events(3)
    with torch.no_grad():
        dense = model(x)
    pruned, kept = model.forward_pruned(x, 0.0)
    assert dense.shape == (3, 5) and bool(kept.all())
    torch.testing.assert_close(pruned, dense, rtol=1e-10, atol=1e-10)
    assert dense.sum() > 0                               # the output layer does fire


def test_dropped_frames_are_not_computed():
    model, x = small_model(), events(2)
    force_scores(model.layers[0].attention, {1, 4})
    force_scores(model.layers[2].attention, {6})
    for i in (1, 3, 4):
        force_scores(model.layers[i].attention, set())
    (rates, kept), seen = frames_seen(model, x, 0.5)
    want_kept = torch.tensor([t not in (1, 4, 6) for t in range(8)]).unsqueeze(1).expand(8, 2)
    assert torch.equal(kept, want_kept)
    b = x.shape[1]
    # layer 0 computes every frame (its scores decide); later layers only what survived before them
    assert seen == {"layers.0.conv": 8 * b, "layers.1.conv": 6 * b, "layers.2.conv": 6 * b,
                    "layers.3.fc": 5 * b, "layers.4.fc": 5 * b}
    ref, alive = dense_reference(model, x, 0.5)
    assert torch.equal(alive, want_kept)
    torch.testing.assert_close(rates, ref, rtol=1e-10, atol=1e-10)
    with torch.no_grad():
        assert not torch.allclose(rates, model(x))       # skipping does change the result


def test_per_sample_pruning_matches_masked_dense_path():
    model, x = small_model(seed=2), events(4, seed=1)
    with torch.no_grad():
        for i, layer in enumerate(model.layers):         # data-dependent drops at layers 0 and 3
            if i in (0, 3):
                layer.attention.fc1.weight.mul_(50.0)
                layer.attention.fc2.weight.normal_(0.0, 3.0)
            else:
                force_scores(layer.attention, set())
    rates, kept = model.forward_pruned(x, 0.5)
    ref, alive = dense_reference(model, x, 0.5)
    assert torch.equal(kept, alive)
    assert 0 < int(kept.sum()) < kept.numel() and rates.sum() > 0
    assert len({tuple(kept[:, b].tolist()) for b in range(4)}) > 1   # samples keep different frames
    torch.testing.assert_close(rates, ref, rtol=1e-10, atol=1e-10)


def test_everything_dropped_gives_zero_rates_and_training_mode_refused():
    model, x = small_model(), events(2)
    force_scores(model.layers[0].attention, set(range(8)))
    rates, kept = model.forward_pruned(x, 0.5)
    assert rates.shape == (2, 5) and not bool(rates.any()) and not bool(kept.any())
    with pytest.raises(RuntimeError):
        model.train().forward_pruned(x, 0.5)


def test_training_step_reaches_every_parameter():
    torch.manual_seed(0)
    model = TASNN(SMALL, num_classes=5).train()
    x = events(2).float()
    rates = model(x)
    assert rates.shape == (2, 5) and bool(((rates >= 0) & (rates <= 1)).all())
    target = torch.nn.functional.one_hot(torch.tensor([1, 3]), 5).float()
    torch.nn.functional.mse_loss(rates, target).backward()
    # (an attention's hidden ReLU may be dead at init, starving fc1 and fc2.weight; fc2.bias is not)
    behind_relu = ("attention.fc1.weight", "attention.fc1.bias", "attention.fc2.weight")
    no_grad = [n for n, p in model.named_parameters() if not n.endswith(behind_relu)
               and (p.grad is None or not p.grad.abs().sum() > 0)]
    assert no_grad == []


def test_published_networks_shapes():
    gesture = models.build("tasnn_gesture", steps=16).eval()
    assert [type(layer).__name__ for layer in gesture.layers] == ["TAConvLayer"] * 3 + ["TALinearLayer"] * 2
    assert gesture.layers[3].fc.in_features == 128 * 8 * 8 and gesture.layers[4].fc.out_features == 11
    assert gesture.layers[0].neuron.params.surrogate_width == 0.5
    with torch.no_grad():
        assert gesture(torch.rand(16, 1, 2, 32, 32)).shape == (1, 11)
        # 0/1 uint8 frames (an ESDataset's) are converted, not refused
        frames = torch.rand(16, 1, 2, 32, 32) < 0.3
        assert torch.equal(gesture(frames.to(torch.uint8)), gesture(frames.float()))
    c10 = models.build("tasnn_cifar10dvs").eval()
    assert c10.config.steps == 10 and c10.layers[0].attention.fc1.out_features == 2
    assert c10.layers[5].fc.in_features == 512 * 2 * 2 and c10.layers[-1].fc.out_features == 10
    assert c10.layers[0].neuron.params.surrogate_width == 1.0
    with torch.no_grad():
        assert c10(torch.rand(10, 1, 2, 128, 128)).shape == (1, 10)
    with pytest.raises(ValueError, match=r"T = 10\).*T = 8 steps of batch 1"):
        c10(torch.rand(8, 1, 2, 128, 128))
    with pytest.raises(ValueError, match=r"T = 1 steps of batch 10.*bt_to_tb"):
        c10(torch.rand(1, 10, 2, 128, 128))                      # batch first
    with pytest.raises(ValueError, match=r"\[T, B, 2, 128, 128\] frames"):
        c10(torch.rand(10, 1, 2, 64, 64))
