"""The benchmark peers compute our network: SpikingJelly and snnTorch rebuilt with our weights
give our scores on real N-MNIST, and SpikingJelly our STBP gradients. Skipped where the optional
peers (``pip install .[bench]``) are not installed. No timings are asserted."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import snnzoo  # noqa: E402


@pytest.fixture(scope="module")
def setup(nmnist_root: Path):
    from common import nmnist_frames

    torch.manual_seed(0)
    net = snnzoo.create_model("nmnist_compact", neunorm=False, time_steps=4, surrogate="polynomial")
    frames, labels = nmnist_frames(net.config["input"]["binning"], nmnist_root.parent, 16)
    return net, torch.from_numpy(frames), torch.from_numpy(labels)


@pytest.mark.parametrize("peer", ["spikingjelly", "snntorch"])
def test_peer_scores_match_ours(setup, peer: str) -> None:
    pytest.importorskip({"spikingjelly": "spikingjelly.activation_based", "snntorch": "snntorch"}[peer])
    from common import agreement
    from peers import build_peer

    net, x, _ = setup
    net.eval()
    with torch.inference_mode():
        ours = net(x).numpy()
        theirs = build_peer(peer, net)(x).numpy()
    a = agreement(ours, theirs)
    assert a["unique"] > 0 and a["top1_same"] == a["unique"]
    assert a["max_diff"] < 1e-6  # no spike flips on these inputs; only summation order differs


def test_spikingjelly_gradients_match_ours(setup) -> None:
    pytest.importorskip("spikingjelly.activation_based")
    from bench_train_cpu_peers import grads
    from peers import build_peer

    net, x, y = setup
    net.train()
    loss, g = grads(net, x, y)
    loss_sj, g_sj = grads(build_peer("spikingjelly", net), x, y)
    assert loss_sj == pytest.approx(loss, rel=1e-6)
    assert len(g_sj) == len(g)
    for a, b in zip(g_sj, g):
        assert float((a - b).norm() / b.norm()) < 1e-4


def test_peers_refuse_neunorm() -> None:
    from peers import SJNet

    with pytest.raises(ValueError, match="neunorm=False"):
        SJNet(snnzoo.create_model("nmnist_compact", time_steps=2))


def test_agreement_counts_unique_top1_only() -> None:
    from common import agreement

    ref = np.array([[0.1, 0.5, 0.2], [0.3, 0.3, 0.1], [0.9, 0.0, 0.0]])
    other = np.array([[0.1, 0.4, 0.6], [0.0, 0.3, 0.1], [0.8, 0.0, 0.0]])
    a = agreement(ref, other)
    assert (a["unique"], a["top1_same"]) == (2, 1)
    assert a["max_diff"] == pytest.approx(0.4)


def test_agreement_treats_rounding_level_gaps_as_ties() -> None:
    from common import agreement

    ref = np.array([[0.07, 0.07 + 3e-8, 0.0]])  # equal rates, summed in another order
    a = agreement(ref, np.array([[0.07 + 3e-8, 0.07, 0.0]]))
    assert a["unique"] == 0


def test_gpu_script_smoke_runs_on_cpu(nmnist_root: Path, capsys) -> None:
    import importlib.util

    from bench_gpu import main

    modes = ["eager", "cudagraph"] + (["spikingjelly"] if importlib.util.find_spec("spikingjelly") else [])
    main(["--device", "cpu", "--smoke", "--data", str(nmnist_root.parent), "--modes", *modes])
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| inference") or line.startswith("| training")]
    assert len(rows) == 2
    assert all(cell.strip() != "—" for row in rows for cell in row.split("|")[3:4])  # ours · eager ran
    assert "ours · CUDA graph: not run — needs a CUDA device" in out
