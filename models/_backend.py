"""Which implementation runs a neuron's sequence loop.

    "torch"   a custom autograd Function of plain tensor ops: any device PyTorch supports (CPU,
              CUDA, meta), any float dtype, traced by `torch.compile`.
    "triton"  the fused kernels of `odg.models.triton_lif` (one launch forward, one backward) behind the
              operators of `odg.models.lif_ops`: CUDA tensors, or CPU tensors through Triton's
              interpreter (slow; for checking the kernels without a GPU). Published LIF/LIAF only.
    "auto"    "triton" for CUDA tensors the kernels support, when Triton is installed and the
              kernels are recorded as checked on that kind of GPU (`FUSED_CHECKED`), else "torch".
"""
from __future__ import annotations

import importlib.util

BACKENDS = ("auto", "torch", "triton")
_PLANNED = ("cuda",)

# The kinds of GPU, as CUDA compute capabilities (major, minor), on which the CUDA tests of
# benchmarks/gpu_checks.sh passed with the fused kernels; "auto" picks them only there. Empty: they
# have not yet run on any GPU, so "auto" is the PyTorch path everywhere and "triton" the explicit
# opt-in. After a passing run, add the capability that benchmarks/gpu_checks.sh prints (with the
# device name and date as a comment), and update the README's "Models" section.
FUSED_CHECKED: tuple[tuple[int, int], ...] = ()


def fused_checked(capability: tuple[int, int], record: tuple[tuple[int, int], ...] = FUSED_CHECKED) -> bool:
    """Whether the fused kernels are recorded as checked on GPUs of compute capability `capability`."""
    return tuple(capability) in record


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
