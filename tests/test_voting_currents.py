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
    assert not any(row["dead"] for row in rows)


def test_revive_reinitialises_a_dead_group_at_threshold(tmp_path, nmnist_root):
    """A group killed by a very negative bias is found dead; --revive gives it the live groups'
    mean synapses with biases raised so its largest current is V_th, and leaves the rest as it was."""
    import torch
    from safetensors.torch import load_file

    from snnzoo.zoo.registry import create_model
    from snnzoo.zoo.training.checkpoint import export_folder

    net = create_model("nmnist_compact", pretrained=True)
    fc = net.layers[-2].module
    with torch.no_grad():
        fc.bias.view(10, -1)[3] -= 50.0
    export_folder(net, tmp_path / "dead", {})
    run = [sys.executable, str(EXAMPLE), "--data-root", str(nmnist_root), "--every", "50"]
    r = subprocess.run([*run[:2], str(tmp_path / "dead"), *run[2:], "--revive", str(tmp_path / "alive")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["class"] for row in rows if row.get("dead")] == ["3"] and rows[-1]["classes"] == ["3"]
    r = subprocess.run([*run[:2], str(tmp_path / "alive"), *run[2:]], capture_output=True, text=True, timeout=300)
    three = json.loads(r.stdout.splitlines()[3])
    assert abs(three["max_current"] - three["v_th"]) < 0.02, three
    before = load_file(str(tmp_path / "dead" / "model.safetensors"))
    after = load_file(str(tmp_path / "alive" / "model.safetensors"))
    key = [k for k in before if k.endswith(".bias") and before[k].numel() == 100][0]
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert sorted(changed) == sorted([key, key.replace(".bias", ".weight")])
    rows_changed = (before[key] != after[key]).view(10, -1).any(dim=1)
    assert rows_changed.tolist() == [c == 3 for c in range(10)]
