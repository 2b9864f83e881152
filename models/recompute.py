"""Recompute a short segment (batch norm -> neuron -> pooling) in backward instead of storing it.

Autograd keeps, for every op of a segment such as `pool(neuron(BN(y)))`, the tensor that op's
backward needs: BN its input, the neuron its input, the pool its input and int64 indices. In a
spiking ResNet these are full-size activations, and most of them are cheap to recompute from the
segment's input `y` (one elementwise pass, one scan over time). A recomputed segment keeps only
its inputs and runs twice:

    forward   without autograd: batch norm uses and updates its running statistics exactly as
              it does when run once;
    backward  again, with autograd, under the autocast state of the forward, and differentiated.
              Batch norm uses the same batch statistics and leaves the running ones (and its batch
              counter) alone; layers that keep 0/1 inputs as bits keep them as is
              (`odg.models.keep.replaying`): that copy lives only until this backward step ends.

The values and gradients are those of running the segment once under autograd (the recomputed
batch statistics are computed by the same kernel from the same input). Inputs declared `binary`
hold only 0 and 1 and are kept as bits (see `odg.models.keep`).

A module marks its segments with the `recomputed` decorator, so its forward reads as the network
is written; the decorator decides, call by call, whether to recompute (`wants_recompute`).
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from .keep import pack_bits, records_grad, replay, unpack_bits


def recomputable(bn: nn.Module) -> bool:
    """Whether a segment using `bn` can be re-run in backward: a plain `nn.BatchNorm2d`, not a
    subclass. A `SyncBatchNorm` (multi-GPU training) is not: its statistics span all processes,
    and the segments that use it are then run once and stored, as without recomputation."""
    return type(bn) is nn.BatchNorm2d


@contextmanager
def _replaying(norms: Sequence[nn.Module]):
    """The re-run inside backward: the batch norms `norms` normalise with batch statistics (in
    training; with the running ones in eval) and update nothing."""
    tracked = [bn.track_running_stats for bn in norms]
    for bn in norms:
        bn.track_running_stats = False
    try:
        with replay():
            yield
    finally:
        for bn, t in zip(norms, tracked):
            bn.track_running_stats = t


class _Recompute(torch.autograd.Function):
    @staticmethod
    def forward(ctx, run, binary, norms, n_inputs, *tensors):
        inputs = tensors[:n_inputs]
        ctx.run, ctx.norms, ctx.params = run, norms, tensors[n_inputs:]
        device = next(t.device.type for t in tensors if t is not None)
        ctx.autocast = (device, torch.is_autocast_enabled(device), torch.get_autocast_dtype(device))
        ctx.meta = [(t.shape, t.dtype) if b else None for t, b in zip(inputs, binary)]
        ctx.save_for_backward(*[pack_bits(t) if b else t for t, b in zip(inputs, binary)])
        with torch.no_grad():
            return run(*inputs)

    @staticmethod
    def backward(ctx, grad):
        needs = ctx.needs_input_grad[4:]
        inputs = []
        for t, meta, need in zip(ctx.saved_tensors, ctx.meta, needs):
            if meta is not None:
                t = unpack_bits(t, *meta)
            inputs.append(t.detach().requires_grad_(need) if t is not None else None)
        device, enabled, dtype = ctx.autocast
        with torch.enable_grad(), torch.autocast(device, dtype=dtype, enabled=enabled), _replaying(ctx.norms):
            out = ctx.run(*inputs)
        # the parameters themselves: the re-run uses the modules' own, so their gradients are
        # taken here and handed to autograd as this node's (hooks and accumulation as usual)
        wanted = [t for t, need in zip([*inputs, *ctx.params], needs) if need]
        grads = iter(torch.autograd.grad(out, wanted, grad, allow_unused=True))
        return (None, None, None, None, *[next(grads) if need else None for need in needs])


def recompute(run: Callable[..., torch.Tensor], inputs: Sequence[torch.Tensor | None],
              binary: Sequence[bool] = (), params: Sequence[torch.Tensor] = (),
              norms: Sequence[nn.Module] = ()) -> torch.Tensor:
    """`run(*inputs)`, keeping for backward only `inputs` (see the module docstring).

    run(*inputs) -> one tensor; it may use the parameters `params` (of its modules) and the batch
    norms `norms` (plain `nn.BatchNorm2d`, see `recomputable`), whose running statistics the
    forward run updates once.
    binary: per input, True where it holds only 0/1 (kept as bits; not checked).
    """
    binary = tuple(bool(b) for b in binary) + (False,) * (len(inputs) - len(binary))
    if len(binary) != len(inputs):
        raise ValueError(f"binary has {len(binary)} flags for {len(inputs)} inputs")
    return _Recompute.apply(run, binary, tuple(norms), len(inputs), *inputs, *params)


def wants_recompute(enabled: bool, *tensors: torch.Tensor | None) -> bool:
    """Whether a segment should be recomputed: asked for, gradients being recorded for one of
    `tensors`, and not while `torch.compile` traces (its partitioner chooses what to recompute)."""
    return enabled and records_grad(*tensors) and not torch.compiler.is_compiling()


def recomputed(*modules: str, binary: Callable[[nn.Module], Sequence[bool]] | None = None):
    """Decorator of a segment method `segment(self, *tensors, **options) -> tensor` of a module
    with a `recompute` flag: recomputed in backward when that flag is set, gradients are recorded
    and every batch norm it uses is `recomputable`; otherwise simply called.

    modules: names of the submodules the segment uses (their parameters, and the batch norms among
    them); the module's own parameters (e.g. a neuron's decay) are always included.
    binary: `binary(self)` -> per tensor argument, whether it holds only 0/1 (kept as bits).
    """
    def decorate(segment):
        @functools.wraps(segment)
        def run(self, *tensors, **options):
            used = [getattr(self, name) for name in modules]
            norms = tuple(m for m in used if isinstance(m, nn.modules.batchnorm._BatchNorm))
            params = tuple(dict.fromkeys([*self.parameters(recurse=False), *(p for m in used for p in m.parameters())]))
            enabled = self.recompute and all(recomputable(bn) for bn in norms)
            if not wants_recompute(enabled, *tensors, *params):
                return segment(self, *tensors, **options)
            return recompute(lambda *inputs: segment(self, *inputs, **options), tensors,
                             binary(self) if binary is not None else (), params, norms)
        return run
    return decorate
