"""Temporal-wise attention (TA-SNN): a squeeze-and-excitation over the time axis."""
from __future__ import annotations

import torch
from torch import nn


class TemporalAttention(nn.Module):
    """Scale each frame of a `[T, B, ...]` sequence by a learned score d in [0, 1] per (t, b).

    squeeze: z[t, b] = mean of x[t, b] over every other axis  -> `[T, B]`
    excite:  d[:, b] = sigmoid(fc2(relu(fc1(z[:, b]))))      fc1: T -> T // reduction, fc2: back to T
    output:  x[t, b] * d[t, b]

    At inference, frames with d < d_th can be dropped (`keep_mask`); `squeeze` and `excite` are
    exposed separately so a caller that computed only the kept frames can still score them.
    """

    def __init__(self, steps: int, reduction: int):
        super().__init__()
        if steps < 1 or reduction < 1 or steps // reduction < 1:
            raise ValueError(f"TemporalAttention needs steps // reduction >= 1, got T={steps}, r={reduction}")
        self.steps, self.reduction = steps, reduction
        self.fc1 = nn.Linear(steps, steps // reduction)
        self.fc2 = nn.Linear(steps // reduction, steps)

    def squeeze(self, x: torch.Tensor) -> torch.Tensor:
        """`[T, B, ...]` -> per-frame means `[T, B]` (same dtype)."""
        if x.dim() < 2:
            raise ValueError(f"expected [T, B, ...], got shape {tuple(x.shape)}")
        return x.mean(dim=tuple(range(2, x.dim()))) if x.dim() > 2 else x

    def excite(self, z: torch.Tensor) -> torch.Tensor:
        """Per-frame means `[T, B]` -> scores d `[T, B]` in [0, 1]."""
        if z.shape[0] != self.steps:
            raise ValueError(f"TemporalAttention was built for T={self.steps}, got T={z.shape[0]}")
        return torch.sigmoid(self.fc2(torch.relu(self.fc1(z.t())))).t()

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """`[T, B, ...]` -> scores d `[T, B]` in [0, 1]."""
        return self.excite(self.squeeze(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`[T, B, ...]` -> the same sequence scaled by its scores, same shape and dtype."""
        d = self.scores(x)
        return x * d.reshape(d.shape + (1,) * (x.dim() - 2)).to(x.dtype)

    def extra_repr(self) -> str:
        return f"steps={self.steps}, reduction={self.reduction}"


def keep_mask(scores: torch.Tensor, d_th: float) -> torch.Tensor:
    """Frames to keep at inference: `scores >= d_th`, bool, same shape as `scores` (`[T, B]`)."""
    return scores >= d_th
