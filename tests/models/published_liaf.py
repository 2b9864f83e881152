"""The published LIAF/LIF-ResNet, re-implemented plainly for the tests (not the package's code).

Written from reading the shipped code (lyh983012/ES-imagenet-master: `LIAF.py`, `LIAFnet/LIAFResNet.py`
and the configs `LIAFnet/LIAFResNet_18.py` / `_34.py`), following its operations in its order:

- layout `[B, C, T, H, W]`; every conv / linear / pool applied to each time step separately (the
  convs here in one call over all frames, which computes the same per frame);
- `BatchNorm3d` over (B, T, H, W) per channel: batch statistics in training (running ones
  updated, momentum 0.1), running ones in eval;
- the cell loop: `mem = x_0`, then `mem = mem_old * sigmoid(decay) * (1 - spike.detach()) + x_t`;
  each step clones `mem` into `mem_old`, takes the spike `mem_old > 0.5` from it, then applies the
  activation to `mem_old`. The ResNet-18 config's activation is `LeakyReLU(0.2, inplace=True)`:
  applied in place, it changes the `mem_old` carried to the next step (`inplace=True` here); the
  ResNet-34 config's is not in place. LIF networks use the spike function as the activation;
- the spike function `input > 0.5` with the rectangular surrogate `|input - 0.5| < lens`
  (`halfwidth` here, published 0.5; the gradient inside the window is 1 = 1 / (2 * 0.5));
- the block: cv1 -> bn1 -> cell -> cv2 -> bn2; shortcut (1x1 stride-2 conv with bias when the
  channels change, else the input) -> shortcut_norm; cell(activation(main + shortcut)), one decay
  per block; the stem: 7x7/2 conv -> NormLayer -> cell -> 3x3/2 max-pool; the head: average over
  the whole map per step, mean over T, fc.

Weights are a dict with the published state_dict keys (`published-models/liaf_resnet18.txt`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


class _Spike(torch.autograd.Function):
    """[v > threshold]; backward: gradient 1 where |v - threshold| < halfwidth."""

    @staticmethod
    def forward(ctx, v, threshold, halfwidth):
        ctx.save_for_backward(v)
        ctx.threshold, ctx.halfwidth = threshold, halfwidth
        return (v > threshold).to(v.dtype)

    @staticmethod
    def backward(ctx, grad):
        (v,) = ctx.saved_tensors
        return grad * ((v - ctx.threshold).abs() < ctx.halfwidth).to(grad.dtype), None, None


LEARNED = ("weight", "bias", "decay")        # key leaves that are parameters (the rest: BN buffers)


class PublishedResNet:
    """The published network on `x` `[B, C, T, H, W]`.

    sd: published-format weights (float tensors; `parameters()` are those with a grad). blocks:
    [2, 2, 2, 2] (18) or [3, 4, 6, 3] (34). neuron: "liaf" or "lif". inplace: the LIAF activation
    acts in place on the carried membrane (the ResNet-18 config). halfwidth: surrogate window.
    """

    def __init__(self, sd: dict, blocks, neuron: str, inplace: bool, halfwidth: float = 0.5,
                 training: bool = True):
        self.sd = {k: v.detach().clone().requires_grad_(k.rsplit(".", 1)[-1] in LEARNED)
                   if v.is_floating_point() else v.clone() for k, v in sd.items()}
        self.blocks, self.neuron, self.inplace = list(blocks), neuron, inplace
        self.halfwidth, self.training = halfwidth, training

    def parameters(self) -> dict:
        return {k: v for k, v in self.sd.items() if v.requires_grad}

    def buffers(self) -> dict:
        return {k: v for k, v in self.sd.items() if not v.requires_grad}

    # -- the published layers --------------------------------------------------------------
    def _spike(self, v):
        return _Spike.apply(v, 0.5, self.halfwidth)

    def _act(self, v):
        if self.neuron == "lif":
            return self._spike(v)
        return F.leaky_relu(v, 0.2, inplace=self.inplace)

    def _conv(self, x, key, stride, padding):
        """The conv applied to each time step separately: one call over every (b, t) frame.

        The result is made contiguous: torch 2.13's CPU batch-norm backward returns wrong
        gradients for a transposed `[B, C, T, 1, 1]` input (strides that also read as
        channels-last), which the 1 x 1 maps of the last stage at small inputs would be.
        """
        b, c, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(b * t, c, h, w)
        y = F.conv2d(frames, self.sd[key + ".weight"], self.sd[key + ".bias"], stride, padding)
        return y.reshape((b, t) + tuple(y.shape[1:])).transpose(1, 2).contiguous()

    def _bn3d(self, x, key):
        sd = self.sd
        return F.batch_norm(x, sd[key + ".running_mean"], sd[key + ".running_var"], sd[key + ".weight"],
                            sd[key + ".bias"], self.training, 0.1, 1e-5)

    def _cell(self, x, decay):
        outs, mem_old, spike = [], None, None
        for t in range(x.shape[2]):
            if t == 0:
                mem = x[:, :, 0]
            else:
                mem = mem_old * torch.sigmoid(decay) * (1 - spike.detach()) + x[:, :, t]
            mem_old = mem.clone()
            spike = self._spike(mem_old)
            outs.append(self._act(mem_old))        # LIAF in place: mem_old is now LeakyReLU(mem_old)
        return torch.stack(outs, dim=2)

    def _block(self, x, p):
        down = f"{p}.shortcut.weight" in self.sd
        main = self._cell(self._bn3d(self._conv(x, f"{p}.cv1", 2 if down else 1, 1), f"{p}.bn1"),
                          self.sd[f"{p}.decay"])
        main = self._bn3d(self._conv(main, f"{p}.cv2", 1, 1), f"{p}.bn2")
        short = self._conv(x, f"{p}.shortcut", 2, 0) if down else x
        short = self._bn3d(short, f"{p}.shortcut_norm")
        return self._cell(self._act(main + short), self.sd[f"{p}.decay"])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """`[B, C, T, H, W]` -> logits `[B, classes]`."""
        x = self._cell(self._bn3d(self._conv(x, "conv1.kernel", 2, 3), "conv1.NormLayer"), self.sd["conv1.decay"])
        x = torch.stack([F.max_pool2d(x[:, :, t], 3, 2, 0) for t in range(x.shape[2])], dim=2)
        for stage, n in enumerate(self.blocks, start=1):
            for i in range(n):
                x = self._block(x, f"layer{stage}.{i}")
        pooled = torch.stack([F.avg_pool2d(x[:, :, t], x.shape[-2:]).flatten(1) for t in range(x.shape[2])], dim=1)
        return F.linear(pooled.mean(dim=1), self.sd["fc.weight"], self.sd["fc.bias"])
