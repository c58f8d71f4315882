"""Shared fixtures. Real data lives in ``../shared/data`` beside the checkout (or
``$SNNZOO_DATA``); tests that need it skip with the reason where it is absent, and fail under
``CI=true`` (:func:`data_missing`), where a skipped real-data test would hide a regression."""
from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator, NoReturn

import pytest
import torch

from snnzoo.zoo.neunorm import NeuNorm

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SNNZOO_DATA", REPO.parent / "shared" / "data"))
IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}
SAMPLES = sorted((REPO / "runtime" / "samples").glob("*.npy"))  # five real N-MNIST recordings


def data_missing(reason: str) -> NoReturn:
    """End a test whose real data is absent: a skip with ``reason``, or under ``CI=true`` a failure."""
    if IN_CI:
        pytest.fail(f"{reason}; CI=true requires the real data", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not DATA.is_dir():
        data_missing(f"real data not found at {DATA} (set SNNZOO_DATA or place ../shared/data)")
    return DATA


@pytest.fixture(scope="session")
def nmnist_root(shared_data: Path) -> Path:
    root = shared_data / "nmnist"
    if not (root / "Train").is_dir():
        data_missing(f"N-MNIST recordings not found at {root / 'Train'}")
    return root


@pytest.fixture(scope="session")
def cifar10_test_images(shared_data: Path):
    """CIFAR-10 test images 0–999, exact pixels: uint8 ``[1000, 32, 32, 3]`` from the lossless sprite."""
    import numpy as np
    from PIL import Image

    sprite = shared_data / "cifar10" / "cifar10_batch_50.png"
    if not sprite.is_file():
        data_missing(f"CIFAR-10 test sprite not found at {sprite}")
    with Image.open(sprite) as im:
        return np.asarray(im.convert("RGB")).reshape(1000, 32, 32, 3)


# ---- the session's ONNX exports --------------------------------------------------------------
@pytest.fixture(scope="session")
def snnzoo_cache(tmp_path_factory) -> Iterator[Path]:
    """``$SNNZOO_CACHE`` in a temp folder from first use to the end of the session: the exports
    the tests cause are made once, and never land in the user's cache."""
    mp = pytest.MonkeyPatch()
    cache = tmp_path_factory.mktemp("cache")
    mp.setenv("SNNZOO_CACHE", str(cache))
    yield cache
    mp.undo()


@pytest.fixture(scope="session")
def default_onnx(snnzoo_cache: Path) -> Path:
    """The bundled default model's ONNX file (the one shipped beside its weights; else its export in
    the session's cache, made once) for every test that runs the default model (``Predictor()``,
    ``snnzoo predict`` without ``--model``)."""
    from snnzoo.runtime import models, onnx_cache

    return onnx_cache.onnx_path(models.resolve(None))


@pytest.fixture(scope="session")
def runtime_env(tmp_path_factory, snnzoo_cache: Path) -> SimpleNamespace:
    """A seeded random ``nmnist_compact`` checkpoint folder (fp16 safetensors + config.json, as
    shipped checkpoints are) and its ONNX export in the session's ``$SNNZOO_CACHE``."""
    from safetensors.torch import save_file

    from snnzoo import create_model
    from snnzoo.runtime import models, onnx_cache

    ckpt = tmp_path_factory.mktemp("runtime") / "nmnist_compact_ckpt"
    ckpt.mkdir()
    torch.manual_seed(0)
    net = create_model("nmnist_compact")
    save_file({k: v.half().contiguous() for k, v in net.state_dict().items()}, str(ckpt / "model.safetensors"))
    (ckpt / "config.json").write_text(json.dumps(net.config, indent=1))
    onnx = onnx_cache.onnx_path(models.resolve(ckpt))  # the one export of this session
    return SimpleNamespace(checkpoint=ckpt, cache=snnzoo_cache, onnx=onnx)


@pytest.fixture(scope="session")
def bad_files(tmp_path_factory) -> dict[str, Path]:
    """A truncated N-MNIST .bin, a text file named .npy, and a 128x128 recording (.npz with its sensor)."""
    import numpy as np

    d = tmp_path_factory.mktemp("bad")
    ev = np.load(SAMPLES[0])
    raw = np.zeros((len(ev), 5), np.uint8)
    raw[:, 0], raw[:, 1] = ev["x"], ev["y"]
    raw[:, 2] = (ev["p"].astype(np.uint8) << 7) | ((ev["t"] >> 16) & 0x7F).astype(np.uint8)
    raw[:, 3], raw[:, 4] = (ev["t"] >> 8) & 0xFF, ev["t"] & 0xFF
    files = {"truncated": d / "truncated.bin", "not_events": d / "notes.npy", "wrong_sensor": d / "dvs128.npz"}
    files["truncated"].write_bytes(raw.tobytes()[:-3])
    files["not_events"].write_text("these are my notes, not events\n")
    np.savez(files["wrong_sensor"], events=ev, sensor_size=np.array([128, 128, 2]))
    return files


@pytest.fixture(scope="session")
def image_model(tmp_path_factory) -> tuple[torch.nn.Module, Path]:
    """``cifar10_compact`` at T=2 (random init, randomized BN) in eval mode and its ONNX export;
    exported once per session for the image tests."""
    import snnzoo
    from snnzoo.export import export_onnx

    torch.manual_seed(0)
    net = randomize(snnzoo.create_model("cifar10_compact", time_steps=2)).eval()
    return net, export_onnx(net, tmp_path_factory.mktemp("image_model") / "cifar10_compact.onnx")


def randomize(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Non-trivial NeuNorm scales and BN statistics/affines, so exports and states must carry them."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, NeuNorm):
                m.scale.copy_(torch.rand(m.scale.shape, generator=g))
            elif isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.running_mean.uniform_(-0.1, 0.1, generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.uniform_(-0.1, 0.1, generator=g)
    return net


# ---- a tiny registered model (registry, Hub and card tests) -------------------------------------
NAME = "tiny_events"


def tiny_cfg(weights: dict | None = None) -> dict:
    from snnzoo.zoo import models

    return models._cfg("4C3-AP2-16FC-Voting", "nmnist", models._events((34, 34, 2), 2), models.DIGITS,
                       input_m2=0.1, weights=weights)


def tiny_net(cfg: dict) -> torch.nn.Module:
    """A small model whose weights are exactly fp16-representable, so round trips compare exactly."""
    from snnzoo.zoo import models

    torch.manual_seed(0)
    net = models._build(NAME, cfg, {})
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(p.half().float())
    return net.eval()


def register(monkeypatch, cfg: dict) -> None:
    from snnzoo.zoo import entrypoints, models

    monkeypatch.setitem(entrypoints._entrypoints, NAME, lambda **kw: models._build(NAME, cfg, kw))
    monkeypatch.setitem(entrypoints._pretrained_cfgs, NAME, cfg)


def frames() -> torch.Tensor:
    return (torch.rand(3, 2, 2, 34, 34, generator=torch.Generator().manual_seed(1)) < 0.2).float()


def write_card_inputs(card_dir: Path, result: dict) -> None:
    """``card.json`` for the tiny model with one evaluation, ``result`` its ``eval.json``."""
    card_dir.mkdir(parents=True, exist_ok=True)
    (card_dir / "eval.json").write_text(json.dumps(result))
    (card_dir / "card.json").write_text(json.dumps({
        "model": NAME, "intended_use": "Tests of the card generator.",
        "training_data": "Nothing: random initialisation.", "datasets": ["nmnist"],
        "recipe": "SGD, 2 epochs", "compute": "none", "commands": {"train": "snnzoo train tiny"},
        "checkpoint_selection": "last epoch", "limitations": ["Not a trained model."],
        "evaluations": [{"file": "eval.json", "name": "N-MNIST test", "split": "test",
                         "command": "snnzoo eval tiny_events --dataset nmnist --format json"}]}))
