"""Reader for the IDX format used by MNIST and Fashion-MNIST (optionally gzip-compressed).

Format (LeCun et al., http://yann.lecun.com/exdb/mnist/): two zero bytes, a type code,
the number of dimensions, then one big-endian uint32 per dimension, then the data.
"""

from __future__ import annotations

import gzip
import os
import struct

import numpy as np

from aejax.errors import DataError

_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads an IDX file (`.gz` or plain) into a numpy array of its stored shape.

    Args:
      path: file path; gzip is detected from the file's magic bytes, not its name.
    Returns:
      array with the file's shape and dtype (native byte order).
    """
    with open(path, "rb") as f:
        head = f.read(2)
    opener = gzip.open if head == b"\x1f\x8b" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path} is not an IDX file (bad magic number); pass the original IDX files.")
    type_code, ndim = raw[2], raw[3]
    if type_code not in _IDX_DTYPES:
        raise DataError(f"{path} has unknown IDX type code {type_code:#x}; the file is damaged or not IDX.")
    header_end = 4 + 4 * ndim
    if len(raw) < header_end:
        raise DataError(f"{path} is truncated inside its IDX header; download or reinstall the file.")
    shape = struct.unpack(f">{ndim}I", raw[4:header_end])
    dtype = _IDX_DTYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header_end != expected:
        raise DataError(
            f"{path} holds {len(raw) - header_end} data bytes but its header promises {expected}; "
            "the file is truncated or damaged, so download or reinstall it."
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header_end).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike, array: np.ndarray, *, compress: bool = True) -> None:
    """Writes `array` as an IDX file (gzip-compressed when `compress`); the inverse of `read_idx`."""
    array = np.asarray(array)
    codes = {np.dtype(v).newbyteorder("="): k for k, v in _IDX_DTYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes:
        raise DataError(f"IDX cannot store dtype {array.dtype}; use uint8, int8, int16, int32, float32 or float64.")
    code = codes[native]
    big = array.astype(_IDX_DTYPES[code])
    payload = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + big.tobytes()
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(payload)
