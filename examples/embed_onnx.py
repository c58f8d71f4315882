"""Classify event recordings or images with an exported snnzoo model: numpy + onnxruntime (+ Pillow).

    snnzoo export nmnist_compact -o nmnist.onnx
    python examples/embed_onnx.py nmnist.onnx recording.bin other.npy [--top-k 3] [--json]
    snnzoo export cifar10_compact -o cifar10.onnx
    python examples/embed_onnx.py cifar10.onnx cat.png dog.jpg [--resize]

Everything the model needs is in the file's metadata: the sensor size, the binning spec, T and
the class labels, or for image models the input shape [C, H, W] and normalisation. Event files:
``.npy`` structured arrays with fields x, y, t (µs), p, or N-MNIST ``.bin`` (5 bytes per event).
Images are decoded as ``snnzoo predict`` does (``runtime/images.py``). Copy this file into a
service; it needs neither torch nor snnzoo.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import onnxruntime as ort


def read_events(path: str) -> np.ndarray:
    """Structured events with fields x, y, t, p."""
    if path.endswith(".npy"):
        ev = np.load(path, allow_pickle=False)
        if ev.dtype.names is None or not {"x", "y", "t", "p"} <= set(ev.dtype.names):
            raise ValueError(f"{path}: expected a structured array with fields x, y, t, p")
        return ev
    raw = np.fromfile(path, dtype=np.uint8)  # N-MNIST .bin
    raw = raw[: len(raw) // 5 * 5].reshape(-1, 5).astype(np.int64)
    ev = np.empty(len(raw), dtype=[("x", "i8"), ("y", "i8"), ("t", "i8"), ("p", "i8")])
    ev["x"], ev["y"], ev["p"] = raw[:, 0], raw[:, 1], raw[:, 2] >> 7
    ev["t"] = ((raw[:, 2] & 0x7F) << 16) | (raw[:, 3] << 8) | raw[:, 4]
    return ev


def bin_events(ev: np.ndarray, sensor_size: list[int], spec: dict, steps: int) -> np.ndarray:
    """Frames ``[T, P, H // d, W // d]``, as snnzoo bins them (``runtime/binning.py``).

    ``n_time_bins``: window ``w = max((t_last − t_first) // T, 1)``, bin ``min((t − t_first) // w,
    T − 1)``; ``time_window=w``: bin ``(t − t_first) // w``, events past T bins dropped.
    ``downsample=d``: pixel (x // d, y // d); ``mode="binary"``: counts clamped to 1.
    """
    (w_s, h_s, n_pol), d = sensor_size, spec.get("downsample", 1)
    h, w = h_s // d, w_s // d
    frames = np.zeros((steps, n_pol, h, w), np.float32)
    if len(ev) == 0:
        return frames
    t = ev["t"].astype(np.int64) - int(ev["t"][0])
    window = spec.get("time_window") or max(int(t[-1]) // steps, 1)
    b = t // window
    if not spec.get("time_window"):
        b = np.minimum(b, steps - 1)
    x, y = ev["x"].astype(np.int64) // d, ev["y"].astype(np.int64) // d
    p = ev["p"].astype(np.int64) if n_pol > 1 else np.zeros_like(x)
    keep = (b < steps) & (x < w) & (y < h)
    np.add.at(frames, (b[keep], p[keep], y[keep], x[keep]), 1.0)
    if spec.get("mode") == "binary":
        np.minimum(frames, 1.0, out=frames)
    return frames


def load_image(path: str, shape: list[int], norm: dict, resize: bool = False) -> np.ndarray:
    """Model input ``[C, H, W]``: ``x = (α·pixel · scale − α · mean) / std`` per channel.

    C = 3: RGB, C = 1: luma; EXIF orientation applied; 16-bit grey = v / 257; transparent
    pixels composited onto the mean colour (α, premultiplied). Another size than H × W is
    refused, or with ``resize``: antialiased float bicubic so the image covers H × W, centre crop.
    """
    from PIL import Image, ImageOps

    c, h, w = shape
    with Image.open(path) as im:
        im.load()
        im = ImageOps.exif_transpose(im)
    if im.size != (w, h) and not resize:
        raise ValueError(f"{path}: image is {im.width}×{im.height}; the model takes {w}×{h}")
    if im.mode in ("I", "F"):
        raise ValueError(f"{path}: 32-bit pixels (mode {im.mode}) are not supported")
    alpha = None
    if im.mode.startswith("I;16"):
        px = np.repeat((np.asarray(im).astype(np.float32) / np.float32(257.0))[..., None], c, axis=-1)
    else:
        if im.mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in im.info:
            im = im.convert("RGBA")
            alpha = np.asarray(im.getchannel("A"), np.float32) / np.float32(255.0)
        im = im.convert("RGB") if c == 3 else im.convert("RGB").convert("L")
        px = np.asarray(im, np.float32).reshape(im.height, im.width, c)
        if alpha is not None:
            px = px * alpha[..., None]
    if px.shape[:2] != (h, w):  # cover H × W, then crop the centre
        f = max(w / px.shape[1], h / px.shape[0])
        nw, nh = max(w, round(px.shape[1] * f)), max(h, round(px.shape[0] * f))
        top, left = (nh - h) // 2, (nw - w) // 2

        def fit(plane: np.ndarray) -> np.ndarray:
            out = Image.fromarray(np.ascontiguousarray(plane, np.float32), "F").resize((nw, nh), Image.Resampling.BICUBIC)
            return np.asarray(out)[top:top + h, left:left + w]

        px = np.stack([fit(px[..., k]) for k in range(c)], axis=-1)
        alpha = fit(alpha) if alpha is not None else None
    mean, std = np.float32(norm["mean"]), np.float32(norm["std"])
    x = px * np.float32(norm["scale"]) - (mean if alpha is None else alpha[..., None] * mean)
    return np.ascontiguousarray(np.moveaxis(x / std, -1, 0))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("files", nargs="+")
    ap.add_argument("--top-k", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="one JSON object per file")
    ap.add_argument("--resize", action="store_true", help="images: scale and centre-crop instead of refusing")
    args = ap.parse_args(argv)

    session = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    kind = meta.get("input_kind")
    if kind not in ("events", "image") or meta.get("streaming") == "true":
        print(f"{args.model}: not an unrolled event-stream or image snnzoo model", file=sys.stderr)
        return 2
    classes = json.loads(meta["classes"])
    try:
        if kind == "image":
            shape, norm = json.loads(meta["input_shape"]), json.loads(meta["normalization"])
            x = np.stack([load_image(f, shape, norm, args.resize) for f in args.files])
        else:
            sensor, spec, steps = json.loads(meta["sensor_size"]), json.loads(meta["binning"]), int(meta["time_steps"])
            x = np.stack([bin_events(read_events(f), sensor, spec, steps) for f in args.files])
    except (ValueError, OSError) as e:
        print(e, file=sys.stderr)
        return 1
    scores = session.run(["scores"], {meta["input_name"]: x})[0]
    for f, s in zip(args.files, scores):
        order = np.argsort(-s, kind="stable")[: args.top_k]
        topk = [{"label": int(i), "class": classes[i], "score": float(s[i])} for i in order]
        if args.json:
            print(json.dumps({"file": f, **topk[0], "topk": topk}))
        else:
            print(f"{f}: " + "  ".join(f"{k['class']}:{k['score']:.3f}" for k in topk))
    return 0


if __name__ == "__main__":
    sys.exit(main())
