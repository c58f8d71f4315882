"""Training configs: defaults, TOML files (``configs/*.toml``), ``--set key=value`` overrides.

A config names a registered model and its constructor overrides (``model_args``) and holds the
data, optimiser, schedule, loss and run options. Every value is a TOML primitive, so the whole
config lands as-is in the checkpoint, ``metrics.jsonl`` and ``config.json``.
"""
from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

from ...errors import SnnzooError

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"

DEFAULTS: dict[str, Any] = {
    "name": "",  # run name (the config file's stem, or the model name)
    "model": "",  # registered model name
    "model_args": {},  # create_model overrides (neunorm, bn, time_steps, k, v_th, surrogate...)
    "data": {
        "dataset": "",  # get_dataset name; "" = the model's dataset
        "val_fraction": 0.1,  # held-out share of the training split, stratified, seeded
        "val_split": "",  # or a named split given by the dataset (never "test")
        "split_seed": 0,
        "limit": 0,  # use a seeded random subset of this many training samples (0 = all)
        "augment": False,
        "shift": 2,  # events: max random translation in pixels
        "rotate": 0.0,  # events: max random rotation in degrees (0 = off)
        "zoom": 0.0,  # events: max random zoom, as a fraction (0.1 = ×0.9 to ×1.1; 0 = off)
        "crop_padding": 4,  # images: random crop after zero padding
        "flip": True,  # images: random horizontal flip
        "cutout": 0,  # images: zero a random cutout × cutout square (clipped at the border; 0 = off)
    },
    "optim": {
        "name": "adam",  # adam | adamw | sgd
        "lr": 1e-3,
        "momentum": 0.9,  # sgd
        "nesterov": False,
        "weight_decay": 0.0,
        "betas": [0.9, 0.999],  # adam/adamw
    },
    "schedule": {
        "name": "step",  # step | cosine | onecycle | constant
        "step_epochs": 40,  # step: multiply by gamma every step_epochs (or at milestones)
        "milestones": [],
        "gamma": 0.1,
        "warmup_epochs": 0.0,  # linear warm-up (step, cosine)
        "min_lr_ratio": 0.0,  # cosine floor, as a fraction of lr
        "pct_start": 0.3,  # onecycle
    },
    "loss": {
        "name": "mse",  # mse: (voted rates − one-hot)²; ce: cross-entropy on ce_scale · rates
        "ce_scale": 10.0,
        "label_smoothing": 0.0,
    },
    "train": {
        "epochs": 100,
        "batch_size": 100,
        "seed": 0,
        "device": "auto",  # auto | cpu | cuda | cuda:N
        "amp": "none",  # none | bf16 (autocast on CUDA or CPU; membrane state stays fp32)
        "compile": False,  # torch.compile (any device)
        "channels_last": "auto",  # auto (= on CUDA, or with bf16) | true | false
        "threads": 0,  # torch.set_num_threads (0 = torch's default)
        "keep_freed_memory": True,  # CPU: glibc keeps freed memory for reuse (snnzoo.runtime.allocator)
        "log_every": 20,  # steps between metrics.jsonl train records
        "ckpt_every": 200,  # steps between mid-epoch checkpoints (besides every epoch end)
        "eval_batch_size": 0,  # 0 = 2 × batch_size
        "time_limit_s": 0.0,  # end at the first epoch end where one more epoch would pass this (0 = off)
        "init": "",  # checkpoint folder whose weights start the run (same architecture; "" = fresh init)
        "freeze_bn": False,  # BatchNorm in eval mode while training (running stats fixed): fine-tuning
    },
}

# What `--resume` may change: how long and where the run goes on, not what it computes (a resumed
# run's weights come from its checkpoint, so train.init no longer matters).
RESUMABLE = {"train.epochs", "train.device", "train.threads", "train.keep_freed_memory", "train.log_every",
             "train.ckpt_every", "train.eval_batch_size", "train.time_limit_s", "train.compile", "train.init"}


class ConfigError(SnnzooError, ValueError):
    """A bad config file or override; the message names the file or key."""


def _merge(base: dict[str, Any], new: dict[str, Any], where: str) -> None:
    for key, value in new.items():
        path = f"{where}.{key}" if where else key
        if key not in base:
            raise ConfigError(f"unknown key {path!r}; known: {', '.join(sorted(base))}")
        if key == "model_args":
            if not isinstance(value, dict):
                raise ConfigError(f"{path!r} must be a table")
            base[key].update(value)
        elif isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{path!r} must be a table")
            _merge(base[key], value, path)
        else:
            base[key] = _check_type(path, base[key], value)


def _check_type(path: str, old: Any, value: Any) -> Any:
    if isinstance(old, bool) or isinstance(value, bool):
        if isinstance(old, bool) and isinstance(value, bool):
            return value
        if path == "train.channels_last" and (isinstance(value, bool) or value == "auto"):
            return value
        raise ConfigError(f"{path!r} expects {type(old).__name__}, got {value!r}")
    if isinstance(old, float) and isinstance(value, int):
        return float(value)
    if type(old) is not type(value):
        raise ConfigError(f"{path!r} expects {type(old).__name__}, got {value!r}")
    return value


def parse_value(text: str) -> Any:
    """A ``--set`` value: a TOML literal (``3``, ``0.1``, ``true``, ``[30, 60]``, ``"x"``),
    else the bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_set(cfg: dict[str, Any], assignment: str) -> None:
    """Apply one ``key.sub=value`` override in place."""
    key, sep, text = assignment.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {assignment!r}: expected key=value (e.g. optim.lr=0.01)")
    *parents, leaf = key.strip().split(".")
    nested: dict[str, Any] = {leaf: parse_value(text.strip())}
    for p in reversed(parents):
        nested = {p: nested}
    _merge(cfg, nested, "")


def load_config(target: str, sets: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """Resolve ``target`` — a ``.toml`` path, a config name in ``configs/`` or a registered
    model name — into a full config, then apply ``sets``."""
    from ..registry import get_pretrained_cfg, list_models

    cfg = copy.deepcopy(DEFAULTS)
    path = Path(target)
    if target.endswith(".toml") or path.is_file():
        if not path.is_file():
            raise ConfigError(f"{target}: config file not found")
    elif (CONFIG_DIR / f"{target}.toml").is_file():
        path = CONFIG_DIR / f"{target}.toml"
    elif target in list_models():
        path = None
        cfg["name"] = cfg["model"] = target
    else:
        known = sorted(p.stem for p in CONFIG_DIR.glob("*.toml"))
        raise ConfigError(f"{target}: not a config file, a config name ({', '.join(known)}) "
                          f"or a model ({', '.join(list_models())})")
    if path is not None:
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise ConfigError(f"{path}: {e}") from None
        try:
            _merge(cfg, data, "")
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None
        cfg["name"] = cfg["name"] or path.stem
        if not cfg["model"]:
            raise ConfigError(f"{path}: no 'model' given")
    for s in sets:
        apply_set(cfg, s)
    if cfg["model"] not in list_models():
        raise ConfigError(f"unknown model {cfg['model']!r}; known: {', '.join(list_models())}")
    if not cfg["data"]["dataset"]:
        cfg["data"]["dataset"] = get_pretrained_cfg(cfg["model"])["dataset"]
    validate(cfg)
    return cfg


def validate(cfg: dict[str, Any]) -> None:
    """Refuse values no code path accepts (names of optimisers, schedules, losses...)."""
    choices = {("optim", "name"): ("adam", "adamw", "sgd"),
               ("schedule", "name"): ("step", "cosine", "onecycle", "constant"),
               ("loss", "name"): ("mse", "ce"), ("train", "amp"): ("none", "bf16")}
    for (sec, key), allowed in choices.items():
        if cfg[sec][key] not in allowed:
            raise ConfigError(f"{sec}.{key} = {cfg[sec][key]!r}; choose one of {', '.join(allowed)}")
    if cfg["data"]["val_split"] == "test":
        raise ConfigError("data.val_split = 'test': the test split is never used during training")
    if not 0.0 <= cfg["data"]["val_fraction"] < 1.0:
        raise ConfigError("data.val_fraction must be in [0, 1)")
    for key in ("epochs", "batch_size", "log_every", "ckpt_every"):
        if cfg["train"][key] < 1:
            raise ConfigError(f"train.{key} must be >= 1")
    if cfg["train"]["time_limit_s"] < 0:
        raise ConfigError("train.time_limit_s must be >= 0 (0 = no limit)")


def diff(old: dict[str, Any], new: dict[str, Any], where: str = "") -> list[str]:
    """Dotted keys whose values differ between two configs."""
    out = []
    for key in sorted(set(old) | set(new)):
        path = f"{where}.{key}" if where else key
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict) and key != "model_args":
            out += diff(a, b, path)
        elif a != b:
            out.append(path)
    return out
