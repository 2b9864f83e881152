"""The published TA-SNN, re-implemented plainly for the tests (not the package's code).

Written from reading the shipped code (BICLab/TA-SNN: `module/LIF_Module.py` `ConvAttLIF` / `AttLIF`,
`module/LIF.py` `ConvIFCell` / `IFCell`, `module/TA.py` `Tlayer`, and the networks
`DVSGestures/CNN/Networks/TA_SNN_CNN_3.py`, `CIFAR10DVS/CNN/Networks/TA_SNN.py` with their
`Config.py`), following its operations in its order:

- layout `[B, T, ...]` (batch first); a layer reshapes to `[B*T, ...]`, applies conv 3x3 (padding
  1, bias) or linear, `BatchNorm2d` / `BatchNorm1d` (`track_running_stats=True`: batch statistics
  in training, running ones updated with momentum 0.1; running ones in eval), the average pool
  (kernel `pool`, none when 1), and reshapes back;
- `Tlayer`: adaptive average pool to 1 over every axis after T (`AdaptiveAvgPool3d(1)` on the conv
  layers' `[B, T, C, H, W]`, `AdaptiveAvgPool1d(1)` on the fc layers' `[B, T, N]`), then
  Linear(T, T // r) -> ReLU -> Linear(T // r, T) -> Sigmoid, and the input times those scores;
- the LIF, step by step from h = 0: `u = h + input`, `x_ = u - Vthres`, `x = ActFun(x_)`,
  `h = x * Vthres + (1 - x) * u`, `h = h * alpha + beta`, emitting x (not detached anywhere);
  `ActFun`: `x_ >= 0`, backward `grad * (|x_| < lens) / (2 * lens)` with `lens = a / 2`;
- the network: the conv layers, `reshape(b, t, -1)`, the fc layers, `sum over T / t`.

One deviation, in precision only: the published `ActFun` returns float32 whatever its input; here
the spikes keep the input's dtype, so the whole network can run in float64.
Weights are a dict with the published state_dict keys (`published-models/tasnn_gesture.txt`, without
the `module.` of DataParallel); `used` collects the keys the network read.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


class _ActFun(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v, lens):
        ctx.save_for_backward(v)
        ctx.lens = lens
        return v.ge(0.0).to(v.dtype)

    @staticmethod
    def backward(ctx, grad):
        (v,) = ctx.saved_tensors
        return grad * (v.abs() < ctx.lens).to(grad.dtype) / (2 * ctx.lens), None


class PublishedTASNN:
    """The published TA-SNN on `x` `[B, T, C, H, W]` -> rates `[B, classes]`.

    pools: the average-pool kernel after each conv layer (1: none). n_fc: fc layers, output
    included. a: surrogate width (0.5 gesture, 1 CIFAR10-DVS).
    """

    def __init__(self, sd: dict, pools, n_fc: int, a: float, alpha: float = 0.3, beta: float = 0.0,
                 v_th: float = 0.3, training: bool = True):
        self.sd = {k: v.detach().clone().requires_grad_(k.rsplit(".", 1)[-1] in ("weight", "bias"))
                   if v.is_floating_point() else v.clone() for k, v in sd.items()}
        self.pools, self.n_fc, self.lens = list(pools), n_fc, a / 2
        self.alpha, self.beta, self.v_th, self.training = alpha, beta, v_th, training
        self.used: set[str] = set()

    def parameters(self) -> dict:
        return {k: v for k, v in self.sd.items() if v.requires_grad}

    def buffers(self) -> dict:
        return {k: v for k, v in self.sd.items() if not v.requires_grad}

    def _p(self, key):
        self.used.add(key)
        return self.sd[key]

    def _bn(self, x, key):
        return F.batch_norm(x, self._p(key + ".running_mean"), self._p(key + ".running_var"),
                            self._p(key + ".weight"), self._p(key + ".bias"), self.training, 0.1, 1e-5)

    def _attention(self, x, key):
        b, t = x.shape[:2]
        pooled = F.adaptive_avg_pool3d(x, 1) if x.dim() == 5 else F.adaptive_avg_pool1d(x, 1)
        y = pooled.view(b, t)
        y = F.linear(y, self._p(key + ".temporal_excitation.0.weight"), self._p(key + ".temporal_excitation.0.bias"))
        y = torch.relu(y)
        y = F.linear(y, self._p(key + ".temporal_excitation.2.weight"), self._p(key + ".temporal_excitation.2.bias"))
        return torch.mul(x, torch.sigmoid(y).view(pooled.shape))

    def _lif(self, data):
        h, outs = torch.zeros_like(data[:, 0]), []
        for step in range(data.shape[1]):
            u = h + data[:, step]
            x = _ActFun.apply(u - self.v_th, self.lens)
            h = x * self.v_th + (1 - x) * u
            h = h * self.alpha + self.beta
            outs.append(x)
        return torch.stack(outs, dim=1)

    def _conv_layer(self, x, key, pool):
        b, t, c, h, w = x.shape
        out = F.conv2d(x.reshape(b * t, c, h, w), self._p(key + ".conv2d.weight"), self._p(key + ".conv2d.bias"),
                       padding=1)
        out = self._bn(out, key + ".BNLayer")
        if pool > 1:
            out = F.avg_pool2d(out, pool)
        out = out.reshape((b, t) + tuple(out.shape[1:]))
        return self._lif(self._attention(out, key + ".attention"))

    def _fc_layer(self, x, key):
        b, t = x.shape[:2]
        out = F.linear(x.reshape(b * t, -1), self._p(key + ".linear.weight"), self._p(key + ".linear.bias"))
        out = self._bn(out, key + ".BNLayer").reshape(b, t, -1)
        return self._lif(self._attention(out, key + ".attention"))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        for i, pool in enumerate(self.pools):
            x = self._conv_layer(x, f"convAttLIF{i}", pool)
        x = x.reshape(b, t, -1)
        for j in range(self.n_fc):
            x = self._fc_layer(x, f"FC{j}")
        return torch.sum(x, dim=1) / t
