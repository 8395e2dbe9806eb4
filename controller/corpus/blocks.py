"""Building blocks several corpus networks share (conv-BN-activation, squeeze-and-excitation)."""

from __future__ import annotations

from torch import nn


def divisible(value: float, divisor: int = 8) -> int:
    """Channels rounded to a multiple of ``divisor``, never below 90 % of ``value`` (MobileNet's rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1,
            act: type[nn.Module] | None = nn.ReLU, dilation: int = 1) -> nn.Sequential:
    """A bias-free convolution padded to keep the size at stride 1, its batch norm and an activation."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, dilation * (kernel - 1) // 2, dilation, groups,
                                         bias=False), nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu et al.): global pool, a reducing and an expanding 1x1 conv, a gate."""

    def __init__(self, channels: int, squeezed: int, act: type[nn.Module] = nn.ReLU,
                 gate: type[nn.Module] = nn.Sigmoid) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, squeezed, 1)
        self.act = act()
        self.expand = nn.Conv2d(squeezed, channels, 1)
        self.gate = gate()

    def forward(self, x):
        return x * self.gate(self.expand(self.act(self.reduce(self.pool(x)))))
