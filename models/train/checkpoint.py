"""Checkpoints: written atomically, holding everything a run needs to continue exactly.

A checkpoint is a `torch.save`d dict:

    format        "odg-train/1"
    model_config  `ModelConfig.to_dict()`: rebuilds the network (`ModelConfig.build`)
    model         the bare network's state_dict (no `module.` prefix)
    -- training checkpoints (RUN_DIR/last.pt) also hold --
    recipe        `Recipe.to_dict()`; options: the run's other settings
    optimizer, stem_optimizer (or None), scheduler
    epoch         epochs completed; step: optimiser steps taken; sampler_epoch: next sampler epoch
    rng           torch (CPU and CUDA), numpy and python generator states
    clock         cumulative wall and training seconds; best: best val top-1 so far
    -- transfer outputs (`odg pretrain transfer`) also hold --
    transfer      the report of which parameters were copied, adapted or newly initialised
"""
from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import numpy as np
import torch

FORMAT = "odg-train/1"


def save(obj: dict, path) -> Path:
    """`torch.save` to `path` through a temporary file and a rename (never a half-written file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)
    return path


def load(path, map_location="cpu") -> dict:
    """A checkpoint written by `save` (or any dict with `model_config` and `model`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    ckpt = torch.load(path, map_location=map_location, weights_only=False)
    if not isinstance(ckpt, dict) or "model" not in ckpt or "model_config" not in ckpt:
        raise ValueError(f"{path} is not an odg checkpoint (expected a dict with 'model' and 'model_config')")
    return ckpt


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"].cpu() if isinstance(state["torch"], torch.Tensor) else state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2 ** 32)
    random.seed(seed)


def state_hash(state_dict: dict) -> str:
    """SHA-256 over a state_dict's names, dtypes, shapes and bytes (bitwise identity of weights)."""
    h = hashlib.sha256()
    for k in sorted(state_dict):
        v = state_dict[k]
        if isinstance(v, torch.Tensor):
            t = v.detach().cpu().contiguous()
            h.update(f"{k}|{t.dtype}|{tuple(t.shape)}|".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        else:
            h.update(f"{k}|{v!r}|".encode())
    return h.hexdigest()
