"""Read an ONNX model's ``metadata_props`` straight from its protobuf bytes.

The replay backend needs only the few key/value strings the controller writes into every model it exports
(``hwnas.space``, ``hwnas.arch``, ``hwnas.arch_id``). Reading them from the wire format keeps the agent
free of the ``onnx`` package and avoids building an inference session just to look at a label.
ModelProto field 14 is ``repeated StringStringEntryProto metadata_props`` (key = 1, value = 2); every
other field is skipped by its wire type.
"""

from __future__ import annotations

from device_agent.errors import InvalidInput

_METADATA_PROPS = 14
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
