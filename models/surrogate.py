"""The spike nonlinearity with its rectangular surrogate gradient."""
from __future__ import annotations

import torch

from .keep import pack_bits, records_grad, unpack_bits


def _heaviside(x: torch.Tensor, threshold: float, inclusive: bool) -> torch.Tensor:
    """0/1 in `x.dtype`, written by the comparison itself (no bool tensor, no conversion)."""
    return (torch.ge if inclusive else torch.gt)(x, threshold, out=torch.empty_like(x))


class _RectangularSpike(torch.autograd.Function):
    """Saves only the surrogate window, as bits (1/16 of a bf16 input)."""

    @staticmethod
    def forward(ctx, x, threshold: float, halfwidth: float, height: float, inclusive: bool):
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(pack_bits((x - threshold).abs() < halfwidth))
        ctx.height, ctx.shape = height, x.shape
        return _heaviside(x, threshold, inclusive)

    @staticmethod
    def backward(ctx, grad):
        window = unpack_bits(ctx.saved_tensors[0], ctx.shape, grad.dtype)
        if ctx.height != 1.0:
            return grad * window * ctx.height, None, None, None, None
        return grad * window, None, None, None, None


def spike(x: torch.Tensor, threshold: float = 0.5, halfwidth: float = 0.5, height: float = 1.0,
          inclusive: bool = False) -> torch.Tensor:
    """Heaviside spike `[x > threshold]` (`>=` when `inclusive`), elementwise, any layout.

    Output: 0/1 in `x.dtype`. Backward: rectangular surrogate, `ds/dx = height` where
    `|x - threshold| < halfwidth`, else 0. Defaults are the published LIF/LIAF values.
    """
    if not records_grad(x):
        return _heaviside(x, threshold, inclusive)
    return _RectangularSpike.apply(x, float(threshold), float(halfwidth), float(height), bool(inclusive))
