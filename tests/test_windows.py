"""Windowed prediction over long recordings (`snnzoo.runtime.windows`) and chunked reading
(`EventStream`): every window equals the same window cut out as its own file, on real
recordings of every reader; chunked reading equals whole reading; bad data in the middle of a
file reports the windows before it, then one error naming the byte offset."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from snnzoo.runtime import Predictor
from snnzoo.runtime.events import make_events
from snnzoo.runtime.readers import EventStream, read_events, write_npy
from snnzoo.runtime.windows import iter_windows, parse_duration

REPO = Path(__file__).resolve().parents[1]
SAMPLE_NPY = REPO / "runtime" / "samples" / "nmnist_00001_label5.npy"
# every reader on a real recording: (path under the data root, downsample of a model for its sensor)
REAL = [("nmnist/sample_nmnist.bin", 1), ("dvsgesture/3.bs2", 4),
        ("events/aedat2_dvs128/neal_walking.aedat", 4), ("events/aedat4/tonic_sample_320x240.aedat4", 8),
        ("events/prophesee/expelliarmus_evt2_sample.raw", 16), ("events/prophesee/expelliarmus_evt3_sample.raw", 32),
        ("events/prophesee/faery_gen4.dat", 32), ("events/prophesee/tonic_sample_ncars.dat", 2)]


def cut(events: np.ndarray, a: int, b: int) -> np.ndarray:
    return events[(events["t"] >= a) & (events["t"] < b)]


def spans(events: np.ndarray, n_windows: int = 12) -> tuple[int, int]:
    """A window and an overlapping stride giving about ``n_windows`` windows over the recording."""
    duration = int(events["t"][-1] - events["t"][0])
    return max(duration // 3, 1), max(duration // n_windows, 1)


# ---------------------------------------------------------------- semantics


def test_parse_duration():
    assert [parse_duration(s) for s in ("300ms", "0.3s", "300000us", "300000", " 2 min", 7)] == \
           [300_000, 300_000, 300_000, 300_000, 120_000_000, 7]
    for bad in ("0ms", "1.5us", "300 parsecs", "-3ms"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_window_rule_gaps_and_chunking():
    ev = make_events([0, 1, 2, 3], [0, 0, 0, 0], [10, 20, 35, 1000], [1, 0, 1, 0])
    got = [(a, b, e["t"].tolist()) for a, b, e in iter_windows([ev], 20, 10)]
    assert got[:4] == [(10, 30, [10, 20]), (20, 40, [20, 35]), (30, 50, [35]), (40, 60, [])]
    assert got[-1] == (990, 1010, [1000]) and len(got) == 99  # up to the first window past t_last
    one_by_one = [(a, b, e["t"].tolist()) for a, b, e in iter_windows([ev[i:i + 1] for i in range(4)], 20, 10)]
    assert one_by_one == got
    sparse = [(a, e["t"].tolist()) for a, _, e in iter_windows([ev[[0, 1, 3]]], 5, 100)]
    assert sparse == [(10, [10]), (110, []), (210, []), (310, []), (410, []), (510, []), (610, []),
                      (710, []), (810, []), (910, [])]  # stride > window: none starts after t_last
    assert [a for a, _, _ in iter_windows([ev[:1]], 300, 100)] == [10]  # shorter than a window


# ---------------------------------------------------------------- readers


@pytest.mark.parametrize("name", [r[0] for r in REAL])
def test_chunked_reading_equals_whole_and_windows_equal_cuts(shared_data, name):
    path = shared_data / name
    whole, sensor, fmt = read_events(path)
    chunk = max(777, len(whole) // 40)  # many chunk boundaries, in seconds even for the 1.2 M-event file
    stream = EventStream(path, chunk_events=chunk)
    chunks = list(stream)
    assert len(chunks) > 1 and stream.sensor == sensor and stream.events == len(whole)
    np.testing.assert_array_equal(np.concatenate(chunks), whole)
    window, stride = spans(whole)
    rows = list(iter_windows(EventStream(path, chunk_events=chunk + 222), window, stride))
    assert len(rows) >= 8 and rows[0][0] == whole["t"][0] and rows[-1][1] > whole["t"][-1]
    for a, b, ev in rows:
        np.testing.assert_array_equal(ev, cut(whole, a, b))


def test_npy_is_memory_mapped_and_truncation_names_the_offset(tmp_path):
    ev = np.load(SAMPLE_NPY)
    stream = EventStream(SAMPLE_NPY, (34, 34, 2), chunk_events=1000)
    np.testing.assert_array_equal(np.concatenate(list(stream)), ev)
    data = SAMPLE_NPY.read_bytes()
    start = len(data) - ev.nbytes
    bad = tmp_path / "half.npy"
    bad.write_bytes(data[:start + ev.itemsize * 3000 + 5])
    got = []
    with pytest.raises(Exception, match=rf"half.npy: truncated or corrupt NPY file \(the data ends inside event "
                                        rf"3000 of {len(ev)}, at byte offset {start + ev.itemsize * 3000}\)"):
        for chunk in EventStream(bad, (34, 34, 2), chunk_events=1000):
            got.append(chunk)
    np.testing.assert_array_equal(np.concatenate(got), ev[:3000])


def test_corrupt_evt3_word_in_the_middle(shared_data, tmp_path):
    src = shared_data / "events" / "prophesee" / "expelliarmus_evt3_sample.raw"
    data = bytearray(src.read_bytes())
    header_end = bytes(data).index(b"\n", bytes(data).rindex(b"\n%") + 1) + 1
    offset = header_end + 2 * 150_001
    data[offset:offset + 2] = (0x9123).to_bytes(2, "little")
    bad = tmp_path / "bad.raw"
    bad.write_bytes(bytes(data))
    got = []
    with pytest.raises(Exception, match=rf"unknown EVT3 word type 0x9 at word 150001\) at byte offset {offset}$"):
        for chunk in EventStream(bad, chunk_events=20_000):
            got.append(chunk)
    whole = read_events(src)[0]
    assert 0 < sum(map(len, got)) < len(whole)
    np.testing.assert_array_equal(np.concatenate(got), whole[:sum(map(len, got))])


# ---------------------------------------------------------------- predictions


@pytest.fixture(scope="module")
def default_predictor(default_onnx) -> Predictor:
    return Predictor(batch_size=16)


def assert_rows_equal_cut_files(predictor: Predictor, path: Path, window: int, stride: int, tmp: Path) -> int:
    """Each window row equals `predict_files` on the window written as its own .npy file."""
    events = read_events(path, sensor_size=predictor.info.sensor_size)[0]
    rows = list(predictor.predict_windows([path], window, stride))
    assert rows and all(r.ok for r in rows)
    cuts = []
    for i, r in enumerate(rows):
        part = cut(events, r.t_start_us, r.t_end_us)
        assert r.events == len(part) and r.t_end_us - r.t_start_us == window
        if len(part) == 0:
            assert r.label is None and r.cls is None
            continue
        np.save(tmp / f"w{i:04d}.npy", part)  # no sensor stated: the model's, as for the stream
        cuts.append((r, tmp / f"w{i:04d}.npy"))
    singles = list(predictor.predict_files([p for _, p in cuts]))
    for (r, _), s in zip(cuts, singles):
        assert s.ok and (r.label, r.cls, r.score, r.topk, r.events) == (s.label, s.cls, s.score, s.topk, s.events)
    assert len({r.label for r, _ in cuts}) > 1 or len({r.score for r, _ in cuts}) > 1  # not a constant output
    return len(cuts)


def test_windows_equal_cut_files_on_real_nmnist(default_predictor, nmnist_root, tmp_path):
    files = [nmnist_root / "Train" / "3" / "00008.bin", nmnist_root / "Train" / "7" / "00016.bin", SAMPLE_NPY]
    for f in files:
        assert assert_rows_equal_cut_files(default_predictor, f, 100_000, 30_000, tmp_path) >= 8
    # one long stream: the three recordings one after the other (a .npy, read memory-mapped)
    parts = [read_events(f, sensor_size=(34, 34, 2))[0] for f in files]
    for i in range(1, 3):
        parts[i]["t"] += parts[i - 1]["t"][-1] + 50_000 - parts[i]["t"][0]
    long = write_npy(tmp_path / "long.npy", np.concatenate(parts))
    assert assert_rows_equal_cut_files(default_predictor, long, 300_000, 100_000, tmp_path) >= 9


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """Small random event models (4 steps, 8C3-AP2-32FC-Voting) for the sensor of each real
    recording, exported to ONNX: predictions on every reader, not only N-MNIST's 34x34."""
    torch = pytest.importorskip("torch")
    from snnzoo import create_model
    from snnzoo.export.onnx import export_onnx
    from snnzoo.zoo.network import SpikingNet

    base = create_model("nmnist_compact").config
    out, cache = {}, tmp_path_factory.mktemp("tiny")

    def model(sensor: tuple[int, int, int], d: int) -> Path:
        if (sensor, d) not in out:
            cfg = copy.deepcopy(base)
            cfg["input"].update(sensor_size=list(sensor), time_steps=4)
            cfg["input"]["binning"].update(downsample=d, n_time_bins=4)
            cfg.update(arch="8C3-AP2-32FC-Voting", name="tiny")
            cfg["model"].update(in_shape=[2, sensor[1] // d, sensor[0] // d], time_steps=4, neunorm=False)
            torch.manual_seed(0)
            net = SpikingNet(cfg["arch"], **cfg["model"])
            with torch.no_grad():
                for prm in net.parameters():
                    prm.mul_(3)  # default init is nearly silent on sparse frames
            net.config = cfg
            out[(sensor, d)] = export_onnx(net.eval(), cache / f"tiny_{sensor[0]}x{sensor[1]}_{d}.onnx")
        return out[(sensor, d)]
    return model


@pytest.mark.slow
@pytest.mark.parametrize("name, downsample", REAL[1:])
def test_windows_equal_cut_files_on_every_reader(shared_data, tiny_models, tmp_path, name, downsample):
    path = shared_data / name
    events, sensor, _ = read_events(path)
    predictor = Predictor(tiny_models(sensor, downsample), batch_size=8)
    window, stride = spans(events)
    assert assert_rows_equal_cut_files(predictor, path, window, stride, tmp_path) >= 8


def test_bad_data_mid_file_reports_windows_then_one_error(default_predictor, nmnist_root, tmp_path):
    src = nmnist_root / "Train" / "3" / "00008.bin"
    whole = read_events(src)[0]
    data = src.read_bytes()
    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes(data[:5 * 3000 + 2])
    outside = tmp_path / "outside.bin"
    bad = bytearray(data)
    bad[5 * 2500] = 200  # x = 200 on a 34-pixel sensor
    outside.write_bytes(bytes(bad))
    window, stride = 100_000, 30_000
    for path, n_good, reason in [
            (truncated, 3000, f"truncated: {5 * 3000 + 2} bytes is not a whole number of 5-byte events "
                              f"(an incomplete one at byte offset {5 * 3000})"),
            (outside, 2500, f"x=200 at event 2500 is outside the sensor width 34 (byte offset {5 * 2500})")]:
        rows = list(default_predictor.predict_windows([path, src], window, stride))
        errors = [i for i, r in enumerate(rows) if not r.ok]
        t_good = whole["t"][n_good - 1]
        expected = [(a, a + window) for a in range(whole["t"][0], t_good, stride) if a + window <= t_good]
        assert len(errors) == 1 and rows[errors[0]].error == reason and rows[errors[0]].file == str(path)
        assert [(r.t_start_us, r.t_end_us) for r in rows[:errors[0]]] == expected and expected
        assert all(r.file == str(src) and r.ok for r in rows[errors[0] + 1:])  # the next file still runs

    from snnzoo.cli import cli

    result = CliRunner().invoke(cli, ["predict", "--window", "100ms", "--stride", "30ms", "--format", "json",
                                      str(truncated), str(src)])
    assert result.exit_code == 1
    assert result.stderr.strip().startswith(f"snnzoo: error: {truncated}: truncated:")
    assert "byte offset 15000" in result.stderr and result.stderr.count("\n") == 1
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert list(lines[0])[:3] == ["file", "t_start_us", "t_end_us"]
    assert {ln["file"] for ln in lines} == {str(truncated), str(src)}


def test_cli_formats(nmnist_root, default_onnx):
    from snnzoo.cli import cli

    src = str(nmnist_root / "Train" / "3" / "00008.bin")
    args = ["predict", src, "--window", "300ms", "--stride", "100ms", "--top-k", "2", "--format"]
    table, csv_, js = (CliRunner().invoke(cli, [*args, f]) for f in ("table", "csv", "json"))
    assert table.exit_code == csv_.exit_code == js.exit_code == 0
    rows = [json.loads(x) for x in js.stdout.splitlines()]
    header, *body = csv_.stdout.splitlines()
    assert header.split(",")[:7] == ["file", "t_start_us", "t_end_us", "label", "class", "score", "events"]
    assert len(body) == len(rows) == len(table.stdout.splitlines()) - 1 >= 2
    for line, r in zip(body, rows):
        assert line.split(",")[1:3] == [str(r["t_start_us"]), str(r["t_end_us"])]
    bad = CliRunner().invoke(cli, ["predict", src, "--stride", "100ms"])
    assert bad.exit_code == 2


# ---------------------------------------------------------------- snnzoo info --histogram


def test_info_histogram_accumulates_chunks_exactly(shared_data, tmp_path):
    from matplotlib.image import imread

    from snnzoo.cli import cli
    from snnzoo.runtime.info import HISTOGRAM_BINS, EventSummary, scan_events

    path = shared_data / "events" / "aedat2_dvs128" / "neal_walking.aedat"  # 9.2 s: bins merge 2x, 4x...
    whole = read_events(path)[0]
    by_chunks = EventSummary(str(path))
    for i in range(0, len(whole), 5_000):
        by_chunks.add(whole[i:i + 5_000])
    s = scan_events(path)
    t = whole["t"] - whole["t"][0]
    assert s.bin_us == by_chunks.bin_us and (t[-1] // s.bin_us) < HISTOGRAM_BINS <= t[-1] // (s.bin_us // 2)
    for pol in (0, 1):
        ref = np.bincount(t[whole["p"] == pol] // s.bin_us, minlength=HISTOGRAM_BINS)
        np.testing.assert_array_equal(s.per_bin[pol], ref)
        np.testing.assert_array_equal(by_chunks.per_bin[pol], ref)
        frame = np.zeros((128, 128), np.int64)
        np.add.at(frame, (whole["y"][whole["p"] == pol], whole["x"][whole["p"] == pol]), 1)
        np.testing.assert_array_equal(s.frame[pol], frame[:s.frame.shape[1], :s.frame.shape[2]])
    png = tmp_path / "walk.png"
    result = CliRunner().invoke(cli, ["info", str(path), "--histogram", str(png), "--format", "json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["histogram"] == str(png)
    assert imread(png).shape[:2] == (420, 1200)
    two = CliRunner().invoke(cli, ["info", str(path), str(SAMPLE_NPY), "--histogram", str(tmp_path / "pngs")])
    assert two.exit_code == 0 and (tmp_path / "pngs" / f"{SAMPLE_NPY.name}.png").is_file()
    assert CliRunner().invoke(cli, ["info", str(path), str(SAMPLE_NPY), "--histogram", str(png)]).exit_code == 2


def test_torch_backend_gives_the_same_windows(default_predictor):
    """The torch backend bins each batch of windows on its device: same rows as ONNX Runtime."""
    pytest.importorskip("torch")
    ort = list(default_predictor.predict_windows([SAMPLE_NPY], "100ms", "40ms"))
    torch_rows = list(Predictor(backend="torch", batch_size=4).predict_windows([SAMPLE_NPY], "100ms", "40ms"))
    assert len(ort) == len(torch_rows) >= 6
    for a, b in zip(ort, torch_rows):
        assert (a.t_start_us, a.t_end_us, a.events, a.label) == (b.t_start_us, b.t_end_us, b.events, b.label)
        assert a.score == pytest.approx(b.score, abs=1e-5)
