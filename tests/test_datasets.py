"""Datasets from local roots: real N-MNIST and CIFAR-10 files, tonic layouts built from real clips."""
from __future__ import annotations

import json
import os
import pickle
import re

import numpy as np
import pytest

from snnzoo.runtime.errors import EventFileError
from snnzoo.runtime.readers import read_events
from snnzoo.runtime.transforms import Compose, ToFrame
from snnzoo.zoo.datasets import (CIFAR10, CIFAR10DVS, DATASETS, NMNIST, DatasetNotFoundError, DVSGesture,
                                 get_dataset)
from snnzoo.zoo.datasets.cifar10 import load_pickled_batch

from conftest import data_missing


def test_nmnist_real_root(nmnist_root, tmp_path):
    ds = NMNIST(nmnist_root)
    assert len(ds) == 1000 and ds.sensor_size == (34, 34, 2) and ds.classes == [str(i) for i in range(10)]
    assert [int(f.parent.name) for f in ds.files] == ds.targets and ds.files == sorted(ds.files)
    assert np.bincount(ds.targets).min() > 80
    ev, label = ds[123]
    assert label == ds.targets[123]
    assert np.array_equal(ev, read_events(ds.files[123])[0])
    first = NMNIST(nmnist_root, first_saccade_only=True)[123][0]
    assert len(first) < len(ev) and first["t"].max() < 100_000 and np.array_equal(first, ev[ev["t"] < 100_000])
    (tmp_path / "NMNIST").mkdir()
    os.symlink(nmnist_root / "Train", tmp_path / "NMNIST" / "Train")  # tonic's save_to layout
    framed = get_dataset("nmnist", tmp_path, "train", transform=Compose([ToFrame((34, 34, 2), n_time_bins=5)]))
    frames, label = framed[123]
    assert frames.shape == (5, 2, 34, 34) and frames.sum() == len(ev) and label == ds.targets[123]
    with pytest.raises(DatasetNotFoundError, match=r"Test/<digit>/\*\.bin.*garrickorchard"):
        NMNIST(nmnist_root, train=False)


def _link_layout(root, files_per_class):
    for cls, files in files_per_class.items():
        (root / cls).mkdir(parents=True)
        for i, f in enumerate(files):
            os.symlink(f, root / cls / f"cifar10_{cls}_{i}{f.suffix}")


def test_cifar10dvs_split_and_reading(shared_data, tmp_path):
    aedat = sorted((shared_data / "events" / "aedat2_dvs128").glob("*.aedat"))
    classes = ["airplane", "cat", "truck"]
    _link_layout(tmp_path / "CIFAR10DVS", {c: [aedat[i % 2] for i in range(20)] for c in classes})
    train, test = CIFAR10DVS(tmp_path, train=True), CIFAR10DVS(tmp_path, train=False, seed=0)
    everything = CIFAR10DVS(tmp_path, train=None)
    assert (len(train), len(test), len(everything)) == (54, 6, 60)
    assert not set(train.files) & set(test.files) and set(train.files) | set(test.files) == set(everything.files)
    assert np.bincount(test.targets).tolist() == [2, 0, 0, 2, 0, 0, 0, 0, 0, 2]
    assert train.split == test.split and train.split["seed"] == 0 and train.split["test_fraction"] == 0.1
    assert CIFAR10DVS(tmp_path, train=False).files == test.files  # deterministic
    other = CIFAR10DVS(tmp_path, train=False, seed=1)
    assert other.files != test.files and other.split["test_files_sha256"] != test.split["test_files_sha256"]
    ev, label = test[0]
    assert label == test.targets[0] and ev["x"].max() < 128 and len(ev) in (125_028, 70_304)
    assert len(get_dataset("cifar10dvs", tmp_path, "all")) == 60
    (tmp_path / "CIFAR10DVS" / "dog").mkdir()
    os.symlink(shared_data / "events" / "aedat4" / "tonic_sample_320x240.aedat4",
               tmp_path / "CIFAR10DVS" / "dog" / "wrong_sensor.aedat4")
    ds = CIFAR10DVS(tmp_path, train=None)
    with pytest.raises(EventFileError, match=r"wrong_sensor.aedat4: sensor 320×240 is not the dataset's 128×128"):
        ds[ds.targets.index(5)]


def test_dvsgesture_tonic_layout(shared_data, tmp_path):
    clips = sorted((shared_data / "dvsgesture").glob("*.bs2"), key=lambda p: int(p.stem))[:3]
    for user, light, clip in ((1, "fluorescent", clips[0]), (1, "fluorescent", clips[1]), (2, "led", clips[2])):
        ev = read_events(clip)[0]
        folder = tmp_path / "DVSGesture" / "ibmGestureTrain" / f"user{user:02d}_{light}"
        folder.mkdir(parents=True, exist_ok=True)
        cols = np.stack([ev["x"], ev["y"], ev["p"], ev["t"] // 1000], 1).astype(np.int32)  # x, y, p, t ms
        np.save(folder / f"{int(clip.stem) - 1}.npy", cols)
    ds = DVSGesture(tmp_path)
    assert (len(ds), ds.targets, ds.users, ds.lighting) == (3, [0, 1, 2], [1, 1, 2], ["fluorescent", "fluorescent", "led"])
    ev, label = ds[2]
    ref = read_events(clips[2])[0]
    assert label == 2 and len(ev) == len(ref) and np.array_equal(ev["t"], ref["t"] // 1000 * 1000)
    assert np.array_equal(ev["x"], ref["x"]) and np.array_equal(ev["p"], ref["p"])
    with pytest.raises(DatasetNotFoundError, match="ibmGestureTest"):
        DVSGesture(tmp_path, train=False)


def _write_batch(path, images, labels):
    """A batch in the CIFAR-10 python format: a pickled dict with byte-string keys."""
    data = images.transpose(0, 3, 1, 2).reshape(len(images), 3072)
    with open(path, "wb") as f:
        pickle.dump({b"batch_label": b"testing batch", b"labels": labels.tolist(), b"data": data,
                     b"filenames": [b"img_%d.png" % i for i in range(len(labels))]}, f, protocol=2)


def test_cifar10_pickled_batches(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    images = rng.integers(0, 256, (6 * 20, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, 6 * 20)
    for k, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        _write_batch(folder / name, images[20 * k:20 * (k + 1)], labels[20 * k:20 * (k + 1)])
    train, test = get_dataset("cifar10", tmp_path, "train"), get_dataset("cifar10", tmp_path, "test")
    assert (train.source, len(train), len(test)) == ("pickle", 100, 20)
    assert np.array_equal(train.data, images[:100]) and train.targets == labels[:100].tolist()
    img, label = test[3]
    assert np.array_equal(img, images[103]) and label == labels[103] and test.exact.all()

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with open(folder / "data_batch_2", "wb") as f:
        pickle.dump({b"data": Evil()}, f, protocol=2)
    with pytest.raises(ValueError, match=r"data_batch_2: not a CIFAR-10 python batch \(refusing to unpickle"):
        CIFAR10(tmp_path)
    (folder / "data_batch_2").write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(ValueError, match="top level is list"):
        load_pickled_batch(folder / "data_batch_2")


@pytest.fixture(scope="module")
def cifar_jpeg(shared_data):
    root = shared_data / "cifar10"
    if not (root / "cifar10_jpeg_q75.tar.gz").is_file():
        data_missing(f"CIFAR-10 JPEG tar not found in {root}")
    return root, CIFAR10(root, train=True), CIFAR10(root, train=False)


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255 ** 2 / mse)


def test_cifar10_jpeg_original_order_and_exact(cifar_jpeg):
    root, train, test = cifar_jpeg
    labels = json.loads(re.search(r"\[.*\]", (root / "cifar10_labels.js").read_text(), re.S).group(0))
    assert len(labels) == 51_000
    assert (len(train), len(test), train.source) == (50_000, 10_000, "jpeg")
    assert train.targets == labels[:50_000] and test.targets[:1000] == labels[50_000:]
    assert np.bincount(train.targets).tolist() == [5000] * 10 and np.bincount(test.targets).tolist() == [1000] * 10
    assert np.array_equal(np.flatnonzero(train.exact), np.arange(4000))
    assert np.array_equal(np.flatnonzero(test.exact), np.arange(1000))
    assert np.array_equal(train.original_index, np.arange(50_000))
    assert (test.original_index[:1000] == np.arange(1000)).all() and (test.original_index[1000:] == -1).all()
    assert test.files[:3] == ["test/cat/0000.jpg", "test/ship/0000.jpg", "test/ship/0001.jpg"]
    # the lossless sprite of image i and the JPEG the order restoration maps to i are the same picture
    from snnzoo.zoo.datasets.cifar10 import _decode_jpeg

    for ds, n in ((train, 150), (test, 50)):
        jpeg = [_decode_jpeg(ds._jpegs[ds.files[i]]) for i in range(n)]
        matched = [psnr(ds.image(i), jpeg[i]) for i in range(n)]
        shifted = [psnr(ds.image(i), jpeg[i - 1]) for i in range(1, n)]
        assert min(matched) > 24 and max(shifted) < min(matched) and np.median(shifted) < 15
    img, label = train[4000]  # first image without lossless pixels: decoded JPEG
    assert img.shape == (32, 32, 3) and img.dtype == np.uint8 and not train.exact[4000] and label == labels[4000]


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_missing_data_message(name, tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        get_dataset(name, tmp_path / "nothing_here")
    msg = str(err.value)
    assert isinstance(err.value, FileNotFoundError) and "\n" not in msg
    assert str(tmp_path / "nothing_here") in msg and "Nothing is downloaded" in msg and "http" in msg


def test_factory_rejects_unknown():
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'"):
        get_dataset("imagenet", ".")
    with pytest.raises(ValueError, match="unknown split 'val'"):
        get_dataset("nmnist", ".", "val")
