"""Small composable event transforms in tonic's style (callables on structured arrays)."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .binning import Sensor, bin_events, spec_args
from .specs import BinningSpec


@dataclass(frozen=True)
class ToFrame:
    """Events → float32 frames ``[T, P, H // d, W // d]`` (`snnzoo.runtime.binning.bin_events`).

    A tonic transform: ``tonic.transforms.Compose([tonic.transforms.Denoise(...), ToFrame(...)])``
    and ``tonic.datasets.X(..., transform=ToFrame(...))`` work as with tonic's own ``ToFrame``, with
    the same frames on real recordings except at the last bin's edge (see `bin_events`:
    tonic drops the events there, we keep them; `tests/test_tonic_interop.py`). Unlike tonic's,
    it checks the events (`EventFileError` on unsorted timestamps or coordinates off the sensor).
    """

    sensor_size: Sensor
    n_time_bins: int | None = None
    time_window: int | None = None
    mode: str = "count"
    downsample: int = 1

    def __call__(self, events: np.ndarray) -> np.ndarray:
        return bin_events(events, self.sensor_size, self.n_time_bins, self.time_window, self.mode, self.downsample)

    @classmethod
    def from_spec(cls, sensor_size: Sensor, spec: BinningSpec | dict) -> ToFrame:
        """From a model's binning spec: a :class:`~snnzoo.runtime.specs.BinningSpec` or its dict
        (``config["input"]["binning"]``)."""
        return cls(tuple(sensor_size), **spec_args(spec))


@dataclass(frozen=True)
class Compose:
    """Apply ``transforms`` in order."""

    transforms: Sequence[Callable]

    def __call__(self, x):
        for f in self.transforms:
            x = f(x)
        return x
