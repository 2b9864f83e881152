"""Adapters between the published layouts and this package's `[T, B, ...]` (time first), and the
input checks of the zoo's models.

The adapters return views (no copy). `T`: time steps, `B`: batch, `C`: channels, `H`, `W`: pixels.
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


def float_input(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """`x` as a model input: an integer or bool tensor (e.g. `ESDataset`'s uint8 0/1 frames)
    converted to `like.dtype` (the model's parameters), a floating-point one as it is."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a tensor, got {type(x).__name__}")
    if x.is_floating_point():
        return x
    if x.is_complex():
        raise TypeError(f"expected real event frames, got a {x.dtype} tensor")
    return x.to(like.dtype)


def time_first_input(x: torch.Tensor, like: torch.Tensor, model: str, channels: int,
                     steps: int | None = None) -> torch.Tensor:
    """Check that `x` is a time-first batch `[T, B, channels, H, W]` (with `T = steps` when the
    model has a fixed number of steps) and return it as `float_input(x, like)`.

    Refusals are one-line ValueErrors naming the expected layout and the steps and batch seen. A
    batch-first `[B, T, ...]` tensor goes through `bt_to_tb`, the published `[B, C, T, H, W]`
    (`ESDataset(layout="CTHW")`) through `bcthw_to_tbchw`.
    """
    want = f"{model} takes [T, B, {channels}, H, W] (time first{f', T = {steps}' if steps else ''})"
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{want}, got {type(x).__name__}")
    shape = tuple(x.shape)
    if x.dim() != 5:
        raise ValueError(f"{want}; got a {x.dim()}-d tensor of shape {shape}")
    seen = f"shape {shape}, i.e. T = {shape[0]} steps of batch {shape[1]} with {shape[2]} channels"
    if shape[2] != channels:
        hint = (" (a [B, C, T, H, W] batch, ESDataset layout='CTHW'? convert it with odg.models.bcthw_to_tbchw)"
                if shape[1] == channels else "")
        raise ValueError(f"{want}; got {seen}{hint}")
    if steps is not None and shape[0] != steps:
        hint = (" (a batch-first [B, T, ...] batch? convert it with odg.models.bt_to_tb)"
                if shape[1] == steps else f" (for T = {shape[0]}, build the model with steps={shape[0]})")
        raise ValueError(f"{want}; got {seen}{hint}")
    return float_input(x, like)
