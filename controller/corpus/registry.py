"""The corpus by name, with each network's input size, and its ONNX export at a chosen opset."""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass

OPSETS = (13, 17, 20)  # every corpus network is exported at these (LayerNormalization arrives at 17, Gelu at 20)


@dataclass(frozen=True)
class CorpusNetwork:
    name: str
    build: Callable[[], object]  # a torch nn.Module, in evaluation mode once built
    input_shapes: tuple[tuple[int, ...], ...]  # one per input, in the order the network takes them
    family: str  # cnn | transformer


def _networks() -> dict[str, CorpusNetwork]:
    from controller.corpus import cnns, darts, transformers

    image = ((1, 3, 224, 224),)
    entries = [CorpusNetwork(name, getattr(cnns, name), image, "cnn") for name in (
        "resnet50", "mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0", "regnety_400mf", "convnext_tiny",
        "shufflenet_v2", "densenet121", "squeezenet")]
    entries += [CorpusNetwork("darts_v2", darts.darts_v2, ((1, 3, 32, 32),), "cnn"),
                CorpusNetwork("vit_tiny", transformers.vit_tiny, image, "transformer"),
                CorpusNetwork("swin_tiny_stage", transformers.swin_tiny_stage, image, "transformer"),
                CorpusNetwork("mobilevit_xs", transformers.mobilevit_xs, ((1, 3, 256, 256),), "transformer"),
                CorpusNetwork("bert_base_layer", transformers.bert_base_layer, ((1, 128, 768),), "transformer"),
                CorpusNetwork("hat_encoder_decoder", transformers.hat_encoder_decoder,
                              ((1, 32, 512), (1, 16, 512)), "transformer")]
    return {entry.name: entry for entry in entries}


def names() -> list[str]:
    return list(_networks())


def network(name: str) -> CorpusNetwork:
    found = _networks()
    if name not in found:
        raise ValueError(f"no corpus network {name!r}; the corpus has: {', '.join(found)}")
    return found[name]


def build(name: str, seed: int = 0):
    """The network in evaluation mode, its weights drawn from ``seed``."""
    import torch

    torch.manual_seed(seed)
    return network(name).build().eval()


def export(name: str, opset: int, seed: int = 0) -> bytes:
    """The network exported by ``torch.onnx.export`` (TorchScript exporter) at ``opset``."""
    import torch

    if opset not in OPSETS:
        raise ValueError(f"corpus exports are made at opsets {', '.join(map(str, OPSETS))}, not {opset}")
    module, entry = build(name, seed), network(name)
    buffer = io.BytesIO()
    names = ["input"] if len(entry.input_shapes) == 1 else [f"input{k}" for k in range(len(entry.input_shapes))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation notice of the TorchScript path
        torch.onnx.export(module, tuple(torch.randn(shape) for shape in entry.input_shapes), buffer,
                          opset_version=opset, dynamo=False, input_names=names, output_names=["output"])
    return buffer.getvalue()
