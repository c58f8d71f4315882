"""Shared fixtures. Real data lives in ``../shared/data`` beside the checkout (or
``$SNNZOO_DATA``); tests that need it skip with the reason where it is absent, and fail under
``CI=true`` (:func:`data_missing`), where a skipped real-data test would hide a regression."""
from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import pytest
import torch

from snnzoo.zoo.neunorm import NeuNorm

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SNNZOO_DATA", REPO.parent / "shared" / "data"))
IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


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
