"""Model registry in timm's manner: ``@register_model`` entry points, each with a
pretrained config (input spec, classes, neuron constants, weights) beside its architecture."""
from __future__ import annotations

import copy
import fnmatch
import json
from typing import Any, Callable

import click
from torch import nn

_entrypoints: dict[str, Callable[..., nn.Module]] = {}
_pretrained_cfgs: dict[str, dict[str, Any]] = {}


def register_model(cfg: dict[str, Any]) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering a model entry point under its function name with ``cfg``."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _entrypoints[fn.__name__] = fn
        _pretrained_cfgs[fn.__name__] = cfg
        return fn

    return wrap


def _ensure_loaded() -> None:
    from . import models  # noqa: F401  (registers the built-in models)


def list_models(pattern: str = "*", pretrained: bool = False) -> list[str]:
    """Registered model names matching ``pattern``; with ``pretrained``, only those with weights."""
    _ensure_loaded()
    names = sorted(n for n in _entrypoints if fnmatch.fnmatch(n, pattern))
    if pretrained:
        names = [n for n in names if _pretrained_cfgs[n].get("weights")]
    return names


def get_pretrained_cfg(name: str) -> dict[str, Any]:
    """A copy of the pretrained config of model ``name``."""
    _ensure_loaded()
    if name not in _pretrained_cfgs:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(list_models())}")
    return copy.deepcopy(_pretrained_cfgs[name])


def create_model(name: str, pretrained: bool = False, **overrides: Any) -> nn.Module:
    """Build model ``name`` (see :func:`list_models`); ``overrides`` replace constructor
    arguments (``neunorm=False``, ``time_steps=4``, ``bn=True``, ``k=0.3``...).
    With ``pretrained=True`` the published weights are loaded and verified.
    ``"hf-hub:org/name[@rev]"`` loads a folder made by ``snnzoo push``, weights included;
    ``"nir:PATH"`` imports a NIR graph (``from_nir``; overrides: ``time_steps``, ``dt``)."""
    if name.startswith("hf-hub:"):
        from .pretrained import load_from_hub

        return load_from_hub(name[len("hf-hub:"):], **overrides)
    if name.startswith("nir:"):  # a NIR graph our neuron can express (zoo/nir_import.py)
        from .nir_import import from_nir

        return from_nir(name[len("nir:"):], **overrides)
    _ensure_loaded()
    if name not in _entrypoints:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(list_models())}")
    model = _entrypoints[name](**overrides)
    if pretrained:
        from .pretrained import load_pretrained

        load_pretrained(model, name)
    return model


@click.command("models")
@click.option("--pretrained", is_flag=True, help="Only models with published weights.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def models_command(pretrained: bool, fmt: str) -> None:
    """List the registered models."""
    for name in list_models(pretrained=pretrained):
        cfg = get_pretrained_cfg(name)
        row = {"model": name, "arch": cfg["arch"], "input": cfg["input"]["kind"],
               "time_steps": cfg["input"]["time_steps"], "classes": len(cfg["classes"]),
               "pretrained": bool(cfg.get("weights"))}
        if fmt == "json":
            click.echo(json.dumps(row))
        else:
            click.echo(f"{name:24s} {row['arch']:60s} T={row['time_steps']:<3d} "
                       f"{'pretrained' if row['pretrained'] else ''}")
