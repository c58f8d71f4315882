"""Saccade emulator: determinism, event format, statistics against the real recordings,
the EmulatedNMNIST dataset and the `snnzoo emulate` verb."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from snnzoo.cli import cli
from snnzoo.runtime.binning import bin_events
from snnzoo.runtime.events import EVENT_DTYPE
from snnzoo.runtime.readers import read_nmnist_bin
from snnzoo.zoo.datasets.nmnist import mnist_index
from snnzoo.zoo.emulator import (EmulatorParams, Randomization, _progress, emulate, emulate_command, load_params,
                                 param_overrides, params_from_dict, trajectory)

from conftest import data_missing


def _digits(n: int = 6, seed: int = 0) -> np.ndarray:
    """Synthetic 28×28 'digits': random bright strokes on black (no data needed)."""
    rng = np.random.default_rng(seed)
    imgs = np.zeros((n, 28, 28), np.uint8)
    for im in imgs:
        r, c = rng.integers(6, 12, 2)
        im[r:r + 14, c:c + 3] = 255
        im[r:r + 3, c:c + 10] = 200
    return imgs


@pytest.fixture(scope="module")
def paired(shared_data):
    """The first 60 real recordings (MNIST train 0–59) and their source images."""
    from snnzoo.zoo.datasets.mnist import load_mnist

    files = sorted((shared_data / "nmnist" / "Train").glob("*/*.bin"), key=lambda f: int(f.stem))[:60]
    if len(files) < 60 or not (shared_data / "mnist").is_dir():
        data_missing("real N-MNIST recordings or MNIST idx files absent")
    images, labels = load_mnist(shared_data / "mnist", "train")
    assert [mnist_index(f) for f in files] == list(range(60))
    assert [int(f.parent.name) for f in files] == labels[:60].tolist()
    return [read_nmnist_bin(f)[0] for f in files], images[:60]


def test_deterministic_with_seed_and_batch_independent():
    imgs = _digits()
    a, b = emulate(imgs, seed=3), emulate(imgs, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    c = emulate(imgs, seed=4)
    assert not all(len(x) == len(y) and np.array_equal(x, y) for x, y in zip(a, c))
    # a sample's stream depends on (seed, key), not on the rest of the batch
    alone = emulate(imgs[2:4], seed=3, keys=[2, 3])
    assert all(np.array_equal(x, y) for x, y in zip(a[2:4], alone))


def test_randomization_off_changes_nothing_and_on_is_per_sample():
    imgs = _digits(8)
    base = emulate(imgs, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(base, emulate(imgs, seed=3, randomization=Randomization())))
    rand = Randomization(contrast_sd=0.3, timing_sd_us=5000)
    a = emulate(imgs, seed=3, randomization=rand)
    assert all(np.array_equal(x, y) for x, y in zip(a[5:7], emulate(imgs[5:7], seed=3, keys=[5, 6], randomization=rand)))
    # a lower sensitivity (higher threshold) gives fewer events: the per-sample count ratios spread
    ratio = np.log([len(r) / len(b) for r, b in zip(a, base)])
    assert ratio.std() > 0.1 and not np.allclose(ratio, 0)
    with pytest.raises(ValueError, match="≥ 0"):
        Randomization(contrast_sd=-0.1)


def test_randomized_schedules_stay_ordered():
    p, rand = EmulatorParams(), Randomization(timing_sd_us=20_000)
    for k in range(50):
        _, q = rand.draw(np.random.default_rng([0, k, 1]), p)
        assert q.saccades_us != p.saccades_us
        for axis in range(2):
            windows = [saccade[axis] for saccade in q.saccades_us]
            assert all(e - s >= 10_000 for s, e in windows)
            assert all(windows[i][1] <= windows[i + 1][0] for i in range(len(windows) - 1))
        path = trajectory(q, np.arange(0, 400_000, 1000))
        assert np.allclose(path[-1], p.waypoints[0]) and np.abs(np.diff(path, axis=0)).max() < 1.0  # no jumps (waypoints lie ≥ 4.7 px apart)


def test_event_format():
    for ev in emulate(_digits(), seed=0):
        assert ev.dtype == EVENT_DTYPE and len(ev) > 500
        assert np.all(np.diff(ev["t"]) >= 0) and ev["t"].min() >= 0 and ev["t"].max() < 330_000
        assert ev["x"].min() >= 0 and ev["x"].max() < 34 and ev["y"].min() >= 0 and ev["y"].max() < 34
        assert set(np.unique(ev["p"]).tolist()) == {0, 1}


def test_blank_image_gives_only_noise():
    p = EmulatorParams()
    ev = emulate(np.zeros((28, 28), np.uint8), seed=0, params=p)[0]
    expected = p.noise_hz * 34 * 34 * p.duration_us * 1e-6
    assert abs(len(ev) - expected) < 5 * np.sqrt(expected)
    assert ev["p"].mean() > 0.8  # background activity is mostly ON


def test_saccade_path_closes_and_progress_is_monotone():
    p = EmulatorParams()
    t = np.arange(0, 320_000, 1000)
    path = trajectory(p, t)
    assert np.allclose(path[0], p.waypoints[0]) and np.allclose(path[-1], p.waypoints[0])
    for windows, w in zip(p.saccades_us, p.waypoints[1:]):
        end = max(te for _, te in windows)
        assert np.allclose(trajectory(p, np.array([end]))[0], w)
    u = np.linspace(0, 1, 101)
    s = _progress(u, 0.2)
    assert s[0] == 0 and np.isclose(s[-1], 1) and np.all(np.diff(s) > 0)


def test_statistics_match_real_recordings(paired):
    real, images = paired
    emu = emulate(images, seed=0, keys=np.arange(len(images)))

    def stats(evs):
        n = np.array([len(e) for e in evs], float)
        on = np.array([e["p"].mean() for e in evs])
        dur = np.array([e["t"][-1] - e["t"][0] for e in evs], float)
        # mean events per 10 ms window, 0–300 ms
        rate = np.mean([np.bincount(np.minimum(e["t"] // 10_000, 29), minlength=30) for e in evs], axis=0)
        return n, on, dur, rate

    (rn, ron, rdur, rrate), (en, eon, edur, erate) = stats(real), stats(emu)
    assert abs(en.mean() / rn.mean() - 1) < 0.2
    assert np.corrcoef(rn, en)[0, 1] > 0.6  # paired: more ink, more events, in both
    assert abs(eon.mean() - ron.mean()) < 0.03
    assert abs(edur.mean() - rdur.mean()) < 10_000
    for rate in (rrate, erate):  # three saccades: a lull between each, busy in the middle of each
        assert rate[7:13].min() < 0.3 * rate.mean() and rate[17:24].min() < 0.5 * rate.mean()
        assert min(rate[3:7].mean(), rate[13:17].mean(), rate[24:28].mean()) > 1.3 * rate.mean()
    # binned like the model sees them, real and emulated frames of the same digit overlap
    fr = np.stack([bin_events(e, (34, 34, 2), n_time_bins=8, mode="binary") for e in real])
    fe = np.stack([bin_events(e, (34, 34, 2), n_time_bins=8, mode="binary") for e in emu])
    iou = (fr * fe).sum((1, 2, 3, 4)) / np.maximum(fr, fe).sum((1, 2, 3, 4))
    assert iou.mean() > 0.3
    shuffled = (fr * fe[::-1]).sum((1, 2, 3, 4)) / np.maximum(fr, fe[::-1]).sum((1, 2, 3, 4))
    assert iou.mean() > 2 * shuffled.mean()


def test_emulated_dataset_split_and_cache(shared_data, tmp_path):
    from snnzoo.zoo.datasets.emulated import EmulatedNMNIST

    root = shared_data / "mnist"
    full = EmulatedNMNIST(root, "train")
    assert len(full) == 59000 and full.indices[0] == 1000  # the real recordings' images are excluded
    ds = EmulatedNMNIST(root, "test", indices=range(5), cache_dir=tmp_path, chunk=3)
    x, y = ds.frames(8, "binary", progress=False)
    assert x.shape == (5, 8, 2, 34, 34) and x.dtype == np.uint8 and set(np.unique(x)) <= {0, 1}
    assert y.tolist() == [7, 2, 1, 0, 4] and len(list(tmp_path.glob("*.npz"))) == 2
    again, _ = EmulatedNMNIST(root, "test", indices=range(5), cache_dir=tmp_path, chunk=3).frames(8, "binary", False)
    assert np.array_equal(x, again)
    ev, label = ds[4]
    assert label == 4 and np.array_equal(bin_events(ev, (34, 34, 2), n_time_bins=8, mode="binary"), x[4])
    with pytest.raises(ValueError, match="indices must lie"):
        EmulatedNMNIST(root, "test", indices=[10_000])
    # randomised frames get their own cache entries; unrandomised ones keep theirs
    rand = EmulatedNMNIST(root, "test", indices=range(5), cache_dir=tmp_path, chunk=3,
                          randomization=Randomization(contrast_sd=0.3))
    xr, _ = rand.frames(8, "binary", progress=False)
    assert len(list(tmp_path.glob("*.npz"))) == 4 and not np.array_equal(xr, x)
    # equal spreads written as int or float reuse those entries
    same = EmulatedNMNIST(root, "test", indices=range(5), cache_dir=tmp_path, chunk=3,
                          randomization=Randomization(contrast_sd=0.3, timing_sd_us=0))
    assert np.array_equal(same.frames(8, "binary", progress=False)[0], xr) and len(list(tmp_path.glob("*.npz"))) == 4
    off = EmulatedNMNIST(root, "test", indices=range(5), cache_dir=tmp_path, chunk=3, randomization=Randomization())
    assert np.array_equal(off.frames(8, "binary", progress=False)[0], x) and len(list(tmp_path.glob("*.npz"))) == 4


def test_cli_writes_npy_and_rejects_bad_input(shared_data, tmp_path):
    runner = CliRunner()
    res = runner.invoke(emulate_command, ["--mnist-root", str(shared_data / "mnist"), "--split", "test",
                                          "--indices", "0:3", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    files = sorted(tmp_path.glob("*/*.npy"))
    assert [f"{f.parent.name}/{f.name}" for f in files] == ["1/test_00002.npy", "2/test_00001.npy", "7/test_00000.npy"]
    ev = np.load(files[0], allow_pickle=False)
    assert ev.dtype == EVENT_DTYPE
    bad = runner.invoke(cli, ["emulate", "--mnist-root", str(shared_data / "mnist"), "--indices", "0:x",
                              "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "--indices" in bad.output
    assert bad.output.startswith("snnzoo: error: --indices '0:x'") and "Traceback" not in bad.output
    missing = runner.invoke(cli, ["emulate", "--mnist-root", str(tmp_path / "nope"), "--out", str(tmp_path)])
    assert missing.exit_code == 2 and "MNIST file not found" in missing.output


def test_scale_one_is_the_default_and_smaller_scale_shrinks_the_footprint():
    imgs = _digits(4)
    base = emulate(imgs, seed=1)
    same = emulate(imgs, seed=1, params=EmulatorParams(scale=1.0, gamma=1.0))
    assert all(np.array_equal(a, b) for a, b in zip(base, same))  # bit-identical: caches and twins stay valid
    ring = np.zeros((28, 28), np.uint8)  # centred on the image centre (13.5, 13.5)
    ring[6:22, 6:22] = 220
    ring[9:19, 9:19] = 0
    for img in list(imgs) + [ring]:
        a, b = (emulate(img, seed=1, params=EmulatorParams(scale=s, noise_hz=0.0))[0] for s in (1.0, 0.7))
        assert b["x"].std() < 0.85 * a["x"].std() and b["y"].std() < 0.85 * a["y"].std()
    # magnified about the digit's centre: a centred digit's footprint stays where it was
    assert abs(b["x"].mean() - a["x"].mean()) < 0.3 and abs(b["y"].mean() - a["y"].mean()) < 0.3


def test_display_gamma_dims_grey_and_leaves_black_and_white():
    ring = np.zeros((28, 28), np.uint8)
    ring[6:22, 6:22] = 255
    ring[9:19, 9:19] = 0
    pure = [emulate(ring, seed=2, params=EmulatorParams(gamma=g))[0] for g in (1.0, 2.2)]
    assert np.array_equal(*pure)  # 0 and 255 map to 0 and 1 under any gamma
    grey = (ring // 2).astype(np.uint8)  # 127: luminance 0.50 at gamma 1, 0.22 at gamma 2.2
    lin, dim = (emulate(grey, seed=2, params=EmulatorParams(gamma=g, noise_hz=0.0))[0] for g in (1.0, 2.2))
    assert len(dim) < 0.9 * len(lin)


def test_load_params_overrides_and_rejects_bad_files(tmp_path):
    good = tmp_path / "fit.json"
    good.write_text('{"scale": 0.97, "origin": [2.4, 2.3], "noise_on": 1.0}')
    p = load_params(good)
    assert p == EmulatorParams(scale=0.97, origin=(2.4, 2.3), noise_on=1.0)
    assert param_overrides(p) == {"scale": 0.97, "origin": (2.4, 2.3), "noise_on": 1.0}
    assert params_from_dict(json.loads(json.dumps(param_overrides(p)))) == p  # what the ceiling tool stores
    assert load_params(None) == EmulatorParams() and param_overrides(EmulatorParams()) == {}
    for text, problem in (('{"scael": 0.9}', "unknown emulator parameter(s) scael"),
                          ("[1, 2]", "expected a JSON object"), ("{scale: 1}", "not JSON")):
        bad = tmp_path / "bad.json"
        bad.write_text(text)
        with pytest.raises(ValueError, match=rf"^{bad}: .*{problem.replace('(', '.').replace(')', '.')}"):
            load_params(bad)
    with pytest.raises(ValueError, match="cannot read"):
        load_params(tmp_path / "absent.json")


def test_cli_params_file(shared_data, tmp_path):
    from snnzoo.zoo.datasets.mnist import load_mnist

    fit = tmp_path / "fit.json"
    fit.write_text('{"scale": 0.95, "threshold": 0.31}')
    runner = CliRunner()
    res = runner.invoke(cli, ["emulate", "--mnist-root", str(shared_data / "mnist"), "--split", "test",
                              "--indices", "3", "--out", str(tmp_path / "out"), "--params", str(fit)])
    assert res.exit_code == 0, res.output
    images, _ = load_mnist(shared_data / "mnist", "test")
    want = emulate(images[[3]], 0, [3], EmulatorParams(scale=0.95, threshold=0.31))[0]
    got = np.load(next((tmp_path / "out").glob("*/test_00003.npy")), allow_pickle=False)
    assert np.array_equal(got, want)
    fit.write_text('{"treshold": 0.3}')
    bad = runner.invoke(cli, ["emulate", "--mnist-root", str(shared_data / "mnist"), "--indices", "0",
                              "--out", str(tmp_path / "out2"), "--params", str(fit)])
    assert bad.exit_code == 2 and bad.output.startswith(f"snnzoo: error: {fit}: unknown emulator parameter(s) treshold")
    assert bad.output.count("\n") == 1 and not (tmp_path / "out2").exists()


def test_new_params_keep_the_cache_keys_of_existing_caches(shared_data):
    """Adding ``scale`` to EmulatorParams must not orphan caches written before it existed: this key
    was computed by the version without the field (nmnist_compact's DR training chunk 0)."""
    from snnzoo.zoo.datasets.emulated import EmulatedNMNIST

    ds = EmulatedNMNIST(shared_data / "mnist", "train", seed=2, randomization=Randomization(0.12, 2000.0))
    sel = ds.indices[:1000]
    assert ds._cache_key(sel, 8, "binary") == "c6903b63b21339c44072"
    scaled = EmulatedNMNIST(shared_data / "mnist", "train", seed=2, params=EmulatorParams(scale=0.97),
                            randomization=Randomization(0.12, 2000.0))
    assert scaled._cache_key(sel, 8, "binary") != "c6903b63b21339c44072"
