"""Binning: equal to tonic's ToFrame on real N-MNIST recordings (up to the documented
differences), numpy == torch, batch == one by one, and the edge cases."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from snnzoo.runtime.binning import bin_batch, bin_events, bin_from_spec
from snnzoo.runtime.binning_torch import bin_batch_torch
from snnzoo.runtime.events import make_events
from snnzoo.runtime.readers import read_events

SENSOR = (34, 34, 2)


@pytest.fixture(scope="module")
def recordings(nmnist_root):
    files = sorted(nmnist_root.glob("Train/*/*.bin"))[::5]
    assert len(files) >= 200
    return [read_events(f)[0] for f in files]


def _add(frames, k, events):
    np.add.at(frames, (k, events["p"].astype(int), events["y"], events["x"]), 1)


@pytest.mark.parametrize("steps", [10, 7])
def test_n_time_bins_equals_tonic(recordings, steps):
    import tonic.transforms

    to_frame = tonic.transforms.ToFrame(sensor_size=SENSOR, n_time_bins=steps)
    ours = bin_batch(recordings, SENSOR, n_time_bins=steps)
    dropped = 0
    for ev, frames in zip(recordings, ours):
        ref = to_frame(ev).astype(np.float32)
        t0, t1 = ev["t"][0], ev["t"][-1]
        late = ev[ev["t"] >= t0 + steps * max((t1 - t0) // steps, 1)]  # what tonic drops (documented)
        _add(ref, steps - 1, late)
        dropped += len(late)
        np.testing.assert_array_equal(frames, ref)
        assert frames.sum() == len(ev)
    assert dropped >= len(recordings)  # at least the last timestamp of each recording


def test_time_window_equals_tonic(recordings):
    import tonic.transforms

    window = 20_000
    to_frame = tonic.transforms.ToFrame(sensor_size=SENSOR, time_window=window, include_incomplete=True)
    ends_on_edge = 0
    for ev in recordings[:100]:
        ours, ref = bin_events(ev, SENSOR, time_window=window), to_frame(ev).astype(np.float32)
        if (ev["t"][-1] - ev["t"][0]) % window:
            np.testing.assert_array_equal(ours, ref)
        else:  # tonic has no frame for the events at t1 (documented)
            ends_on_edge += 1
            last = np.zeros_like(ours[-1:])
            _add(last, 0, ev[ev["t"] == ev["t"][-1]])
            np.testing.assert_array_equal(ours, np.concatenate([ref, last]))


def test_binary_mode_and_single_polarity(recordings):
    import tonic.transforms

    ev = recordings[0]
    binary = bin_events(ev, SENSOR, n_time_bins=5, mode="binary")
    count = bin_events(ev, SENSOR, n_time_bins=5)
    np.testing.assert_array_equal(binary, np.minimum(count, 1))
    merged = bin_events(ev, (34, 34, 1), n_time_bins=5)
    np.testing.assert_array_equal(merged[:, 0], count.sum(1))
    tonic_merged = tonic.transforms.ToFrame(sensor_size=(34, 34, 1), n_time_bins=5)
    with pytest.raises(ValueError):  # tonic refuses two polarities on a 1-polarity sensor; we merge
        tonic_merged(ev.copy())


@pytest.mark.parametrize("d", [2, 3, 4])
def test_downsample_is_sum_pooling(recordings, d):
    ev = recordings[3]
    full = bin_events(ev, SENSOR, n_time_bins=4)
    h, w = 34 // d, 34 // d
    pooled = full[..., : h * d, : w * d].reshape(4, 2, h, d, w, d).sum((3, 5))
    np.testing.assert_array_equal(bin_events(ev, SENSOR, n_time_bins=4, downsample=d), pooled)


CONFIGS = [dict(n_time_bins=10), dict(n_time_bins=8, mode="binary"), dict(time_window=10_000),
           dict(time_window=7_000, n_time_bins=20), dict(n_time_bins=6, downsample=4),
           dict(time_window=25_000, downsample=3, mode="binary")]


@pytest.mark.parametrize("cfg", CONFIGS, ids=[str(c) for c in CONFIGS])
def test_numpy_equals_torch(recordings, cfg):
    sensor = (34, 34, 1) if cfg.get("mode") == "binary" and "time_window" in cfg else SENSOR
    ref = bin_batch(recordings, sensor, **cfg)
    got = bin_batch_torch(recordings, sensor, **cfg)
    assert got.dtype == torch.float32 and got.device.type == "cpu"
    np.testing.assert_array_equal(got.numpy(), ref)
    np.testing.assert_array_equal(bin_batch_torch(recordings[:3], sensor, spec=cfg).numpy(), ref[:3])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_numpy_equals_torch_cuda(recordings):
    got = bin_batch_torch(recordings, SENSOR, device="cuda", n_time_bins=10)
    assert got.device.type == "cuda"
    np.testing.assert_array_equal(got.cpu().numpy(), bin_batch(recordings, SENSOR, n_time_bins=10))


def test_batch_equals_one_by_one(recordings):
    batch = [recordings[0], recordings[1][:50], make_events([], [], [], []), recordings[2]]
    frames = bin_batch(batch, SENSOR, time_window=15_000)
    np.testing.assert_array_equal(bin_batch_torch(batch, SENSOR, time_window=15_000).numpy(), frames)
    assert frames.shape[:2] == (4, max(len(bin_events(e, SENSOR, time_window=15_000)) for e in batch if len(e)))
    for e, f in zip(batch, frames):
        if len(e):
            own = bin_events(e, SENSOR, time_window=15_000)
            np.testing.assert_array_equal(f[: len(own)], own)
            assert not f[len(own):].any()
        else:
            assert not f.any()
    spec = {"method": "n_time_bins", "n_time_bins": 10, "mode": "binary", "downsample": 1}
    np.testing.assert_array_equal(bin_from_spec(recordings[0], SENSOR, spec),
                                  bin_batch(recordings[:1], SENSOR, n_time_bins=10, mode="binary")[0])


def test_short_and_degenerate_streams():
    one = make_events([3], [4], [100], [1])
    frames = bin_events(one, SENSOR, n_time_bins=4)
    assert frames.shape == (4, 2, 34, 34) and frames[0, 1, 4, 3] == 1 and frames.sum() == 1
    short = make_events([0, 1, 2], [0, 0, 0], [0, 1, 2], [0, 0, 0])  # t1 − t0 < T: window 1 µs
    assert bin_events(short, SENSOR, n_time_bins=5)[:, 0, 0, :3].tolist()[:3] == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    same_t = make_events([1, 1, 2], [1, 1, 2], [50, 50, 50], [1, 1, 0])
    assert bin_events(same_t, SENSOR, time_window=10).shape[0] == 1
    assert bin_batch([], SENSOR, n_time_bins=3).shape == (0, 3, 2, 34, 34)
    with pytest.raises(ValueError, match="give n_time_bins or time_window"):
        bin_events(one, SENSOR)
    with pytest.raises(ValueError, match="unknown binning mode 'sum'"):
        bin_events(one, SENSOR, n_time_bins=2, mode="sum")


def test_unsorted_is_an_error_where_tonic_loses_events(recordings):
    import tonic.transforms

    ev = recordings[5].copy()
    ev["t"] = ev["t"][::-1].copy()
    lost = tonic.transforms.ToFrame(sensor_size=SENSOR, n_time_bins=10)(ev)
    assert lost.sum() < len(ev)  # tonic: no error, events silently missing
    with pytest.raises(ValueError, match=r"events\[0\]: timestamps are not sorted at event 1"):
        bin_events(ev, SENSOR, n_time_bins=10)
    with pytest.raises(ValueError, match=r"events\[1\]: timestamps are not sorted"):
        bin_batch_torch([recordings[0], ev], SENSOR, n_time_bins=10)
