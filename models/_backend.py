"""Which implementation runs a neuron's sequence loop.

Only "torch" exists: a custom autograd Function whose forward and backward are plain tensor ops,
so it runs on any device PyTorch supports (CPU, CUDA, meta) and under `torch.compile`. A fused
CUDA kernel can later be added here as another name, behind the same neuron functions.
"""
from __future__ import annotations

BACKENDS = ("torch",)
_PLANNED = ("cuda", "triton")


def check_backend(backend: str) -> None:
    """Raise unless `backend` names an implemented backend (see `BACKENDS`)."""
    if backend in BACKENDS:
        return
    if backend in _PLANNED:
        raise NotImplementedError(f"neuron backend {backend!r} is not implemented yet; use 'torch'")
    raise ValueError(f"unknown neuron backend {backend!r}; known: {', '.join(BACKENDS)}")
