"""The published 2D-CNN baseline: a torchvision-layout ResNet on 1-channel Edge-Integral images.

Input `[B, 1, 224, 224]`, output logits `[B, num_classes]`. Module names are torchvision's, so the
published state_dict loads unchanged.
"""
from __future__ import annotations

import torch
from torch import nn

from .layout import float_input


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """conv3x3 -> BN -> ReLU -> conv3x3 -> BN, plus the (downsampled) input, -> ReLU."""

    expansion = 1

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1,
                 downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet2d(nn.Module):
    """ResNet with basic blocks: 7x7/2 stem (no bias) -> BN -> ReLU -> 3x3/2 max-pool, four stages,
    global average pool, fc 512 -> num_classes. Input `[B, in_channels, H, W]`, float."""

    # the published keys are this model's keys (see `odg.models.load_published`)
    PUBLISHED_TO_OURS: tuple = ()
    OURS_TO_PUBLISHED: tuple = ()

    def __init__(self, layers: list[int], num_classes: int = 1000, in_channels: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self._channels = 64
        self.layer1 = self._make_layer(64, layers[0], 1)
        self.layer2 = self._make_layer(128, layers[1], 2)
        self.layer3 = self._make_layer(256, layers[2], 2)
        self.layer4 = self._make_layer(512, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, width: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self._channels != width:
            downsample = nn.Sequential(
                nn.Conv2d(self._channels, width, 1, stride=stride, bias=False), nn.BatchNorm2d(width))
        layers = [BasicBlock(self._channels, width, stride, downsample)]
        self._channels = width
        layers += [BasicBlock(width, width) for _ in range(blocks - 1)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`[B, C, H, W]` -> logits `[B, num_classes]` (an integer image is converted to float)."""
        channels = self.conv1.in_channels
        if x.dim() != 4 or x.shape[1] != channels:
            raise ValueError(f"2D-CNN ResNet takes images [B, {channels}, H, W], got shape {tuple(x.shape)}")
        x = float_input(x, self.fc.weight)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet2d18(num_classes: int = 1000, **kw) -> ResNet2d:
    """Published 2D-CNN ResNet-18 on Edge-Integral images (11,683,240 parameters at 1000 classes)."""
    return ResNet2d([2, 2, 2, 2], num_classes, **kw)


def resnet2d34(num_classes: int = 1000, **kw) -> ResNet2d:
    """Published 2D-CNN ResNet-34 on Edge-Integral images (21,791,400 parameters at 1000 classes)."""
    return ResNet2d([3, 4, 6, 3], num_classes, **kw)
