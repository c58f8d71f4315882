"""The model registry's bookkeeping, as timm's ``_registry``: ``@register_model`` entry points
and the pretrained config beside each. Building models is :mod:`snnzoo.zoo.registry`'s job.

The built-in models register when :mod:`snnzoo.zoo` is imported (it imports ``zoo/models.py``)."""
from __future__ import annotations

import copy
import fnmatch
from typing import Any, Callable

_entrypoints: dict[str, Callable[..., Any]] = {}
_pretrained_cfgs: dict[str, dict[str, Any]] = {}


def register_model(cfg: dict[str, Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering a model entry point under its function name with ``cfg``."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        _entrypoints[fn.__name__] = fn
        _pretrained_cfgs[fn.__name__] = cfg
        return fn

    return wrap


def list_models(pattern: str = "*", pretrained: bool = False) -> list[str]:
    """Registered model names matching ``pattern``; with ``pretrained``, only those with weights."""
    names = sorted(n for n in _entrypoints if fnmatch.fnmatch(n, pattern))
    if pretrained:
        names = [n for n in names if _pretrained_cfgs[n].get("weights")]
    return names


def model_entrypoint(name: str) -> Callable[..., Any]:
    """The entry point of registered model ``name`` (a ``KeyError`` naming the known ones)."""
    if name not in _entrypoints:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(list_models())}")
    return _entrypoints[name]


def get_pretrained_cfg(name: str) -> dict[str, Any]:
    """A copy of the pretrained config of model ``name``."""
    if name not in _pretrained_cfgs:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(list_models())}")
    return copy.deepcopy(_pretrained_cfgs[name])
