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
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


def records_grad(*tensors: torch.Tensor | None) -> bool:
    """Whether autograd records an op on `tensors` (None entries ignored): grad mode is on and
    one of them requires grad. A custom Function's forward runs, and saves, even when it does not,
    so the layers here skip theirs then."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def _shifts(device: torch.device) -> torch.Tensor:
    return torch.arange(8, dtype=torch.uint8, device=device)


# With byte i of a little-endian int64 holding b_i in {0, 1}, the product with this constant has
# b_i at bit 56 + i (the term 2^(8i) * 2^(56 - 7i)) and every other term at a distinct bit outside
# 56..63, so no carry reaches the top byte: `(word * _GATHER) >> 56` packs 8 flags into one byte.
# The product wraps modulo 2^64, which leaves the top byte intact.
_GATHER = 0x0102040810204080


def pack_bits(x: torch.Tensor) -> torch.Tensor:
    """`x != 0` as uint8 `[ceil(numel / 8)]`, element i in bit i % 8 of byte i // 8."""
    flags = torch.ne(x.reshape(-1), 0, out=torch.empty(x.numel(), dtype=torch.uint8, device=x.device))
    pad = -flags.numel() % 8
    if pad:
        flags = F.pad(flags, (0, pad))
    words = flags.view(torch.int64)                     # 8 flags per word (one copy-free view)
    return ((words * _GATHER) >> 56).to(torch.uint8)


def unpack_bits(packed: torch.Tensor, shape: torch.Size, dtype: torch.dtype) -> torch.Tensor:
    """Inverse of `pack_bits`: a 0/1 tensor of `shape` in `dtype`."""
    bits = (packed.unsqueeze(1) >> _shifts(packed.device)) & 1
    return bits.reshape(-1)[: shape.numel()].reshape(shape).to(dtype)


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
        if self.padding_mode != "zeros" or isinstance(self.padding, str) or not records_grad(input, weight):
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
        if self.return_indices or not records_grad(x):
            return super().forward(x)
        pair = nn.modules.utils._pair
        return _SpikeMaxPool2d.apply(x, pair(self.kernel_size), pair(self.stride or self.kernel_size),
                                     pair(self.padding), pair(self.dilation), self.ceil_mode)
