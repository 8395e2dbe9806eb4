"""The corpus's convolutional networks, each as its paper defines it at ImageNet size (1000 classes).

Written here rather than taken from torchvision (whose wheel does not import beside the pinned torch), layer
for layer as the papers give them; where torchvision's reference differs from a paper (ResNet v1.5's stride
on the 3x3 conv), the docstring says which one is followed. Dropout and stochastic depth are identities in
evaluation, so they are left out.
"""

from __future__ import annotations

import torch
from torch import nn

from hwnas.controller.corpus.blocks import SqueezeExcite, conv_bn, divisible


class Bottleneck(nn.Module):
    def __init__(self, cin: int, width: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn(cin, width, 1), conv_bn(width, width, 3, stride),
                                  conv_bn(width, width * 4, 1, act=None))
        self.shortcut = conv_bn(cin, width * 4, 1, stride, act=None) if stride != 1 or cin != width * 4 \
            else nn.Identity()

    def forward(self, x):
        return torch.relu(self.body(x) + self.shortcut(x))


def resnet50() -> nn.Module:
    """ResNet-50 (He et al. 2016), v1.5: the stride of a downsampling bottleneck sits on its 3x3 conv."""
    layers: list[nn.Module] = [conv_bn(3, 64, 7, 2), nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for k in range(blocks):
            layers.append(Bottleneck(cin, width, stride if k == 0 else 1))
            cin = width * 4
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2048, 1000))


class InvertedResidual(nn.Module):
    """MobileNetV2's block, with MobileNetV3's SE and activation choices and EfficientNet's MBConv as options."""

    def __init__(self, cin: int, expanded: int, cout: int, kernel: int, stride: int,
                 act: type[nn.Module] = nn.ReLU6, se: int = 0, se_gate: type[nn.Module] = nn.Sigmoid,
                 se_act: type[nn.Module] = nn.ReLU) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_bn(cin, expanded, 1, act=act)] if expanded != cin else []
        layers.append(conv_bn(expanded, expanded, kernel, stride, groups=expanded, act=act))
        if se:
            layers.append(SqueezeExcite(expanded, se, se_act, se_gate))
        layers.append(conv_bn(expanded, cout, 1, act=None))
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)


def mobilenet_v2() -> nn.Module:
    """MobileNetV2 (Sandler et al. 2018), width 1.0: the (t, c, n, s) table of its Table 2."""
    layers: list[nn.Module] = [conv_bn(3, 32, 3, 2, act=nn.ReLU6)]
    cin = 32
    for t, c, n, s in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                       (6, 320, 1, 1)):
        for k in range(n):
            layers.append(InvertedResidual(cin, cin * t, c, 3, s if k == 0 else 1))
            cin = c
    return nn.Sequential(*layers, conv_bn(320, 1280, 1, act=nn.ReLU6), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(1280, 1000))


def mobilenet_v3_large() -> nn.Module:
    """MobileNetV3-Large (Howard et al. 2019), Table 1; SE squeezes to a quarter of the expansion (rounded to
    8) with a hard-sigmoid gate."""
    layers: list[nn.Module] = [conv_bn(3, 16, 3, 2, act=nn.Hardswish)]
    cin = 16
    # kernel, expansion, out, SE, activation (RE/HS), stride
    for k, exp, c, se, act, s in ((3, 16, 16, 0, "RE", 1), (3, 64, 24, 0, "RE", 2), (3, 72, 24, 0, "RE", 1),
                                  (5, 72, 40, 1, "RE", 2), (5, 120, 40, 1, "RE", 1), (5, 120, 40, 1, "RE", 1),
                                  (3, 240, 80, 0, "HS", 2), (3, 200, 80, 0, "HS", 1), (3, 184, 80, 0, "HS", 1),
                                  (3, 184, 80, 0, "HS", 1), (3, 480, 112, 1, "HS", 1), (3, 672, 112, 1, "HS", 1),
                                  (5, 672, 160, 1, "HS", 2), (5, 960, 160, 1, "HS", 1), (5, 960, 160, 1, "HS", 1)):
        layers.append(InvertedResidual(cin, exp, c, k, s, nn.ReLU if act == "RE" else nn.Hardswish,
                                       divisible(exp / 4) if se else 0, nn.Hardsigmoid))
        cin = c
    return nn.Sequential(*layers, conv_bn(160, 960, 1, act=nn.Hardswish), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(960, 1280), nn.Hardswish(), nn.Linear(1280, 1000))


def efficientnet_b0() -> nn.Module:
    """EfficientNet-B0 (Tan & Le 2019), Table 1: MBConv blocks with SiLU and SE squeezing to a quarter of
    the block's input channels."""
    layers: list[nn.Module] = [conv_bn(3, 32, 3, 2, act=nn.SiLU)]
    cin = 32
    for expand, k, s, c, n in ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
                               (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)):
        for j in range(n):
            layers.append(InvertedResidual(cin, cin * expand, c, k, s if j == 0 else 1, nn.SiLU,
                                           max(1, cin // 4), nn.Sigmoid, nn.SiLU))
            cin = c
    return nn.Sequential(*layers, conv_bn(320, 1280, 1, act=nn.SiLU), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(1280, 1000))


class RegNetBlock(nn.Module):
    """RegNet's Y block: 1x1, grouped 3x3 (group width 8 here), SE on the block's input width, 1x1."""

    def __init__(self, cin: int, cout: int, stride: int, group_width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn(cin, cout, 1), conv_bn(cout, cout, 3, stride, groups=cout // group_width),
                                  SqueezeExcite(cout, max(1, cin // 4)), conv_bn(cout, cout, 1, act=None))
        self.shortcut = conv_bn(cin, cout, 1, stride, act=None) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x):
        return torch.relu(self.body(x) + self.shortcut(x))


def regnety_400mf() -> nn.Module:
    """RegNetY-400MF (Radosavovic et al. 2020): depths 1, 3, 6, 6; widths 48, 104, 208, 440; group width 8."""
    layers: list[nn.Module] = [conv_bn(3, 32, 3, 2)]
    cin = 32
    for depth, width in ((1, 48), (3, 104), (6, 208), (6, 440)):
        for k in range(depth):
            layers.append(RegNetBlock(cin, width, 2 if k == 0 else 1, 8))
            cin = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(440, 1000))


class ShuffleUnit(nn.Module):
    """ShuffleNetV2's unit (Ma et al. 2018): split (stride 1) or duplicate (stride 2), two branches, concat,
    channel shuffle."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        half = cout // 2
        self.stride = stride
        if stride == 2:
            self.left = nn.Sequential(conv_bn(cin, cin, 3, 2, groups=cin, act=None), conv_bn(cin, half, 1))
        source = cin if stride == 2 else half
        self.right = nn.Sequential(conv_bn(source, half, 1), conv_bn(half, half, 3, stride, groups=half, act=None),
                                   conv_bn(half, half, 1))

    def forward(self, x):
        if self.stride == 1:
            left, right = x.chunk(2, dim=1)
            out = torch.cat([left, self.right(right)], 1)
        else:
            out = torch.cat([self.left(x), self.right(x)], 1)
        n, c, h, w = out.shape
        return out.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)


def shufflenet_v2() -> nn.Module:
    """ShuffleNetV2 1.0x: stages of 4, 8 and 4 units at 116, 232 and 464 channels, 1024 at the end."""
    layers: list[nn.Module] = [conv_bn(3, 24, 3, 2), nn.MaxPool2d(3, 2, 1)]
    cin = 24
    for repeats, cout in ((4, 116), (8, 232), (4, 464)):
        for k in range(repeats):
            layers.append(ShuffleUnit(cin, cout, 2 if k == 0 else 1))
            cin = cout
    return nn.Sequential(*layers, conv_bn(464, 1024, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(1024, 1000))


class DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, 4 * growth, 1, bias=False),
                                  nn.BatchNorm2d(4 * growth), nn.ReLU(),
                                  nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False))

    def forward(self, x):
        return torch.cat([x, self.body(x)], 1)


def densenet121() -> nn.Module:
    """DenseNet-121 (Huang et al. 2017): growth 32, blocks of 6, 12, 24, 16 BN-ReLU-conv layers (bottleneck
    4x growth), transitions halving channels and size."""
    layers: list[nn.Module] = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                               nn.MaxPool2d(3, 2, 1)]
    channels = 64
    for k, repeats in enumerate((6, 12, 24, 16)):
        for _ in range(repeats):
            layers.append(DenseLayer(channels, 32))
            channels += 32
        if k < 3:
            layers += [nn.BatchNorm2d(channels), nn.ReLU(), nn.Conv2d(channels, channels // 2, 1, bias=False),
                       nn.AvgPool2d(2, 2)]
            channels //= 2
    return nn.Sequential(*layers, nn.BatchNorm2d(channels), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(channels, 1000))


class Fire(nn.Module):
    def __init__(self, cin: int, squeeze: int, expand: int) -> None:
        super().__init__()
        self.squeeze = nn.Sequential(nn.Conv2d(cin, squeeze, 1), nn.ReLU())
        self.expand1 = nn.Sequential(nn.Conv2d(squeeze, expand, 1), nn.ReLU())
        self.expand3 = nn.Sequential(nn.Conv2d(squeeze, expand, 3, padding=1), nn.ReLU())

    def forward(self, x):
        s = self.squeeze(x)
        return torch.cat([self.expand1(s), self.expand3(s)], 1)


def squeezenet() -> nn.Module:
    """SqueezeNet 1.0 (Iandola et al. 2016), Table 1: fire modules, max pools with ceiling, a conv classifier."""
    pool = nn.MaxPool2d(3, 2, ceil_mode=True)
    return nn.Sequential(
        nn.Conv2d(3, 96, 7, 2), nn.ReLU(), pool, Fire(96, 16, 64), Fire(128, 16, 64), Fire(128, 32, 128), pool,
        Fire(256, 32, 128), Fire(256, 48, 192), Fire(384, 48, 192), Fire(384, 64, 256), pool, Fire(512, 64, 256),
        nn.Conv2d(512, 1000, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())


class ChannelsLastNorm(nn.Module):
    """LayerNorm over the channels of an NCHW map, as ConvNeXt writes it: permute, normalise, permute back."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=1e-6)

    def forward(self, x):
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ConvNeXtBlock(nn.Module):
    """Depthwise 7x7, then (channels last) LayerNorm, a 4x MLP with GELU and a learnt per-channel layer scale."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.gamma = nn.Parameter(torch.full((dim,), 1e-6))

    def forward(self, x):
        y = self.mlp(self.norm(self.dwconv(x).permute(0, 2, 3, 1)))
        return x + (self.gamma * y).permute(0, 3, 1, 2)


def convnext_tiny() -> nn.Module:
    """ConvNeXt-T (Liu et al. 2022): a 4x4 patchify stem, stages of 3, 3, 9, 3 blocks at 96 to 768 channels,
    LayerNorm + 2x2 stride-2 conv between stages, a LayerNorm'd linear head."""
    dims, depths = (96, 192, 384, 768), (3, 3, 9, 3)
    layers: list[nn.Module] = [nn.Conv2d(3, 96, 4, 4), ChannelsLastNorm(96)]
    for k, (dim, depth) in enumerate(zip(dims, depths, strict=True)):
        if k:
            layers += [ChannelsLastNorm(dims[k - 1]), nn.Conv2d(dims[k - 1], dim, 2, 2)]
        layers += [ConvNeXtBlock(dim) for _ in range(depth)]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.LayerNorm(768, eps=1e-6),
                         nn.Linear(768, 1000))
