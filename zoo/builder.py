"""The network a config describes: ``SpikingNet(cfg["arch"], **cfg["model"])`` with overrides,
keeping the resolved config (time steps in sync) as ``net.config``."""
from __future__ import annotations

import copy
from typing import Any

from .network import SpikingNet


def build_model(name: str, cfg: dict[str, Any], overrides: dict[str, Any]) -> SpikingNet:
    """``SpikingNet`` of config ``cfg`` named ``name``; ``overrides`` replace ``cfg["model"]`` entries
    (a ``TypeError`` for unknown ones) and ``time_steps`` also sets the input's and binning's T."""
    cfg = copy.deepcopy(cfg)
    unknown = set(overrides) - set(cfg["model"])
    if unknown:
        raise TypeError(f"{name}: unknown arguments {sorted(unknown)}; accepted: {sorted(cfg['model'])}")
    cfg["model"].update(overrides)
    steps = cfg["model"]["time_steps"]
    cfg["input"]["time_steps"] = steps
    if cfg["input"]["kind"] == "events" and cfg["input"]["binning"]["method"] == "n_time_bins":
        cfg["input"]["binning"]["n_time_bins"] = steps
    net = SpikingNet(cfg["arch"], **cfg["model"])
    cfg["name"] = name
    net.config = cfg
    return net
