"""Fused Triton kernels for the published LIF / LIAF cell (see `odg.models.lif` for the dynamics).

One launch runs the whole forward sequence and one launch the whole backward sequence. Each
program owns `BLOCK` neurons and walks the T steps itself, so the membrane never leaves registers
between steps:

    forward   reads x [T, N] (fp32/bf16/fp16), writes the output [T, N] (x.dtype) and, for fp32
              input, the membrane m [T, N] (fp32): the only tensor backward needs. A bf16/fp16
              input is half the size of m, so then it is x that autograd keeps.
    backward  (for a kept x: first recomputes m into a scratch buffer, in the same launch) reads
              dL/dout [T, N] and m in reverse time, writes dL/dx [T, N] (dL/dout.dtype) and,
              when asked, one fp32 partial sum of dL/dk per program (summed on the host).

N is the product of all axes after T (the input is made contiguous). The leak factor k is one
scalar (the published cell's `sigmoid(decay)`). The membrane is accumulated in fp32 with the same
rounding steps as the PyTorch path (`odg.models.lif`): `where(m <= th, c * k, 0) + x` with the
carried membrane c = m, or c = LeakyReLU(m) (`INPLACE`, the published ResNet-18 reading), launched
with floating-point contraction off, so spikes are bit-identical to it.

On CUDA tensors the kernels are compiled by Triton. On CPU tensors they run through Triton's
interpreter (NumPy, slow): that is how the test suite checks these exact kernels without a GPU.
"""
from __future__ import annotations

import contextlib
import functools

import torch
import triton
import triton.language as tl

BLOCK = 1024          # neurons per program: 8 per thread at 4 warps (128-bit fp32 accesses)
NUM_WARPS = 4
SUPPORTED_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


# The kernels call only Triton builtins (and `_add` as a reduction combiner): the library's jit
# helpers (tl.zeros, tl.sum) and nested jit calls cannot run in an interpreted kernel when Triton
# was imported in compiled mode. bfloat16 results are rounded to nearest even with integer ops
# because the interpreter's float32 -> bfloat16 cast truncates; on the GPU this is bit for bit
# what the hardware conversion gives.
@triton.jit
def _add(a, b):
    return a + b


def _lif_forward(x_ptr, out_ptr, m_ptr, leak_ptr, N, threshold, slope,
                 T: tl.constexpr, ANALOG: tl.constexpr, INPLACE: tl.constexpr, OUT_BF16: tl.constexpr,
                 SAVE_M: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    k = tl.load(leak_ptr).to(tl.float32)
    x_ptrs, out_ptrs, m_ptrs = x_ptr + offs, out_ptr + offs, m_ptr + offs
    m = tl.full((BLOCK,), 0.0, tl.float32)          # m_(-1) = 0, so m_0 = x_0
    for _ in range(T):
        x = tl.load(x_ptrs, mask=mask, other=0.0).to(tl.float32)
        if INPLACE:   # carried: LeakyReLU(m_(t-1)); the reset still compares m_(t-1)
            m = tl.where(m <= threshold, tl.where(m > 0.0, m, m * slope) * k, 0.0) + x
        else:
            m = tl.where(m <= threshold, m * k, 0.0) + x  # reset when m_(t-1) > threshold
        if ANALOG:
            out = tl.where(m > 0.0, m, m * slope)
        else:
            out = tl.where(m > threshold, 1.0, 0.0)
        if OUT_BF16:  # round to nearest even by hand (see module note)
            bits = out.to(tl.uint32, bitcast=True)
            bits = tl.where(out != out, bits | 0x400000, bits + 0x7FFF + ((bits >> 16) & 1))
            tl.store(out_ptrs, (bits >> 16).to(tl.uint16).to(tl.bfloat16, bitcast=True), mask=mask)
        else:
            tl.store(out_ptrs, out.to(out_ptr.dtype.element_ty), mask=mask)
        if SAVE_M:
            tl.store(m_ptrs, m, mask=mask)
        x_ptrs += N
        out_ptrs += N
        m_ptrs += N


def _lif_backward(g_ptr, x_ptr, m_ptr, gx_ptr, leak_ptr, partial_ptr, N, last, threshold, halfwidth, slope,
                  T: tl.constexpr, ANALOG: tl.constexpr, INPLACE: tl.constexpr, OUT_BF16: tl.constexpr,
                  LEAK_GRAD: tl.constexpr, RECOMPUTE: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    k = tl.load(leak_ptr).to(tl.float32)
    if RECOMPUTE:  # m from the saved input, as the forward computed it, into the scratch m_ptr
        x_ptrs, w_ptrs = x_ptr + offs, m_ptr + offs
        m = tl.full((BLOCK,), 0.0, tl.float32)
        for _ in range(T):
            x = tl.load(x_ptrs, mask=mask, other=0.0).to(tl.float32)
            if INPLACE:
                m = tl.where(m <= threshold, tl.where(m > 0.0, m, m * slope) * k, 0.0) + x
            else:
                m = tl.where(m <= threshold, m * k, 0.0) + x
            tl.store(w_ptrs, m, mask=mask)
            x_ptrs += N
            w_ptrs += N
    g_ptrs, m_ptrs, gx_ptrs = g_ptr + last + offs, m_ptr + last + offs, gx_ptr + last + offs
    grad_next = tl.full((BLOCK,), 0.0, tl.float32)  # dL/dm_(t+1); `last` = (T - 1) * N
    leak_acc = tl.full((BLOCK,), 0.0, tl.float32)
    for _ in range(T):
        m = tl.load(m_ptrs, mask=mask, other=0.0)
        g = tl.load(g_ptrs, mask=mask, other=0.0).to(tl.float32)
        not_fired = m <= threshold
        if ANALOG:
            local = tl.where(m > 0.0, g, g * slope)
        else:
            local = tl.where(tl.abs(m - threshold) < halfwidth, g, 0.0)
        if INPLACE:   # carried c_t = LeakyReLU(m_t): dL/dk gets c_t, dL/dm_t a dc_t/dm_t factor
            positive = m > 0.0
            if LEAK_GRAD:
                # dL/dk += dL/dm_(t+1) * c_t * (1 - s_t)
                leak_acc += tl.where(not_fired, grad_next * tl.where(positive, m, m * slope), 0.0)
            carried = tl.where(positive, grad_next, grad_next * slope)
        else:
            if LEAK_GRAD:
                # dL/dk += dL/dm_(t+1) * m_t * (1 - s_t)
                leak_acc += tl.where(not_fired, grad_next * m, 0.0)
            carried = grad_next
        grad = local + tl.where(not_fired, carried * k, 0.0)
        if OUT_BF16:
            bits = grad.to(tl.uint32, bitcast=True)
            bits = tl.where(grad != grad, bits | 0x400000, bits + 0x7FFF + ((bits >> 16) & 1))
            tl.store(gx_ptrs, (bits >> 16).to(tl.uint16).to(tl.bfloat16, bitcast=True), mask=mask)
        else:
            tl.store(gx_ptrs, grad.to(gx_ptr.dtype.element_ty), mask=mask)
        grad_next = grad
        g_ptrs -= N
        m_ptrs -= N
        gx_ptrs -= N
    if LEAK_GRAD:
        tl.store(partial_ptr + pid, tl.reduce(leak_acc, 0, _add))


@functools.cache
def _kernels(interpret: bool):
    """(forward, backward) kernels: compiled for the GPU, or through Triton's CPU interpreter."""
    if interpret:
        from triton.runtime.interpreter import InterpretedFunction
        return InterpretedFunction(_lif_forward), InterpretedFunction(_lif_backward)
    return triton.jit(_lif_forward), triton.jit(_lif_backward)


def _launch_config(x: torch.Tensor, n: int):
    interpret = x.device.type == "cpu"
    block = min(BLOCK, triton.next_power_of_2(max(n, 16))) if interpret else BLOCK
    options = {} if interpret else {"num_warps": NUM_WARPS, "enable_fp_fusion": False}
    return _kernels(interpret), block, (triton.cdiv(n, block),), options


def _on_device(x: torch.Tensor):
    """Launch on x's GPU (Triton launches on the current device), or nowhere in particular."""
    return torch.cuda.device(x.device) if x.is_cuda else contextlib.nullcontext()


def check_supported(x: torch.Tensor, leak: torch.Tensor) -> str | None:
    """Why the fused kernels cannot run this call, or None when they can."""
    if x.dtype not in SUPPORTED_DTYPES:
        return f"input dtype {x.dtype} (fused kernels take float32, bfloat16, float16)"
    if leak.numel() != 1:
        return f"a leak of shape {tuple(leak.shape)} (fused kernels take one scalar per cell)"
    if not leak.is_floating_point() or leak.dtype == torch.float64:
        return f"leak dtype {leak.dtype} (fused kernels take a float32/bfloat16/float16 leak)"
    if x.device.type not in ("cuda", "cpu") or leak.device != x.device:
        return f"input on {x.device} with leak on {leak.device} (fused kernels: CUDA, or CPU interpreter)"
    return None


def forward(x: torch.Tensor, leak: torch.Tensor, threshold: float, analog: bool, slope: float,
            inplace: bool = False, save_m: bool = True):
    """(output [T, ...] in x.dtype, membrane m [T, ...] float32) for a `[T, ...]` input (`inplace`:
    LeakyReLU(m) carried); with `save_m=False` m is not written and an empty tensor is returned in
    its place."""
    x = x.contiguous()
    steps, n = x.shape[0], x[0].numel()
    out = torch.empty_like(x)
    m = torch.empty(x.shape if save_m else (0,), dtype=torch.float32, device=x.device)
    if x.numel() == 0:
        return out, m
    (fwd, _), block, grid, options = _launch_config(x, n)
    with _on_device(x):
        fwd[grid](x, out, m if save_m else out, leak, n, float(threshold), float(slope),
                  T=steps, ANALOG=bool(analog), INPLACE=bool(inplace), OUT_BF16=x.dtype == torch.bfloat16,
                  SAVE_M=save_m, BLOCK=block, **options)
    return out, m


def backward(grad_out: torch.Tensor, saved: torch.Tensor, leak: torch.Tensor, threshold: float,
             halfwidth: float, analog: bool, slope: float, inplace: bool, leak_grad: bool, recompute: bool):
    """(dL/dx [T, ...] in grad_out.dtype, dL/dk shaped like leak or None) from dL/dout and what
    forward saved: the membrane m, or (`recompute`) the input x, from which m is recomputed into a
    scratch buffer inside the same launch."""
    grad_out = grad_out.contiguous()
    saved = saved.contiguous()
    steps, n = saved.shape[0], saved[0].numel()
    grad_x = torch.empty_like(grad_out)
    if saved.numel() == 0:
        return grad_x, (torch.zeros_like(leak) if leak_grad else None)
    m = torch.empty(saved.shape, dtype=torch.float32, device=saved.device) if recompute else saved
    (_, bwd), block, grid, options = _launch_config(saved, n)
    partial = torch.empty(grid[0] if leak_grad else 1, dtype=torch.float32, device=saved.device)
    with _on_device(saved):
        bwd[grid](grad_out, saved, m, grad_x, leak, partial, n, (steps - 1) * n, float(threshold),
                  float(halfwidth), float(slope), T=steps, ANALOG=bool(analog), INPLACE=bool(inplace),
                  OUT_BF16=grad_out.dtype == torch.bfloat16, LEAK_GRAD=bool(leak_grad),
                  RECOMPUTE=bool(recompute), BLOCK=block, **options)
    grad_leak = partial.sum().reshape(leak.shape).to(leak.dtype) if leak_grad else None
    return grad_x, grad_leak
