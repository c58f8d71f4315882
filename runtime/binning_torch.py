"""Events → frames with torch, on any device: the semantics of :mod:`snnzoo.runtime.binning`.

The streams are checked and concatenated on the host (numpy, the same checks and errors as
`bin_batch`); only the raw columns ``x, y, t, p`` (13 bytes per event) cross to ``device``,
where stream b's event i lands in frame ``b·(T + tail) + k`` with
``k = min((t_i − t0_b) // w_b, T − 1)`` (``n_time_bins``) or ``k = (t_i − t0_b) // w``
(``time_window``; ``k ≥ T`` and the downsampling border go to a dropped tail frame), and one
``torch.bincount`` over ``((frame·P + p)·H' + y')·W' + x'`` fills the batch.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .binning import Sensor, _check, _fields, check_binning_args


def bin_batch_torch(batch: Sequence[np.ndarray], sensor_size: Sensor, spec: dict | None = None,
                    device: str | torch.device | None = None, *, n_time_bins: int | None = None,
                    time_window: int | None = None, mode: str = "count", downsample: int = 1) -> torch.Tensor:
    """Bin structured event arrays → float32 ``[B, T, P, H', W']`` on ``device`` (default CPU).

    Parameters as `snnzoo.runtime.binning.bin_batch`, or a model's binning ``spec`` dict
    (``n_time_bins``, ``time_window``, ``mode``, ``downsample``).
    """
    if spec is not None:
        n_time_bins, time_window = spec.get("n_time_bins"), spec.get("time_window")
        mode, downsample = spec.get("mode", "count"), spec.get("downsample", 1)
    n_pol, h, w = check_binning_args(sensor_size, n_time_bins, time_window, mode, downsample)
    dev = torch.device(device or "cpu")
    d, fsz, n_b = int(downsample), n_pol * h * w, len(batch)
    lens = np.fromiter(map(len, batch), np.int64, n_b)
    ends = np.cumsum(lens)
    starts = ends - lens
    if n_b == 0 or ends[-1] == 0:
        return torch.zeros((n_b, n_time_bins or 1, n_pol, h, w), dtype=torch.float32, device=dev)
    x, y, t, p = _fields(batch)
    full = lens > 0
    _check(x, y, t, p, ends, sensor_size)
    t0, t1 = np.zeros(n_b, np.int64), np.zeros(n_b, np.int64)
    t0[full], t1[full] = t[starts[full]], t[ends[full] - 1]
    if time_window is None:
        steps = int(n_time_bins)
        window = np.maximum((t1 - t0) // steps, 1)
    else:
        window = np.full(n_b, int(time_window), np.int64)
        steps = int(n_time_bins or (-(-(t1 - t0 + 1) // window)).max())
    border = d > 1 and (w * d != sensor_size[0] or h * d != sensor_size[1])
    tail = int(time_window is not None or border)

    def put(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a).to(dev, non_blocking=True)

    counts = put(lens)
    tt = put(t.astype(np.int64, copy=False))
    first = torch.repeat_interleave(put(t0), counts, output_size=len(t))
    k = torch.div(tt - first, torch.repeat_interleave(put(window), counts, output_size=len(t)),
                  rounding_mode="floor")
    k.clamp_(max=steps - 1 if time_window is None else steps)  # time_window: k ≥ T → the tail
    stream = torch.repeat_interleave(torch.arange(n_b, device=dev), counts, output_size=len(t))
    xx, yy = put(x).long(), put(y).long()
    if d > 1:
        xx, yy = torch.div(xx, d, rounding_mode="floor"), torch.div(yy, d, rounding_mode="floor")
    if border:
        k.masked_fill_((xx >= w) | (yy >= h), steps)
        xx.clamp_(max=w - 1)
        yy.clamp_(max=h - 1)
    frame = stream * (steps + tail) + k
    idx = (frame * n_pol + (put(p).long() if n_pol > 1 else 0)) * (h * w) + yy * w + xx
    out = torch.bincount(idx, minlength=n_b * (steps + tail) * fsz).view(n_b, steps + tail, fsz)
    out = out[:, :steps].to(torch.float32)
    if mode == "binary":
        out.clamp_(max=1.0)
    return out.reshape(n_b, steps, n_pol, h, w)
