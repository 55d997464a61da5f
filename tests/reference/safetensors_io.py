"""Minimal safetensors reading and writing with only struct, json and torch.

The format: an 8-byte little-endian header length N, N bytes of UTF-8 JSON
({"__metadata__": {...}, name: {"dtype", "shape", "data_offsets"}}), then the
data section, with offsets relative to its start. Only the dtypes the runtime
stores (F32, BF16, F16) are handled.
"""

import json
import struct

import numpy as np
import torch

_TORCH_DTYPES = {
    "F32": torch.float32,
    "BF16": torch.bfloat16,
    "F16": torch.float16,
}
_NAMES = {v: k for k, v in _TORCH_DTYPES.items()}
# numpy has no bfloat16, so 16-bit data moves through int16 and is
# reinterpreted by torch.
_STORAGE = {"F32": np.float32, "BF16": np.int16, "F16": np.float16}


_LITTLE_ENDIAN = {"F32": "<f4", "BF16": "<i2", "F16": "<f2"}


def _to_bytes(tensor):
    tensor = tensor.detach().contiguous().cpu()
    name = _NAMES[tensor.dtype]
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.view(torch.int16)
    return tensor.numpy().astype(_LITTLE_ENDIAN[name]).tobytes()


def write_safetensors(path, tensors, metadata=None):
    """Writes {name: tensor} in the order given (F32/BF16/F16 tensors)."""
    header = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    blobs = []
    offset = 0
    for name, tensor in tensors.items():
        if tensor.dtype not in _NAMES:
            raise ValueError(f"{name}: unsupported dtype {tensor.dtype}")
        blob = _to_bytes(tensor)
        header[name] = {
            "dtype": _NAMES[tensor.dtype],
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + len(blob)],
        }
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    # Pad with spaces so the data section starts 8-byte aligned.
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def read_safetensors(path):
    """Returns ({name: tensor in its stored dtype}, metadata dict)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise ValueError(f"{path}: header length {n} past end of file")
    header = json.loads(data[8 : 8 + n].decode("utf-8"))
    metadata = header.pop("__metadata__", {}) or {}
    body = data[8 + n :]
    tensors = {}
    for name, entry in header.items():
        dtype = entry["dtype"]
        if dtype not in _TORCH_DTYPES:
            raise ValueError(f"{path}: tensor {name}: unsupported dtype {dtype}")
        begin, end = entry["data_offsets"]
        if not 0 <= begin <= end <= len(body):
            raise ValueError(f"{path}: tensor {name}: offsets outside data")
        array = np.frombuffer(body[begin:end], dtype=_LITTLE_ENDIAN[dtype])
        tensor = torch.from_numpy(array.astype(_STORAGE[dtype]))
        if dtype == "BF16":
            tensor = tensor.view(torch.bfloat16)
        shape = entry["shape"]
        if tensor.numel() != int(np.prod(shape, dtype=np.int64)):
            raise ValueError(f"{path}: tensor {name}: shape/offset mismatch")
        tensors[name] = tensor.reshape(shape)
    return tensors, metadata
