"""Spiking and baseline networks for the event-stream datasets (ES-ImageNet, ES-UCF101).

Neurons are stateless functions over a whole sequence in `[T, B, ...]` layout, with thin modules
around them; every zoo model takes `[T, B, C, H, W]` (the 2D baseline `[B, 1, H, W]`).
"""
from .attention import TemporalAttention, keep_mask
from .layout import bcthw_to_tbchw, bt_to_tb, merge_time, split_time, tb_to_bt, tbchw_to_bcthw
from .lif import LIAF, LIF, LIFParams, liaf, lif
from .published import load_published, published_state_dict
from .summary import ModelSummary, count_macs, summary
from .surrogate import spike
from .tasnn_lif import TASNNLIF, TASNNLIFParams, tasnn_lif
from .zoo import ModelSpec, build, list_models

__all__ = [
    "ESImageNet", "ESUCF101", "LIAF", "LIF", "LIFParams", "ModelSpec", "ModelSummary", "TASNNLIF", "TASNNLIFParams",
    "TemporalAttention", "bcthw_to_tbchw", "bt_to_tb", "build", "count_macs", "keep_mask", "liaf",
    "lif", "list_models", "load_published", "merge_time", "published_state_dict", "spike",
    "split_time", "summary", "tasnn_lif", "tb_to_bt", "tbchw_to_bcthw",
]


def __getattr__(name):
    """`ESImageNet`, `ESUCF101` (`odg.models.datasets`) on first use: they read stores (zarr), which
    the networks alone do not need."""
    if name in ("ESImageNet", "ESUCF101"):
        from . import datasets
        return getattr(datasets, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
