"""Reference networks in plain torch, layer for layer as torchvision and the SR papers define them.

PyPI's torchvision does not import beside this project's torch build, so the tests define the
architectures here (random weights; the tests care about structure, shapes and counts). ResNet-50 and
MobileNetV3-Large are the reference corpus's (``hwnas.controller.corpus``).
"""

from __future__ import annotations

import io

import torch
from torch import nn

from hwnas.controller.corpus.cnns import mobilenet_v3_large, resnet50

__all__ = ["EDSR", "FSRCNN", "export_onnx", "mobilenet_v3_large", "resnet50", "vgg16"]


def export_onnx(model: nn.Module, shape: tuple[int, ...], dynamic_batch: bool = False) -> bytes:
    """Legacy (TorchScript) exporter; constant folding off so BatchNorm nodes survive as themselves."""
    buffer = io.BytesIO()
    dynamic = {"x": {0: "batch"}, "y": {0: "batch"}} if dynamic_batch else None
    torch.onnx.export(model.eval(), torch.randn(*shape), buffer, dynamo=False, opset_version=17,
                      do_constant_folding=False, input_names=["x"], output_names=["y"], dynamic_axes=dynamic)
    return buffer.getvalue()


def vgg16(classes: int = 1000) -> nn.Module:
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    layers: list[nn.Module] = []
    cin = 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU()]
            cin = v
    layers += [nn.AdaptiveAvgPool2d((7, 7)), nn.Flatten(), nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(),
               nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(), nn.Linear(4096, classes)]
    return nn.Sequential(*layers)


class EDSRResBlock(nn.Module):
    def __init__(self, channels: int, res_scale: float = 1.0) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(channels, channels, 3, padding=1))

    def forward(self, x):
        return x + self.body(x)


class EDSR(nn.Module):
    """EDSR-baseline style: head conv, residual blocks without BN, global skip, pixel-shuffle upsampler."""

    def __init__(self, blocks: int = 4, channels: int = 32, scale: int = 2) -> None:
        super().__init__()
        self.head = nn.Conv2d(3, channels, 3, padding=1)
        self.body = nn.Sequential(*[EDSRResBlock(channels) for _ in range(blocks)],
                                  nn.Conv2d(channels, channels, 3, padding=1))
        self.tail = nn.Sequential(nn.Conv2d(channels, channels * scale * scale, 3, padding=1),
                                  nn.PixelShuffle(scale), nn.Conv2d(channels, 3, 3, padding=1))

    def forward(self, x):
        x = self.head(x)
        return self.tail(x + self.body(x))


class FSRCNN(nn.Module):
    """FSRCNN(d, s, m): feature extraction, shrinking, m mappings, expanding (PReLU), deconvolution."""

    def __init__(self, scale: int = 3, d: int = 56, s: int = 12, m: int = 4) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(1, d, 5, padding=2), nn.PReLU(d), nn.Conv2d(d, s, 1), nn.PReLU(s)]
        for _ in range(m):
            layers += [nn.Conv2d(s, s, 3, padding=1), nn.PReLU(s)]
        layers += [nn.Conv2d(s, d, 1), nn.PReLU(d),
                   nn.ConvTranspose2d(d, 1, 9, stride=scale, padding=4, output_padding=scale - 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)
