"""Shared fixtures. Real data lives in ``../shared/data`` beside the checkout (or
``$SNNZOO_DATA``); tests that need it skip with the reason where it is absent."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from snnzoo.zoo.neunorm import NeuNorm

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SNNZOO_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"real data not found at {DATA} (set SNNZOO_DATA or place ../shared/data)")
    return DATA


@pytest.fixture(scope="session")
def nmnist_root(shared_data: Path) -> Path:
    root = shared_data / "nmnist"
    if not (root / "Train").is_dir():
        pytest.skip(f"N-MNIST recordings not found at {root / 'Train'}")
    return root


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
