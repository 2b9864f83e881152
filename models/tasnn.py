"""TA-SNN: convolutional SNNs with temporal-wise attention on every layer's synaptic input.

Every layer: conv 3x3 (or linear) -> BN -> optional average pool -> TemporalAttention -> LIF
(the TA-SNN LIF, reset to V_th). Readout: mean over T of the last layer's spikes (trained with MSE
against one-hot targets). Input `[T, B, C, H, W]`.

The networks and their defaults are those of the shipped code (BICLab/TA-SNN, `DVSGestures/CNN` and
`CIFAR10DVS/CNN`: `Config.py`, `Networks/`, `module/`), which differs from the paper's text in
places: DVS128 Gesture runs at T = 30 (so the attention's hidden width is 30 // 16 = 1), and the
CIFAR10-DVS network's last pool is 4x4 (128 -> 64 -> 32 -> 16 -> 8 -> 2), so its FC256 takes
512 * 2 * 2 features. BatchNorm keeps running statistics (`track_running_stats=True` there).
`load_published` takes their state_dicts (`convAttLIF<i>.conv2d`, `.BNLayer`,
`.attention.temporal_excitation.0/2`, `FC<j>.linear`, ...; `module.` from DataParallel).

Inference-time pruning (`TASNN.forward_pruned`): at each layer, a frame whose attention score is
below `d_th` is dropped; that layer's neuron and every later layer never compute it. The LIF of a
layer then runs over the kept frames only (a dropped frame does not advance its state), and a later
attention scores the kept frames from a squeeze in which dropped frames are 0.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import nn

from .attention import TemporalAttention, keep_mask
from .layout import merge_time, split_time, time_first_input
from .tasnn_lif import TASNNLIF, TASNNLIFParams


class TAConvLayer(nn.Module):
    """conv 3x3 (padding 1, bias) -> BN -> AvgPool2d(pool) if `pool` > 1 -> TemporalAttention -> LIF."""

    def __init__(self, in_channels: int, out_channels: int, pool: int, steps: int, reduction: int,
                 params: TASNNLIFParams, backend: str = "auto"):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=True)
        self.bn = nn.BatchNorm2d(out_channels)
        self.pool = nn.AvgPool2d(pool) if pool > 1 else nn.Identity()
        self.attention = TemporalAttention(steps, reduction)
        self.neuron = TASNNLIF(params, backend)

    def synaptic_input(self, x: torch.Tensor) -> torch.Tensor:
        """`[T, B, C, H, W]` -> `[T, B, C', H', W']`, per frame (any number of frames)."""
        return split_time(self.pool(self.bn(self.conv(merge_time(x)))), x.shape[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.neuron(self.attention(self.synaptic_input(x)))


class TALinearLayer(nn.Module):
    """linear (bias) -> BN -> TemporalAttention -> LIF, on `[T, B, ...]` flattened per frame."""

    def __init__(self, in_features: int, out_features: int, steps: int, reduction: int,
                 params: TASNNLIFParams, backend: str = "auto"):
        super().__init__()
        self.fc = nn.Linear(in_features, out_features)
        self.bn = nn.BatchNorm1d(out_features)
        self.attention = TemporalAttention(steps, reduction)
        self.neuron = TASNNLIF(params, backend)

    def synaptic_input(self, x: torch.Tensor) -> torch.Tensor:
        """`[T, B, ...]` -> `[T, B, out_features]`, per frame."""
        return split_time(self.bn(self.fc(merge_time(x).flatten(1))), x.shape[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.neuron(self.attention(self.synaptic_input(x)))


@dataclass(frozen=True)
class TASNNConfig:
    """Architecture of a TA-SNN. `convs`: (out_channels, average-pool kernel after it, 1 for none)
    per conv layer; `fcs`: hidden fc widths; `steps`: T; `reduction`: r of the attention;
    `input_size`: (C, H, W)."""

    convs: tuple[tuple[int, int], ...]
    fcs: tuple[int, ...]
    steps: int
    reduction: int
    input_size: tuple[int, int, int]


# the shipped configs: DVSGestures/CNN (cfg_pool [1, 2, 2], T = 30, r = 16) and CIFAR10DVS/CNN
# (cfg_pool [2, 2, 2, 2, 4], T = 10, r = 5)
GESTURE = TASNNConfig(convs=((64, 1), (128, 2), (128, 2)), fcs=(256,), steps=30,
                      reduction=16, input_size=(2, 32, 32))
CIFAR10DVS = TASNNConfig(convs=((32, 2), (64, 2), (128, 2), (256, 2), (512, 4)),
                         fcs=(256,), steps=10, reduction=5, input_size=(2, 128, 128))

# published submodule names -> ours, per layer kind
_CONV_NAMES = (("conv2d", "conv"), ("BNLayer", "bn"))
_FC_NAMES = (("linear", "fc"), ("BNLayer", "bn"))
_ATTENTION_NAMES = (("attention.temporal_excitation.0", "attention.fc1"),
                    ("attention.temporal_excitation.2", "attention.fc2"))


def _published_names(n_convs: int, n_fcs: int) -> list[tuple[str, str]]:
    """(published key prefix, ours) for every submodule: `convAttLIF<i>.*` and `FC<j>.*`."""
    pairs = []
    for i in range(n_convs + n_fcs):
        published = f"convAttLIF{i}" if i < n_convs else f"FC{i - n_convs}"
        names = (_CONV_NAMES if i < n_convs else _FC_NAMES) + _ATTENTION_NAMES
        pairs += [(f"{published}.{a}.", f"layers.{i}.{b}.") for a, b in names]
    return pairs


class TASNN(nn.Module):
    """A TA-SNN: conv layers, fc layers, an output layer of `num_classes` spiking neurons.

    forward: `[T, B, C, H, W]` float -> firing rates `[B, num_classes]` in [0, 1].
    """

    def __init__(self, config: TASNNConfig, num_classes: int,
                 params: TASNNLIFParams = TASNNLIFParams(), backend: str = "auto"):
        super().__init__()
        self.config = config
        c, h, w = config.input_size
        kw = dict(steps=config.steps, reduction=config.reduction, params=params, backend=backend)
        layers: list[nn.Module] = []
        for out_channels, pool in config.convs:
            layers.append(TAConvLayer(c, out_channels, pool, **kw))
            c, h, w = out_channels, h // pool, w // pool
        features = c * h * w
        for width in config.fcs + (num_classes,):
            layers.append(TALinearLayer(features, width, **kw))
            features = width
        self.layers = nn.Sequential(*layers)
        self.params = params
        names = _published_names(len(config.convs), len(config.fcs) + 1)
        # the published state_dict's key rules (see `odg.models.load_published`)
        self.PUBLISHED_TO_OURS = tuple((rf"^{re.escape(a)}", b) for a, b in names)
        self.OURS_TO_PUBLISHED = tuple((rf"^{re.escape(b)}", a) for a, b in names)

    @property
    def neuron_description(self) -> str:
        """The neurons' recurrence, in words (`odg models summary` prints it)."""
        return self.params.describe()

    def _check(self, x: torch.Tensor) -> torch.Tensor:
        c, h, w = self.config.input_size
        x = time_first_input(x, self.layers[0].conv.weight, "TA-SNN", c, self.config.steps)
        if tuple(x.shape[3:]) != (h, w):
            raise ValueError(f"TA-SNN takes [T, B, {c}, {h}, {w}] frames (its fc layers fix the size), "
                             f"got shape {tuple(x.shape)}")
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`[T, B, C, H, W]` -> firing rates `[B, num_classes]` (mean over T of the output spikes).
        Integer 0/1 frames are converted to float; another layout is refused with a ValueError."""
        return self.layers(self._check(x)).mean(dim=0)

    @torch.no_grad()
    def forward_pruned(self, x: torch.Tensor, d_th: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Inference with frame skipping (eval mode only).

        x: `[T, B, C, H, W]` float. d_th: attention-score threshold in [0, 1]; `d_th = 0` keeps
        every frame and equals `forward`. Returns (rates `[B, num_classes]`, kept `[T, B]` bool: the
        frames that reached the output layer). Rates are spike counts divided by the full T. Each
        sample runs on its own kept frames, so dropped frames cost no conv, BN, pool or neuron work
        in the layers after the one that dropped them.
        """
        if self.training:
            raise RuntimeError("forward_pruned is an inference path: call model.eval() first")
        x = self._check(x)
        steps, batch = x.shape[:2]
        rates, kept = [], torch.zeros(steps, batch, dtype=torch.bool, device=x.device)
        for b in range(batch):
            out, idx = self._run_pruned(x[:, b:b + 1], d_th)
            rates.append(out)
            kept[idx, b] = True
        return torch.cat(rates, dim=0), kept

    def _run_pruned(self, x: torch.Tensor, d_th: float) -> tuple[torch.Tensor, torch.Tensor]:
        steps = x.shape[0]
        idx = torch.arange(steps, device=x.device)
        for layer in self.layers:
            y = layer.synaptic_input(x)                       # only the frames still alive
            squeeze = torch.zeros(steps, 1, dtype=y.dtype, device=y.device)
            squeeze[idx] = layer.attention.squeeze(y)
            d = layer.attention.excite(squeeze)[idx]          # [n, 1]
            keep = keep_mask(d[:, 0], d_th)
            idx, y, d = idx[keep], y[keep], d[keep]
            if idx.numel() == 0:
                n_out = self.layers[-1].fc.out_features
                return x.new_zeros(1, n_out), idx
            x = layer.neuron(y * d.reshape(d.shape + (1,) * (y.dim() - 2)))
        return x.sum(dim=0) / steps, idx


def tasnn_gesture(num_classes: int = 11, steps: int = GESTURE.steps,
                  params: TASNNLIFParams = TASNNLIFParams(surrogate_width=0.5), **kw) -> TASNN:
    """TA-SNN for DVS128 Gesture at 32x32 as shipped: 64c3-128c3-AP2-128c3-AP2-FC256-FC11, r = 16,
    a = 0.5 (surrogate height 2), V_th 0.3, alpha 0.3. `steps` (T, default 30 as the shipped
    Config.py; the paper reports T = 60) sets the attention width; it must be >= 16."""
    config = TASNNConfig(GESTURE.convs, GESTURE.fcs, steps, GESTURE.reduction, GESTURE.input_size)
    return TASNN(config, num_classes, params, **kw)


def tasnn_cifar10dvs(num_classes: int = 10, steps: int = CIFAR10DVS.steps,
                     params: TASNNLIFParams = TASNNLIFParams(surrogate_width=1.0), **kw) -> TASNN:
    """TA-SNN for CIFAR10-DVS at 128x128 as shipped, T = 10: 32-64-128-256-512 c3 followed by
    AP2, AP2, AP2, AP2, AP4 (to 2x2) -FC256-FC10, r = 5, a = 1 (surrogate height 1)."""
    config = TASNNConfig(CIFAR10DVS.convs, CIFAR10DVS.fcs, steps, CIFAR10DVS.reduction,
                         CIFAR10DVS.input_size)
    return TASNN(config, num_classes, params, **kw)
