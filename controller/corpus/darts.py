"""A DARTS network (Liu et al. 2019): the CIFAR-10 evaluation network of the DARTS (second order) genotype.

Twenty cells of 36 initial channels; the cells at a third and two thirds of the depth are reduction cells.
A cell preprocesses its two inputs (a FactorizedReduce after a reduction cell: two stride-2 1x1 convs, one
on the input shifted by a pixel, concatenated), builds four nodes each summing two ops of the genotype and
concatenates them. The auxiliary head and drop path only act in training, so they are left out.
"""

from __future__ import annotations

import torch
from torch import nn

# DARTS_V2 of the paper's code: (op, input state) pairs, two per intermediate node; all four nodes concatenated.
NORMAL = (("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 1),
          ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2))
REDUCE = (("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1), ("max_pool_3x3", 0),
          ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1))


def relu_conv_bn(cin: int, cout: int) -> nn.Sequential:
    """A cell's preprocessing of an input: ReLU, 1x1 conv, batch norm."""
    return nn.Sequential(nn.ReLU(), nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))


class FactorizedReduce(nn.Module):
    """Halve the size without losing every other pixel: two stride-2 1x1 convs, the second on the input
    shifted by one pixel (a slice of the spatial axes), concatenated."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.relu = nn.ReLU()
        self.conv_1 = nn.Conv2d(cin, cout // 2, 1, 2, bias=False)
        self.conv_2 = nn.Conv2d(cin, cout // 2, 1, 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], 1))


def operation(name: str, channels: int, stride: int) -> nn.Module:
    c = channels
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, stride, 1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride, 1, count_include_pad=False)
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c)
    if name == "sep_conv_3x3":  # a separable conv, twice
        return nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, 3, stride, 1, groups=c, bias=False),
                             nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c),
                             nn.ReLU(), nn.Conv2d(c, c, 3, 1, 1, groups=c, bias=False),
                             nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c))
    if name == "dil_conv_3x3":
        return nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, 3, stride, 2, 2, groups=c, bias=False),
                             nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c))
    raise ValueError(f"unknown DARTS op {name!r}")


class Cell(nn.Module):
    def __init__(self, genotype, c_prev_prev: int, c_prev: int, c: int, reduction: bool,
                 reduction_prev: bool) -> None:
        super().__init__()
        self.pre0 = FactorizedReduce(c_prev_prev, c) if reduction_prev else relu_conv_bn(c_prev_prev, c)
        self.pre1 = relu_conv_bn(c_prev, c)
        self.ops = nn.ModuleList(operation(name, c, 2 if reduction and state < 2 else 1) for name, state in genotype)
        self.states = [state for _, state in genotype]

    def forward(self, s0, s1):
        states = [self.pre0(s0), self.pre1(s1)]
        for k in range(4):
            states.append(self.ops[2 * k](states[self.states[2 * k]]) +
                          self.ops[2 * k + 1](states[self.states[2 * k + 1]]))
        return torch.cat(states[2:], 1)


class DartsNetwork(nn.Module):
    def __init__(self, channels: int = 36, cells: int = 20, classes: int = 10) -> None:
        super().__init__()
        stem = 3 * channels
        self.stem = nn.Sequential(nn.Conv2d(3, stem, 3, padding=1, bias=False), nn.BatchNorm2d(stem))
        c_prev_prev, c_prev, c = stem, stem, channels
        self.cells = nn.ModuleList()
        reduction_prev = False
        for k in range(cells):
            reduction = k in (cells // 3, 2 * cells // 3)
            c = c * 2 if reduction else c
            self.cells.append(Cell(REDUCE if reduction else NORMAL, c_prev_prev, c_prev, c, reduction,
                                   reduction_prev))
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, 4 * c
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, classes)

    def forward(self, x):
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(self.pool(s1).flatten(1))


def darts_v2() -> nn.Module:
    """The DARTS (second order) CIFAR-10 network: 36 channels, 20 cells, 3.3 M parameters (Table 1)."""
    return DartsNetwork()
