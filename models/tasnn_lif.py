"""The LIF neuron of TA-SNN (temporal-wise attention SNN), stateless over a sequence.

Per neuron, over time steps t of a `[T, B, ...]` input I:

    u_t = h_(t-1) + I_t                                   h_(-1) = 0
    s_t = [u_t >= v_th]
    h_t = (s_t * v_th + (1 - s_t) * u_t) * alpha + beta   (resets *to* v_th, as published)

Backward: rectangular surrogate ds/du = surrogate_height where |u - v_th| < surrogate_width / 2;
the published height is 1 / surrogate_width (its `grad / (2 * lens)` with `lens = a / 2`: 2 for
DVS128 Gesture's a = 0.5, 1 for CIFAR10-DVS's a = 1). As in the published code (BICLab/TA-SNN,
`module/LIF.py`) the spike `[u_t - v_th >= 0]` is not detached in the reset term, so gradients
also flow through s_t into h_t (set `detach_reset=True` to drop that path).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ._backend import check_backend


@dataclass(frozen=True)
class TASNNLIFParams:
    """Hyperparameters of the TA-SNN LIF; defaults are the published DVS128 Gesture values.

    v_th: firing threshold (and reset value). alpha: leak factor of h. beta: constant added to h.
    surrogate_width: `a`, full width of the rectangular surrogate window (0.5 gesture, 1.0 for
        CIFAR10-DVS). surrogate_height: value of ds/du inside the window; None (default): the
        published 1 / surrogate_width.
    detach_reset: detach s_t in the reset term (the published code does not).
    """

    v_th: float = 0.3
    alpha: float = 0.3
    beta: float = 0.0
    surrogate_width: float = 0.5
    surrogate_height: float | None = None
    detach_reset: bool = False

    @property
    def height(self) -> float:
        """ds/du inside the surrogate window (`surrogate_height`, or the published 1 / a)."""
        return 1.0 / self.surrogate_width if self.surrogate_height is None else float(self.surrogate_height)

    def describe(self) -> str:
        """The recurrence and its constants, in words (`odg models summary` prints it)."""
        return (f"TA-SNN LIF: u_t = h_(t-1) + I_t, s_t = [u_t - V_th >= 0], "
                f"h_t = (s_t V_th + (1 - s_t) u_t) alpha + beta (reset to V_th); V_th {self.v_th}, "
                f"alpha {self.alpha}, beta {self.beta}, surrogate a = {self.surrogate_width}, "
                f"height {self.height:g}")


class _ResetToThresholdLIF(torch.autograd.Function):
    """Sequence loop of the TA-SNN LIF. Saves the pre-reset potential u [T, ...] only."""

    @staticmethod
    def forward(ctx, x, v_th: float, alpha: float, beta: float, halfwidth: float, height: float,
                detach_reset: bool):
        u = torch.empty_like(x)
        u[0] = x[0]
        for t in range(1, x.shape[0]):
            prev = u[t - 1]
            h = torch.where(prev >= v_th, v_th, prev) * alpha + beta
            u[t] = h + x[t]
        ctx.save_for_backward(u)
        ctx.consts = (v_th, alpha, halfwidth, height, detach_reset)
        return (u >= v_th).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        (u,) = ctx.saved_tensors
        v_th, alpha, halfwidth, height, detach_reset = ctx.consts
        window = (u - v_th).abs() < halfwidth
        surrogate = window * height if height != 1.0 else window
        grad = grad_out * surrogate
        # carry[t] = du_(t+1)/du_t = dh_t/du_t = alpha * ((1 - s_t) + (v_th - u_t) * ds_t/du_t)
        not_fired = (u[:-1] < v_th).to(u.dtype)
        if detach_reset:
            carry = not_fired * alpha
        else:
            carry = (not_fired + (v_th - u[:-1]) * surrogate[:-1]) * alpha
        for t in range(u.shape[0] - 2, -1, -1):
            grad[t].addcmul_(grad[t + 1], carry[t])
        return grad, None, None, None, None, None, None


def _check_tasnn_backend(backend: str) -> None:
    check_backend(backend)
    if backend == "triton":
        raise NotImplementedError("the TA-SNN LIF has no fused kernel; use backend='torch' or 'auto'")


def tasnn_lif(x: torch.Tensor, params: TASNNLIFParams = TASNNLIFParams(),
              backend: str = "auto") -> torch.Tensor:
    """TA-SNN LIF over a whole sequence.

    x: synaptic input `[T, B, ...]`, floating point; the potential is computed in `x.dtype`.
    Returns spikes `[T, B, ...]`, 0/1 in `x.dtype`.
    """
    _check_tasnn_backend(backend)
    if x.dim() < 2 or x.shape[0] == 0:
        raise ValueError(f"expected a [T, B, ...] sequence with T >= 1, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"expected a floating-point input, got {x.dtype}")
    p = params
    return _ResetToThresholdLIF.apply(x, float(p.v_th), float(p.alpha), float(p.beta),
                                      float(p.surrogate_width) / 2, p.height, bool(p.detach_reset))


class TASNNLIF(nn.Module):
    """TA-SNN LIF as a module: `[T, B, ...]` synaptic input -> spikes. No parameters, no state."""

    def __init__(self, params: TASNNLIFParams = TASNNLIFParams(), backend: str = "auto"):
        super().__init__()
        _check_tasnn_backend(backend)
        self.params, self.backend = params, backend

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return tasnn_lif(x, self.params, self.backend)

    def extra_repr(self) -> str:
        p = self.params
        return f"v_th={p.v_th}, alpha={p.alpha}, beta={p.beta}, surrogate_width={p.surrogate_width}"
