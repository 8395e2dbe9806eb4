"""Read a TFLite model's inputs and outputs straight from its FlatBuffer bytes.

A vendor tool's output check (``hwnas.device_agent.tools.check_io``) must write the check's inputs as the files
``benchmark_model`` loads and cut the raw bytes it writes back into outputs, so it needs each input's and
output's name, shape and element type. The agent host driving a phone or a board need not have LiteRT
installed; reading the few tables of the schema (tensorflow/lite/schema/schema.fbs) keeps it light.

FlatBuffers in brief: the file starts with the root table's offset (uoffset_t, little-endian u32). A
table starts with a signed offset back to its vtable, whose u16 entries give each field's offset inside
the table (0: absent, the schema's default). Offsets to tables, vectors and strings are relative to where
they are stored. The interpreter runs the first signature's subgraph (subgraph 0 without signatures), and
its inputs and outputs come in the subgraph's order.
"""

from __future__ import annotations

import struct

from hwnas.device_agent.errors import InvalidInput
from hwnas.device_agent.tensors import InputSpec

IDENTIFIER = b"TFL3"
# Model: subgraphs = 2, signature_defs = 7. SubGraph: tensors = 0, inputs = 1, outputs = 2.
# Tensor: shape = 0, type = 1, name = 3, shape_signature = 7. SignatureDef: subgraph_index = 4.
_MODEL_SUBGRAPHS, _MODEL_SIGNATURES = 2, 7
_SUBGRAPH_TENSORS, _SUBGRAPH_INPUTS, _SUBGRAPH_OUTPUTS = 0, 1, 2
_TENSOR_SHAPE, _TENSOR_TYPE, _TENSOR_NAME, _TENSOR_SIGNATURE = 0, 1, 3, 7
_SIGNATURE_SUBGRAPH = 4
# TensorType -> numpy dtype name.
TENSOR_TYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string", 6: "bool", 7: "int16",
                8: "complex64", 9: "int8", 10: "float64", 11: "complex128", 12: "uint64", 15: "uint32", 16: "uint16",
                17: "int4", 18: "bfloat16"}


class _Buffer:
    """Bounds-checked reads of FlatBuffer tables, vectors and strings: a truncated or hostile file is an
    InvalidInput, never an IndexError or a read past the end."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def _unpack(self, fmt: str, pos: int) -> int:
        if pos < 0 or pos + struct.calcsize(fmt) > len(self.data):
            raise InvalidInput("model bytes are not a TFLite model: an offset points past the end")
        return struct.unpack_from(fmt, self.data, pos)[0]

    def deref(self, pos: int) -> int:
        return pos + self._unpack("<I", pos)

    def field(self, table: int, index: int) -> int | None:
        """Where field ``index`` of the table at ``table`` is stored, or None where it is absent."""
        vtable = table - self._unpack("<i", table)
        size = self._unpack("<H", vtable)
        slot = 4 + 2 * index
        offset = self._unpack("<H", vtable + slot) if slot < size else 0
        return table + offset if offset else None

    def scalar(self, table: int, index: int, fmt: str, default: int) -> int:
        pos = self.field(table, index)
        return default if pos is None else self._unpack(fmt, pos)

    def vector(self, table: int, index: int) -> tuple[int, int]:
        """(start of the elements, their count) of a vector field; (0, 0) where absent."""
        pos = self.field(table, index)
        if pos is None:
            return 0, 0
        start = self.deref(pos)
        count = self._unpack("<I", start)
        if count > len(self.data):
            raise InvalidInput("model bytes are not a TFLite model: a vector is longer than the file")
        return start + 4, count

    def ints(self, table: int, index: int) -> list[int]:
        start, count = self.vector(table, index)
        return [self._unpack("<i", start + 4 * k) for k in range(count)]

    def tables(self, table: int, index: int) -> list[int]:
        start, count = self.vector(table, index)
        return [self.deref(start + 4 * k) for k in range(count)]

    def string(self, table: int, index: int) -> str:
        pos = self.field(table, index)
        if pos is None:
            return ""
        start = self.deref(pos)
        size = self._unpack("<I", start)
        if start + 4 + size > len(self.data):
            raise InvalidInput("model bytes are not a TFLite model: a string runs past the end")
        return self.data[start + 4:start + 4 + size].decode("utf-8", "replace")


def _tensor(buf: _Buffer, tensor: int) -> InputSpec:
    """A tensor's name, shape (a -1 of its shape signature, a dynamic dim, is None) and dtype."""
    shape = buf.ints(tensor, _TENSOR_SHAPE)
    signature = buf.ints(tensor, _TENSOR_SIGNATURE)
    if len(signature) == len(shape):
        dims = tuple(None if s < 0 else d for d, s in zip(shape, signature, strict=True))
    else:
        dims = tuple(d if d > 0 else None for d in shape)
    kind = buf.scalar(tensor, _TENSOR_TYPE, "<b", 0)
    return InputSpec(buf.string(tensor, _TENSOR_NAME), dims, TENSOR_TYPES.get(kind, f"tflite-type-{kind}"))


def model_io(data: bytes) -> tuple[list[InputSpec], list[InputSpec]]:
    """The inputs and outputs of the subgraph the interpreter runs, in its order."""
    if len(data) < 8 or data[4:8] != IDENTIFIER:
        raise InvalidInput("model bytes are not a TFLite model: no 'TFL3' file identifier")
    buf = _Buffer(data)
    model = buf.deref(0)
    subgraphs = buf.tables(model, _MODEL_SUBGRAPHS)
    signatures = buf.tables(model, _MODEL_SIGNATURES)
    index = buf.scalar(signatures[0], _SIGNATURE_SUBGRAPH, "<I", 0) if signatures else 0
    if not 0 <= index < len(subgraphs):
        raise InvalidInput(f"model bytes are not a TFLite model: subgraph {index} of {len(subgraphs)}")
    subgraph = subgraphs[index]
    tensors = buf.tables(subgraph, _SUBGRAPH_TENSORS)

    def specs(field: int) -> list[InputSpec]:
        found = []
        for k in buf.ints(subgraph, field):
            if not 0 <= k < len(tensors):
                raise InvalidInput(f"model bytes are not a TFLite model: tensor {k} of {len(tensors)}")
            found.append(_tensor(buf, tensors[k]))
        return found

    return specs(_SUBGRAPH_INPUTS), specs(_SUBGRAPH_OUTPUTS)
