"""Read the metadata that ``snnzoo export`` writes into an ONNX file — without torch.

The keys and their meaning are documented in ``snnzoo/export/metadata.py``. Values are strings;
those in :data:`JSON_KEYS` hold JSON and :data:`INT_KEYS` integers, and :func:`read_metadata`
decodes them. For a file path the ``metadata_props`` are found by walking the protobuf wire
format of ``ModelProto`` and seeking past the graph, so reading the metadata of a 200 MB model
takes milliseconds and needs neither ``onnx`` nor a session.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, BinaryIO

JSON_KEYS = frozenset({"classes", "input_shape", "sensor_size", "binning", "normalization", "output",
                       "neuron", "weights", "state"})
INT_KEYS = frozenset({"time_steps", "num_classes"})
BOOL_KEYS = frozenset({"streaming"})

_GRAPH, _METADATA_PROPS = 7, 14  # ModelProto field numbers (onnx.proto3)
_KEY, _VALUE = 1, 2  # StringStringEntryProto


def read_metadata(source: str | Path | Any) -> dict[str, Any]:
    """Decoded ``metadata_props`` of an ONNX file path or an ``onnxruntime.InferenceSession``."""
    if hasattr(source, "get_modelmeta"):
        raw = dict(source.get_modelmeta().custom_metadata_map)
    else:
        with open(source, "rb") as f:
            try:
                raw = _scan_metadata_props(f, Path(source))
            except (IndexError, UnicodeDecodeError) as e:
                raise ValueError(f"{source}: not an ONNX model ({e})") from None
    return decode_metadata(raw)


def decode_metadata(raw: dict[str, str]) -> dict[str, Any]:
    """Turn the raw string values into JSON values, ints and bools where the key says so."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key in JSON_KEYS:
            out[key] = json.loads(value)
        elif key in INT_KEYS:
            out[key] = int(value)
        elif key in BOOL_KEYS:
            out[key] = value == "true"
        else:
            out[key] = value
    return out


def initializers_sha256(model: Any) -> str:
    """sha256 of an ``onnx.ModelProto``'s weights: over its initializers sorted by name, each
    contributing ``b"{name}:{dtype}:{shape}\\n"`` then its little-endian C-order bytes."""
    from onnx import numpy_helper  # only needed here; read_metadata works without onnx

    digest = hashlib.sha256()
    for tensor in sorted(model.graph.initializer, key=lambda t: t.name):
        arr = numpy_helper.to_array(tensor)
        arr = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
        digest.update(f"{tensor.name}:{arr.dtype.str}:{list(arr.shape)}\n".encode())
        digest.update(arr.tobytes(order="C"))
    return digest.hexdigest()


def _varint(f: BinaryIO) -> int | None:
    shift = result = 0
    while True:
        b = f.read(1)
        if not b:
            return None
        result |= (b[0] & 0x7F) << shift
        if not b[0] & 0x80:
            return result
        shift += 7


def _scan_metadata_props(f: BinaryIO, path: Path) -> dict[str, str]:
    """Top-level fields of a serialized ``ModelProto``; only ``metadata_props`` is decoded."""
    props: dict[str, str] = {}
    size, has_graph = os.fstat(f.fileno()).st_size, False
    while (tag := _varint(f)) is not None:
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            _varint(f)
        elif wire == 1:
            f.seek(8, 1)
        elif wire == 5:
            f.seek(4, 1)
        elif wire == 2:
            length = _varint(f)
            if length is None:
                raise ValueError(f"{path}: truncated ONNX file")
            if field == _METADATA_PROPS:
                key, value = _entry(f.read(length))
                props[key] = value
            else:
                has_graph |= field == _GRAPH
                f.seek(length, 1)
        else:
            raise ValueError(f"{path}: not an ONNX model (protobuf wire type {wire})")
        if f.tell() > size:
            raise ValueError(f"{path}: truncated ONNX file")
    if not has_graph:
        raise ValueError(f"{path}: not an ONNX model (no graph)")
    return props


def _entry(buf: bytes) -> tuple[str, str]:
    fields: dict[int, str] = {}
    i = 0
    while i < len(buf):
        tag, i = _buf_varint(buf, i)
        length, i = _buf_varint(buf, i)
        fields[tag >> 3] = buf[i:i + length].decode("utf-8")
        i += length
    return fields.get(_KEY, ""), fields.get(_VALUE, "")


def _buf_varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7
