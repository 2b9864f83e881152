"""Convolution and max-pooling of spikes that keep their input for backward as bits.

A convolution's backward needs its input to form the weight gradient, and max-pooling's keeps its
input and the argmax indices (int64); autograd keeps the input in the compute dtype (2 bytes per
element under bf16 autocast). When the input is a spike tensor (every element exactly 0 or 1, as a
LIF neuron emits) one bit holds it exactly, so `SpikeConv2d` and `SpikeMaxPool2d` keep it packed,
8 elements per byte (16x smaller than bf16), and unpack it in backward (max-pooling recomputes its
indices from it). Forward results, gradients and autocast behaviour are those of `nn.Conv2d` /
`nn.MaxPool2d`, bit for bit.

Precondition: the input holds only 0 and 1. It is not checked (that would cost a pass and, on a
GPU, a synchronisation); any other value is kept as 1 (`x != 0`) and the gradients are wrong.
Inside a segment re-run in backward they keep their input as the plain layers do (`odg.models.keep`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .keep import pack_bits, records_grad, replaying, unpack_bits

__all__ = ["SpikeConv2d", "SpikeMaxPool2d", "pack_bits", "records_grad", "spike_conv2d", "unpack_bits"]


class _SpikeConv2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation, groups):
        out = F.conv2d(x, weight, bias, stride, padding, dilation, groups)   # autocast applies
        ctx.conv = (stride, padding, dilation, groups)
        ctx.x_shape, ctx.compute = x.shape, out.dtype
        ctx.has_bias = bias is not None
        ctx.save_for_backward(pack_bits(x) if ctx.needs_input_grad[1] else None, weight)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        packed, weight = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.conv
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        need_b = ctx.has_bias and ctx.needs_input_grad[2]
        w = weight.to(ctx.compute)
        x = (unpack_bits(packed, ctx.x_shape, ctx.compute) if need_w
             else torch.empty(ctx.x_shape, dtype=ctx.compute, device=grad_out.device))
        bias_sizes = [weight.shape[0]] if ctx.has_bias else None
        grad_x, grad_w, grad_b = torch.ops.aten.convolution_backward(
            grad_out.to(ctx.compute), x, w, bias_sizes, list(stride), list(padding), list(dilation),
            False, [0, 0], groups, [need_x, need_w, need_b])
        if grad_w is not None:
            grad_w = grad_w.to(weight.dtype)
        if grad_b is not None:
            grad_b = grad_b.to(weight.dtype)
        return grad_x, grad_w, grad_b, None, None, None, None


def spike_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, stride=1,
                 padding=0, dilation=1, groups: int = 1) -> torch.Tensor:
    """`F.conv2d` for a 0/1 input `x` `[N, C, H, W]`, keeping `x` as bits for backward."""
    pair = nn.modules.utils._pair
    return _SpikeConv2d.apply(x, weight, bias, pair(stride), pair(padding), pair(dilation), groups)


class SpikeConv2d(nn.Conv2d):
    """`nn.Conv2d` (same parameters, names and hooks) for 0/1 inputs: keeps its input as bits."""

    def _conv_forward(self, input, weight, bias):
        if (self.padding_mode != "zeros" or isinstance(self.padding, str) or not records_grad(input, weight)
                or replaying()):
            return super()._conv_forward(input, weight, bias)
        return spike_conv2d(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)


class _SpikeMaxPool2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, dilation, ceil_mode):
        ctx.pool = (kernel_size, stride, padding, dilation, ceil_mode)
        ctx.x_shape, ctx.x_dtype = x.shape, x.dtype
        ctx.save_for_backward(pack_bits(x))
        return F.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode)

    @staticmethod
    def backward(ctx, grad_out):
        (packed,) = ctx.saved_tensors
        kernel_size, stride, padding, dilation, ceil_mode = ctx.pool
        x = unpack_bits(packed, ctx.x_shape, ctx.x_dtype)
        _, indices = F.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)
        grad_x = torch.ops.aten.max_pool2d_with_indices_backward(
            grad_out, x, list(kernel_size), list(stride), list(padding), list(dilation), ceil_mode, indices)
        return grad_x, None, None, None, None, None


class SpikeMaxPool2d(nn.MaxPool2d):
    """`nn.MaxPool2d` for 0/1 inputs `[N, C, H, W]`: keeps its input as bits, no indices."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.return_indices or not records_grad(x) or replaying():
            return super().forward(x)
        pair = nn.modules.utils._pair
        return _SpikeMaxPool2d.apply(x, pair(self.kernel_size), pair(self.stride or self.kernel_size),
                                     pair(self.padding), pair(self.dilation), self.ceil_mode)
