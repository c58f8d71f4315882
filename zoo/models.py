"""The zoo's architectures, each with its pretrained config beside it (timm's habit).

Paper topologies (Wu et al., AAAI 2019) and the compact variants we publish as checkpoints.
A config's ``model`` block holds the constructor arguments; ``create_model`` overrides replace
them, and the built network keeps the resolved config as ``net.config``.
"""
from __future__ import annotations

from typing import Any

from ..runtime.specs import input_from_dict
from .builder import build_model as _build
from .entrypoints import register_model
from .network import SpikingNet
from .qcfs import IF_SOFT_RESET

CITATION = (
    "@inproceedings{wu2019direct,\n"
    "  title={Direct Training for Spiking Neural Networks: Faster, Larger, Better},\n"
    "  author={Wu, Yujie and Deng, Lei and Li, Guoqi and Zhu, Jun and Xie, Yuan and Shi, Luping},\n"
    "  booktitle={Proceedings of the AAAI Conference on Artificial Intelligence},\n"
    "  volume={33}, pages={1311--1318}, year={2019}\n}"
)
DIGITS = [str(i) for i in range(10)]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck"]
CIFAR10_MEAN = [0.4914, 0.4822, 0.4465]
CIFAR10_STD = [0.2470, 0.2435, 0.2616]

NMNIST_ARCH = "128C3-128C3-AP2-128C3-256C3-AP2-1024FC-Voting"
CIFAR10_ARCH = "128C3(enc)-256C3-AP2-512C3-AP2-1024C3-512C3-1024FC-512FC-Voting"


def _events(sensor: tuple[int, int, int], steps: int, mode: str = "binary", downsample: int = 1) -> dict:
    return {"kind": "events", "sensor_size": list(sensor), "time_steps": steps,
            "layout": "[B, T, P, H, W]",
            "binning": {"method": "n_time_bins", "n_time_bins": steps, "mode": mode,
                        "downsample": downsample, "polarity_channels": sensor[2]}}


def _image(shape: tuple[int, int, int], steps: int, mean: list[float], std: list[float]) -> dict:
    return {"kind": "image", "shape": list(shape), "time_steps": steps, "layout": "[B, C, H, W]",
            "scale": 1 / 255, "mean": mean, "std": std}


def _cfg(arch: str, dataset: str, inp: dict, classes: list[str], input_m2: float,
         weights: dict | None = None, **model: Any) -> dict[str, Any]:
    in_shape = list(input_from_dict(inp).shape[-3:])  # [P, H, W] frames or [C, H, W] image
    base = dict(in_shape=in_shape, num_classes=len(classes), time_steps=inp["time_steps"],
                neunorm=True, bn=False, k=0.2, v_th=0.5, surrogate="rect", width=None,
                neunorm_k2=0.9, neurons_per_class=10, input_m2=input_m2, reset="zero", u0=0.0,
                neuron="lif", qcfs_levels=8)
    base.update(model)
    return {"arch": arch, "dataset": dataset, "model": base, "input": inp, "classes": classes,
            "weights": weights, "license": "MIT", "citation": CITATION}


# ---- paper topologies -------------------------------------------------------------------
_wu2019_nmnist = _cfg(NMNIST_ARCH, "nmnist", _events((34, 34, 2), 10), DIGITS, input_m2=0.08,
                      weights={"file": "wu2019_nmnist/model.safetensors", "hf_hub_id": "snnzoo/wu2019_nmnist",
                               "sha256": "15f9877232d7e7f4e212f1591d6b804dde335343c57c0f0c3bcb5e991ac404db"})


@register_model(_wu2019_nmnist)
def wu2019_nmnist(**kw: Any) -> SpikingNet:
    """N-MNIST, 2×34×34, T=10: 128C3-128C3-AP2-128C3-256C3-AP2-1024FC-Voting
    (17.47 M params; NeuNorm scales add 0.41 M)."""
    return _build("wu2019_nmnist", _wu2019_nmnist, kw)


_wu2019_dvscifar10 = _cfg(NMNIST_ARCH, "cifar10dvs", _events((128, 128, 2), 10, mode="count", downsample=3),
                          CIFAR10_CLASSES, input_m2=0.3)


@register_model(_wu2019_dvscifar10)
def wu2019_dvscifar10(**kw: Any) -> SpikingNet:
    """CIFAR10-DVS, 128×128 events binned to 2×42×42 (``downsample=3``; ``in_shape`` overrides),
    T=10: the N-MNIST topology."""
    return _build("wu2019_dvscifar10", _wu2019_dvscifar10, kw)


_wu2019_cifar10 = _cfg(CIFAR10_ARCH, "cifar10", _image((3, 32, 32), 8, CIFAR10_MEAN, CIFAR10_STD),
                       CIFAR10_CLASSES, input_m2=1.0)


@register_model(_wu2019_cifar10)
def wu2019_cifar10(**kw: Any) -> SpikingNet:
    """CIFAR-10, 3×32×32 image through the encoding layer, T=8:
    128C3(enc)-256C3-AP2-512C3-AP2-1024C3-512C3-1024FC-512FC-Voting
    (45.04 M params; NeuNorm scales add 0.62 M)."""
    return _build("wu2019_cifar10", _wu2019_cifar10, kw)


# ---- compact variants (the published checkpoints fit the repo's 40 MB budget) -------------
def _nmnist_compact_cfg(weights: dict | None, arch: str = "32C3-AP2-64C3-AP2-256FC-Voting") -> dict[str, Any]:
    """The compact N-MNIST net's config (``arch``: the widths); its checkpoints differ only in their weights."""
    return _cfg(arch, "nmnist", _events((34, 34, 2), 8), DIGITS, input_m2=0.1, weights=weights)


_nmnist_compact = _nmnist_compact_cfg({"file": "nmnist_compact/model.safetensors",
                                       "sha256": "34697b4b67f385352ccffedb691fcf9d488120dfac1680dc206e9d3310e05d3b"})


@register_model(_nmnist_compact)
def nmnist_compact(**kw: Any) -> SpikingNet:
    """Compact N-MNIST net, T=8: 32C3-AP2-64C3-AP2-256FC-Voting (1.09 M params + 0.06 M NeuNorm scales, 2.3 MB fp16)."""
    return _build("nmnist_compact", _nmnist_compact, kw)


_nmnist_compact_real = _nmnist_compact_cfg({"file": "nmnist_compact_real/model.safetensors",
                                            "sha256": "8326b85df1100e7df773da03310203d8d3449f682bd596cfc7fd24287f9401af"})


@register_model(_nmnist_compact_real)
def nmnist_compact_real(**kw: Any) -> SpikingNet:
    """``nmnist_compact`` fine-tuned on all 1,000 real N-MNIST recordings we hold plus emulated
    streams (recipe R2, k-fold estimate on the card); same architecture and speed."""
    return _build("nmnist_compact_real", _nmnist_compact_real, kw)


_nmnist_compact_wide = _nmnist_compact_cfg(None, "64C3-AP2-128C3-AP2-256FC-Voting")


@register_model(_nmnist_compact_wide)
def nmnist_compact_wide(**kw: Any) -> SpikingNet:
    """``nmnist_compact`` with both convs twice as wide, T=8: 64C3-AP2-128C3-AP2-256FC-Voting
    (2.20 M params + 0.11 M NeuNorm scales, 4.6 MB fp16), to train from a widened ``nmnist_compact``
    (:func:`snnzoo.zoo.widen.widen`). No published weights: its first run (2 epochs from stage 6) was
    level with ``nmnist_compact`` on emulated validation (see nmnist_compact's card)."""
    return _build("nmnist_compact_wide", _nmnist_compact_wide, kw)


_cifar10_compact = _cfg("128C3(enc)-256C3-AP2-256C3-AP2-512C3-AP2-512FC-Voting", "cifar10",
                        _image((3, 32, 32), 4, CIFAR10_MEAN, CIFAR10_STD), CIFAR10_CLASSES,
                        input_m2=1.0, bn=True, neunorm=False)


@register_model(_cifar10_compact)
def cifar10_compact(**kw: Any) -> SpikingNet:
    """Compact CIFAR-10 net with BN, T=4: 128C3(enc)-256C3-AP2-256C3-AP2-512C3-AP2-512FC-Voting
    (6.3 M params, 12.6 MB fp16)."""
    return _build("cifar10_compact", _cifar10_compact, kw)


# ---- converted from a QCFS-trained ANN twin (zoo/qcfs.py) -----------------------------------
_cifar10_qcfs = _cfg("32C3(enc)-64C3-AP2-64C3-256C3-AP2-256C3-256C3-AP2-256C3-AP2-Voting", "cifar10",
                     _image((3, 32, 32), 8, CIFAR10_MEAN, CIFAR10_STD), CIFAR10_CLASSES, input_m2=1.0,
                     bn=True, neunorm=False, **IF_SOFT_RESET,
                     weights={"file": "cifar10_qcfs/model.safetensors",
                              "sha256": "9a6ff96df206f7534c36dc10299aa54720889abf3d38fb1cd2a57c2a499fc302"})


@register_model(_cifar10_qcfs)
def cifar10_qcfs(**kw: Any) -> SpikingNet:
    """CIFAR-10 IF network (soft reset, ``u0 = V_th/2``), T=8, converted from its QCFS-trained ANN
    twin (``neuron="qcfs", time_steps=1``): 32C3(enc)-64C3-AP2-64C3-256C3-AP2-256C3-256C3-AP2-256C3-AP2-Voting
    with BN (2.07 M params, 4.1 MB fp16)."""
    return _build("cifar10_qcfs", _cifar10_qcfs, kw)


_cifar10_qcfs_vgg = _cfg("64C3(enc)-128C3-AP2-256C3-256C3-AP2-512C3-512C3-AP2-512C3-AP2-Voting", "cifar10",
                         _image((3, 32, 32), 8, CIFAR10_MEAN, CIFAR10_STD), CIFAR10_CLASSES, input_m2=1.0,
                         bn=True, neunorm=False, **IF_SOFT_RESET,
                         weights={"file": "cifar10_qcfs_vgg/model.safetensors",
                                  "sha256": "2eb32eee3928531cba4334a90741dbe508b84a0f1ca352813e2ab467921c5c57"})


@register_model(_cifar10_qcfs_vgg)
def cifar10_qcfs_vgg(**kw: Any) -> SpikingNet:
    """CIFAR-10 IF network (soft reset, ``u0 = V_th/2``), T=8, converted from its QCFS-trained ANN
    twin: the VGG-style 64C3(enc)-128C3-AP2-256C3-256C3-AP2-512C3-512C3-AP2-512C3-AP2-Voting with BN
    (7.07 M params, 14.1 MB fp16)."""
    return _build("cifar10_qcfs_vgg", _cifar10_qcfs_vgg, kw)


_cifar10_qcfs_vgg_stbp = {**_cifar10_qcfs_vgg,
                          "weights": {"file": "cifar10_qcfs_vgg_stbp/model.safetensors",
                                      "sha256": "3fab4e386d54687691863e90b78e7df12ee7e178427b476ad2571a96a13a8175"}}


@register_model(_cifar10_qcfs_vgg_stbp)
def cifar10_qcfs_vgg_stbp(**kw: Any) -> SpikingNet:
    """``cifar10_qcfs_vgg`` after the hybrid route's last stage: the converted IF network fine-tuned
    through its 8 time steps with STBP (configs/cifar10_qcfs_vgg_stbp.toml). Same architecture, size
    and neurons; more accurate at T = 8 and far more at T = 4."""
    return _build("cifar10_qcfs_vgg_stbp", _cifar10_qcfs_vgg_stbp, kw)

_cifar10_qcfs_vgg16 = _cfg("64C3(enc)-64C3-AP2-128C3-128C3-AP2-256C3-256C3-256C3-AP2-512C3-512C3-512C3-AP2-"
                           "256C3-256C3-256C3-AP2-Voting", "cifar10",
                           _image((3, 32, 32), 8, CIFAR10_MEAN, CIFAR10_STD), CIFAR10_CLASSES, input_m2=1.0,
                           bn=True, neunorm=False, **IF_SOFT_RESET)


@register_model(_cifar10_qcfs_vgg16)
def cifar10_qcfs_vgg16(**kw: Any) -> SpikingNet:
    """CIFAR-10 IF network (soft reset, ``u0 = V_th/2``), T=8, converted from its QCFS-trained ANN
    twin: VGG-16's 13 convolutions with average pooling and the last block narrowed to 256 channels,
    64C3(enc)-64C3-AP2-128C3-128C3-AP2-256C3×3-AP2-512C3×3-AP2-256C3×3-AP2-Voting with BN
    (10.02 M params, 20.0 MB fp16)."""
    return _build("cifar10_qcfs_vgg16", _cifar10_qcfs_vgg16, kw)


_cifar10_qcfs_vgg13 = _cfg("64C3(enc)-64C3-AP2-128C3-128C3-AP2-256C3-256C3-AP2-512C3-512C3-AP2-Voting", "cifar10",
                           _image((3, 32, 32), 8, CIFAR10_MEAN, CIFAR10_STD), CIFAR10_CLASSES, input_m2=1.0,
                           bn=True, neunorm=False, **IF_SOFT_RESET)


@register_model(_cifar10_qcfs_vgg13)
def cifar10_qcfs_vgg13(**kw: Any) -> SpikingNet:
    """CIFAR-10 IF network (soft reset, ``u0 = V_th/2``), T=8, converted from its QCFS-trained ANN
    twin: VGG-13's first four blocks with average pooling,
    64C3(enc)-64C3-AP2-128C3-128C3-AP2-256C3-256C3-AP2-512C3-512C3-AP2-Voting with BN (4.9 M params)."""
    return _build("cifar10_qcfs_vgg13", _cifar10_qcfs_vgg13, kw)
