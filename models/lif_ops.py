"""The fused LIF / LIAF kernels as PyTorch operators `odg::lif_sequence` (+ its backward).

Registered through `torch.library.custom_op`, with fake (meta) implementations and an autograd
formula, so `torch.compile(fullgraph=True)` keeps a model that uses them in one graph: the
operator is an opaque node that Inductor calls, not Python it has to trace. Triton itself is
imported only when an operator first runs, never when `models` is imported.
"""

import torch

from .keep import neuron_keeps, neuron_restored, neuron_saved


@torch.library.custom_op("odg::lif_sequence", mutates_args=())
def lif_sequence(x: torch.Tensor, leak: torch.Tensor, threshold: float, halfwidth: float,
                 analog: bool, slope: float, inplace: bool, spikes_in: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(output [T, ...] in x.dtype, membrane [T, ...] float32) of the published cell (`inplace`:
    LeakyReLU(m) carried, see `odg.models.lif`); the membrane is an empty tensor when backward
    recomputes it from x (bf16/fp16 or 0/1 `spikes_in` input)."""
    from . import triton_lif
    save_m = neuron_keeps(x, spikes_in) == "membrane"
    return triton_lif.forward(x, leak, threshold, analog, slope, inplace, save_m=save_m)


@lif_sequence.register_fake
def _(x, leak, threshold, halfwidth, analog, slope, inplace, spikes_in):
    return torch.empty_like(x, memory_format=torch.contiguous_format), \
        x.new_empty(x.shape if neuron_keeps(x, spikes_in) == "membrane" else (0,), dtype=torch.float32)


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
    ctx.kept, ctx.x_shape, ctx.x_dtype = neuron_keeps(x, spikes_in), x.shape, x.dtype
    ctx.save_for_backward(neuron_saved(ctx.kept, x, output[1]), leak)
    ctx.consts = (threshold, halfwidth, analog, slope, inplace, ctx.kept != "membrane")
    ctx.mark_non_differentiable(output[1])


def _backward(ctx, grad_out, _grad_m):
    saved, leak = ctx.saved_tensors
    saved = neuron_restored(ctx.kept, saved, ctx.x_shape, ctx.x_dtype)
    need_x, need_leak = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
    grad_x, grad_leak = lif_sequence_backward(grad_out, saved, leak, *ctx.consts, need_leak)
    return (grad_x if need_x else None), (grad_leak if need_leak else None), None, None, None, None, None, None


lif_sequence.register_autograd(_backward, setup_context=_setup_context)
