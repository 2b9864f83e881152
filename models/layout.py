"""Adapters between the published layouts and this package's `[T, B, ...]` (time first).

All return views (no copy). `T`: time steps, `B`: batch, `C`: channels, `H`, `W`: pixels.
"""
from __future__ import annotations

import torch


def bcthw_to_tbchw(x: torch.Tensor) -> torch.Tensor:
    """Published LIAF/3D-CNN layout `[B, C, T, H, W]` -> `[T, B, C, H, W]` (any dtype, a view)."""
    if x.dim() != 5:
        raise ValueError(f"expected a 5-d [B, C, T, H, W] tensor, got shape {tuple(x.shape)}")
    return x.permute(2, 0, 1, 3, 4)


def tbchw_to_bcthw(x: torch.Tensor) -> torch.Tensor:
    """`[T, B, C, H, W]` -> published `[B, C, T, H, W]` (any dtype, a view)."""
    if x.dim() != 5:
        raise ValueError(f"expected a 5-d [T, B, C, H, W] tensor, got shape {tuple(x.shape)}")
    return x.permute(1, 2, 0, 3, 4)


def bt_to_tb(x: torch.Tensor) -> torch.Tensor:
    """Batch-first `[B, T, ...]` (TA-SNN, SpikingJelly multi-step with batch first) -> `[T, B, ...]`."""
    if x.dim() < 2:
        raise ValueError(f"expected at least [B, T], got shape {tuple(x.shape)}")
    return x.transpose(0, 1)


def tb_to_bt(x: torch.Tensor) -> torch.Tensor:
    """`[T, B, ...]` -> batch-first `[B, T, ...]` (a view)."""
    if x.dim() < 2:
        raise ValueError(f"expected at least [T, B], got shape {tuple(x.shape)}")
    return x.transpose(0, 1)


def merge_time(x: torch.Tensor) -> torch.Tensor:
    """`[T, B, ...]` -> `[T*B, ...]`, to run a per-frame layer (conv, BN, pool) on every step at once."""
    return x.flatten(0, 1)


def split_time(x: torch.Tensor, steps: int) -> torch.Tensor:
    """`[T*B, ...]` -> `[T, B, ...]` with `T = steps`; the inverse of `merge_time`."""
    return x.unflatten(0, (steps, -1))
