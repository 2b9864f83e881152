"""The spike nonlinearity with its rectangular surrogate gradient."""
from __future__ import annotations

import torch


class _RectangularSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, threshold: float, halfwidth: float, height: float, inclusive: bool):
        ctx.save_for_backward(x)
        ctx.threshold, ctx.halfwidth, ctx.height = threshold, halfwidth, height
        return (x >= threshold if inclusive else x > threshold).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        window = (x - ctx.threshold).abs() < ctx.halfwidth
        if ctx.height != 1.0:
            return grad * window * ctx.height, None, None, None, None
        return grad * window, None, None, None, None


def spike(x: torch.Tensor, threshold: float = 0.5, halfwidth: float = 0.5, height: float = 1.0,
          inclusive: bool = False) -> torch.Tensor:
    """Heaviside spike `[x > threshold]` (`>=` when `inclusive`), elementwise, any layout.

    Output: 0/1 in `x.dtype`. Backward: rectangular surrogate, `ds/dx = height` where
    `|x - threshold| < halfwidth`, else 0. Defaults are the published LIF/LIAF values.
    """
    return _RectangularSpike.apply(x, float(threshold), float(halfwidth), float(height), bool(inclusive))
