"""Checkpoints: the resumable ``last.ckpt`` and the published checkpoint folder.

``last.ckpt`` (``torch.save``; read back with ``weights_only=True``, so it holds only tensors and
primitives): model, optimizer and scheduler state, RNG states of python/numpy/torch, epoch, the
number of batches done in that epoch, global step, config, metrics. Every file is written to a
temporary name in the same folder and moved into place with ``os.replace`` (atomic on POSIX), so a
kill at any moment leaves either the previous file or the new one.

A checkpoint folder holds ``model.safetensors`` (fp16 floats) and ``config.json`` (the model's
full config — ``name``, ``model`` kwargs, input spec, classes — plus ``training``, ``data``,
``metrics``); :func:`load_checkpoint_folder` rebuilds the model from it.
"""
from __future__ import annotations

import hashlib

import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ...runtime.models import CONFIG_FILE as CONFIG_NAME
from ...runtime.models import WEIGHTS_FILE as WEIGHTS_NAME
from .config import ConfigError

CKPT_NAME = "last.ckpt"


def atomic_write(path: str | Path, write) -> None:
    """Call ``write(tmp_path)``, fsync, then ``os.replace(tmp_path, path)``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def rng_state() -> dict[str, Any]:
    """RNG states of python, numpy and torch (CPU and CUDA) as tensors/primitives."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(), "numpy_keys": torch.from_numpy(keys.astype(np.int64)),
             "numpy_rest": [kind, int(pos), int(has_gauss), float(gauss)], "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, pos, has_gauss, gauss_np = state["numpy_rest"]
    np.random.set_state((kind, state["numpy_keys"].numpy().astype(np.uint32), pos, has_gauss, gauss_np))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_training_state(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` atomically with ``torch.save``."""
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_training_state(path: str | Path) -> dict[str, Any]:
    """Read a ``last.ckpt`` (``weights_only=True``); ValueError naming the file if unreadable."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for corrupt or foreign files
        raise ValueError(f"{path}: not a readable training checkpoint ({type(e).__name__}: {e})") from None


def export_folder(model: nn.Module, folder: str | Path, extra: dict[str, Any]) -> None:
    """Write ``model.safetensors`` (floats as fp16) and ``config.json`` (``model.config`` + ``extra``,
    with ``weights = {file, sha256}`` of the file just written)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: (v.detach().half() if v.is_floating_point() else v.detach()).cpu().contiguous()
               for k, v in model.state_dict().items()}
    atomic_write(folder / WEIGHTS_NAME, lambda tmp: save_file(tensors, str(tmp), metadata={"format": "pt"}))
    # the folder records its own file's sha256, so every later load is checked against it
    own = {"file": WEIGHTS_NAME, "sha256": hashlib.sha256((folder / WEIGHTS_NAME).read_bytes()).hexdigest()}
    cfg = {**model.config, **extra, "weights": own}
    atomic_write_text(folder / CONFIG_NAME, json.dumps(cfg, indent=2) + "\n")


def load_checkpoint_folder(path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a model from a checkpoint folder in eval mode: the network ``config.json``
    describes (``cfg["name"]``, ``cfg["model"]``) with the fp32-cast ``model.safetensors``;
    ``model.config`` keeps the folder's ``training``/``data``/``metrics`` records. (One loader
    for the whole project: :func:`snnzoo.zoo.pretrained.load_folder`, which also checks a
    sha256 the config records for the file.)"""
    from ..pretrained import load_folder

    return load_folder(path).to(device).eval()


def export_snapshot(run: str | Path, dest: str | Path) -> dict[str, Any]:
    """The weights a run's ``last.ckpt`` holds (its latest step, maybe mid-epoch) as a checkpoint
    folder ``dest``, like the one the run writes at its end; ``config.json`` records ``snapshot``:
    the step, the (fractional) epoch, the training samples seen and the last ``train`` record.
    Returns that record. The run itself is left as it is and can go on (``--resume``)."""
    from ..registry import create_model

    run, dest = Path(run), Path(dest)
    if dest.resolve() == run.resolve():
        raise ValueError(f"{dest}: the snapshot must go to another folder than the run's own")
    state = load_training_state(run / "last.ckpt")
    cfg = state["config"]
    model = create_model(cfg["model"], **cfg["model_args"])
    model.load_state_dict(state["model"])
    trains = [r for r in state["history"] if r["kind"] == "train"]
    last = trains[-1] if trains else {}
    steps_per_epoch = next((r["steps_per_epoch"] for r in state["history"] if "steps_per_epoch" in r), None)
    epoch = state["epoch"] + (state["batch"] / steps_per_epoch if steps_per_epoch else 0.0)
    snap = {"run": str(run), "step": state["step"], "epoch": epoch, "epochs_planned": cfg["train"]["epochs"],
            "samples_seen": state["epoch"] * state["split"]["n_train"]
            + state["batch"] * cfg["train"]["batch_size"] * state["split"].get("world_size", 1),
            "mid_epoch": state["batch"] > 0, "last_train_record": last}
    export_folder(model, dest, {"training": cfg, "data": state["split"], "metrics": last, "snapshot": snap})
    return snap


def init_weights(model: nn.Module, folder: str | Path) -> None:
    """Start ``model`` from the weights of checkpoint ``folder`` (``train.init``): e.g. STBP
    fine-tuning of a network converted from its QCFS twin. The state dicts must match key for key
    and shape for shape; the folder's own neuron settings are not used (the run's config rules)."""
    from ..pretrained import load_folder

    source = load_folder(folder).state_dict()
    target = model.state_dict()
    bad = sorted(set(source) ^ set(target)) + sorted(k for k in set(source) & set(target)
                                                      if source[k].shape != target[k].shape)
    if bad:
        raise ConfigError(f"{folder}: train.init weights do not fit model {model.config['name']!r} "
                          f"({len(bad)} tensors differ, e.g. {bad[0]!r})")
    model.load_state_dict(source)
