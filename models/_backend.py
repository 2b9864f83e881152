"""Which implementation runs a neuron's sequence loop.

    "torch"   a custom autograd Function of plain tensor ops: any device PyTorch supports (CPU,
              CUDA, meta), any float dtype, traced by `torch.compile`.
    "triton"  the fused kernels of `odg.models.triton_lif` (one launch forward, one backward) behind the
              operators of `odg.models.lif_ops`: CUDA tensors, or CPU tensors through Triton's
              interpreter (slow; for checking the kernels without a GPU). Published LIF/LIAF only.
    "auto"    "triton" for CUDA tensors the kernels support when Triton is installed, else "torch".
"""
from __future__ import annotations

import importlib.util

BACKENDS = ("auto", "torch", "triton")
_PLANNED = ("cuda",)


def check_backend(backend: str) -> None:
    """Raise unless `backend` names an implemented backend (see `BACKENDS`)."""
    if backend in BACKENDS:
        return
    if backend in _PLANNED:
        raise NotImplementedError(f"neuron backend {backend!r} is not implemented; use 'triton' for CUDA")
    raise ValueError(f"unknown neuron backend {backend!r}; known: {', '.join(BACKENDS)}")


def triton_installed() -> bool:
    """True when the `triton` package can be imported (it is not imported here)."""
    return importlib.util.find_spec("triton") is not None
