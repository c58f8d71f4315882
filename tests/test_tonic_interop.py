"""tonic both ways: our binning inside ``tonic.transforms.Compose`` equals tonic's ``ToFrame`` on
real recordings (apart from the last-bin edge that runtime/binning.py documents), and tonic
datasets feed ``snnzoo eval`` / ``snnzoo train`` (``--dataset tonic:NMNIST``) with our event
validation, offline: tonic's own N-MNIST class reads the real folder layout and never downloads."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from snnzoo.cli import cli
from snnzoo.runtime.errors import EventFileError
from snnzoo.runtime.events import make_events
from snnzoo.runtime.transforms import ToFrame
from snnzoo.zoo.datasets import DatasetNotFoundError, get_dataset
from snnzoo.zoo.datasets.fromtonic import TonicDataset
from snnzoo.zoo.datasets.nmnist import NMNIST

tonic = pytest.importorskip("tonic")


@pytest.fixture(scope="module")
def tonic_layout(nmnist_root, tmp_path_factory) -> Path:
    """tonic's N-MNIST layout, ``ROOT/NMNIST/Train/<digit>/*.bin`` + ``train.zip``, built from the real
    recordings: tonic's check wants at least 10,000 files, so each of our 1,000 appears 10 times
    (symlinks, named ``<copy><name>``)."""
    root = tmp_path_factory.mktemp("tonic")
    base = root / "NMNIST" / "Train"
    for d in sorted(p for p in (nmnist_root / "Train").iterdir() if p.is_dir()):
        (base / d.name).mkdir(parents=True)
        for f in sorted(d.glob("*.bin")):
            for copy in range(10):
                os.symlink(f.resolve(), base / d.name / f"{copy}{f.name}")
    (root / "NMNIST" / "train.zip").write_bytes(b"")  # tonic checks only that it exists
    return root


@pytest.mark.parametrize("kw", [{"n_time_bins": 8}, {"time_window": 30_000}])
def test_to_frame_in_tonic_compose_equals_tonic(kw, nmnist_root):
    ds = NMNIST(nmnist_root)
    denoise = tonic.transforms.Denoise(filter_time=10_000)
    ours = tonic.transforms.Compose([denoise, ToFrame(ds.sensor_size, **kw)])
    incomplete = {"include_incomplete": True} if "time_window" in kw else {}
    theirs = tonic.transforms.Compose([denoise, tonic.transforms.ToFrame(ds.sensor_size, **kw, **incomplete)])
    edge_events = 0
    for i in range(0, len(ds), 20):
        events = ds[i][0]
        a, b = ours(events), theirs(events)
        d = denoise(events)
        t0, t1 = int(d["t"][0]), int(d["t"][-1])
        if "n_time_bins" in kw:  # tonic drops t >= t0 + T·w; we keep them in the last bin
            w = max((t1 - t0) // kw["n_time_bins"], 1)
            dropped = d[d["t"] >= t0 + kw["n_time_bins"] * w]
        else:  # tonic drops the events at t1 when t1 − t0 is a multiple of the window
            dropped = d[d["t"] == t1] if (t1 - t0) % kw["time_window"] == 0 else d[:0]
        edge_events += len(dropped)
        expected = b.astype(np.float32)
        if len(a) == len(b) + 1:  # the events at t1 make a bin of their own that tonic does not
            expected = np.concatenate([expected, np.zeros_like(expected[:1])])
        np.add.at(expected[-1], (dropped["p"].astype(int), dropped["y"], dropped["x"]), 1)
        np.testing.assert_array_equal(a, expected)
    if "n_time_bins" in kw:
        assert edge_events > 0  # the documented difference is exercised


def test_tonic_nmnist_is_refused_offline_where_incomplete(nmnist_root):
    """Our 1,000 recordings in ``nmnist/Train`` are not tonic's layout: a clear error, no download."""
    with pytest.raises(DatasetNotFoundError, match=r"tonic's NMNIST finds no complete copy .*Nothing is downloaded"):
        get_dataset("tonic:NMNIST", nmnist_root, "train")
    with pytest.raises(ValueError, match="unknown tonic dataset 'NOPE'"):
        get_dataset("tonic:NOPE", nmnist_root, "train")


def test_tonic_dataset_gives_our_events(tonic_layout, nmnist_root):
    ds = get_dataset("tonic:NMNIST", tonic_layout, "train")
    ours = NMNIST(tonic_layout)  # our reader of the same layout (ROOT/NMNIST/Train)
    assert len(ds) == len(ours) == 10_000 and ds.sensor_size == (34, 34, 2)
    for i in (0, 4321, 9999):
        (e, y), (f, z) = ds[i], ours[i]
        assert y == z
        for name in "xytp":
            np.testing.assert_array_equal(e[name], f[name])


def test_tonic_events_are_validated():
    good = make_events([1, 2], [3, 4], [10, 20], [0, 1])
    bad = make_events([1, 2], [3, 4], [20, 10], [0, 1])  # unsorted: tonic's ToFrame would give zeros
    ds = TonicDataset([(good, 0), (bad, 1)], sensor_size=(34, 34, 2), name="mine")
    assert ds.classes == ["0", "1"] and ds[0][1] == 0
    with pytest.raises(EventFileError, match=r"mine\[1\].*timestamps are not sorted"):
        ds[1]
    frames = TonicDataset([(np.zeros((2, 2, 34, 34)), 0)], sensor_size=(34, 34, 2), name="framed")
    with pytest.raises(ValueError, match=r"framed\[0\]: expected a structured event array"):
        frames[0]


@pytest.mark.slow
def test_eval_and_train_take_tonic_datasets(tonic_layout, tmp_path):
    run = CliRunner().invoke
    results = []
    for name in ("tonic:NMNIST", "nmnist"):  # the same 10,000 files in the same order: same subset
        r = run(cli, ["eval", "nmnist_compact", "--dataset", name, "--data-root", str(tonic_layout), "--split",
                      "train", "--limit", "40", "--format", "json", "--no-progress"])
        assert r.exit_code == 0, r.output
        results.append(json.loads(r.stdout))
    assert results[0]["n"] == 40 and results[0]["dataset"] == "tonic:NMNIST"
    assert results[0]["accuracy"] == results[1]["accuracy"] > 0.8
    assert results[0]["confusion"] == results[1]["confusion"]

    out = tmp_path / "run"
    r = run(cli, ["train", "nmnist_compact", "--dataset", "tonic:NMNIST", "--data-root", str(tonic_layout),
                  "--epochs", "1", "--batch-size", "16", "--device", "cpu", "--set", "data.limit=48",
                  "--set", "model_args.time_steps=2", "--out", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    assert (out / "model.safetensors").is_file()
    assert json.loads((out / "config.json").read_text())["data"]["dataset"] == "tonic:NMNIST"


def test_tonic_disk_cache_is_read_offline(nmnist_root, tmp_path):
    ours = NMNIST(nmnist_root)
    source = [ours[i] for i in (0, 500, 999)]
    cache = tmp_path / "cache"
    filled = tonic.DiskCachedDataset(source, cache_path=str(cache))
    for i in range(len(source)):  # tonic writes <i>_0.hdf5 on first access
        filled[i]
    ds = get_dataset("tonic-cache:NMNIST", cache, "train")
    assert len(ds) == 3 and ds.sensor_size == (34, 34, 2) and len(ds.classes) == 10
    for (e, y), (f, z) in zip((ds[i] for i in range(3)), source):
        assert y == z
        for name in "xytp":
            np.testing.assert_array_equal(e[name], f[name])
    with pytest.raises(DatasetNotFoundError, match="no tonic disk cache"):
        get_dataset("tonic-cache:NMNIST", tmp_path / "empty", "train")
    assert not (tmp_path / "empty").exists()  # tonic would have created it
