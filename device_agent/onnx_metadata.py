"""Read an ONNX model's ``metadata_props`` and its graph's inputs and outputs straight from its protobuf bytes.

The replay backend needs only the few key/value strings the controller writes into every model it exports
(``hwnas.space``, ``hwnas.arch``, ``hwnas.arch_id``); a vendor tool's output check needs the names, shapes
and element types of the graph's inputs and outputs. Reading them from the wire format keeps the agent
free of the ``onnx`` package and avoids building an inference session just to look at a label.
ModelProto field 14 is ``repeated StringStringEntryProto metadata_props`` (key = 1, value = 2) and field 7
its ``GraphProto`` (initializer = 5, input = 11, output = 12); every other field is skipped by its wire type.
"""

from __future__ import annotations

from hwnas.device_agent.errors import InvalidInput
from hwnas.device_agent.tensors import InputSpec

_METADATA_PROPS = 14
_GRAPH, _INITIALIZER, _INPUT, _OUTPUT = 7, 5, 11, 12
# TensorProto.DataType -> numpy dtype name, for the types a model's inputs and outputs have in practice.
_ELEM_TYPES = {1: "float32", 2: "uint8", 3: "int8", 5: "int16", 6: "int32", 7: "int64", 9: "bool", 10: "float16",
               11: "float64", 12: "uint32", 13: "uint64", 16: "bfloat16"}
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(data) or shift > 63:
            raise InvalidInput("model bytes are not an ONNX model: truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(data: memoryview):
    """(field number, wire type, value) of one message level; LEN values are memoryviews."""
    pos = 0
    while pos < len(data):
        tag, pos = _varint(data, pos)
        number, wire = tag >> 3, tag & 7
        if wire == _VARINT:
            value, pos = _varint(data, pos)
        elif wire == _LEN:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise InvalidInput("model bytes are not an ONNX model: a field runs past the end")
            value, pos = data[pos:pos + size], pos + size
        elif wire in (_I64, _I32):
            width = 8 if wire == _I64 else 4
            value, pos = data[pos:pos + width], pos + width
        else:
            raise InvalidInput(f"model bytes are not an ONNX model: unexpected wire type {wire}")
        yield number, wire, value


def metadata_props(data: bytes) -> dict[str, str]:
    """The model's metadata as a dict; InvalidInput when the bytes are not a protobuf message."""
    props: dict[str, str] = {}
    for number, wire, value in _fields(memoryview(data)):
        if number != _METADATA_PROPS or wire != _LEN:
            continue
        entry = {n: bytes(v).decode("utf-8", "replace") for n, w, v in _fields(value) if w == _LEN}
        props[entry.get(1, "")] = entry.get(2, "")
    return props


def _value_info(data: memoryview) -> InputSpec:
    """A ValueInfoProto (name = 1, type = 2 -> tensor_type = 1 -> elem_type = 1, shape = 2 -> dim = 1 ->
    dim_value = 1 | dim_param = 2) as an InputSpec; a symbolic or missing dim is None."""
    name, elem, dims = "", 0, []
    for number, wire, value in _fields(data):
        if number == 1 and wire == _LEN:
            name = bytes(value).decode("utf-8", "replace")
        elif number == 2 and wire == _LEN:
            for n, w, tensor in _fields(value):
                if n != 1 or w != _LEN:
                    continue
                for f, fw, part in _fields(tensor):
                    if f == 1 and fw == _VARINT:
                        elem = part
                    elif f == 2 and fw == _LEN:
                        for d, dw, dim in _fields(part):
                            if d == 1 and dw == _LEN:
                                fixed = [v for k, kw, v in _fields(dim) if k == 1 and kw == _VARINT]
                                dims.append(fixed[0] if fixed and fixed[0] > 0 else None)
    return InputSpec(name, tuple(dims), _ELEM_TYPES.get(elem, f"onnx-type-{elem}"))


def graph_io(data: bytes) -> tuple[list[InputSpec], list[InputSpec]]:
    """The graph's inputs (initializers left out: old exporters list weights as inputs) and outputs, in order."""
    inputs, outputs, initializers = [], [], set()
    for number, wire, graph in _fields(memoryview(data)):
        if number != _GRAPH or wire != _LEN:
            continue
        for field, kind, value in _fields(graph):
            if kind != _LEN:
                continue
            if field == _INPUT:
                inputs.append(_value_info(value))
            elif field == _OUTPUT:
                outputs.append(_value_info(value))
            elif field == _INITIALIZER:
                initializers.update(bytes(v).decode("utf-8", "replace") for n, w, v in _fields(value)
                                    if n == 8 and w == _LEN)
    if not outputs:
        raise InvalidInput("model bytes are not an ONNX model: its graph has no outputs")
    return [spec for spec in inputs if spec.name not in initializers], outputs
