"""Event file readers → ``(events, sensor_size, format_name)``; numpy only (no torch).

The format is chosen by content (magic bytes / header) first and by extension for the
formats without a signature (N-MNIST ``.bin``, DVS128 Gesture ``.bs2``):

========  ==============  ==============================================================
format    files           decoding
========  ==============  ==============================================================
npy       ``.npy``        structured array ``x, y, t, p`` or numeric ``(N, 4)`` array with
                          columns ``[t, x, y, p]``; never unpickled (``allow_pickle=False``)
npz       ``.npz``        one such array (any key) or the keys ``x, y, t, p``; an optional
                          ``sensor_size`` key ``(W, H, P)``
nmnist    ``.bin``        5 bytes per event: byte0 = x, byte1 = y, byte2 bit 7 = p,
                          t = 23 bits (byte2 bits 6–0, byte3, byte4) µs; an event with
                          y = 240 marks a timestamp overflow (+2¹³ µs to all later events,
                          as Orchard's reader and tonic); sensor 34×34×2
dvsgesture ``.bs2``       same 5-byte layout, sensor 128×128×2
aedat2    ``.aedat``      ``#`` header lines, then big-endian uint32 pairs (address, t µs);
                          DVS128 address: x = (a >> 1) & 127, y = (a >> 8) & 127, p = a & 1
                          (raw address fields; jAER mirrors x for display); addresses with
                          bit 15 set (external/special events) are dropped; sensor 128×128×2
aedat4    ``.aedat4``     the first event stream, via the ``aedat`` package (what tonic
                          uses); sensor from the stream's width and height
evt2      ``.raw``        Prophesee EVT 2.0 via ``expelliarmus``
evt3      ``.raw``        Prophesee EVT 3.0, decoded here (`decode_evt3`): expelliarmus ≤ 1.1
                          counts every TIME_LOW decrease as an overflow and stretches time
                          (its issue #19), so it is not used for EVT3
dat       ``.dat``        Prophesee DAT via ``expelliarmus``
========  ==============  ==============================================================

Sensor size of files that do not state it: Prophesee ``.raw`` from the ``plugin_name``
(`PROPHESEE_PLUGINS`); otherwise (and for ``.npy``) the smallest sensor holding the
events, ``(max x + 1, max y + 1, 2)``, unless the caller passes ``sensor_size``.
Every failure — missing, truncated, corrupt, unrecognised or invalid — raises
`EventFileError(path, reason)`; the events are checked by `validate_events`.
"""
from __future__ import annotations

import ctypes
import os
import re
import sys
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path
from xml.etree import ElementTree

import numpy as np

from .errors import EventFileError
from .events import EVENT_DTYPE, FIELDS, infer_sensor_size, make_events, validate_events

EXTENSIONS = {".npy": "npy", ".npz": "npz", ".bin": "nmnist", ".bs2": "dvsgesture",
              ".aedat": "aedat2", ".aedat4": "aedat4", ".raw": "prophesee", ".dat": "dat"}
# Prophesee HAL plugin name fragment → sensor (W, H)
PROPHESEE_PLUGINS = {"gen3": (640, 480), "gen31": (640, 480), "gen4": (1280, 720),
                     "gen41": (1280, 720), "imx636": (1280, 720), "imx8": (320, 320)}
_OVERFLOW_Y, _OVERFLOW_DT = 240, 1 << 13
Sensor = tuple[int, int, int]


def _open_head(path: Path, n: int = 64) -> bytes:
    if not path.exists():
        raise EventFileError(path, "no such file")
    if path.is_dir():
        raise EventFileError(path, "is a directory, not an event file")
    try:
        with open(path, "rb") as f:
            head = f.read(n)
    except OSError as e:
        raise EventFileError(path, f"cannot read ({e.strerror})") from None
    if not head:
        raise EventFileError(path, "empty file (0 bytes)")
    return head


def _text_header(path: Path, mark: bytes, limit: int = 1 << 20) -> tuple[list[str], int]:
    """Lines starting with ``mark`` at the top of the file, and the byte offset after them."""
    with open(path, "rb") as f:
        data = f.read(limit)
    lines, pos = [], 0
    while data.startswith(mark, pos):
        end = data.find(b"\n", pos)
        if end < 0:
            raise EventFileError(path, "truncated header (no event data)")
        lines.append(data[pos:end].decode("latin-1").strip())
        pos = end + 1
    return lines, pos


def sniff_format(path: str | Path) -> str:
    """Name of the format of ``path`` (see module doc), from its content, then its extension."""
    path = Path(path)
    head = _open_head(path)
    ext = path.suffix.lower()
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith(b"PK\x03\x04"):
        return "npz"
    if head.startswith(b"#!AER-DAT"):
        version = head[9:12].decode("latin-1", "replace")
        if version.startswith("2"):
            return "aedat2"
        if version.startswith("4"):
            return "aedat4"
        raise EventFileError(path, f"AEDAT {version.strip()} is not supported (AEDAT 2.0 DVS128 and AEDAT4 are)")
    if head.startswith(b"% "):
        keys = " ".join(_text_header(path, b"%")[0]).lower()
        if re.search(r"% evt 3|format evt3", keys):
            return "evt3"
        if re.search(r"% evt 2|format evt2", keys):
            return "evt2"
        if ext == ".dat" or "% version" in keys:
            return "dat"
        raise EventFileError(path, "Prophesee header without an 'evt' or 'format' line (EVT version unknown)")
    if ext in (".bin", ".bs2"):
        if all(32 <= b < 127 or b in b"\t\n\r" for b in head):
            raise EventFileError(path, f"not an event file: looks like text ({head[:16]!r}), not binary {ext} events")
        return EXTENSIONS[ext]
    if ext in EXTENSIONS:
        raise EventFileError(path, f"not a valid {ext} file (content starts with {head[:8]!r})")
    raise EventFileError(path, f"not an event file: unknown extension {ext or '(none)'!r} and no known "
                               f"signature (supported: {', '.join(sorted(EXTENSIONS))})")


@contextmanager
def _native_output(sink: list[str]):
    """Capture what native decoders print on fds 1/2 (C ``printf``, Rust panics) into ``sink``,
    so that a bad file yields one clean error line. Process-wide while active."""
    libc = ctypes.CDLL(None)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 1)
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            libc.fflush(None)
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            tmp.seek(0)
            sink.extend(ln.strip() for ln in tmp.read().decode("utf-8", "replace").splitlines() if ln.strip())


def _native_decode(path: Path, what: str, fn):
    """Run a native decoder; any failure (exception, Rust panic, ``None``) → `EventFileError`."""
    printed: list[str] = []
    try:
        with _native_output(printed):
            result = fn()
    except (KeyboardInterrupt, SystemExit):
        raise
    except EventFileError:
        raise
    except BaseException as e:  # noqa: BLE001 — pyo3 panics derive from BaseException
        raise EventFileError(path, f"truncated or corrupt {what} file ({e})") from None
    if result is None:
        detail = printed[0].removeprefix("ERROR:").strip().rstrip(".") if printed else "decoder failed"
        raise EventFileError(path, f"corrupt {what} file ({detail})")
    return result


def _decode_5byte(path: Path, sensor: Sensor) -> tuple[np.ndarray, Sensor]:
    raw = np.fromfile(path, dtype=np.uint8)
    if len(raw) % 5:
        raise EventFileError(path, f"truncated: {len(raw)} bytes is not a whole number of 5-byte events")
    raw = raw.reshape(-1, 5).astype(np.int64)
    t = ((raw[:, 2] & 0x7F) << 16) | (raw[:, 3] << 8) | raw[:, 4]
    overflow = raw[:, 1] == _OVERFLOW_Y
    if overflow.any():
        t = t + np.cumsum(overflow) * _OVERFLOW_DT
        raw, t = raw[~overflow], t[~overflow]
    return make_events(raw[:, 0], raw[:, 1], t, raw[:, 2] >> 7), sensor


def _strict(path: Path, reader, sensor_size: Sensor | None = None) -> tuple[np.ndarray, Sensor]:
    events, sensor = reader(path)
    sensor = sensor or sensor_size
    events = validate_events(events, sensor, path)
    return events, sensor or infer_sensor_size(events)


def read_nmnist_bin(path: str | Path) -> tuple[np.ndarray, Sensor]:
    """N-MNIST ``.bin`` → ``(events, (34, 34, 2))`` (layout in the module doc); validated."""
    return _strict(Path(path), lambda p: _decode_5byte(p, (34, 34, 2)))


def read_dvsgesture_bs2(path: str | Path) -> tuple[np.ndarray, Sensor]:
    """DVS128 Gesture ``.bs2`` (N-MNIST's 5-byte layout) → ``(events, (128, 128, 2))``; validated."""
    return _strict(Path(path), lambda p: _decode_5byte(p, (128, 128, 2)))


def _load_npy(path: Path) -> tuple[np.ndarray, Sensor | None]:
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as e:
        if "allow_pickle" in str(e) or "pickle" in str(e):
            raise EventFileError(path, "holds a pickled object array; refusing to unpickle it") from None
        raise EventFileError(path, f"truncated or corrupt NPY file ({e})") from None
    except (OSError, EOFError) as e:
        raise EventFileError(path, f"truncated or corrupt NPY file ({e})") from None
    return arr, None


def _load_npz(path: Path) -> tuple[np.ndarray, Sensor | None]:
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except ValueError as e:
        if "pickle" in str(e):
            raise EventFileError(path, "holds a pickled object array; refusing to unpickle it") from None
        raise EventFileError(path, f"truncated or corrupt NPZ file ({e})") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise EventFileError(path, f"truncated or corrupt NPZ file ({e})") from None
    sensor = None
    if "sensor_size" in data:
        s = np.asarray(data.pop("sensor_size")).ravel()
        if s.dtype.kind not in "iu" or len(s) not in (2, 3) or (s <= 0).any():
            raise EventFileError(path, f"sensor_size must be 2 or 3 positive integers (W, H[, P]), got {s.tolist()}")
        sensor = (int(s[0]), int(s[1]), int(s[2]) if len(s) == 3 else 2)
    if all(f in data for f in FIELDS):
        cols = [data[f] for f in FIELDS]
        if any(c.ndim != 1 or len(c) != len(cols[0]) for c in cols):
            raise EventFileError(path, "keys x, y, t, p must be 1-D arrays of equal length")
        arr = np.empty(len(cols[0]), dtype=[(f, c.dtype) for f, c in zip(FIELDS, cols)])
        for f, c in zip(FIELDS, cols):
            arr[f] = c
        return arr, sensor
    if len(data) != 1:
        raise EventFileError(path, f"NPZ holds keys {sorted(data)}; expected one event array or keys x, y, t, p")
    return next(iter(data.values())), sensor


def _load_aedat2(path: Path) -> tuple[np.ndarray, Sensor]:
    lines, start = _text_header(path, b"#")
    chip = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("# AEChip:")), "")
    if chip and "DVS128" not in chip:
        raise EventFileError(path, f"AEDAT 2.0 from chip {chip!r} is not supported (only DVS128)")
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read()
    if len(data) % 8:
        raise EventFileError(path, f"truncated: {len(data)} data bytes is not a whole number of 8-byte events")
    words = np.frombuffer(data, dtype=">u4").reshape(-1, 2)
    addr, t = words[:, 0].astype(np.int64), words[:, 1].astype(np.int64)
    dvs = (addr >> 15) == 0
    addr, t = addr[dvs], t[dvs]
    return make_events((addr >> 1) & 127, (addr >> 8) & 127, t, addr & 1), (128, 128, 2)


def _load_aedat4(path: Path) -> tuple[np.ndarray, Sensor]:
    try:
        import aedat
    except ImportError:
        raise EventFileError(path, "reading AEDAT4 needs the 'aedat' package (pip install aedat)") from None
    with open(path, "rb") as f:
        head = f.read(18)
        size = int.from_bytes(head[14:18], "little", signed=True) if len(head) == 18 else -1
        header = f.read(size) if size > 0 else b""
    if len(header) != size or b"<dv" not in header or b"</dv>" not in header:
        raise EventFileError(path, "truncated or corrupt AEDAT4 header")
    try:
        ElementTree.fromstring(header[header.index(b"<dv"):header.rindex(b"</dv>") + 5].decode("utf-8"))
    except (UnicodeDecodeError, ElementTree.ParseError) as e:
        raise EventFileError(path, f"corrupt AEDAT4 header ({e})") from None

    def decode():
        decoder = aedat.Decoder(str(path))
        streams = {i: s for i, s in decoder.id_to_stream().items() if s.get("type") == "events"}
        if not streams:
            raise EventFileError(path, "AEDAT4 file has no event stream")
        sid = min(streams)
        return streams[sid], [pk["events"] for pk in decoder if pk["stream_id"] == sid and "events" in pk]

    stream, packets = _native_decode(path, "AEDAT4", decode)
    if not packets:
        raise EventFileError(path, "empty event stream (0 events)")
    ev = np.concatenate(packets)
    return make_events(ev["x"], ev["y"], ev["t"], ev["on"]), (int(stream["width"]), int(stream["height"]), 2)


def _prophesee_sensor(lines: list[str]) -> Sensor | None:
    text = "\n".join(lines)
    w = re.search(r"(?im)^%\s*width\s+(\d+)", text) or re.search(r"(?i)width=(\d+)", text)
    h = re.search(r"(?im)^%\s*height\s+(\d+)", text) or re.search(r"(?i)height=(\d+)", text)
    if w and h:
        return (int(w.group(1)), int(h.group(1)), 2)
    g = re.search(r"(?im)^%\s*geometry\s+(\d+)x(\d+)", text)
    if g:
        return (int(g.group(1)), int(g.group(2)), 2)
    plugin = re.search(r"(?im)^%\s*plugin_name\s+(\S+)", text)
    if plugin:
        for key in sorted(PROPHESEE_PLUGINS, key=len, reverse=True):
            if key in plugin.group(1).lower():
                return (*PROPHESEE_PLUGINS[key], 2)
    return None


def _load_prophesee(path: Path, encoding: str) -> tuple[np.ndarray, Sensor | None]:
    from expelliarmus import Wizard

    lines, start = _text_header(path, b"%")
    size = path.stat().st_size - start
    if size <= (2 if encoding == "DAT" else 0):
        raise EventFileError(path, "empty event stream (no data after the header)")
    if encoding == "DAT":
        if (size - 2) % 8:
            raise EventFileError(path, f"truncated: {size - 2} data bytes is not a whole number of 8-byte events")
    elif size % 4:
        raise EventFileError(path, f"truncated: {size} data bytes is not a whole number of {encoding} words")
    ev = _native_decode(path, encoding, lambda: Wizard(encoding=encoding).read(path))
    return make_events(ev["x"], ev["y"], ev["t"], ev["p"]), _prophesee_sensor(lines)


_EVT3_VALID = np.zeros(16, bool)
_EVT3_VALID[[0x0, 0x2, 0x3, 0x4, 0x5, 0x6, 0x7, 0x8, 0xA, 0xE, 0xF]] = True


def _ffill(mask: np.ndarray, values: np.ndarray, default: int = 0) -> np.ndarray:
    """At each word, the value of the last word where ``mask`` holds (``default`` before any)."""
    idx = np.where(mask, np.arange(len(mask)), -1)
    np.maximum.accumulate(idx, out=idx)
    return np.where(idx >= 0, values[np.maximum(idx, 0)], default)


def decode_evt3(words: np.ndarray) -> tuple[np.ndarray, ...]:
    """Prophesee EVT 3.0 16-bit words → ``(x, y, t, p)`` (Prophesee's format spec).

    Word type = bits 15–12. ADDR_Y (0x0): y = bits 10–0. ADDR_X (0x2): one event at
    x = bits 10–0, p = bit 11. VECT_BASE_X (0x3): base x and p for the vectors that follow;
    VECT_12 (0x4) / VECT_8 (0x5): events at base + i for each set bit i of the 12 / 8-bit
    mask, then base += 12 / 8. TIME_HIGH (0x8) / TIME_LOW (0x6): t = (wraps·2¹² + high)·2¹²
    + low, wraps counting TIME_HIGH decreases. 0x7, 0xA, 0xE, 0xF carry no CD events.
    """
    words = words.astype(np.int64)
    typ, v = words >> 12, words & 0xFFF
    if not _EVT3_VALID[typ].all():
        i = int(np.argmin(_EVT3_VALID[typ]))
        raise ValueError(f"unknown EVT3 word type {int(typ[i]):#x} at word {i}")
    is_th = typ == 0x8
    ths = v[is_th]
    high = np.zeros(len(words), np.int64)
    high[is_th] = (np.cumsum(np.r_[False, ths[1:] < ths[:-1]]) << 12) + ths
    t = (_ffill(is_th, high) << 12) + _ffill(typ == 0x6, v)
    y = _ffill(typ == 0x0, v & 0x7FF)
    is_base = typ == 0x3
    size = np.select([typ == 0x4, typ == 0x5], [12, 8], 0)
    run = np.cumsum(size) - size  # vector bits before this word…
    run -= _ffill(is_base, run)   # …since the last VECT_BASE_X
    is_ev = (typ == 0x2) | (size > 0)
    x0 = np.where(typ == 0x2, v & 0x7FF, _ffill(is_base, v & 0x7FF) + run)[is_ev]
    pol = np.where(typ == 0x2, v >> 11, _ffill(is_base, v >> 11))[is_ev]
    mask = np.select([typ == 0x2, typ == 0x4, typ == 0x5], [1, v, v & 0xFF], 0)[is_ev]
    row, bit = np.nonzero((mask[:, None] >> np.arange(12)) & 1)
    return x0[row] + bit, y[is_ev][row], t[is_ev][row], pol[row] & 1


def _load_evt3(path: Path) -> tuple[np.ndarray, Sensor | None]:
    lines, start = _text_header(path, b"%")
    size = path.stat().st_size - start
    if size <= 0:
        raise EventFileError(path, "empty event stream (no data after the header)")
    if size % 2:
        raise EventFileError(path, f"truncated: {size} data bytes is not a whole number of EVT3 words")
    try:
        x, y, t, p = decode_evt3(np.fromfile(path, dtype="<u2", offset=start))
    except ValueError as e:
        raise EventFileError(path, f"corrupt EVT3 file ({e})") from None
    return make_events(x, y, t, p), _prophesee_sensor(lines)


_LOADERS = {
    "npy": _load_npy,
    "npz": _load_npz,
    "nmnist": lambda p: _decode_5byte(p, (34, 34, 2)),
    "dvsgesture": lambda p: _decode_5byte(p, (128, 128, 2)),
    "aedat2": _load_aedat2,
    "aedat4": _load_aedat4,
    "evt2": lambda p: _load_prophesee(p, "EVT2"),
    "evt3": _load_evt3,
    "dat": lambda p: _load_prophesee(p, "DAT"),
}


def read_events(path: str | Path, sensor_size: Sensor | None = None) -> tuple[np.ndarray, Sensor, str]:
    """Read and validate one event file → ``(events EVENT_DTYPE, (W, H, P), format_name)``.

    ``sensor_size`` is used for files that do not state one (``.npy``, headerless ``.dat``…);
    without it those get the smallest sensor holding the events.
    """
    path = Path(path)
    fmt = sniff_format(path)
    events, sensor = _strict(path, _LOADERS[fmt], sensor_size)
    return events, sensor, fmt


def write_npy(path: str | Path, events: np.ndarray) -> Path:
    """Validate ``events`` and save them as a structured ``EVENT_DTYPE`` ``.npy`` (no pickle)."""
    path = Path(path)
    events = validate_events(events, None, path)
    np.save(path, events.astype(EVENT_DTYPE, copy=False), allow_pickle=False)
    return path
