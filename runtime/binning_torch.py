"""Events → frames with torch, on any device: the semantics of :mod:`snnzoo.runtime.binning`.

The host checks the streams (the same checks and errors as `bin_batch`) and finds each
stream's bin edges with ``searchsorted`` on its timestamps; only ``x, y, p`` (5 bytes per event)
and the per-bin event counts cross to ``device``. There each event's frame
``b·(T + tail) + k`` is expanded from the counts (``repeat_interleave``), its flat index
``((frame·P + p)·H' + y')·W' + x'`` formed, and one ``scatter_add_`` of ones counts the batch into
float32 frames (exact: integers below 2²⁴ per pixel).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .binning import Sensor, _check, _fields, check_binning_args, segment_bounds, spec_args
from .specs import BinningSpec


def bin_batch_torch(batch: Sequence[np.ndarray], sensor_size: Sensor,
                    spec: BinningSpec | dict | None = None, device: str | torch.device | None = None, *,
                    n_time_bins: int | None = None, time_window: int | None = None, mode: str = "count",
                    downsample: int = 1) -> torch.Tensor:
    """Bin structured event arrays → float32 ``[B, T, P, H', W']`` on ``device`` (default CPU).

    Parameters as `snnzoo.runtime.binning.bin_batch`, or a model's binning ``spec``
    (`snnzoo.runtime.binning.spec_args`).
    """
    if spec is not None:
        return bin_batch_torch(batch, sensor_size, None, device, **spec_args(spec))
    n_pol, h, w = check_binning_args(sensor_size, n_time_bins, time_window, mode, downsample)
    dev = torch.device(device or "cpu")
    d, fsz, n_b = int(downsample), n_pol * h * w, len(batch)
    lens = np.fromiter(map(len, batch), np.int64, n_b)
    ends = np.cumsum(lens)
    if n_b == 0 or ends[-1] == 0:
        return torch.zeros((n_b, n_time_bins or 1, n_pol, h, w), dtype=torch.float32, device=dev)
    x, y, t, p = _fields(batch)
    _check(x, y, t, p, ends, sensor_size)
    steps, tail, per_bin = segment_bounds(t, lens, n_time_bins, time_window)
    border = d > 1 and (w * d != sensor_size[0] or h * d != sensor_size[1])
    tail = max(tail, int(border))

    def put(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(dev, non_blocking=True)

    n_seg = per_bin.shape[1]  # T, or T + 1 with the tail
    frame_ids = (torch.arange(n_b, device=dev)[:, None] * (steps + tail) + torch.arange(n_seg, device=dev)).ravel()
    frame = torch.repeat_interleave(frame_ids, put(per_bin.ravel()), output_size=len(t))
    xx, yy = put(x).long(), put(y).long()
    if d > 1:
        xx, yy = torch.div(xx, d, rounding_mode="floor"), torch.div(yy, d, rounding_mode="floor")
    if border:
        outside = (xx >= w) | (yy >= h)
        frame = torch.where(outside, torch.div(frame, steps + tail, rounding_mode="floor") * (steps + tail) + steps, frame)
        xx.clamp_(max=w - 1)
        yy.clamp_(max=h - 1)
    idx = frame * fsz + yy * w + xx
    if n_pol > 1:
        idx += put(p).long() * (h * w)
    out = torch.zeros(n_b * (steps + tail) * fsz, dtype=torch.float32, device=dev)
    out.scatter_add_(0, idx, torch.ones(1, device=dev).expand(len(idx)))
    out = out.view(n_b, steps + tail, fsz)[:, :steps]
    if mode == "binary":
        out = out.clamp(max=1.0)
    return out.reshape(n_b, steps, n_pol, h, w)
