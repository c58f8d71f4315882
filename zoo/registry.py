"""The model factory, as timm's ``_factory``: ``create_model`` builds a registered architecture
(:mod:`snnzoo.zoo.entrypoints` keeps them), a pushed Hub folder or a NIR graph, with its weights;
and ``snnzoo models``, the listing."""
from __future__ import annotations

import json
from typing import Any

import click
from torch import nn

from .entrypoints import get_pretrained_cfg, list_models, model_entrypoint, register_model
from .nir_import import from_nir
from .pretrained import load_from_hub, load_pretrained

__all__ = ["create_model", "get_pretrained_cfg", "list_models", "models_command", "register_model"]


def create_model(name: str, pretrained: bool = False, **overrides: Any) -> nn.Module:
    """Build model ``name`` (see :func:`list_models`); ``overrides`` replace constructor
    arguments (``neunorm=False``, ``time_steps=4``, ``bn=True``, ``k=0.3``...).
    With ``pretrained=True`` the published weights are loaded and verified.
    ``"hf-hub:org/name[@rev]"`` loads a folder made by ``snnzoo push``, weights included;
    ``"nir:PATH"`` imports a NIR graph (``from_nir``; overrides: ``time_steps``, ``dt``)."""
    if name.startswith("hf-hub:"):
        return load_from_hub(name[len("hf-hub:"):], **overrides)
    if name.startswith("nir:"):  # a NIR graph our neuron can express (zoo/nir_import.py)
        return from_nir(name[len("nir:"):], **overrides)
    model = model_entrypoint(name)(**overrides)
    if pretrained:
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
               "pretrained": bool(cfg.get("weights")), "weights": _weights_source(cfg.get("weights"))}
        if fmt == "json":
            click.echo(json.dumps(row))
        else:
            where = f"pretrained ({row['weights']})" if row["pretrained"] else ""
            click.echo(f"{name:24s} {row['arch']:60s} T={row['time_steps']:<3d} {where}")


def _weights_source(weights: dict | None) -> str | None:
    """Where the weights are found first: ``bundled``, ``user folder`` (:func:`local_weights`), else
    ``hub:ORG/NAME`` (HF cache or download) or ``missing``; None for a model without weights."""
    if not weights:
        return None
    from .pretrained import WEIGHTS_DIR, local_weights

    if (WEIGHTS_DIR / weights["file"]).is_file():
        return "bundled"
    if local_weights(weights).is_file():
        return "user folder"
    return f"hub:{weights['hf_hub_id']}" if weights.get("hf_hub_id") else "missing"
