"""The corpus by name, with each network's input size, and its ONNX export at a chosen opset."""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass

OPSETS = (13, 17, 20)  # every corpus network is exported at these (LayerNormalization arrives at 17, Gelu at 20)
# torch's two exporters: TorchScript (``dynamo=False``, any opset) and dynamo (``torch.export``, torch's default
# since 2.9, which needs onnxscript and writes opset 18 and later natively: the corpus takes it at 20)
EXPORTERS = ("torchscript", "dynamo")
DYNAMO_OPSET = 20


@dataclass(frozen=True)
class CorpusNetwork:
    name: str
    build: Callable[[], object]  # a torch nn.Module, in evaluation mode once built
    input_shapes: tuple[tuple[int, ...], ...]  # one per input, in the order the network takes them
    family: str  # cnn | transformer


def _networks() -> dict[str, CorpusNetwork]:
    from hwnas.controller.corpus import cnns, darts, timm_layout, transformers

    image = ((1, 3, 224, 224),)
    entries = [CorpusNetwork(name, getattr(cnns, name), image, "cnn") for name in (
        "resnet50", "mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0", "regnety_400mf", "convnext_tiny",
        "shufflenet_v2", "densenet121", "squeezenet")]
    entries += [CorpusNetwork("darts_v2", darts.darts_v2, ((1, 3, 32, 32),), "cnn"),
                CorpusNetwork("vit_tiny", transformers.vit_tiny, image, "transformer"),
                CorpusNetwork("swin_tiny_stage", transformers.swin_tiny_stage, image, "transformer"),
                CorpusNetwork("mobilevit_xs", transformers.mobilevit_xs, ((1, 3, 256, 256),), "transformer"),
                # the same two as timm lays them out: windows and patch positions folded into the batch axis
                CorpusNetwork("swin_tiny_stage_timm", timm_layout.swin_tiny_stage_timm, image, "transformer"),
                CorpusNetwork("mobilevit_xs_timm", timm_layout.mobilevit_xs_timm, ((1, 3, 256, 256),),
                              "transformer"),
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
    """The network in evaluation mode, its weights drawn from ``seed``, normalisation layers included.

    A freshly initialised BatchNorm has mean 0, variance 1, scale 1 and shift 0, so the conv it follows gets a
    bias of zeros when an exporter folds it in, and the dynamo exporter's optimiser then drops that bias: the
    same network would import to a CG without conv biases. Trained networks have statistics of their own;
    so do these.
    """
    import torch
    from torch import nn

    torch.manual_seed(seed)
    model = network(name).build()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.normal_(0.0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
            if isinstance(module, (nn.BatchNorm2d, nn.LayerNorm)) and module.weight is not None:
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.1)
    return model.eval()


def export(name: str, opset: int, seed: int = 0, exporter: str = "torchscript") -> bytes:
    """The network exported by ``torch.onnx.export`` at ``opset``, by the TorchScript or the dynamo exporter."""
    import torch

    if exporter not in EXPORTERS:
        raise ValueError(f"exporter must be one of {', '.join(EXPORTERS)}, not {exporter!r}")
    if opset not in OPSETS or (exporter == "dynamo" and opset != DYNAMO_OPSET):
        allowed = [DYNAMO_OPSET] if exporter == "dynamo" else OPSETS
        raise ValueError(f"corpus exports by {exporter} are made at opsets {', '.join(map(str, allowed))}, not {opset}")
    module, entry = build(name, seed), network(name)
    inputs = tuple(torch.randn(shape) for shape in entry.input_shapes)
    names = ["input"] if len(entry.input_shapes) == 1 else [f"input{k}" for k in range(len(entry.input_shapes))]
    if exporter == "dynamo":
        return _dynamo_export(module, inputs, names, opset)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation notice of the TorchScript path
        torch.onnx.export(module, inputs, buffer, opset_version=opset, dynamo=False, input_names=names,
                          output_names=["output"])
    return buffer.getvalue()


def _dynamo_export(module, inputs: tuple, names: list[str], opset: int) -> bytes:
    import torch

    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)  # one line per torchvision op it skips, and its progress lines
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(module, inputs, dynamo=True, opset_version=opset, input_names=names,
                                        output_names=["output"], verbose=False)
    finally:
        exporter_log.setLevel(level)
    return program.model_proto.SerializeToString()
