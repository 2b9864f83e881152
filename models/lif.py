"""The published LIF and LIAF cells (ES-ImageNet baselines, LIAF-Net), stateless over a sequence.

Per neuron, over time steps t of a `[T, B, ...]` input x (the synaptic input, already through
conv/linear and normalisation):

    m_0 = x_0
    m_t = m_(t-1) * k * (1 - s_(t-1)) + x_t        k = sigmoid(d), s detached in this reset term
    s_t = [m_t > threshold]                          rectangular surrogate: ds/dm = 1 where
                                                     |m - threshold| < surrogate_halfwidth
    LIF emits s_t; LIAF emits LeakyReLU(leak_slope)(m_t) (the analog membrane before reset).

The whole loop is one autograd node: forward keeps only the membrane sequence m, backward walks
the sequence once in reverse. No state survives a call, so there is nothing to reset between
batches.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
import torch.nn.functional as F

from ._backend import check_backend


@dataclass(frozen=True)
class LIFParams:
    """Hyperparameters of the published LIF/LIAF cell; the defaults are the published values.

    threshold: a spike fires when the membrane m > threshold (units of the synaptic input).
    surrogate_halfwidth: backward uses ds/dm = 1 where |m - threshold| < surrogate_halfwidth.
    decay_init: initial decay logit d (one scalar per cell); the leak factor is sigmoid(d).
    learn_decay: d is a trained `nn.Parameter` when True, a fixed buffer when False.
    leak_slope: negative slope of the LIAF analog output LeakyReLU.
    """

    threshold: float = 0.5
    surrogate_halfwidth: float = 0.5
    decay_init: float = 0.5
    learn_decay: bool = True
    leak_slope: float = 0.2


def _reduce_to(grad: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Sum a broadcast gradient back to the shape of the operand it was broadcast from."""
    if len(shape) == 0:
        return grad.sum()
    return grad.sum_to_size(shape)


class _LeakyIntegrateFire(torch.autograd.Function):
    """Sequence loop of the published cell. Saves the membrane m [T, ...] (compute dtype) only."""

    @staticmethod
    def forward(ctx, x, leak, threshold: float, halfwidth: float, analog: bool, slope: float):
        compute = torch.promote_types(x.dtype, leak.dtype)
        xs = x.to(compute)
        k = leak.to(compute)
        m = torch.empty_like(xs)
        m[0] = xs[0]
        for t in range(1, xs.shape[0]):
            prev = m[t - 1]
            # (prev <= threshold) is (1 - s_(t-1)); same arithmetic order as the textbook loop
            m[t] = prev * k * (prev <= threshold) + xs[t]
        ctx.save_for_backward(m, leak)
        ctx.threshold, ctx.halfwidth, ctx.analog, ctx.slope = threshold, halfwidth, analog, slope
        ctx.x_dtype = x.dtype
        if analog:
            return F.leaky_relu(m, slope).to(x.dtype)
        return (m > threshold).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        m, leak = ctx.saved_tensors
        k = leak.to(m.dtype)
        g = grad_out.to(m.dtype)
        if ctx.analog:
            grad = torch.where(m > 0, g, g * ctx.slope)
        else:
            grad = g * ((m - ctx.threshold).abs() < ctx.halfwidth)
        # carry[t] = dm_(t+1)/dm_t = k * (1 - s_t)
        not_fired = m[:-1] <= ctx.threshold
        carry = not_fired * k
        for t in range(m.shape[0] - 2, -1, -1):
            grad[t].addcmul_(grad[t + 1], carry[t])
        grad_leak = None
        if ctx.needs_input_grad[1]:
            # dL/dk = sum_t dL/dm_t * m_(t-1) * (1 - s_(t-1))
            reset_free = m[:-1] * not_fired
            if leak.numel() == 1:
                grad_leak = torch.dot(grad[1:].reshape(-1), reset_free.reshape(-1))
                grad_leak = grad_leak.reshape(leak.shape).to(leak.dtype)
            else:
                grad_leak = _reduce_to(grad[1:] * reset_free, leak.shape).to(leak.dtype)
        grad_x = grad.to(ctx.x_dtype) if ctx.needs_input_grad[0] else None
        return grad_x, grad_leak, None, None, None, None


def _as_leak(leak, x: torch.Tensor) -> torch.Tensor:
    if isinstance(leak, torch.Tensor):
        return leak
    return torch.tensor(float(leak), dtype=x.dtype if x.is_floating_point() else torch.float32,
                        device=x.device)


def _check_sequence(x: torch.Tensor) -> None:
    if x.dim() < 2 or x.shape[0] == 0:
        raise ValueError(f"expected a [T, B, ...] sequence with T >= 1, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"expected a floating-point input, got {x.dtype}")


def lif(x: torch.Tensor, leak, params: LIFParams = LIFParams(), backend: str = "torch") -> torch.Tensor:
    """Published LIF cell over a whole sequence.

    x: synaptic input `[T, B, ...]`, floating point (fp32, bf16, fp16, fp64).
    leak: the leak factor k = sigmoid(d) in (0, 1): a float or a tensor broadcastable to
        `x.shape[1:]` (a cell's single scalar has shape `[1]` or `[]`); gradients flow into it.
    Returns spikes `[T, B, ...]`, 0/1 in `x.dtype`. The membrane is computed in the promoted dtype
    of x and leak (fp32 for a bf16 input with an fp32 leak).
    """
    check_backend(backend)
    _check_sequence(x)
    return _LeakyIntegrateFire.apply(x, _as_leak(leak, x), float(params.threshold),
                                     float(params.surrogate_halfwidth), False, float(params.leak_slope))


def liaf(x: torch.Tensor, leak, params: LIFParams = LIFParams(), backend: str = "torch") -> torch.Tensor:
    """Published LIAF cell over a whole sequence: same membrane as `lif`, analog output.

    x: synaptic input `[T, B, ...]`, floating point. leak: as in `lif`.
    Returns `LeakyReLU(params.leak_slope)(m_t)` `[T, B, ...]` in `x.dtype` (membrane before reset).
    """
    check_backend(backend)
    _check_sequence(x)
    return _LeakyIntegrateFire.apply(x, _as_leak(leak, x), float(params.threshold),
                                     float(params.surrogate_halfwidth), True, float(params.leak_slope))


def register_decay(module: nn.Module, params: LIFParams) -> None:
    """Give `module` its decay logit `decay` (shape `[1]`, initial `params.decay_init`): an
    `nn.Parameter` if `params.learn_decay`, else a buffer (still in the state_dict)."""
    d = torch.full((1,), float(params.decay_init))
    if params.learn_decay:
        module.decay = nn.Parameter(d)
    else:
        module.register_buffer("decay", d)


class _Cell(nn.Module):
    _fn = None

    def __init__(self, params: LIFParams = LIFParams(), backend: str = "torch"):
        super().__init__()
        check_backend(backend)
        self.params, self.backend = params, backend
        register_decay(self, params)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return type(self)._fn(x, torch.sigmoid(self.decay), self.params, self.backend)

    def extra_repr(self) -> str:
        return f"threshold={self.params.threshold}, learn_decay={self.params.learn_decay}"


class LIF(_Cell):
    """Published LIF cell as a module: `[T, B, ...]` synaptic input -> spikes, same shape and dtype.

    Holds only the decay logit `decay` (shape `[1]`, leak factor sigmoid(decay)); no hidden state.
    """

    _fn = staticmethod(lif)


class LIAF(_Cell):
    """Published LIAF cell as a module: `[T, B, ...]` input -> LeakyReLU(0.2) membrane, same shape.

    Holds only the decay logit `decay` (shape `[1]`, leak factor sigmoid(decay)); no hidden state.
    """

    _fn = staticmethod(liaf)
