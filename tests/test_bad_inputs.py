"""Bad inputs: each gets one line naming the file and the problem — Python API and CLI alike."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from snnzoo.cli import cli
from snnzoo.runtime.binning import bin_batch
from snnzoo.runtime.errors import EventFileError
from snnzoo.runtime.events import EVENT_DTYPE, make_events, validate_events
from snnzoo.runtime.readers import read_events

from conftest import DATA, data_missing

GOOD = make_events([1, 2, 3], [4, 5, 6], [10, 20, 30], [0, 1, 0])


def _npy(arr, **kw):
    def build(d: Path) -> Path:
        np.save(d / "f.npy", arr, **kw)
        return d / "f.npy"
    return build


def _bytes(name: str, data: bytes):
    def build(d: Path) -> Path:
        (d / name).write_bytes(data)
        return d / name
    return build


def _ev(**changes):
    ev = GOOD.copy()
    for k, v in changes.items():
        ev[k] = v
    return ev


def _five(*records):
    return b"".join(bytes([x, y, p << 7 | t >> 16 & 0x7F, t >> 8 & 0xFF, t & 0xFF]) for x, y, p, t in records)


def _npz_object(d: Path) -> Path:
    np.savez(d / "f.npz", events=np.array([{"x": 1}], dtype=object))
    return d / "f.npz"


def _npz_small_sensor(d: Path) -> Path:
    np.savez(d / "f.npz", events=GOOD, sensor_size=np.array([2, 10, 2]))
    return d / "f.npz"


def _truncated_npy(d: Path) -> Path:
    np.save(d / "f.npy", np.repeat(GOOD, 50))
    data = (d / "f.npy").read_bytes()
    (d / "f.npy").write_bytes(data[: len(data) - 7])
    return d / "f.npy"


def _truncated_aedat4(d: Path) -> Path:
    src = DATA / "events" / "aedat4" / "tonic_sample_320x240.aedat4"
    if not src.is_file():
        data_missing(f"{src} not found")
    (d / "f.aedat4").write_bytes(src.read_bytes()[:300_000])
    return d / "f.aedat4"


def _directory(d: Path) -> Path:
    (d / "folder.npy").mkdir()
    return d / "folder.npy"


AEDAT2_HEAD = b"#!AER-DAT2.0\r\n# AEChip: ch.unizh.ini.jaer.chip.retina.DVS128\r\n"
CASES = [
    ("unsorted timestamps", _npy(_ev(t=[10, 30, 20])), "timestamps are not sorted: t=20 at event 2 after t=30"),
    ("x outside the sensor", _bytes("f.bin", _five((1, 1, 0, 5), (40, 2, 1, 9))), "x=40 at event 1 is outside the sensor width 34"),
    ("y outside the sensor", _bytes("f.bs2", _five((1, 200, 0, 5))), "y=200 at event 0 is outside the sensor height 128"),
    ("x outside a stated sensor", _npz_small_sensor, "x=2 at event 1 is outside the sensor width 2"),
    ("negative time", _npy(_ev(t=[-5, 20, 30])), "negative timestamp t=-5 at event 0"),
    ("NaN time", _npy(np.array([[0.0, 1, 1, 0], [np.nan, 2, 2, 1]])), "t is NaN or infinite at event 1"),
    ("fractional time", _npy(np.array([[0.5, 1, 1, 0]])), "t has non-integer values; expected whole microseconds"),
    ("polarity out of range", _npy(_ev(p=[0, 2, 0])), "polarity values [0, 2] are not in {0, 1} or {-1, +1}"),
    ("empty stream", _npy(np.zeros(0, EVENT_DTYPE)), "empty event stream (0 events)"),
    ("empty file", _bytes("f.bin", b""), "empty file (0 bytes)"),
    ("wrong dtype", _npy(np.array(["a", "b"])), "expected a structured array with fields x, y, t, p or a numeric (N, 4) array"),
    ("wrong shape", _npy(np.zeros((5, 3))), "got shape (5, 3) dtype float64"),
    ("missing field", _npy(np.zeros(3, [("x", "i2"), ("y", "i2"), ("t", "i8")])), "lacks field(s) p"),
    ("object array", _npy(np.array([{"x": 1}], dtype=object), allow_pickle=True), "pickled object array; refusing to unpickle"),
    ("object array in npz", _npz_object, "pickled object array; refusing to unpickle"),
    ("truncated .bin", _bytes("f.bin", _five((1, 1, 0, 5), (2, 2, 1, 9))[:-3]), "truncated: 7 bytes is not a whole number of 5-byte events"),
    ("truncated .npy", _truncated_npy, "truncated or corrupt NPY file"),
    ("truncated .aedat", _bytes("f.aedat", AEDAT2_HEAD + bytes(8 * 3 + 5)), "truncated: 29 data bytes is not a whole number of 8-byte events"),
    ("truncated EVT2", _bytes("f.raw", b"% evt 2.0\n" + bytes(7)), "truncated: 7 data bytes is not a whole number of EVT2 words"),
    ("corrupt EVT3", _bytes("f.raw", b"% evt 3.0\n" + np.array([0x8001, 0x9000], "<u2").tobytes()), "corrupt EVT3 file (unknown EVT3 word type 0x9 at word 1)"),
    ("truncated AEDAT4", _truncated_aedat4, "truncated or corrupt AEDAT4 file"),
    ("corrupt AEDAT4 header", _bytes("f.aedat4", b"#!AER-DAT4.0\r\n" + (9999).to_bytes(4, "little") + b"junk"), "truncated or corrupt AEDAT4 header"),
    ("unsupported AEDAT 3.1", _bytes("f.aedat", b"#!AER-DAT3.1\r\n#End Of ASCII Header\r\n" + bytes(16)), "AEDAT 3.1 is not supported"),
    ("empty DAT", _bytes("f.dat", b"% Version 2\n% Width 640\n% Height 480\n"), "empty event stream (no data after the header)"),
    ("not an event file", _bytes("f.csv", b"x,y,t,p\n1,2,3,0\n"), "not an event file: unknown extension '.csv' and no known signature"),
    ("text named .bin", _bytes("f.bin", b"x,y,t,p\n1,2,3,0\n"), "not an event file: looks like text"),
    ("text named .npy", _bytes("f.npy", b"x,y,t,p\n1,2,3,0\n"), "not a valid .npy file"),
    ("directory", _directory, "is a directory, not an event file"),
    ("missing file", lambda d: d / "nope.npy", "no such file"),
]


@pytest.mark.parametrize("build, fragment", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_api_and_cli(build, fragment, tmp_path):
    path = build(tmp_path)
    with pytest.raises(EventFileError) as err:
        read_events(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: ") and fragment in msg and "\n" not in msg
    result = CliRunner().invoke(cli, ["info", str(path)])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == f"snnzoo: error: {msg}\n"


def test_cli_keeps_going_and_exits_1(tmp_path):
    """The installed entry point: good files described, each bad one a line on stderr, no traceback."""
    good = tmp_path / "good.npy"
    np.save(good, GOOD)
    bad1, bad2 = CASES[0][1](tmp_path), tmp_path / "missing.bin"
    proc = subprocess.run([sys.executable, "-m", "snnzoo.cli", "info", "--format", "json", str(bad1), str(good), str(bad2)],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stdout.count("\n") == 1 and '"file": "' + str(good) in proc.stdout and '"events": 3' in proc.stdout
    assert proc.stderr.splitlines() == [f"snnzoo: error: {bad1}: timestamps are not sorted: t=20 at event 2 after t=30 "
                                        "(1 decreases; sort by t) (byte offset 218)", f"snnzoo: error: {bad2}: no such file"]


@pytest.mark.parametrize("events, fragment", [
    (_ev(t=[10, 30, 20]), "events[1]: timestamps are not sorted at event 2"),
    (_ev(x=[1, 2, 34]), "events[1]: x=34 at event 2 is outside the sensor width (34)"),
    (_ev(p=[0, 1, 3]), "events[1]: p=3 at event 2 is not a polarity in [0, P) (2)"),
    (GOOD.astype([("x", "f4"), ("y", "i2"), ("t", "i8"), ("p", "i1")]), "events: field x must hold integers"),
])
def test_bad_input_binning(events, fragment):
    """Binning checks its input too (tonic returns all-zero frames for unsorted timestamps)."""
    with pytest.raises(EventFileError, match=fragment.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        bin_batch([GOOD, events], (34, 34, 2), n_time_bins=2)


def test_validate_in_memory_arrays():
    with pytest.raises(EventFileError, match=r"^<events>: expected a numpy array of events, got list$"):
        validate_events([1, 2, 3])
    ev = validate_events(np.array([[5, 1, 2, -1], [6, 3, 4, 1]]), (34, 34, 2))  # [t, x, y, p], p ∈ {−1, +1}
    assert ev.tolist() == [(1, 2, 5, 0), (3, 4, 6, 1)]
