"""`SpikingNet`: the paper's feed-forward SNNs built from the architecture notation."""
from __future__ import annotations

import torch
from torch import nn

from .init import init_for_firing
from .layers import TimeDistributed, parse_arch
from .lif import LIF
from .neunorm import NeuNorm
from .qcfs import QCFS
from .voting import Voting


class SpikingNet(nn.Module):
    """Conv/FC spiking network with LIF neurons, optional NeuNorm/BN, and a voting output.

    Input: events ``[B, T, C, H, W]`` (binned frames), or for an encoding-layer model an
    analog image ``[B, C, H, W]`` that drives the first conv at every step (the conv runs
    once; its output current is repeated over T). Output: class scores ``[B, classes]``,
    each a voting group's mean firing rate.

    ``neuron="qcfs"`` builds the network's ANN twin for conversion (:mod:`.qcfs`): every LIF
    becomes a QCFS activation with ``qcfs_levels`` levels, and ``time_steps`` should be 1. Its state
    dict is the spiking network's, so the converted SNN loads the same weights with
    ``neuron="lif", k=1, reset="subtract", v_th=1, u0=0.5``.
    """

    def __init__(self, arch: str, in_shape: tuple[int, int, int], num_classes: int,
                 time_steps: int, neunorm: bool = False, bn: bool = False,
                 k: float = 0.2, v_th: float = 0.5, surrogate: str = "rect",
                 width: float | None = None, neunorm_k2: float = 0.9,
                 neurons_per_class: int = 10, input_m2: float = 1.0,
                 init_gain: float = 1.0, reset: str = "zero", u0: float = 0.0,
                 neuron: str = "lif", qcfs_levels: int = 8) -> None:
        super().__init__()
        specs = parse_arch(arch)
        self.arch, self.in_shape, self.num_classes = arch, tuple(in_shape), num_classes
        self.time_steps = time_steps
        self.encoding = specs[0].encoding
        if neuron not in ("lif", "qcfs"):
            raise ValueError(f"unknown neuron {neuron!r}; choose 'lif' or 'qcfs'")
        self.neuron = neuron
        lif_args = dict(k=k, v_th=v_th, surrogate=surrogate, width=width, reset=reset, u0=u0)

        def spiking(voting: bool = False) -> nn.Module:
            return QCFS(qcfs_levels, ste_clip=voting) if neuron == "qcfs" else LIF(**lif_args)

        c, h, w = in_shape
        layers: list[nn.Module] = []
        init_plan: list[tuple[nn.Module, str]] = []
        flat = False
        for i, spec in enumerate(specs):
            if spec.kind == "conv":
                if flat:
                    raise ValueError(f"conv after FC in {arch!r}")
                conv = nn.Conv2d(c, spec.size, spec.kernel, padding=spec.kernel // 2, bias=not bn)
                after = ["lif"]
                block: list[nn.Module] = [conv]
                if bn:
                    block.append(nn.BatchNorm2d(spec.size))
                    after.insert(0, "bn")
                stateless = nn.Sequential(*block) if len(block) > 1 else conv
                layers.append(stateless if spec.encoding else TimeDistributed(stateless))
                layers.append(spiking())
                c = spec.size
                if neunorm:
                    layers.append(NeuNorm(c, h, w, k2=neunorm_k2))
                init_plan.append((conv, ",".join(after)))
            elif spec.kind == "pool":
                layers.append(TimeDistributed(nn.AvgPool2d(spec.size)))
                h, w = h // spec.size, w // spec.size
                if init_plan:
                    module, after = init_plan[-1]
                    init_plan[-1] = (module, f"{after},pool{spec.size}")
            else:
                if not flat:
                    layers.append(TimeDistributed(nn.Flatten()))
                    c, flat = c * h * w, True
                out = num_classes * neurons_per_class if spec.kind == "voting" else spec.size
                fc = nn.Linear(c, out, bias=not bn)
                block = [fc, nn.BatchNorm1d(out)] if bn and spec.kind == "fc" else [fc]
                layers.append(TimeDistributed(nn.Sequential(*block) if len(block) > 1 else fc))
                layers.append(spiking(voting=spec.kind == "voting"))
                init_plan.append((fc, "bn,lif" if len(block) > 1 else "lif"))
                c = out
        self.layers = nn.ModuleList(layers)
        self.voting = Voting(num_classes, neurons_per_class)
        init_for_firing(init_plan, v_th, input_m2, gain=init_gain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.encoding:
            if x.dim() != 4:
                raise ValueError(f"expected an image batch [B, C, H, W], got shape {tuple(x.shape)}")
            cur = self.layers[0](x)
            h = cur.unsqueeze(0).expand(self.time_steps, *cur.shape)
            rest = self.layers[1:]
        else:
            if x.dim() != 5:
                raise ValueError(f"expected event frames [B, T, C, H, W], got shape {tuple(x.shape)}")
            h = x.transpose(0, 1)
            rest = self.layers
        for layer in rest:
            h = layer(h)
        return self.voting(h)

    def lif_layers(self) -> list[tuple[str, LIF | QCFS]]:
        """The spiking layers (QCFS activations in the ANN twin), by module name."""
        return [(n, m) for n, m in self.named_modules() if isinstance(m, (LIF, QCFS))]

    @torch.no_grad()
    def firing_rates(self, x: torch.Tensor) -> dict[str, float]:
        """Mean firing rate of every LIF layer on input ``x`` (eval semantics)."""
        was_training = self.training
        self.eval()
        lifs = self.lif_layers()
        for _, m in lifs:
            m.record_rate = True
        try:
            self(x)
            return {n: float(m.rate) for n, m in lifs}
        finally:
            for _, m in lifs:
                m.record_rate, m.rate = False, None
            self.train(was_training)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def count_synops(net: SpikingNet) -> int:
    """Multiply-accumulates per time step of one sample (dense), for speed estimates."""
    total, (c, h, w) = 0, net.in_shape
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            total += m.weight.numel() * h * w
            c = m.out_channels
        elif isinstance(m, nn.AvgPool2d):
            k = m.kernel_size if isinstance(m.kernel_size, int) else m.kernel_size[0]
            h, w = h // k, w // k
        elif isinstance(m, nn.Linear):
            total += m.weight.numel()
    return total

