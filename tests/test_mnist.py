"""MNIST idx reader: the real files (skipped where absent) and bad inputs."""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from snnzoo.zoo.datasets.mnist import MNIST, load_mnist

from conftest import data_missing


@pytest.fixture(scope="module")
def mnist_root(shared_data):
    root = shared_data / "mnist"
    if not (root / "train-images-idx3-ubyte.gz").is_file():
        data_missing(f"MNIST idx files not found in {root}")
    return root


def test_real_idx_files(mnist_root):
    x, y = load_mnist(mnist_root, "train")
    assert x.shape == (60000, 28, 28) and x.dtype == np.uint8
    assert y.shape == (60000,) and y.min() == 0 and y.max() == 9
    assert y[:8].tolist() == [5, 0, 4, 1, 9, 2, 1, 3]  # the well-known first train labels
    assert np.bincount(y).tolist()[1] == 6742  # digit 1 is the most frequent class
    xt, yt = load_mnist(mnist_root, "test")
    assert xt.shape == (10000, 28, 28) and yt[:5].tolist() == [7, 2, 1, 0, 4]
    assert int(x[0].max()) == 255 and int(x[0, 0, 0]) == 0


def test_dataset_class(mnist_root):
    ds = MNIST(mnist_root, "test", transform=lambda im: im.astype(np.float32) / 255)
    img, label = ds[0]
    assert len(ds) == 10000 and label == 7 and img.dtype == np.float32 and img.max() == 1.0


def _write_idx(path, magic, dims, payload: bytes):
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + payload)


def test_small_files_roundtrip(tmp_path):
    imgs = np.arange(2 * 28 * 28, dtype=np.uint32).astype(np.uint8).reshape(2, 28, 28)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", 0x803, (2, 28, 28), imgs.tobytes())
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", 0x801, (2,), bytes([3, 8]))
    x, y = load_mnist(tmp_path, "test")
    assert np.array_equal(x, imgs) and y.tolist() == [3, 8]


def test_missing_files_say_where(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"train-images-idx3-ubyte\.gz.*put them in"):
        load_mnist(tmp_path, "train")


@pytest.mark.parametrize("case", ["magic", "truncated", "count", "not_gzip"])
def test_bad_files(tmp_path, case):
    img = tmp_path / "t10k-images-idx3-ubyte.gz"
    lbl = tmp_path / "t10k-labels-idx1-ubyte.gz"
    _write_idx(lbl, 0x801, (2,), bytes([1, 2]))
    if case == "magic":
        _write_idx(img, 0x801, (2, 28, 28), bytes(2 * 784))
    elif case == "truncated":
        _write_idx(img, 0x803, (2, 28, 28), bytes(784))
    elif case == "count":
        _write_idx(img, 0x803, (3, 28, 28), bytes(3 * 784))
    else:
        img.write_bytes(b"plain bytes, not gzip")
    expected = {"magic": "t10k-images.*magic", "truncated": "t10k-images.*expected 1568 bytes",
                "count": "3 images but 2 labels", "not_gzip": "t10k-images.*not a readable gzip"}[case]
    with pytest.raises(ValueError, match=expected):
        load_mnist(tmp_path, "test")


def test_unknown_split(tmp_path):
    with pytest.raises(ValueError, match="unknown MNIST split"):
        load_mnist(tmp_path, "val")
