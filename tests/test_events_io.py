"""Readers: every real file in ../shared/data against an independent decoding written here."""
from __future__ import annotations

import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from snnzoo.runtime.events import EVENT_DTYPE, make_events
from snnzoo.runtime.readers import decode_evt3, read_dvsgesture_bs2, read_events, read_nmnist_bin, write_npy

# ---------------------------------------------------------------- independent decoders


def five_byte(path: Path) -> np.ndarray:
    """N-MNIST / DVS Gesture: x, y, then bit 7 = p and a 23-bit big-endian time."""
    rec = np.fromfile(path, dtype=[("x", "u1"), ("y", "u1"), ("hi", "u1"), ("lo", ">u2")])
    t = (rec["hi"].astype(np.int64) & 0x7F) * 65536 + rec["lo"]
    return make_events(rec["x"], rec["y"], t, rec["hi"] // 128)


def aedat2(path: Path) -> np.ndarray:
    data = path.read_bytes()
    start = 0
    for line in data.split(b"\n"):
        if not line.startswith(b"#"):
            break
        start += len(line) + 1
    ev = np.frombuffer(data[start:], dtype=[("a", ">u4"), ("t", ">u4")])
    a = ev["a"].astype(np.int64)
    return make_events(a // 2 % 128, a // 256 % 128, ev["t"], a % 2)


def prophesee_body(path: Path) -> tuple[bytes, bytes]:
    data = path.read_bytes()
    pos = 0
    while data[pos:pos + 1] == b"%":
        pos = data.index(b"\n", pos) + 1
    return data[:pos], data[pos:]


def dat(path: Path) -> np.ndarray:
    body = prophesee_body(path)[1][2:]  # event type, event size
    w = np.frombuffer(body, dtype="<u4").reshape(-1, 2).astype(np.int64)
    return make_events(w[:, 1] & 0x3FFF, (w[:, 1] >> 14) & 0x3FFF, w[:, 0], (w[:, 1] >> 28) & 0xF)


def evt2(path: Path) -> np.ndarray:
    xs, ys, ts, ps, high = [], [], [], [], 0
    for w in np.frombuffer(prophesee_body(path)[1], dtype="<u4").tolist():
        kind = w >> 28
        if kind == 0x8:
            high = w & 0x0FFFFFFF
        elif kind in (0, 1):
            xs.append((w >> 11) & 0x7FF), ys.append(w & 0x7FF), ps.append(kind)
            ts.append((high << 6) | ((w >> 22) & 0x3F))
    return make_events(xs, ys, ts, ps)


def evt3_loop(words) -> np.ndarray:
    """EVT 3.0 word by word, as in Prophesee's format description."""
    xs, ys, ts, ps = [], [], [], []
    y = base = pol = high = low = wraps = 0
    last_high = None
    for w in [int(v) for v in words]:
        kind, v = w >> 12, w & 0xFFF
        if kind == 0x0:
            y = v & 0x7FF
        elif kind == 0x2:
            xs.append(v & 0x7FF), ys.append(y), ps.append(v >> 11), ts.append((wraps << 24) | (high << 12) | low)
        elif kind == 0x3:
            base, pol = v & 0x7FF, v >> 11
        elif kind in (0x4, 0x5):
            n = 12 if kind == 0x4 else 8
            for k in range(n):
                if v >> k & 1:
                    xs.append(base + k), ys.append(y), ps.append(pol), ts.append((wraps << 24) | (high << 12) | low)
            base += n
        elif kind == 0x6:
            low = v
        elif kind == 0x8:
            if last_high is not None and v < last_high:
                wraps += 1
            high = last_high = v
    return make_events(xs, ys, ts, ps)


def lz4_frame(buf: bytes) -> bytes:
    """LZ4 frame format → bytes (the compression AEDAT4 packets use)."""
    assert struct.unpack_from("<I", buf)[0] == 0x184D2204
    flags = buf[4]
    pos, out = 7 + (8 if flags & 8 else 0) + (4 if flags & 1 else 0), bytearray()
    while (size := struct.unpack_from("<I", buf, pos)[0]) != 0:
        pos += 4
        block, pos = buf[pos:pos + (size & 0x7FFFFFFF)], pos + (size & 0x7FFFFFFF) + (4 if flags & 0x10 else 0)
        if size & 0x80000000:
            out += block
            continue
        i = 0
        while i < len(block):
            token = block[i]
            i += 1
            lengths = [token >> 4, token & 15]
            for j in (0, 1):
                if j == 1:
                    out += block[i:i + lengths[0]]
                    i += lengths[0]
                    if i >= len(block):
                        break
                    offset = block[i] | block[i + 1] << 8
                    i += 2
                if lengths[j] == 15:
                    while True:
                        lengths[j] += block[i]
                        i += 1
                        if block[i - 1] != 255:
                            break
            else:
                start, n = len(out) - offset, lengths[1] + 4
                for k in range(n):  # overlapping copies byte by byte
                    out.append(out[start + k])
    return bytes(out)


def aedat4(path: Path) -> tuple[np.ndarray, tuple[int, int]]:
    data = path.read_bytes()
    assert data.startswith(b"#!AER-DAT4.0\r\n")
    hlen = struct.unpack_from("<i", data, 14)[0]
    hdr = data[18:18 + hlen]
    root = struct.unpack_from("<I", hdr)[0]
    vtable = root - struct.unpack_from("<i", hdr, root)[0]
    end = struct.unpack_from("<q", hdr, root + struct.unpack_from("<H", hdr, vtable + 6)[0])[0]
    xml = hdr.decode("latin-1")
    size = tuple(int(re.search(rf'"{k}" type="int">(\d+)<', xml).group(1)) for k in ("sizeX", "sizeY"))
    pos, packets = 18 + hlen, []
    while pos < end:
        stream, n = struct.unpack_from("<ii", data, pos)
        body, pos = data[pos + 8:pos + 8 + n], pos + 8 + n
        fb = lz4_frame(body)[4:]  # size-prefixed flatbuffer
        if stream != 0 or fb[4:8] != b"EVTS":
            continue
        root = struct.unpack_from("<I", fb)[0]
        vtable = root - struct.unpack_from("<i", fb, root)[0]
        vec = root + struct.unpack_from("<H", fb, vtable + 4)[0]
        vec += struct.unpack_from("<I", fb, vec)[0]
        count = struct.unpack_from("<I", fb, vec)[0]
        packets.append(np.frombuffer(fb, dtype=[("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("on", "u1"), ("_", "V3")],
                                     count=count, offset=vec + 4))
    ev = np.concatenate(packets)
    return make_events(ev["x"], ev["y"], ev["t"], ev["on"]), size


def same(a: np.ndarray, b: np.ndarray) -> None:
    assert len(a) == len(b)
    for f in ("x", "y", "t", "p"):
        if not np.array_equal(a[f], b[f]):
            np.testing.assert_array_equal(a[f].astype(np.int64), b[f].astype(np.int64), err_msg=f)


# ---------------------------------------------------------------- real files


def test_every_nmnist_recording(shared_data, nmnist_root):
    import tonic.io

    files = sorted(nmnist_root.glob("Train/*/*.bin")) + [shared_data / "nmnist" / "sample_nmnist.bin"]
    assert len(files) == 1001
    for f in files:
        ev, sensor, fmt = read_events(f)
        assert (sensor, fmt, ev.dtype) == ((34, 34, 2), "nmnist", EVENT_DTYPE)
        same(ev, five_byte(f))
    same(ev, tonic.io.read_mnist_file(str(f), dtype=EVENT_DTYPE))
    same(read_nmnist_bin(f)[0], ev)


def test_dvsgesture_clips(shared_data):
    files = sorted((shared_data / "dvsgesture").glob("*.bs2"))
    assert len(files) == 10
    for f in files:
        ev, sensor, fmt = read_events(f)
        assert (sensor, fmt) == ((128, 128, 2), "dvsgesture")
        assert 63_000 <= len(ev) <= 182_000 and 1_440_000 < ev["t"][-1] - ev["t"][0] < 1_450_000
        same(ev, five_byte(f))
        same(read_dvsgesture_bs2(f)[0], ev)


def test_aedat2_dvs128(shared_data):
    files = sorted((shared_data / "events" / "aedat2_dvs128").glob("*.aedat"))
    assert len(files) == 2
    for f in files:
        ev, sensor, fmt = read_events(f)
        assert (sensor, fmt) == ((128, 128, 2), "aedat2")
        same(ev, aedat2(f))


def test_aedat4(shared_data):
    f = shared_data / "events" / "aedat4" / "tonic_sample_320x240.aedat4"
    ev, sensor, fmt = read_events(f)
    ref, (w, h) = aedat4(f)
    assert (sensor, fmt) == ((w, h, 2), "aedat4") == ((320, 240, 2), "aedat4")
    same(ev, ref)
    assert 111_000 < len(ev) < 113_000 and 0.58e6 < ev["t"][-1] - ev["t"][0] < 0.6e6  # README: 112k, 0.59 s


@pytest.mark.parametrize("name, fmt, sensor, decode", [
    ("expelliarmus_evt2_sample.raw", "evt2", (640, 480, 2), evt2),   # plugin gen3
    ("expelliarmus_evt3_sample.raw", "evt3", (1280, 720, 2), None),  # plugin gen41
    ("faery_gen4.dat", "dat", (1280, 720, 2), dat),                  # header Width/Height
    ("tonic_sample_ncars.dat", "dat", (78, 42, 2), dat),             # no geometry: inferred
])
def test_prophesee(shared_data, name, fmt, sensor, decode):
    f = shared_data / "events" / "prophesee" / name
    ev, got_sensor, got_fmt = read_events(f)
    assert (got_sensor, got_fmt) == (sensor, fmt)
    ref = decode(f) if decode else evt3_loop(np.frombuffer(prophesee_body(f)[1], dtype="<u2"))
    same(ev, ref)


# ---------------------------------------------------------------- synthetic


def test_evt3_vectors_and_time_high_wrap():
    words = [0x8FFE, 0x6000, 0x0005, 0x2803,  # t = 0xFFE000, y = 5, ON event x = 3
             0x3000 | 1 << 11 | 100, 0x4000 | 0b100000000101, 0x5000 | 0b10000001, 0x5000 | 0xFF,
             0x6FFF, 0x0007, 0x3000 | 40, 0x4FFF,  # new y, OFF vector of 12 at 40
             0x8FFF, 0x8000, 0x6001, 0x0002, 0x2009,  # TIME_HIGH wraps: t = 2^24 + 1
             0xA123, 0xE000, 0xF000, 0x7000]
    x, y, t, p = decode_evt3(np.array(words, dtype=np.uint16))
    same(make_events(x, y, t, p), evt3_loop(words))
    assert t[-1] == (1 << 24) + 1 and len(x) == 1 + 3 + 2 + 8 + 12 + 1


def test_nmnist_overflow_marker(tmp_path):
    rec = [(1, 2, 0x80, 0x00, 0x10), (0, 240, 0, 0, 0), (3, 4, 0x00, 0x00, 0x05)]
    f = tmp_path / "o.bin"
    f.write_bytes(bytes(b for r in rec for b in r))
    ev, _, _ = read_events(f)
    assert ev.tolist() == [(1, 2, 16, 1), (3, 4, 5 + 8192, 0)]


def test_npy_npz_roundtrip_and_plain_columns(tmp_path):
    ev = make_events([0, 5, 33], [1, 2, 3], [10, 10, 20], [1, 0, 1])
    same(read_events(write_npy(tmp_path / "e.npy", ev))[0], ev)
    plain = np.stack([ev["t"], ev["x"], ev["y"], ev["p"]], 1).astype(np.float64)  # [t, x, y, p]
    np.save(tmp_path / "plain.npy", plain)
    ev2, sensor, fmt = read_events(tmp_path / "plain.npy")
    same(ev2, ev)
    assert (sensor, fmt) == ((34, 4, 2), "npy")
    assert read_events(tmp_path / "plain.npy", sensor_size=(40, 40, 2))[1] == (40, 40, 2)
    np.savez(tmp_path / "cols.npz", x=ev["x"], y=ev["y"], t=ev["t"], p=np.where(ev["p"] > 0, 1, -1),
             sensor_size=np.array([34, 34, 2]))
    ev3, sensor, fmt = read_events(tmp_path / "cols.npz")
    same(ev3, ev)
    assert (sensor, fmt) == ((34, 34, 2), "npz")
    np.savez(tmp_path / "one.npz", events=ev)
    same(read_events(tmp_path / "one.npz")[0], ev)


def test_content_wins_over_extension(tmp_path):
    ev = make_events([1], [2], [3], [0])
    f = tmp_path / "looks_like.bin"
    np.save(f.with_suffix(".npy"), ev)
    f.with_suffix(".npy").rename(f)
    assert read_events(f)[2] == "npy"


def test_readers_do_not_import_torch(shared_data):
    code = ("import sys, snnzoo.runtime.readers as r, snnzoo.runtime.binning as b\n"
            f"ev, s, _ = r.read_events({str(shared_data / 'nmnist' / 'sample_nmnist.bin')!r})\n"
            f"r.read_events({str(shared_data / 'events' / 'prophesee' / 'faery_gen4.dat')!r})\n"
            f"r.read_events({str(shared_data / 'events' / 'aedat4' / 'tonic_sample_320x240.aedat4')!r})\n"
            "b.bin_batch([ev], s, n_time_bins=4)\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'tonic') or m.startswith('snnzoo.zoo')]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_info_on_every_real_event_file(shared_data):
    import json

    from click.testing import CliRunner

    from snnzoo.cli import cli

    files = ([shared_data / "nmnist" / "sample_nmnist.bin"] + sorted((shared_data / "dvsgesture").glob("*.bs2"))
             + sorted((shared_data / "events").glob("*/*")))
    assert len(files) == 18
    result = CliRunner().invoke(cli, ["info", "--format", "json", *map(str, files)])
    assert result.exit_code == 0 and result.stderr == ""
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["file"] for r in rows] == [str(f) for f in files]
    for row, f in zip(rows, files):
        ev, sensor, fmt = read_events(f)
        assert (row["format"], row["events"], row["sensor_size"]) == (fmt, len(ev), list(sensor))
        assert row["duration_us"] == ev["t"][-1] - ev["t"][0]
        assert row["on_fraction"] == pytest.approx(ev["p"].mean(), abs=1e-6)
        assert row["event_rate_hz"] == pytest.approx(len(ev) / (row["duration_us"] * 1e-6), rel=1e-6)
    text = CliRunner().invoke(cli, ["info", str(files[0])])
    assert text.exit_code == 0 and text.stdout == (f"{files[0]}: nmnist, 4,325 events, 0.310521 s, "
                                                   "sensor 34×34×2, ON 49.6%, 13.9 kev/s\n")
