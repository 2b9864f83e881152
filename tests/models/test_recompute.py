"""models.recompute and its use in the LIF/LIAF ResNets: recomputing the BN -> neuron (-> pool)
segments inside backward changes no value, gradient or running statistic, and saves memory."""
import pytest
import torch
from torch import nn

from odg.models.keep import neuron_keeps, replay, replaying
from odg.models.lif import LIFParams
from odg.models.recompute import recompute, recomputed
from odg.models.small import build_small
from odg.models.snn_resnet import SpikingResNet

from .test_neurons import cosine


def _events(shape, seed=0, p=0.25):
    return (torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < p).float()


def _step(model, x, autocast):
    """One forward+backward; returns logits, named grads, named buffers and saved bytes."""
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=autocast):
            logits = model(x)
    weights = torch.linspace(-1, 1, logits.numel(), device=x.device).reshape(logits.shape)
    (logits.float() * weights).sum().backward()
    # activations only: not the parameters nor their bf16 copies (autocast saves those)
    param_shapes = {p.shape for p in model.parameters()}
    storages = {(t.untyped_storage().data_ptr(), t.dtype): t.untyped_storage().nbytes()
                for t in saved if not isinstance(t, nn.Parameter) and t.shape not in param_shapes}
    grads = {n: p.grad for n, p in model.named_parameters()}
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    return logits, grads, buffers, sum(storages.values())


def _pair(builder, **kw):
    torch.manual_seed(0)
    plain = builder(recompute=False, **kw)
    ours = builder(recompute=True, **kw)
    ours.load_state_dict(plain.state_dict())
    return plain, ours


def _assert_same_step(plain, ours, x, autocast):
    ref = _step(plain, x, autocast)
    got = _step(ours, x, autocast)
    assert torch.equal(got[0], ref[0])
    assert ref[1].keys() == got[1].keys()
    for name in ref[1]:
        a, b = ref[1][name], got[1][name]
        assert (a is None) == (b is None), name
        if a is None:
            continue
        if x.is_cuda and a.any():  # cuDNN's weight-gradient algorithms may sum in another order
            assert cosine(a, b) >= 0.9999, name
        else:
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6, msg=name)
    for name in ref[2]:                                  # running stats and counters, updated once
        assert torch.equal(got[2][name], ref[2][name]), name
    return ref[3], got[3]


@pytest.mark.parametrize("autocast", [False, True], ids=["fp32", "bf16-autocast"])
@pytest.mark.parametrize("neuron", ["lif", "liaf"])
def test_tiny_resnet_step_is_unchanged(neuron, autocast):
    plain, ours = _pair(lambda **kw: build_small(f"{neuron}_tiny", num_classes=5, widths=(8, 16),
                                                 blocks=2, **kw))
    x = _events((4, 3, 2, 32, 32))
    plain_bytes, our_bytes = _assert_same_step(plain, ours, x, autocast)
    # the neuron inputs, the pool's input and indices and the LIAF LeakyReLU input are gone
    assert our_bytes < 0.7 * plain_bytes


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("neuron", ["lif", "liaf"])
def test_tiny_resnet_step_is_unchanged_on_cuda(neuron):
    """cuDNN batch norm and, where Triton is installed, the fused neuron kernels (asked for:
    "auto" takes them only on GPUs recorded as checked, which this run is part of checking)."""
    from odg.models._backend import triton_installed
    backend = "triton" if triton_installed() else "torch"
    plain, ours = _pair(lambda **kw: build_small(f"{neuron}_tiny", num_classes=5, widths=(8, 16),
                                                 blocks=2, backend=backend, **kw))
    plain, ours = plain.cuda(), ours.cuda()
    x = _events((4, 3, 2, 32, 32)).cuda()
    plain_bytes, our_bytes = _assert_same_step(plain, ours, x, autocast=True)
    # the neuron inputs, the pool's input and indices and the LIAF LeakyReLU input are gone
    assert our_bytes < 0.7 * plain_bytes


def test_published_liaf_resnet18_saves_under_half():
    """The published LIAF-ResNet-18 at a small input, bf16 autocast: identical step, and the
    bytes kept for backward drop below 0.45 of the plain path (0.40 measured)."""
    plain, ours = _pair(lambda **kw: SpikingResNet([2, 2, 2, 2], "liaf", 10, **kw))
    x = _events((2, 2, 2, 64, 64), seed=3)
    plain_bytes, our_bytes = _assert_same_step(plain, ours, x, autocast=True)
    assert our_bytes < 0.45 * plain_bytes


def test_fixed_decay_and_several_steps_keep_running_stats_in_step():
    plain, ours = _pair(lambda **kw: build_small("liaf_tiny", num_classes=3, widths=(8,),
                                                 params=LIFParams(learn_decay=False), **kw))
    for seed in range(3):
        x = _events((3, 2, 2, 16, 16), seed=seed)
        _assert_same_step(plain, ours, x, autocast=False)
        plain.zero_grad(), ours.zero_grad()


def test_eval_and_no_grad_use_the_running_statistics():
    plain, ours = _pair(lambda **kw: build_small("lif_tiny", num_classes=3, widths=(8,), **kw))
    x = _events((3, 2, 2, 16, 16))
    for m in (plain, ours):
        m.train()
        with torch.no_grad():
            m(x)                                         # moves the running statistics
        m.eval()
    with torch.no_grad():
        assert torch.equal(ours(x), plain(x))
    # eval with gradients (e.g. attribution): recomputed, and BN uses the running statistics
    xg = x.clone().requires_grad_(True)
    ours(xg).sum().backward()
    xr = x.clone().requires_grad_(True)
    plain(xr).sum().backward()
    assert torch.equal(xg.grad, xr.grad)


def test_sharpened_ann_with_recompute():
    # imported here: models.pretrain pulls in the training code and the store (zarr), which the
    # GPU check (benchmarks/gpu_checks.sh) runs without
    from odg.models.pretrain.sharpened_relu import sharpen
    plain, ours = _pair(lambda **kw: build_small("lif_tiny", num_classes=3, widths=(8, 16), **kw))
    sharpen(plain), sharpen(ours)
    x = torch.rand(1, 4, 2, 16, 16, generator=torch.Generator().manual_seed(1))
    _assert_same_step(plain, ours, x, autocast=False)


def test_recompute_generic_segment_and_binary_inputs():
    bn = nn.BatchNorm2d(3)
    y = torch.randn(4, 3, 5, 5, requires_grad=True)
    s = _events((4, 3, 5, 5), seed=4).requires_grad_(True)

    def run(y, s):
        return torch.tanh(bn(y)) * s

    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        out = recompute(run, (y, s), binary=(False, True), params=(bn.weight, bn.bias), norms=(bn,))
    assert bn.num_batches_tracked.item() == 1
    # y as is, s as bits (one byte per 8), the parameters
    assert any(t.dtype == torch.uint8 and t.numel() == (s.numel() + 7) // 8 for t in saved)
    out.sum().backward()
    assert bn.num_batches_tracked.item() == 1            # backward did not update statistics
    ref_bn = nn.BatchNorm2d(3)
    y2, s2 = y.detach().clone().requires_grad_(True), s.detach().clone().requires_grad_(True)
    (torch.tanh(ref_bn(y2)) * s2).sum().backward()
    assert torch.equal(y.grad, y2.grad) and torch.equal(s.grad, s2.grad)
    assert torch.equal(bn.weight.grad, ref_bn.weight.grad)
    assert torch.equal(bn.running_var, ref_bn.running_var)


def test_recompute_rejects_too_many_binary_flags():
    with pytest.raises(ValueError, match="binary has 2 flags for 1 inputs"):
        recompute(lambda y: y, (torch.ones(2, requires_grad=True),), binary=(True, False))


def test_compiled_model_traces_the_plain_segments():
    """Under torch.compile the segments are traced as ordinary ops (the compiler's partitioner
    decides what to recompute): one graph, same logits and gradients as eager recomputation."""
    plain, ours = _pair(lambda **kw: build_small("liaf_tiny", num_classes=3, widths=(8,), **kw))
    compiled = torch.compile(plain, backend="aot_eager", fullgraph=True)
    x = _events((2, 2, 2, 16, 16), seed=5)
    compiled(x).sum().backward()
    ours(x).sum().backward()
    for (name, a), b in zip(plain.named_parameters(), ours.parameters()):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-5, atol=1e-6, msg=name)


def test_sync_batch_norm_segments_are_stored_not_recomputed():
    """SyncBatchNorm's statistics span processes: its segments run once, as with recompute off."""
    plain, ours = _pair(lambda **kw: build_small("liaf_tiny", num_classes=3, widths=(8,), **kw))
    plain, ours = nn.SyncBatchNorm.convert_sync_batchnorm(plain), nn.SyncBatchNorm.convert_sync_batchnorm(ours)
    plain_bytes, our_bytes = _assert_same_step(plain, ours, _events((2, 2, 2, 16, 16)), autocast=False)
    assert our_bytes == plain_bytes


def test_what_a_neuron_keeps_and_the_replay_flag():
    x32 = torch.zeros(3, 2)
    x16 = x32.bfloat16()
    assert neuron_keeps(x32, False) == "membrane" and neuron_keeps(x16, False) == "input"
    assert neuron_keeps(x32, True) == "bits" and neuron_keeps(x16, True) == "bits"
    assert neuron_keeps(x32.double(), False, torch.float64) == "membrane"
    assert not replaying()
    with replay():                    # kept only for one backward step: bits are not worth packing
        assert replaying() and neuron_keeps(x32, True) == "membrane" and neuron_keeps(x16, True) == "input"
    assert not replaying()


class _Segmented(nn.Module):
    """A module with one decorated segment that records how each of its runs saw the world."""

    def __init__(self, recompute=True):
        super().__init__()
        self.recompute = recompute
        self.bn = nn.BatchNorm2d(3)
        self.scale = nn.Parameter(torch.tensor(2.0))
        self.runs = []

    @recomputed("bn", binary=lambda m: (False, True))
    def segment(self, y, s, power=1):
        self.runs.append((replaying(), self.bn.track_running_stats, torch.is_grad_enabled()))
        return torch.tanh(self.bn(y)) ** power * s * self.scale


def test_decorated_segment_runs_again_in_backward_with_statistics_frozen():
    y = torch.randn(4, 3, 5, 5)
    s = _events((4, 3, 5, 5), seed=6)
    got, ref = _Segmented(), _Segmented(recompute=False)
    grads = []
    for m in (got, ref):
        yy, ss = y.clone().requires_grad_(True), s.clone().requires_grad_(True)
        saved = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
            out = m.segment(yy, ss, power=2)
        out.sum().backward()
        grads.append([yy.grad, ss.grad, m.bn.weight.grad, m.bn.bias.grad, m.scale.grad])
        if m is got:                  # the 0/1 input as bits, the other as is, nothing else
            assert [t.dtype for t in saved] == [torch.float32, torch.uint8]
    # forward without autograd, then once more inside backward: a replay, BN not tracking
    assert got.runs == [(False, True, False), (True, False, True)] and ref.runs == [(False, True, True)]
    assert got.bn.track_running_stats and got.bn.num_batches_tracked.item() == 1
    assert torch.equal(got.bn.running_mean, ref.bn.running_mean)
    for a, b in zip(*grads):
        assert torch.equal(a, b)
