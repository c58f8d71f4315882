"""Shared fixtures. Real data lives in ``../shared/data`` beside the checkout (or
``$SNNZOO_DATA``); tests that need it skip with the reason where it is absent."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

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
