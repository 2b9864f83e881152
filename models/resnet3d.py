"""The published 3D-CNN baseline: a 3-D ResNet on event frames `[B, 2, 8, 224, 224]`.

This implementation takes `[T, B, C, H, W]` like every model of the zoo and permutes internally.
The published state_dict (see `tests/data/published-models/resnet3d18.txt`) has bottleneck blocks
(1x1x1 -> 3x3x3 -> 1x1x1, expansion 4) with [2, 2, 2, 2] / [3, 4, 6, 3] blocks per stage and a
conv + BN shortcut wherever shapes change (including the first block of stage 1); module names
follow it, so the published state_dict loads unchanged. Those blocks reproduce the published
parameter counts exactly (28,563,432 and 48,226,024 at 1000 classes).
"""
from __future__ import annotations

import torch
from torch import nn

from .layout import tbchw_to_bcthw, time_first_input
from .snn_resnet import PUBLISHED_STEPS


class Bottleneck3d(nn.Module):
    """1x1x1 conv -> BN -> ReLU -> 3x3x3 conv (stride) -> BN -> ReLU -> 1x1x1 conv (x4) -> BN,
    plus the (downsampled) input, -> ReLU. No conv biases."""

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int = 1,
                 downsample: nn.Module | None = None):
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = nn.Conv3d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm3d(width)
        self.conv2 = nn.Conv3d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm3d(width)
        self.conv3 = nn.Conv3d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm3d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet3d(nn.Module):
    """Stem Conv3d 7x7x7, stride (1, 2, 2), padding (3, 1, 1), no bias -> BN3d -> ReLU ->
    MaxPool3d(3, 2, 1); four bottleneck stages (64, 128, 256, 512 wide, x4 out); global average
    pool; fc 2048 -> num_classes. Input `[T, B, C, H, W]`, float (or integer 0/1 frames), with
    T = `steps` (the zoo's builders: the published 8; None: any T); output logits `[B, num_classes]`."""

    # the published keys are this model's keys (see `odg.models.load_published`)
    PUBLISHED_TO_OURS: tuple = ()
    OURS_TO_PUBLISHED: tuple = ()

    def __init__(self, layers: list[int], num_classes: int = 1000, in_channels: int = 2,
                 steps: int | None = None):
        super().__init__()
        self.steps = steps
        self.conv1 = nn.Conv3d(in_channels, 64, 7, stride=(1, 2, 2), padding=(3, 1, 1), bias=False)
        self.bn1 = nn.BatchNorm3d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d(3, stride=2, padding=1)
        self._channels = 64
        self.layer1 = self._make_layer(64, layers[0], 1)
        self.layer2 = self._make_layer(128, layers[1], 2)
        self.layer3 = self._make_layer(256, layers[2], 2)
        self.layer4 = self._make_layer(512, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(512 * Bottleneck3d.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, width: int, blocks: int, stride: int) -> nn.Sequential:
        out_channels = width * Bottleneck3d.expansion
        downsample = None
        if stride != 1 or self._channels != out_channels:
            downsample = nn.Sequential(
                nn.Conv3d(self._channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm3d(out_channels))
        layers = [Bottleneck3d(self._channels, width, stride, downsample)]
        self._channels = out_channels
        layers += [Bottleneck3d(out_channels, width) for _ in range(blocks - 1)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`[T, B, C, H, W]` -> logits `[B, num_classes]` (runs on `[B, C, T, H, W]` inside); integer
        0/1 frames are converted, another layout is refused (`odg.models.layout.time_first_input`)."""
        x = tbchw_to_bcthw(time_first_input(x, self.fc.weight, "3D-CNN ResNet", self.conv1.in_channels, self.steps))
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet3d18(num_classes: int = 1000, steps: int | None = PUBLISHED_STEPS, **kw) -> ResNet3d:
    """Published 3D-CNN "ResNet-18" (28,563,432 parameters at 1000 classes)."""
    return ResNet3d([2, 2, 2, 2], num_classes, steps=steps, **kw)


def resnet3d34(num_classes: int = 1000, steps: int | None = PUBLISHED_STEPS, **kw) -> ResNet3d:
    """Published 3D-CNN "ResNet-34" (48,226,024 parameters at 1000 classes)."""
    return ResNet3d([3, 4, 6, 3], num_classes, steps=steps, **kw)
