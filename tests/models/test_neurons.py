"""Neuron sequence functions against plain autograd loops written from MODELS.md."""
import dataclasses
import math

import pytest
import torch

from odg import models
from odg.models import LIFParams, TASNNLIFParams

# ---- references: plain per-step loops, autograd through ordinary ops ------------------------------

class _Rect(torch.autograd.Function):
    """[v >= 0] (or > 0) with gradient `height` where |v| < halfwidth."""

    @staticmethod
    def forward(ctx, v, halfwidth, height, inclusive):
        ctx.save_for_backward(v)
        ctx.halfwidth, ctx.height = halfwidth, height
        return (v >= 0 if inclusive else v > 0).to(v.dtype)

    @staticmethod
    def backward(ctx, g):
        (v,) = ctx.saved_tensors
        return g * (v.abs() < ctx.halfwidth).to(g.dtype) * ctx.height, None, None, None


def ref_published(x, leak, analog, threshold=0.5, halfwidth=0.5, slope=0.2, inplace=False):
    """m_0 = x_0; m_t = c_(t-1) * k * (1 - s_(t-1).detach()) + x_t; s_t = [m_t > th]; the carried
    c_t is m_t, or (`inplace`, LIAF) the output LeakyReLU(m_t), applied in place to it as the
    published ResNet-18 config's `LeakyReLU(inplace=True)` does."""
    compute = torch.promote_types(x.dtype, leak.dtype)
    act = torch.nn.LeakyReLU(slope, inplace=inplace)
    outs, m, s = [], None, None
    for t in range(x.shape[0]):
        xt = x[t].to(compute)
        m = xt if t == 0 else m * leak.to(compute) * (1 - s.detach()) + xt
        m = m.clone()                                     # the published cell's `mem_old = mem.clone()`
        s = _Rect.apply(m - threshold, halfwidth, 1.0, False)
        outs.append(act(m) if analog else s)              # in place: m now holds LeakyReLU(m)
    return torch.stack(outs).to(x.dtype)


# (analog output, in-place reading): the three cells of the published networks
READINGS = {"lif": (False, False), "liaf": (True, False), "liaf-inplace": (True, True)}


def _cell(reading, params=LIFParams()):
    """(cell function(x, leak, **kw), reference(x, leak)) of a reading."""
    analog, inplace = READINGS[reading]
    params = dataclasses.replace(params, inplace_activation=inplace)
    fn = models.liaf if analog else models.lif
    return (lambda a, k, **kw: fn(a, k, params, **kw)), \
        (lambda a, k: ref_published(a, k, analog, params.threshold, params.surrogate_halfwidth,
                                    params.leak_slope, inplace))


def ref_tasnn(x, v_th=0.3, alpha=0.3, beta=0.0, a=0.5, height=None, detach=False):
    """u_t = h_(t-1) + I_t; s_t = [u_t >= V_th]; h_t = (s_t V_th + (1 - s_t) u_t) alpha + beta;
    surrogate height 1 / a unless given (the published `/ (2 * lens)`, lens = a / 2)."""
    height = 1.0 / a if height is None else height
    h, outs = 0.0, []
    for t in range(x.shape[0]):
        u = h + x[t]
        s = _Rect.apply(u - v_th, a / 2, height, True)
        r = s.detach() if detach else s
        h = (r * v_th + (1 - r) * u) * alpha + beta
        outs.append(s)
    return torch.stack(outs)


def cosine(a, b):
    a, b = a.double().flatten(), b.double().flatten()
    return float(a @ b / (a.norm() * b.norm()))


def _inputs(dtype, shape=(8, 4, 3, 5, 5), seed=0, scale=0.6, shift=0.3):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(shape, generator=g, dtype=torch.float64) * scale + shift).to(dtype)
    w = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
    return x, w


def _run(fn, x, leak, w):
    x = x.detach().clone().requires_grad_(True)
    leak = leak.detach().clone().requires_grad_(True)
    out = fn(x, leak)
    (out.float() * w.float()).sum().backward()
    return out.detach(), x.grad, leak.grad


# ---- published LIF / LIAF ---------------------------------------------------------------------------

def test_lif_hand_example():
    k = torch.sigmoid(torch.tensor(0.5))
    x = torch.tensor([0.6, 0.1, 0.45, 0.0]).reshape(4, 1)
    # m = 0.6 (fires), 0.1 (reset, no leak term), 0.1 k + 0.45 = 0.512 (fires), 0 (reset)
    assert models.lif(x, k).flatten().tolist() == [1.0, 0.0, 1.0, 0.0]
    expect = torch.tensor([0.6, 0.1, 0.1 * float(k) + 0.45, 0.0])
    torch.testing.assert_close(models.liaf(x, k).flatten(), expect)
    neg = models.liaf(torch.tensor([[-1.0]]), k)
    assert float(neg) == pytest.approx(-0.2)


def test_inplace_reading_hand_example():
    k = float(torch.sigmoid(torch.tensor(0.5)))
    x = torch.tensor([-1.0, 0.5, 0.0]).reshape(3, 1)
    inplace = LIFParams(inplace_activation=True)
    # plain: m = -1, -k + 0.5, (-k + 0.5) k; in place: the carried -1 leaks as LeakyReLU(-1) = -0.2
    m_plain = [-1.0, -k + 0.5, (-k + 0.5) * k]
    m_inplace = [-1.0, -0.2 * k + 0.5, (-0.2 * k + 0.5) * k]
    leaky = torch.nn.functional.leaky_relu
    torch.testing.assert_close(models.liaf(x, k).flatten(), leaky(torch.tensor(m_plain), 0.2))
    torch.testing.assert_close(models.liaf(x, k, inplace).flatten(), leaky(torch.tensor(m_inplace), 0.2))
    # the spike still comes from m_(t-1), before the activation: m = 0.6 fires and resets
    y = torch.tensor([0.6, 0.1]).reshape(2, 1)
    assert models.liaf(y, k, inplace).flatten().tolist() == pytest.approx([0.6, 0.1])
    # the reading belongs to the LIAF cell; a LIF cell refuses it, a bare cell reads None as plain
    with pytest.raises(ValueError, match="LIAF"):
        models.lif(x, k, inplace)
    with pytest.raises(ValueError, match="LIAF"):
        models.LIF(inplace)
    assert LIFParams().inplace_activation is None
    assert torch.equal(models.liaf(x, k, LIFParams(inplace_activation=False)), models.liaf(x, k))
    assert LIFParams().with_reading(True).inplace_activation is True
    assert LIFParams(inplace_activation=False).with_reading(True).inplace_activation is False


@pytest.mark.parametrize("reading", list(READINGS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("leak_shape", [(1,), (3, 1, 1)], ids=["scalar", "per-channel"])
def test_published_matches_reference(reading, dtype, leak_shape):
    x, w = _inputs(dtype)
    leak = torch.sigmoid(torch.linspace(0.2, 0.9, math.prod(leak_shape)).reshape(leak_shape))
    fn, ref = _cell(reading)
    out, gx, gk = _run(fn, x, leak, w)
    out_r, gx_r, gk_r = _run(ref, x, leak, w)
    assert out.dtype == dtype and gx.dtype == dtype and gk.dtype == leak.dtype
    assert torch.equal(out, out_r)
    if reading == "lif":
        assert 0.05 < out.float().mean() < 0.95          # spikes do happen and do not saturate
    assert cosine(gx, gx_r) >= 0.9999
    assert cosine(gk, gk_r) >= 0.9999
    assert gx.abs().sum() > 0 and gk.abs().sum() > 0


@pytest.mark.parametrize("reading", list(READINGS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_no_grad_output_equals_differentiable_output(reading, dtype):
    """Without gradients the cell skips its autograd Function (nothing kept): same output."""
    x, _ = _inputs(dtype)
    leak = torch.sigmoid(torch.tensor([0.4]))
    fn, _ = _cell(reading)
    with torch.no_grad():
        fast = fn(x.clone().requires_grad_(True), leak, backend="torch")
    full = fn(x.clone().requires_grad_(True), leak, backend="torch")
    assert full.grad_fn is not None and fast.grad_fn is None
    assert fast.dtype == dtype and torch.equal(fast, full.detach())
    spikes = models.spike(x.clone().requires_grad_(True))
    assert torch.equal(models.spike(x), spikes.detach()) and spikes.dtype == dtype


@pytest.mark.parametrize("reading", list(READINGS))
def test_published_gradients_exact_in_fp64(reading):
    x, w = _inputs(torch.float64, shape=(6, 3, 7), shift=0.0)     # negative membranes too
    leak = torch.sigmoid(torch.tensor([0.5], dtype=torch.float64))
    fn, ref = _cell(reading)
    out, gx, gk = _run(fn, x, leak, w)
    out_r, gx_r, gk_r = _run(ref, x, leak, w)
    assert torch.equal(out, out_r)
    torch.testing.assert_close(gx, gx_r, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gk, gk_r, rtol=1e-12, atol=1e-12)


def test_published_leak_without_grad_and_float_leak():
    x, _ = _inputs(torch.float32)
    a = models.lif(x, 0.6)
    b = models.lif(x, torch.tensor(0.6))
    assert torch.equal(a, b)
    xg = x.clone().requires_grad_(True)
    models.liaf(xg, torch.tensor([0.6])).sum().backward()
    assert xg.grad is not None and xg.grad.shape == x.shape


def test_single_step_and_bad_inputs():
    x = torch.tensor([[0.7, 0.2]])
    assert models.lif(x, 0.5).tolist() == [[1.0, 0.0]]
    with pytest.raises(ValueError):
        models.lif(torch.zeros(0, 2), 0.5)
    with pytest.raises(ValueError):
        models.lif(torch.zeros(3), 0.5)
    with pytest.raises(TypeError):
        models.lif(torch.zeros(2, 2, dtype=torch.int64), 0.5)


def test_backend_argument():
    x = torch.zeros(2, 2)
    with pytest.raises(NotImplementedError):
        models.lif(x, 0.5, backend="cuda")
    with pytest.raises(ValueError):
        models.liaf(x, 0.5, backend="nope")
    with pytest.raises(NotImplementedError):
        models.tasnn_lif(x, backend="triton")


def test_modules_have_no_state_and_published_defaults():
    params = LIFParams()
    assert (params.threshold, params.surrogate_halfwidth, params.decay_init, params.leak_slope) == (0.5, 0.5, 0.5, 0.2)
    with pytest.raises(Exception):
        params.threshold = 1.0  # frozen
    cell = models.LIF()
    assert [n for n, _ in cell.named_parameters()] == ["decay"] and cell.decay.shape == (1,)
    x, _ = _inputs(torch.float32)
    first = cell(x)
    assert torch.equal(first, cell(x))                   # nothing carried over between calls
    assert torch.equal(first[:4], cell(x[:4]))           # a prefix does not depend on the future
    assert torch.equal(first, models.lif(x, torch.sigmoid(cell.decay)))
    fixed = models.LIAF(LIFParams(learn_decay=False))
    assert list(fixed.parameters()) == [] and "decay" in fixed.state_dict()
    assert torch.equal(fixed(x), models.liaf(x, torch.sigmoid(torch.tensor([0.5]))))
    # gradient reaches the decay logit
    cell(x.requires_grad_(True)).sum().backward()
    assert cell.decay.grad is not None and cell.decay.grad.abs().item() > 0


# ---- TA-SNN LIF -------------------------------------------------------------------------------------

def test_tasnn_lif_hand_example():
    x = torch.tensor([0.5, 0.0, 0.2, 0.3]).reshape(4, 1)
    # u = 0.5 (fires, h = 0.3*0.3 = 0.09), 0.09, 0.027 + 0.2 = 0.227, 0.0681 + 0.3 = 0.3681 (fires)
    assert models.tasnn_lif(x).flatten().tolist() == [1.0, 0.0, 0.0, 1.0]
    p = TASNNLIFParams()
    assert (p.v_th, p.alpha, p.beta) == (0.3, 0.3, 0.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("detach", [False, True], ids=["published", "detached"])
def test_tasnn_lif_matches_reference(dtype, detach):
    x, w = _inputs(dtype, scale=0.4, shift=0.15)
    params = TASNNLIFParams(detach_reset=detach, surrogate_width=1.0 if detach else 0.5)

    def run(fn):
        xx = x.detach().clone().requires_grad_(True)
        out = fn(xx)
        (out.float() * w.float()).sum().backward()
        return out.detach(), xx.grad

    out, gx = run(lambda a: models.tasnn_lif(a, params))
    out_r, gx_r = run(lambda a: ref_tasnn(a, a=params.surrogate_width, detach=detach))
    assert torch.equal(out, out_r)
    assert 0.05 < out.float().mean() < 0.95
    assert cosine(gx, gx_r) >= 0.9999 and gx.abs().sum() > 0


def test_tasnn_lif_fp64_exact_and_height():
    x, w = _inputs(torch.float64, shape=(7, 5, 4), scale=0.4, shift=0.15)
    params = TASNNLIFParams(surrogate_height=3.0)
    assert TASNNLIFParams().height == 2.0 and TASNNLIFParams(surrogate_width=1.0).height == 1.0
    xa = x.clone().requires_grad_(True)
    (models.TASNNLIF(params)(xa) * w).sum().backward()
    xb = x.clone().requires_grad_(True)
    (ref_tasnn(xb, height=3.0) * w).sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-12, atol=1e-12)


# ---- layouts and torch.compile -------------------------------------------------------------------

def test_layout_adapters_round_trip():
    x = torch.arange(2 * 3 * 4 * 5 * 6).reshape(2, 3, 4, 5, 6)      # [B, C, T, H, W]
    tb = models.bcthw_to_tbchw(x)
    assert tb.shape == (4, 2, 3, 5, 6) and torch.equal(tb[1, 0, 2], x[0, 2, 1])
    assert torch.equal(models.tbchw_to_bcthw(tb), x)
    y = torch.arange(24).reshape(2, 3, 4)                            # [B, T, F]
    assert torch.equal(models.bt_to_tb(y)[2, 1], y[1, 2])
    assert torch.equal(models.tb_to_bt(models.bt_to_tb(y)), y)
    assert torch.equal(models.split_time(models.merge_time(tb), 4), tb)
    with pytest.raises(ValueError):
        models.bcthw_to_tbchw(y)


def test_torch_compile_fullgraph_matches_eager():
    """Dynamo + AOTAutograd trace the sequence Functions without a graph break. (Inductor code
    generation itself takes ~50 s on a 2-core CPU; benchmarks/bench_models.py times it.)"""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(2, 4, 3, padding=1)
    liaf_cell, lif_cell = models.LIAF(), models.LIF()

    def net(x):
        y = liaf_cell(models.split_time(conv(models.merge_time(x)), x.shape[0]))
        return lif_cell(y) + models.tasnn_lif(y)

    x = torch.randn(4, 2, 2, 6, 6)
    compiled = torch.compile(net, backend="aot_eager", fullgraph=True)
    grads = []
    for fn in (compiled, net):
        xx = x.clone().requires_grad_(True)
        out = fn(xx)
        out.sum().backward()
        grads.append((out.detach(), xx.grad, liaf_cell.decay.grad.clone()))
        liaf_cell.decay.grad = None
    (o1, g1, d1), (o2, g2, d2) = grads
    assert torch.equal(o1, o2)
    torch.testing.assert_close(g1, g2)
    torch.testing.assert_close(d1, d2)
