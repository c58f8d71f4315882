"""Function-preserving widening (snnzoo.zoo.widen): the wider net computes the narrow one's
function, the copies are made different when asked, and mismatched shapes are refused."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import snnzoo
from snnzoo.runtime.binning import bin_events
from snnzoo.zoo.network import SpikingNet
from snnzoo.zoo.pretrained import load_folder
from snnzoo.zoo.widen import widen

MODEL = dict(in_shape=(2, 12, 12), num_classes=4, time_steps=4, neunorm=True, k=0.2, v_th=0.5,
             neurons_per_class=3, input_m2=0.5)


def _narrow() -> SpikingNet:
    torch.manual_seed(0)
    net = SpikingNet("4C3-AP2-6C3-AP2-16FC-Voting", **MODEL).eval()
    with torch.no_grad():  # trained-looking NeuNorm scales (a fresh one is all zeros)
        for name, p in net.named_parameters():
            if name.endswith("scale"):
                p.uniform_(0.0, 1.0)
    return net


def _spikes(net: SpikingNet, x: torch.Tensor) -> list[torch.Tensor]:
    """Every LIF layer's spikes ``[T, B, ...]``."""
    out: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda m, i, o: out.append(o.detach())) for _, m in net.lif_layers()]
    with torch.no_grad():
        net(x)
    for h in hooks:
        h.remove()
    return out


def test_widened_net_computes_the_narrow_function():
    src = _narrow()
    dst = widen(src, SpikingNet("8C3-AP2-18C3-AP2-16FC-Voting", **MODEL).eval(), noise=0.0)  # ×2, then ×3
    x = (torch.rand(16, 4, 2, 12, 12, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    narrow, wide = _spikes(src, x), _spikes(dst, x)
    assert sum(s.sum().item() for s in narrow) > 0
    for a, b, r in zip(narrow, wide, (2, 3, 1, 1)):
        # each of the r copies of map c spikes exactly as map c (FC layers: unchanged)
        copies = b.unflatten(2, (r, a.shape[2])) if a.dim() == 5 else b[:, :, None]
        assert torch.equal(copies, a[:, :, None].expand_as(copies))
    with torch.no_grad():
        assert torch.equal(src(x), dst(x))


def test_noise_breaks_the_copies_symmetry_and_keeps_the_originals():
    src = _narrow()
    dst = widen(src, SpikingNet("8C3-AP2-12C3-AP2-16FC-Voting", **MODEL), noise=0.01)
    w_src, w_dst = src.layers[0].module.weight, dst.layers[0].module.weight
    assert torch.equal(w_dst[:4], w_src)  # the first copy keeps the trained maps
    diff = (w_dst[4:] - w_src).abs()
    assert 0 < diff.max() < 0.1 * w_src.std()


def test_mismatched_widths_are_refused():
    src = _narrow()
    with pytest.raises(ValueError, match="conv 4→6 cannot become 8→9"):
        widen(src, SpikingNet("8C3-AP2-9C3-AP2-16FC-Voting", **MODEL))
    with pytest.raises(ValueError, match="only convs widen"):
        widen(src, SpikingNet("4C3-AP2-6C3-AP2-32FC-Voting", **MODEL))


def test_widen_command_writes_a_checkpoint_that_predicts_as_the_bundled_model(tmp_path):
    """examples/train_nmnist_emulated.py widen → a loadable nmnist_compact_wide folder that, without
    noise, predicts the bundled samples as nmnist_compact does (its fp16 file rounds the split
    weights α·w, which may flip a voting spike: scores within one spike, 1/(T·10))."""
    root = Path(__file__).parents[1]
    r = subprocess.run([sys.executable, str(root / "examples" / "train_nmnist_emulated.py"), "widen",
                        str(root / "zoo" / "weights" / "nmnist_compact"), "--out", str(tmp_path / "wide"),
                        "--noise", "0"], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    wide = load_folder(tmp_path / "wide").float().eval()
    assert wide.config["arch"] == "64C3-AP2-128C3-AP2-256FC-Voting"
    assert wide.config["widened_from"]["noise"] == 0
    narrow = snnzoo.create_model("nmnist_compact", pretrained=True).float().eval()
    samples = sorted((root / "runtime" / "samples").glob("*.npy"))
    x = torch.from_numpy(np.stack([bin_events(np.load(f), (34, 34, 2), n_time_bins=8, mode="binary")
                                   for f in samples]).astype(np.float32))
    with torch.no_grad():
        a, b = wide(x), narrow(x)
    assert torch.equal(a.argmax(1), b.argmax(1))
    assert (a - b).abs().max() <= 1 / 80 + 1e-6
