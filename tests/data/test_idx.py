import gzip

import numpy as np
import pytest

from aejax.data import read_idx, write_idx
from aejax.errors import DataError


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("compress", [True, False])
def test_round_trip(tmp_path, dtype, compress):
    array = (np.arange(2 * 3 * 5) % 100).astype(dtype).reshape(2, 3, 5)
    path = tmp_path / "a.idx"
    write_idx(path, array, compress=compress)
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.shape == (2, 3, 5)
    np.testing.assert_array_equal(out, array)


def test_reads_hand_written_header(tmp_path):
    # magic 0x00000803 (uint8, 3 dims), dims 2x2x2, then the bytes 0..7 — written by hand, not by write_idx
    raw = bytes([0, 0, 8, 3]) + (2).to_bytes(4, "big") * 3 + bytes(range(8))
    path = tmp_path / "images-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(raw)
    np.testing.assert_array_equal(read_idx(path), np.arange(8, dtype=np.uint8).reshape(2, 2, 2))


def test_big_endian_int32(tmp_path):
    raw = bytes([0, 0, 0x0C, 1]) + (2).to_bytes(4, "big") + (1).to_bytes(4, "big") + (-2).to_bytes(4, "big", signed=True)
    path = tmp_path / "x.idx"
    path.write_bytes(raw)
    np.testing.assert_array_equal(read_idx(path), [1, -2])


def test_truncated_file_is_a_clear_error(tmp_path):
    path = tmp_path / "t.idx"
    write_idx(path, np.zeros((4, 4), np.uint8), compress=False)
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(DataError, match="truncated or damaged"):
        read_idx(path)


def test_bad_magic(tmp_path):
    path = tmp_path / "bad.idx"
    path.write_bytes(b"\x01\x02\x08\x01" + bytes(8))
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(path)
