"""Recompute a short segment (batch norm -> neuron -> pooling) in backward instead of storing it.

Autograd keeps, for every op of a segment such as `pool(neuron(BN(y)))`, the tensor that op's
backward needs: BN its input, the neuron its input, the pool its input and int64 indices. In a
spiking ResNet these are full-size activations, and most of them are cheap to recompute from the
segment's input `y` (one elementwise pass, one scan over time). `recompute(run, inputs)` keeps only
the inputs and runs the segment twice:

    forward   `run(True, *inputs)` without autograd: batch norm uses and updates its running
              statistics exactly as `nn.BatchNorm2d` does;
    backward  `run(False, *inputs)` again with autograd, under the autocast state of the forward,
              and differentiates it. Batch norm must then use the same batch statistics but not
              update the running ones: `batch_norm(bn, y, weight, bias, update)` does both, for a plain
              `nn.BatchNorm2d` (`recomputable`).

The values and gradients are those of running the segment once under autograd (the recomputed
batch statistics are computed by the same kernel from the same input). Inputs listed as `binary`
hold only 0 and 1 and are kept as bits (see `odg.models.spike_layers`). Parameters a segment uses must
be passed among `inputs` so that their gradients are returned.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn
import torch.nn.functional as F

from .spike_layers import pack_bits, records_grad, unpack_bits


def recomputable(bn: nn.Module) -> bool:
    """Whether `batch_norm` reproduces `bn`: a plain `nn.BatchNorm2d`, not a subclass. A
    `SyncBatchNorm` (multi-GPU training) is not: its statistics span all processes, and the
    segments that use it are then run once and stored, as without recomputation."""
    return type(bn) is nn.BatchNorm2d


def batch_norm(bn: nn.BatchNorm2d, y: torch.Tensor, weight: torch.Tensor | None,
               bias: torch.Tensor | None, update: bool) -> torch.Tensor:
    """`bn(y)` with the given affine parameters; with `update=False` it leaves the running
    statistics and the batch counter alone (the recomputation inside backward)."""
    if update:
        return bn(y)
    batch_stats = bn.training or bn.running_mean is None
    return F.batch_norm(y, None if batch_stats else bn.running_mean,
                        None if batch_stats else bn.running_var, weight, bias, batch_stats, 0.0, bn.eps)


class _Recompute(torch.autograd.Function):
    @staticmethod
    def forward(ctx, run, binary, *inputs):
        ctx.run = run
        device = next(t.device.type for t in inputs if t is not None)
        ctx.autocast = (device, torch.is_autocast_enabled(device), torch.get_autocast_dtype(device))
        ctx.meta = [(t.shape, t.dtype) if b else None for t, b in zip(inputs, binary)]
        ctx.save_for_backward(*[pack_bits(t) if b else t for t, b in zip(inputs, binary)])
        with torch.no_grad():
            return run(True, *inputs)

    @staticmethod
    def backward(ctx, grad):
        needs = ctx.needs_input_grad[2:]
        inputs = []
        for t, meta, need in zip(ctx.saved_tensors, ctx.meta, needs):
            if meta is not None:
                t = unpack_bits(t, *meta)
            inputs.append(t.detach().requires_grad_(need) if t is not None else None)
        device, enabled, dtype = ctx.autocast
        with torch.enable_grad(), torch.autocast(device, dtype=dtype, enabled=enabled):
            out = ctx.run(False, *inputs)
        wanted = [t for t, need in zip(inputs, needs) if need]
        grads = iter(torch.autograd.grad(out, wanted, grad, allow_unused=True))
        return (None, None, *[next(grads) if need else None for need in needs])


def recompute(run: Callable[..., torch.Tensor], inputs: Sequence[torch.Tensor | None],
              binary: Sequence[bool] = ()) -> torch.Tensor:
    """`run(True, *inputs)`, keeping for backward only `inputs` (see the module docstring).

    run(update, *inputs) -> one tensor; `update` is True on the forward run only.
    binary: per input, True where it holds only 0/1 (kept as bits; not checked).
    """
    binary = tuple(bool(b) for b in binary) + (False,) * (len(inputs) - len(binary))
    if len(binary) != len(inputs):
        raise ValueError(f"binary has {len(binary)} flags for {len(inputs)} inputs")
    return _Recompute.apply(run, binary, *inputs)


def wants_recompute(enabled: bool, *tensors: torch.Tensor | None) -> bool:
    """Whether a segment should be recomputed: asked for, gradients being recorded for one of
    `tensors`, and not while `torch.compile` traces (its partitioner chooses what to recompute)."""
    return enabled and records_grad(*tensors) and not torch.compiler.is_compiling()
