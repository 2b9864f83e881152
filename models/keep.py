"""What the spiking layers keep for backward: the rules, in one place.

Autograd keeps, for every op, the tensors its backward needs, in the compute dtype (2 bytes per
element under bf16 autocast). In a spiking network most of those are activations that one bit, or
a narrower tensor, holds exactly. The layers of `odg.models.spike_layers`, the neurons of
`odg.models.lif` (both backends) and the recomputed segments of `odg.models.recompute` ask here:

- a tensor that holds only 0 and 1 (spikes) is kept as bits, 8 elements per byte (`pack_bits`,
  `unpack_bits`: 1/16 of bf16) -- except while a segment is re-run inside backward
  (`replaying`): what is kept then lives only until that backward step ends, and packing it
  would cost a pass for no memory;
- a neuron keeps the smallest of: its 0/1 input as bits, its input when narrower than the
  membrane (bf16/fp16 under a float32 membrane), or the membrane itself (`neuron_keeps`);
  backward recomputes the membrane from a kept input, bit for bit.

The bits are not checked (that would cost a pass and, on a GPU, a synchronisation): a caller
that declares a tensor 0/1 promises it; any other value is kept as 1 (`x != 0`).
"""
from __future__ import annotations

import threading
from contextlib import contextmanager

import torch
import torch.nn.functional as F

# With byte i of a little-endian int64 holding b_i in {0, 1}, the product with this constant has
# b_i at bit 56 + i (the term 2^(8i) * 2^(56 - 7i)) and every other term at a distinct bit outside
# 56..63, so no carry reaches the top byte: `(word * _GATHER) >> 56` packs 8 flags into one byte.
# The product wraps modulo 2^64, which leaves the top byte intact.
_GATHER = 0x0102040810204080


def records_grad(*tensors: torch.Tensor | None) -> bool:
    """Whether autograd records an op on `tensors` (None entries ignored): grad mode is on and
    one of them requires grad. A custom Function's forward runs, and saves, even when it does not,
    so the layers here skip theirs then."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def _shifts(device: torch.device) -> torch.Tensor:
    return torch.arange(8, dtype=torch.uint8, device=device)


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


_replay = threading.local()


def replaying() -> bool:
    """True while this thread re-runs a segment inside backward (`odg.models.recompute`)."""
    return getattr(_replay, "depth", 0) > 0


@contextmanager
def replay():
    """Mark the enclosed code, on this thread, as a segment's re-run inside backward."""
    _replay.depth = getattr(_replay, "depth", 0) + 1
    try:
        yield
    finally:
        _replay.depth -= 1


def neuron_keeps(x: torch.Tensor, spikes_in: bool, membrane: torch.dtype = torch.float32) -> str:
    """What a neuron's backward keeps of its input sequence `x`: "bits" (x is 0/1, `spikes_in`,
    and no segment is being re-run), "input" (x narrower than the `membrane` dtype), or
    "membrane" (the membrane sequence it computed). For "bits" and "input" backward recomputes
    the membrane from x."""
    if spikes_in and not replaying():
        return "bits"
    return "input" if x.element_size() < membrane.itemsize else "membrane"


def neuron_saved(kept: str, x: torch.Tensor, membrane: torch.Tensor | None) -> torch.Tensor:
    """The tensor to save for what `neuron_keeps` chose: x as bits, x, or the membrane."""
    if kept == "bits":
        return pack_bits(x)
    return x if kept == "input" else membrane


def neuron_restored(kept: str, saved: torch.Tensor, shape: torch.Size, dtype: torch.dtype) -> torch.Tensor:
    """Inverse of `neuron_saved` in backward: x (unpacked from bits), or the saved tensor as is."""
    return unpack_bits(saved, shape, dtype) if kept == "bits" else saved
