"""Real-data tests skip, saying why, where ``../shared/data`` is absent, and fail under ``CI=true``
(conftest's ``data_missing``); ``.ci/run`` prints the skip reasons (``-rs``)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_without_data(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["SNNZOO_DATA"] = str(tmp_path / "no_data_here")
    if ci is not None:
        env["CI"] = ci
    cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "tests/test_mnist.py",
           "-k", "real_idx_files or dataset_class"]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_missing_data_is_a_visible_skip_locally(tmp_path):
    r = run_without_data(tmp_path, None)
    assert r.returncode == 0, r.stdout[-2000:]
    assert "SKIPPED" in r.stdout and f"real data not found at {tmp_path / 'no_data_here'}" in r.stdout
    assert " skipped" in r.stdout.splitlines()[-1] and "passed" not in r.stdout.splitlines()[-1]


@pytest.mark.parametrize("ci", ["true"])
def test_missing_data_fails_under_ci(tmp_path, ci):
    r = run_without_data(tmp_path, ci)
    assert r.returncode == 1, r.stdout[-2000:]
    assert "CI=true requires the real data" in r.stdout and "skipped" not in r.stdout.splitlines()[-1]
