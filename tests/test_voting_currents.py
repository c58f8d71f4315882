"""examples/voting_currents.py: per-class input currents of the voting layer, on real recordings."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).parents[1] / "examples" / "voting_currents.py"


def test_every_class_of_the_default_model_reaches_threshold(nmnist_root):
    r = subprocess.run([sys.executable, str(EXAMPLE), "nmnist_compact", "--data-root", str(nmnist_root),
                        "--every", "50"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["class"] for row in rows] == [str(i) for i in range(10)]
    assert all(row["samples"] == 20 and row["max_current"] > row["v_th"] > row["mean_current"] for row in rows), rows
