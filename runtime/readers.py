"""Event file readers → ``(events, sensor_size, format_name)``; numpy only (no torch).

The format is chosen by content (magic bytes / header) first and by extension for the
formats without a signature (N-MNIST ``.bin``, DVS128 Gesture ``.bs2``):

========  ==============  ==============================================================
format    files           decoding
========  ==============  ==============================================================
npy       ``.npy``        structured array ``x, y, t, p`` or numeric ``(N, 4)`` array with
                          columns ``[t, x, y, p]``; never unpickled (header parsed, data
                          memory-mapped)
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
                          uses), packet by packet; sensor from the stream's width and height
evt2      ``.raw``        Prophesee EVT 2.0 32-bit words, decoded here (`_chunks_evt2`)
evt3      ``.raw``        Prophesee EVT 3.0, decoded here (`decode_evt3`): expelliarmus ≤ 1.1
                          counts every TIME_LOW decrease as an overflow and stretches time
                          (its issue #19), so it is not used
dat       ``.dat``        Prophesee DAT, 8 bytes per event, decoded here (`_chunks_dat`)
========  ==============  ==============================================================

Every format is read in chunks (`EventStream`, about `CHUNK_EVENTS` events in memory at a
time; ``.npz`` is decompressed whole), so files larger than memory stream through;
`read_events` concatenates the chunks. Sensor size of files that do not state it: Prophesee
``.raw`` from the ``plugin_name`` (`PROPHESEE_PLUGINS`); otherwise (and for ``.npy``) the
smallest sensor holding the events, ``(max x + 1, max y + 1, 2)``, unless the caller passes
``sensor_size``. Every failure — missing, truncated, corrupt, unrecognised or invalid —
raises `EventFileError(path, reason)`, naming the byte offset of bad data where the format
has one; the events are checked by `validate_events`.
"""
from __future__ import annotations

import itertools
import os
import re
import sys
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from xml.etree import ElementTree

import numpy as np

from .errors import EventFileError
from .events import EVENT_DTYPE, FIELDS, make_events, validate_events

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
    """Capture what the native AEDAT4 decoder prints on fd 2 (Rust panics) into ``sink``, so
    that a bad file yields one clean error line. Process-wide while active, so stdout (where
    `snnzoo predict` writes rows from another thread while the next chunk is decoded) is left alone."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
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


# ---- chunked decoders: each yields (events, byte offset of each event) --------------------
# ``events`` is anything `validate_events` takes; a decoder raises `EventFileError` naming the
# byte offset of the first bad byte after yielding every whole chunk before it.
Chunk = tuple[np.ndarray, np.ndarray]


def _blocks(path: Path, start: int, record: int, per_chunk: int, unit: str,
            data_bytes: str = "data bytes") -> Iterator[tuple[int, bytes]]:
    """``(byte offset, data)`` of whole ``record``-byte records from ``start``, ``per_chunk`` at a
    time; a trailing partial record raises (naming its offset) after the last whole block."""
    size = path.stat().st_size - start
    with open(path, "rb") as f:
        f.seek(start)
        pos = start
        while data := f.read(record * per_chunk):
            whole = len(data) - len(data) % record
            if whole:
                yield pos, data[:whole]
            if whole < len(data):
                raise EventFileError(path, f"truncated: {size} {data_bytes} is not a whole number of {unit} "
                                           f"(an incomplete one at byte offset {pos + whole})")
            pos += len(data)


def _chunks_5byte(path: Path, per_chunk: int) -> Iterator[Chunk]:
    overflows = 0
    for pos, data in _blocks(path, 0, 5, per_chunk, "5-byte events", "bytes"):
        raw = np.frombuffer(data, np.uint8).reshape(-1, 5).astype(np.int64)
        t = ((raw[:, 2] & 0x7F) << 16) | (raw[:, 3] << 8) | raw[:, 4]
        offsets = pos + 5 * np.arange(len(raw), dtype=np.int64)
        overflow = raw[:, 1] == _OVERFLOW_Y
        t += overflows * _OVERFLOW_DT
        if overflow.any():
            t += np.cumsum(overflow) * _OVERFLOW_DT
            overflows += int(overflow.sum())
            keep = ~overflow
            raw, t, offsets = raw[keep], t[keep], offsets[keep]
        if len(t):
            yield make_events(raw[:, 0], raw[:, 1], t, raw[:, 2] >> 7), offsets


def _npy_layout(path: Path) -> tuple[int, np.dtype, tuple[int, ...], bool]:
    """``(data offset, dtype, shape, fortran_order)`` from an ``.npy`` header (never unpickles)."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(f)
            start = f.tell()
    except (ValueError, OSError, EOFError) as e:
        raise EventFileError(path, f"truncated or corrupt NPY file ({e})") from None
    if dtype.hasobject:
        raise EventFileError(path, "holds a pickled object array; refusing to unpickle it")
    return start, dtype, shape, fortran


def _chunks_npy(path: Path, per_chunk: int) -> Iterator[Chunk]:
    """Memory-mapped (structured 1-D or C-ordered ``(N, 4)``): one chunk in memory at a time.
    Other layouts are loaded whole (and refused by validation unless Fortran-ordered ``(N, 4)``)."""
    start, dtype, shape, fortran = _npy_layout(path)
    plain = len(shape) == 2 and dtype.names is None and not fortran
    if not (plain or len(shape) == 1 and dtype.names is not None):
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise EventFileError(path, f"truncated or corrupt NPY file ({e})") from None
        yield arr, np.full(len(arr) if arr.ndim else 0, -1, np.int64)
        return
    row = dtype.itemsize * (shape[1] if plain else 1)
    rows = min(shape[0], (path.stat().st_size - start) // max(row, 1))
    arr = np.memmap(path, dtype, "r", start, (rows, *shape[1:])) if rows else np.zeros((0, *shape[1:]), dtype)
    for i in range(0, max(rows, 1), per_chunk):
        part = np.array(arr[i:i + per_chunk])
        yield part, start + row * np.arange(i, i + len(part), dtype=np.int64)
    if rows < shape[0]:
        raise EventFileError(path, f"truncated or corrupt NPY file (the data ends inside event {rows} of "
                                   f"{shape[0]}, at byte offset {start + row * rows})")


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


def _chunks_npz(path: Path, per_chunk: int, arr: np.ndarray) -> Iterator[Chunk]:
    """A compressed archive is decompressed whole; byte offsets inside it mean nothing (-1)."""
    if arr.ndim == 0 or len(arr) == 0:
        yield arr, np.zeros(0, np.int64)
    for i in range(0, len(arr) if arr.ndim else 0, per_chunk):
        part = arr[i:i + per_chunk]
        yield part, np.full(len(part), -1, np.int64)


def _aedat2_start(path: Path) -> int:
    lines, start = _text_header(path, b"#")
    chip = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("# AEChip:")), "")
    if chip and "DVS128" not in chip:
        raise EventFileError(path, f"AEDAT 2.0 from chip {chip!r} is not supported (only DVS128)")
    return start


def _chunks_aedat2(path: Path, per_chunk: int, start: int) -> Iterator[Chunk]:
    for pos, data in _blocks(path, start, 8, per_chunk, "8-byte events"):
        words = np.frombuffer(data, dtype=">u4").reshape(-1, 2)
        addr, t = words[:, 0].astype(np.int64), words[:, 1].astype(np.int64)
        dvs = np.flatnonzero((addr >> 15) == 0)
        addr, t = addr[dvs], t[dvs]
        if len(t):
            yield make_events((addr >> 1) & 127, (addr >> 8) & 127, t, addr & 1), pos + 8 * dvs


def _aedat4_header(path: Path) -> int:
    """Byte offset of the first packet, after checking the XML header."""
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
    return 18 + size


def _chunks_aedat4(path: Path, per_chunk: int, out: dict) -> Iterator[Chunk]:
    """Packets of the first event stream via ``aedat.Decoder`` (which reads packet by packet).
    An event's byte offset is its packet's (``int32 stream id, int32 size, payload``), walked
    beside the decoder; ``out["sensor"]`` is set from the stream before the first chunk."""
    try:
        import aedat
    except ImportError:
        raise EventFileError(path, "reading AEDAT4 needs the 'aedat' package (pip install aedat)") from None
    walk = {"pos": _aedat4_header(path), "done": False}

    def start():
        decoder = aedat.Decoder(str(path))
        streams = {i: s for i, s in decoder.id_to_stream().items() if s.get("type") == "events"}
        if not streams:
            raise EventFileError(path, "AEDAT4 file has no event stream")
        return iter(decoder), min(streams), streams[min(streams)]

    packets, sid, stream = _native_decode(path, "AEDAT4", start)
    out["sensor"] = (int(stream["width"]), int(stream["height"]), 2)
    with open(path, "rb") as f:
        def fill() -> tuple[list, list]:  # packets until a chunk is full
            parts, offsets, n = [], [], 0
            while n < per_chunk:
                pk = next(packets, None)
                if pk is None:
                    walk["done"] = True
                    break
                f.seek(walk["pos"])
                head = f.read(8)
                if pk["stream_id"] == sid and "events" in pk:
                    ev = pk["events"]
                    parts.append(make_events(ev["x"], ev["y"], ev["t"], ev["on"]))
                    offsets.append(np.full(len(ev), walk["pos"], np.int64))
                    n += len(ev)
                walk["pos"] += 8 + (int.from_bytes(head[4:8], "little", signed=True) if len(head) == 8 else 0)
            return parts, offsets

        while not walk["done"]:
            try:
                parts, offsets = _native_decode(path, "AEDAT4", fill)
            except EventFileError as e:
                raise EventFileError(path, f"{e.reason} at byte offset {walk['pos']}") from None
            if parts:
                yield np.concatenate(parts), np.concatenate(offsets)


def _prophesee_start(path: Path) -> tuple[Sensor | None, int]:
    lines, start = _text_header(path, b"%")
    if path.stat().st_size <= start:
        raise EventFileError(path, "empty event stream (no data after the header)")
    return _prophesee_sensor(lines), start


def _chunks_dat(path: Path, per_chunk: int, start: int) -> Iterator[Chunk]:
    """DAT: after the header, 2 bytes (event type, event size = 8), then per event uint32 t µs
    and uint32 address: x = bits 13–0, y = bits 27–14, p = bits 31–28."""
    with open(path, "rb") as f:
        f.seek(start)
        kind = f.read(2)
    if len(kind) < 2 or kind[1] != 8:
        raise EventFileError(path, f"corrupt DAT file (event size {kind[1] if len(kind) == 2 else '?'} "
                                   f"at byte offset {start + 1}; expected 8)")
    if path.stat().st_size == start + 2:
        raise EventFileError(path, "empty event stream (no data after the header)")
    for pos, data in _blocks(path, start + 2, 8, per_chunk, "8-byte events"):
        w = np.frombuffer(data, dtype="<u4").reshape(-1, 2).astype(np.int64)
        yield (make_events(w[:, 1] & 0x3FFF, (w[:, 1] >> 14) & 0x3FFF, w[:, 0], (w[:, 1] >> 28) & 0xF),
               pos + 8 * np.arange(len(w), dtype=np.int64))


_EVT2_VALID = np.zeros(16, bool)
_EVT2_VALID[[0x0, 0x1, 0x8, 0xA, 0xE, 0xF]] = True


def _chunks_evt2(path: Path, per_chunk: int, start: int) -> Iterator[Chunk]:
    """EVT 2.0 32-bit words, type = bits 31–28: CD_OFF (0x0) / CD_ON (0x1) with t low = bits
    27–22, x = bits 21–11, y = bits 10–0; EV_TIME_HIGH (0x8): t high = bits 27–0, t = high·2⁶ + low;
    0xA (trigger), 0xE, 0xF carry no CD events."""
    high = 0
    for pos, data in _blocks(path, start, 4, per_chunk, "EVT2 words"):
        w = np.frombuffer(data, dtype="<u4").astype(np.int64)
        typ = w >> 28
        if not _EVT2_VALID[typ].all():
            i = int(np.argmin(_EVT2_VALID[typ]))
            raise EventFileError(path, f"corrupt EVT2 file (unknown EVT2 word type {int(typ[i]):#x} "
                                       f"at byte offset {pos + 4 * i})")
        is_th = typ == 0x8
        highs = _ffill(is_th, w & 0x0FFFFFFF, high)
        if is_th.any():
            high = int(highs[-1])
        cd = np.flatnonzero(typ <= 1)
        v = w[cd]
        if len(cd):
            yield make_events((v >> 11) & 0x7FF, v & 0x7FF, (highs[cd] << 6) | ((v >> 22) & 0x3F), typ[cd]), pos + 4 * cd


_EVT3_VALID = np.zeros(16, bool)
_EVT3_VALID[[0x0, 0x2, 0x3, 0x4, 0x5, 0x6, 0x7, 0x8, 0xA, 0xE, 0xF]] = True
_EVT3_START = (0, 0, 0, 0, 0, 0)  # wraps, TIME_HIGH, TIME_LOW, y, next vector x, vector polarity


def _ffill(mask: np.ndarray, values: np.ndarray, default: int = 0) -> np.ndarray:
    """At each word, the value of the last word where ``mask`` holds (``default`` before any)."""
    idx = np.where(mask, np.arange(len(mask)), -1)
    np.maximum.accumulate(idx, out=idx)
    return np.where(idx >= 0, values[np.maximum(idx, 0)], default)


def _evt3_step(words: np.ndarray, state: tuple[int, ...]) -> tuple[tuple[np.ndarray, ...], np.ndarray, tuple[int, ...]]:
    """Decode EVT3 words after the decoder ``state`` → ``((x, y, t, p), word of each event, state after)``.

    The state is replayed as four words before ``words`` (TIME_HIGH, TIME_LOW, ADDR_Y,
    VECT_BASE_X), so any word boundary can end a chunk, and every "last word of a kind" exists."""
    wraps, th, tl, y0, base, pol = state
    prefix = np.array([0x8000 | th, 0x6000 | tl, y0, 0x3000 | pol << 11 | base & 0x7FF], np.int64)
    words = np.concatenate([prefix, words.astype(np.int64)])
    typ, v = words >> 12, words & 0xFFF
    if not _EVT3_VALID[typ].all():
        i = int(np.argmin(_EVT3_VALID[typ]))
        raise ValueError(f"unknown EVT3 word type {int(typ[i]):#x} at word {i - 4}")
    ar = np.arange(len(words))

    def last(kind: int) -> np.ndarray:  # index of the last word of ``kind`` at or before each word
        return np.maximum.accumulate(np.where(typ == kind, ar, 0))

    is_th = typ == 0x8
    ths = v[is_th]
    down = np.cumsum(np.r_[False, ths[1:] < ths[:-1]])
    highs = ((down + wraps) << 12) + ths
    size = np.select([typ == 0x4, typ == 0x5], [12, 8], 0)
    bits = np.cumsum(size)  # vector bits up to and including each word
    last_tl, last_y, last_base = last(0x6), last(0x0), last(0x3)
    ev = np.flatnonzero((typ == 0x2) | (size > 0))
    single = typ[ev] == 0x2
    b = last_base[ev]
    x0 = np.where(single, v[ev] & 0x7FF, (v[b] & 0x7FF) + bits[ev] - size[ev] - bits[b])
    p = np.where(single, v[ev] >> 11, v[b] >> 11)
    t = (highs[np.cumsum(is_th)[ev] - 1] << 12) + v[last_tl[ev]]
    vec = np.flatnonzero(~single)
    if len(vec):  # one event per set bit of a vector word's mask, in bit order
        mask = np.where(typ[ev[vec]] == 0x5, v[ev[vec]] & 0xFF, v[ev[vec]]).astype("<u2")
        counts = np.ones(len(ev), np.int64)
        counts[vec] = np.bitwise_count(mask)
        row = np.repeat(np.arange(len(ev)), counts)
        _, vbit = np.nonzero(np.unpackbits(mask.view(np.uint8).reshape(-1, 2), axis=1, bitorder="little"))
        bit = np.zeros(len(row), np.int64)
        bit[np.flatnonzero(np.repeat(~single, counts))] = vbit
    else:
        row, bit = np.arange(len(ev)), 0
    end = last_base[-1]
    after = (wraps + int(down[-1]), int(ths[-1]), int(v[last_tl[-1]]), int(v[last_y[-1]] & 0x7FF),
             int((v[end] & 0x7FF) + bits[-1] - bits[end]), int(v[end] >> 11))
    return (x0[row] + bit, v[last_y[ev]][row] & 0x7FF, t[row], p[row] & 1), ev[row] - 4, after


def decode_evt3(words: np.ndarray) -> tuple[np.ndarray, ...]:
    """Prophesee EVT 3.0 16-bit words → ``(x, y, t, p)`` (Prophesee's format spec).

    Word type = bits 15–12. ADDR_Y (0x0): y = bits 10–0. ADDR_X (0x2): one event at
    x = bits 10–0, p = bit 11. VECT_BASE_X (0x3): base x and p for the vectors that follow;
    VECT_12 (0x4) / VECT_8 (0x5): events at base + i for each set bit i of the 12 / 8-bit
    mask, then base += 12 / 8. TIME_HIGH (0x8) / TIME_LOW (0x6): t = (wraps·2¹² + high)·2¹²
    + low, wraps counting TIME_HIGH decreases. 0x7, 0xA, 0xE, 0xF carry no CD events.
    """
    return _evt3_step(np.asarray(words), _EVT3_START)[0]


def _chunks_evt3(path: Path, per_chunk: int, start: int) -> Iterator[Chunk]:
    state = _EVT3_START
    word = 0
    for pos, data in _blocks(path, start, 2, per_chunk, "EVT3 words"):
        try:
            cols, at, state = _evt3_step(np.frombuffer(data, dtype="<u2"), state)
        except ValueError as e:
            i = int(re.search(r"at word (\d+)", str(e)).group(1))
            reason = re.sub(r"at word \d+", f"at word {word + i}", str(e))
            raise EventFileError(path, f"corrupt EVT3 file ({reason}) at byte offset {pos + 2 * i}") from None
        word += len(data) // 2
        if len(cols[0]):
            yield make_events(*cols), pos + 2 * at


# ---- validated streams --------------------------------------------------------------------
CHUNK_EVENTS = 1 << 18  # events (or EVT2/EVT3 words) per chunk


class EventStream:
    """An event file read chunk by chunk: iterate for validated `EVENT_DTYPE` chunks in order.

    ``sensor`` is the file's stated sensor, else the caller's ``sensor_size``, else ``None``
    until the iteration has ended (then the smallest sensor holding the events). Each chunk
    is checked like `validate_events` (coordinates against ``sensor`` when known, timestamps
    sorted across chunks too); the first problem raises `EventFileError` naming the event and
    its byte offset, after every chunk before it was yielded. Memory holds one chunk (about
    ``chunk_events`` events) at a time, except ``.npz`` (decompressed whole).
    """

    def __init__(self, path: str | Path, sensor_size: Sensor | None = None,
                 chunk_events: int = CHUNK_EVENTS) -> None:
        self.path = Path(path)
        self.format = sniff_format(self.path)
        self.sensor: Sensor | None = None
        self.events = 0
        self._chunk = int(chunk_events)
        self._source = self._open()
        self.sensor = self.sensor or (tuple(sensor_size) if sensor_size is not None else None)
        self._given = self.sensor is not None

    def _open(self) -> Iterator[Chunk]:
        path, n, fmt = self.path, self._chunk, self.format
        if fmt in ("nmnist", "dvsgesture"):
            self.sensor = (34, 34, 2) if fmt == "nmnist" else (128, 128, 2)
            return _chunks_5byte(path, n)
        if fmt == "npy":
            return _chunks_npy(path, n)
        if fmt == "npz":
            arr, self.sensor = _load_npz(path)
            return _chunks_npz(path, n, arr)
        if fmt == "aedat2":
            self.sensor = (128, 128, 2)
            return _chunks_aedat2(path, n, _aedat2_start(path))
        if fmt == "aedat4":
            out: dict = {}
            chunks = _chunks_aedat4(path, n, out)
            first = next(chunks, None)  # opens the decoder: the sensor comes from the stream
            self.sensor = out.get("sensor")
            return itertools.chain([first] if first is not None else [], chunks)
        self.sensor, start = _prophesee_start(path)
        return {"evt2": _chunks_evt2, "evt3": _chunks_evt3, "dat": _chunks_dat}[fmt](path, n, start)

    def __iter__(self) -> Iterator[np.ndarray]:
        last_t, high = -1, np.zeros(2, np.int64)
        for raw, offsets in self._source:
            ev, error = self._validate(raw, offsets)
            if len(ev) and ev["t"][0] < last_t:
                raise EventFileError(self.path, f"timestamps are not sorted: t={ev['t'][0]} at event {self.events} "
                                                f"after t={last_t}{_at(offsets, 0)}")
            if len(ev):
                last_t = int(ev["t"][-1])
                high = np.maximum(high, [ev["x"].max(), ev["y"].max()])
                self.events += len(ev)
                yield ev
            if error is not None:
                raise error
        if self.events == 0:
            raise EventFileError(self.path, "empty event stream (0 events)")
        if self.sensor is None:
            self.sensor = (int(high[0]) + 1, int(high[1]) + 1, 2)

    def _validate(self, raw: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, EventFileError | None]:
        """The chunk's valid events, up to the first bad one, and the error it raises (or None)."""
        error, n = None, len(raw) if getattr(raw, "ndim", 0) else 0
        while True:
            try:
                return validate_events(raw[:n] if n < len(raw) else raw, self.sensor, self.path), error
            except EventFileError as e:
                if "empty event stream" in e.reason and (self.events or error is not None):
                    return np.zeros(0, EVENT_DTYPE), error
                m = re.search(r"at event (\d+)", e.reason)
                if m is None:
                    at = f" (in the events from byte offset {offsets[0]})" if len(offsets) and offsets[0] >= 0 else ""
                    return np.zeros(0, EVENT_DTYPE), error or EventFileError(self.path, e.reason + at)
                n = int(m.group(1))
                error = EventFileError(self.path, e.reason.replace(m.group(0), f"at event {self.events + n}", 1)
                                       + _at(offsets, n))


def _at(offsets: np.ndarray, i: int) -> str:
    return f" (byte offset {offsets[i]})" if i < len(offsets) and offsets[i] >= 0 else ""


def concat_events(parts: list[np.ndarray]) -> np.ndarray:
    """Concatenate `EVENT_DTYPE` arrays as bytes (numpy copies a packed structured dtype field by
    field, about 30× slower); other arrays through ``np.concatenate``."""
    if all(p.dtype == EVENT_DTYPE and p.flags.c_contiguous for p in parts):
        return np.concatenate([p.view(np.uint8) for p in parts]).view(EVENT_DTYPE)
    return np.concatenate(parts)


def read_events(path: str | Path, sensor_size: Sensor | None = None) -> tuple[np.ndarray, Sensor, str]:
    """Read and validate one event file → ``(events EVENT_DTYPE, (W, H, P), format_name)``.

    ``sensor_size`` is used for files that do not state one (``.npy``, headerless ``.dat``…);
    without it those get the smallest sensor holding the events. `EventStream` reads the same
    events chunk by chunk.
    """
    stream = EventStream(path, sensor_size)
    events = concat_events(list(stream))
    return events, stream.sensor, stream.format


def read_nmnist_bin(path: str | Path) -> tuple[np.ndarray, Sensor]:
    """N-MNIST ``.bin`` → ``(events, (34, 34, 2))`` (layout in the module doc); validated."""
    events, sensor, _ = read_events(path)
    return events, sensor


def read_dvsgesture_bs2(path: str | Path) -> tuple[np.ndarray, Sensor]:
    """DVS128 Gesture ``.bs2`` (N-MNIST's 5-byte layout) → ``(events, (128, 128, 2))``; validated."""
    events, sensor, _ = read_events(path)
    return events, sensor


def write_npy(path: str | Path, events: np.ndarray) -> Path:
    """Validate ``events`` and save them as a structured ``EVENT_DTYPE`` ``.npy`` (no pickle)."""
    path = Path(path)
    events = validate_events(events, None, path)
    np.save(path, events.astype(EVENT_DTYPE, copy=False), allow_pickle=False)
    return path
