"""The network a config describes: ``SpikingNet(cfg["arch"], **cfg["model"])`` with overrides,
keeping the resolved config (its T set by :meth:`~snnzoo.runtime.specs.ModelConfig.with_time_steps`)
as ``net.config``, a plain dict."""
from __future__ import annotations

from typing import Any

from ..runtime.specs import ModelConfig
from .network import SpikingNet


def build_model(name: str, cfg: dict[str, Any], overrides: dict[str, Any]) -> SpikingNet:
    """``SpikingNet`` of config ``cfg`` named ``name``; ``overrides`` replace ``cfg["model"]`` entries
    (a ``TypeError`` for unknown ones) and ``time_steps`` also sets the input's and binning's T."""
    unknown = set(overrides) - set(cfg["model"])
    if unknown:
        raise TypeError(f"{name}: unknown arguments {sorted(unknown)}; accepted: {sorted(cfg['model'])}")
    model = {**cfg["model"], **overrides}
    config = ModelConfig.from_dict({**cfg, "model": model, "name": name}).with_time_steps(model["time_steps"])
    net = SpikingNet(config.arch, **config.to_dict()["model"])
    net.config = config.to_dict()
    return net
