"""Well-known networks built directly as computation graphs, looked up by name.

AutoGO evolves existing networks (ResNet-50, VGG-16, EDSR) and mines segments from them. Building them here,
layer for layer as torchvision and the EDSR paper define them, lets the controller use them without torch
or a model download; a test checks each against the ONNX import of the same network written in torch.
"""

from __future__ import annotations

from collections.abc import Callable

from hwnas.controller.graph.builder import GraphBuilder
from hwnas.controller.graph.ir import ComputationGraph


def resnet50(input_hw: int = 224, classes: int = 1000) -> ComputationGraph:
    """torchvision ResNet-50 (v1.5: the stride sits on the 3x3 conv of a bottleneck)."""
    b = GraphBuilder((1, 3, input_hw, input_hw))
    x = b.conv_bn_act(b.input, 64, 7, 2)
    x = b.pool("maxpool", x, 3, 2, 1)
    cin = 64
    for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for k in range(blocks):
            s = stride if k == 0 else 1
            y = b.conv_bn_act(x, width, 1)
            y = b.conv_bn_act(y, width, 3, s)
            y = b.conv_bn_act(y, width * 4, 1, act=None)
            shortcut = b.conv_bn_act(x, width * 4, 1, s, act=None) if s != 1 or cin != width * 4 else x
            x = b.op("relu", b.op("add", y, shortcut))
            cin = width * 4
    x = b.op("flatten", b.op("global_avgpool", x))
    return b.build(b.linear(x, classes))


def vgg16(input_hw: int = 224, classes: int = 1000, batchnorm: bool = True) -> ComputationGraph:
    """VGG-16 (with batch normalisation by default, the base AutoGO evolves) and its 3-layer classifier."""
    b = GraphBuilder((1, 3, input_hw, input_hw))
    x = b.input
    for channels, convs in ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)):
        for _ in range(convs):
            x = b.conv(x, channels, 3, bias=not batchnorm)
            x = b.op("relu", b.op("batchnorm", x) if batchnorm else x)
        x = b.pool("maxpool", x, 2, 2)
    x = b.op("flatten", x)
    x = b.op("relu", b.linear(x, 4096))
    x = b.op("relu", b.linear(x, 4096))
    return b.build(b.linear(x, classes))


def edsr(blocks: int = 16, channels: int = 64, scale: int = 2, input_hw: int = 48) -> ComputationGraph:
    """EDSR-baseline: a head conv, residual blocks without BN, a global skip, a pixel-shuffle upsampler."""
    b = GraphBuilder((1, 3, input_hw, input_hw))
    head = b.conv(b.input, channels, 3, bias=True)
    x = head
    for _ in range(blocks):
        y = b.conv(b.op("relu", b.conv(x, channels, 3, bias=True)), channels, 3, bias=True)
        x = b.op("add", x, y)
    x = b.op("add", head, b.conv(x, channels, 3, bias=True))
    x = b.pixel_shuffle(b.conv(x, channels * scale * scale, 3, bias=True), scale)
    return b.build(b.conv(x, 3, 3, bias=True))


ZOO: dict[str, Callable[..., ComputationGraph]] = {"resnet50": resnet50, "vgg16": vgg16, "edsr": edsr}


def zoo_graph(name: str, **options: int) -> ComputationGraph:
    try:
        build = ZOO[name]
    except KeyError:
        raise ValueError(f"unknown network {name!r}; the zoo has: {', '.join(sorted(ZOO))}") from None
    return build(**options)
