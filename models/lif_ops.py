"""The fused LIF / LIAF kernels as PyTorch operators `odg::lif_sequence` (+ its backward).

Registered through `torch.library.custom_op`, with fake (meta) implementations and an autograd
formula, so `torch.compile(fullgraph=True)` keeps a model that uses them in one graph: the
operator is an opaque node that Inductor calls, not Python it has to trace. Triton itself is
imported only when an operator first runs, never when `models` is imported.
"""

import torch

from .spike_layers import pack_bits, unpack_bits


def keeps_input(x: torch.Tensor, spikes_in: bool) -> bool:
    """True when autograd keeps the input rather than the fp32 membrane: a bf16/fp16 input is half
    the size, a 0/1 input (`spikes_in`, kept as bits) 1/32; backward recomputes the membrane from
    it (bit for bit) in its own launch."""
    return spikes_in or x.element_size() < 4


@torch.library.custom_op("odg::lif_sequence", mutates_args=())
def lif_sequence(x: torch.Tensor, leak: torch.Tensor, threshold: float, halfwidth: float,
                 analog: bool, slope: float, inplace: bool, spikes_in: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(output [T, ...] in x.dtype, membrane [T, ...] float32) of the published cell (`inplace`:
    LeakyReLU(m) carried, see `odg.models.lif`); the membrane is an empty tensor when backward
    recomputes it from x (bf16/fp16 or 0/1 `spikes_in` input)."""
    from . import triton_lif
    return triton_lif.forward(x, leak, threshold, analog, slope, inplace, save_m=not keeps_input(x, spikes_in))


@lif_sequence.register_fake
def _(x, leak, threshold, halfwidth, analog, slope, inplace, spikes_in):
    return torch.empty_like(x, memory_format=torch.contiguous_format), \
        x.new_empty((0,) if keeps_input(x, spikes_in) else x.shape, dtype=torch.float32)


@torch.library.custom_op("odg::lif_sequence_backward", mutates_args=())
def lif_sequence_backward(grad_out: torch.Tensor, saved: torch.Tensor, leak: torch.Tensor, threshold: float,
                          halfwidth: float, analog: bool, slope: float, inplace: bool, recompute: bool,
                          leak_grad: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(dL/dx in grad_out.dtype, dL/dk shaped like leak; zeros unless `leak_grad`) from dL/doutput
    and what forward kept: the membrane, or (`recompute`) the input."""
    from . import triton_lif
    grad_x, grad_leak = triton_lif.backward(grad_out, saved, leak, threshold, halfwidth, analog, slope,
                                            inplace, leak_grad, recompute)
    return grad_x, (grad_leak if leak_grad else torch.zeros_like(leak))


@lif_sequence_backward.register_fake
def _(grad_out, saved, leak, threshold, halfwidth, analog, slope, inplace, recompute, leak_grad):
    return torch.empty_like(grad_out, memory_format=torch.contiguous_format), torch.empty_like(leak)


def _setup_context(ctx, inputs, output):
    x, leak, threshold, halfwidth, analog, slope, inplace, spikes_in = inputs
    recompute = keeps_input(x, spikes_in)
    ctx.spikes_in, ctx.x_shape, ctx.x_dtype = spikes_in, x.shape, x.dtype
    ctx.save_for_backward(pack_bits(x) if spikes_in else x if recompute else output[1], leak)
    ctx.consts = (threshold, halfwidth, analog, slope, inplace, recompute)
    ctx.mark_non_differentiable(output[1])


def _backward(ctx, grad_out, _grad_m):
    saved, leak = ctx.saved_tensors
    if ctx.spikes_in:
        saved = unpack_bits(saved, ctx.x_shape, ctx.x_dtype)
    need_x, need_leak = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
    grad_x, grad_leak = lif_sequence_backward(grad_out, saved, leak, *ctx.consts, need_leak)
    return (grad_x if need_x else None), (grad_leak if need_leak else None), None, None, None, None, None, None


lif_sequence.register_autograd(_backward, setup_context=_setup_context)
