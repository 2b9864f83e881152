"""Load the published checkpoints (state_dicts with the published key names) into the zoo's models."""
from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from torch import nn


def _rules(model: nn.Module, attr: str) -> tuple:
    rules = getattr(model, attr, None)
    if rules is None:
        raise TypeError(f"{type(model).__name__} has no published state_dict layout "
                        f"(expected a model of the zoo with {attr})")
    return rules


def _rename(key: str, rules: tuple) -> str:
    for pattern, repl in rules:
        new, n = re.subn(pattern, repl, key)
        if n:
            return new
    return key


def _preview(keys: list[str], limit: int = 20) -> str:
    more = f" ... (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def to_model_keys(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a published state_dict (optionally `module.`-prefixed) to `model`'s key names.

    Raises ValueError naming every unknown key, every missing key and every shape mismatch.
    """
    rules = _rules(model, "PUBLISHED_TO_OURS")
    back = _rules(model, "OURS_TO_PUBLISHED")
    expected = model.state_dict()
    renamed: dict[str, torch.Tensor] = {}
    source: dict[str, str] = {}
    for key, value in state_dict.items():
        bare = key[len("module."):] if key.startswith("module.") else key
        ours = _rename(bare, rules)
        if ours in renamed:
            raise ValueError(f"published keys {source[ours]!r} and {key!r} both map to {ours!r}")
        renamed[ours], source[ours] = torch.as_tensor(value), key
    unknown = sorted(source[k] for k in renamed if k not in expected)
    missing = sorted(_rename(k, back) for k in expected if k not in renamed)
    problems = []
    if unknown:
        problems.append(f"unknown keys: {_preview(unknown)}")
    if missing:
        problems.append(f"missing keys: {_preview(missing)}")
    if not problems:
        bad = [f"{source[k]} {list(v.shape)} (model expects {list(expected[k].shape)})"
               for k, v in renamed.items() if v.shape != expected[k].shape]
        if bad:
            problems.append(f"shape mismatch: {_preview(bad)}")
    if problems:
        raise ValueError(f"published state_dict does not fit {type(model).__name__}: " + "; ".join(problems))
    return renamed


def load_published(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> nn.Module:
    """Load a state_dict with the published key names and shapes into `model` (a zoo model).

    Accepts keys with or without a `module.` (DistributedDataParallel) prefix. Every key must be
    used and every model key provided; otherwise ValueError names the offending keys. Tensors are
    copied into the model's parameters and buffers (keeping the model's dtype and device).
    Returns `model`, which then computes the published network's function.
    """
    model.load_state_dict(to_model_keys(model, state_dict), strict=True)
    return model


def to_published_keys(model: nn.Module, named: Mapping[str, object]) -> dict[str, object]:
    """`named`, keyed by `model`'s names (its state_dict, parameters, their gradients, ...), under
    the published key names."""
    back = _rules(model, "OURS_TO_PUBLISHED")
    return {_rename(k, back): v for k, v in named.items()}


def published_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """`model.state_dict()` under the published key names (the inverse of `load_published`)."""
    return to_published_keys(model, model.state_dict())
