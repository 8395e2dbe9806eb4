"""What a user hands ``Lab.profile`` as a model, made into what the evaluator measures (``ModelFile``).

A ``torch.nn.Module`` (exported to ONNX with the ``input_shape`` given), an ``onnx.ModelProto``, the bytes
or path of an ``.onnx`` or ``.tflite`` file, or an hwnas computation graph. torch and onnx are only looked
at when the caller already imported them: profiling a file never loads them.
"""

from __future__ import annotations

import hashlib
import io
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwnas.controller.errors import UserError

if TYPE_CHECKING:
    from hwnas.controller.spaces import ModelFile

ACCEPTED = ("a torch.nn.Module (with input_shape), an onnx.ModelProto, bytes of an ONNX or TFLite model, the path "
            "of a .onnx or .tflite file, or an hwnas ComputationGraph")
TFLITE_MAGIC = b"TFL3"  # a TFLite flatbuffer's file identifier, at bytes 4-8


def bytes_format(data: bytes) -> str:
    """"tflite" for a TFLite flatbuffer, else "onnx" (the agent checks the bytes parse as what they claim)."""
    return "tflite" if data[4:8] == TFLITE_MAGIC else "onnx"


def as_model_file(model: Any, input_shape: Sequence[int] | None = None, name: str | None = None) -> ModelFile:
    """``model`` as the bytes an agent runs; ``UserError`` naming ``model`` when it is none of ``ACCEPTED``."""
    from hwnas.controller.spaces import ModelFile

    if isinstance(model, (str, Path)):
        return _file(Path(model), name)
    if isinstance(model, (bytes, bytearray, memoryview)):
        data = bytes(model)
        if not data:
            raise UserError("model", "is empty bytes; give the bytes of an ONNX or TFLite model")
        return ModelFile(name or f"model-{hashlib.sha256(data).hexdigest()[:12]}", data, bytes_format(data))
    from hwnas.controller.graph.ir import ComputationGraph

    if isinstance(model, ComputationGraph):
        from hwnas.controller.graph.onnx_export import to_onnx_bytes

        data = to_onnx_bytes(model)
        return ModelFile(name or f"cg-{model.arch_id[:12]}", data, "onnx")
    onnx = sys.modules.get("onnx")
    if onnx is not None and isinstance(model, onnx.ModelProto):
        return ModelFile(name or (model.graph.name or "onnx-model"), model.SerializeToString(), "onnx")
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(model, torch.nn.Module):
        return ModelFile(name or type(model).__name__, _torch_onnx(torch, model, input_shape), "onnx")
    raise UserError("model", f"is a {type(model).__module__}.{type(model).__qualname__}; give {ACCEPTED}")


def _file(path: Path, name: str | None) -> ModelFile:
    from hwnas.controller.fleet.profile import file_format
    from hwnas.controller.spaces import ModelFile

    if path.suffix not in (".onnx", ".tflite"):
        raise UserError("model", f"{path}: name a .onnx or .tflite file (or pass the model's bytes)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError("model", f"{path}: cannot read it ({exc.strerror or exc})") from None
    if not data:
        raise UserError("model", f"{path}: the file is empty")
    return ModelFile(name or path.name, data, file_format(path))


def _torch_onnx(torch: Any, module: Any, input_shape: Sequence[int] | None) -> bytes:
    """The module in eval mode, traced on a zero input of ``input_shape`` (TorchScript-based export: no extra
    package); a module that cannot be exported is the caller's to fix, so it is a ``UserError``."""
    if not input_shape:
        raise UserError("input_shape", "is needed for a torch.nn.Module, e.g. input_shape=(1, 3, 224, 224)")
    shape = tuple(input_shape)
    buffer = io.BytesIO()
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter is chosen on purpose
            torch.onnx.export(module, (torch.zeros(shape),), buffer, dynamo=False, input_names=["input"])
    except Exception as exc:  # torch raises many types here; the message is what helps
        raise UserError("model", f"torch could not export it to ONNX with input_shape={shape}: {exc}") from exc
    finally:
        module.train(was_training)
    return buffer.getvalue()
