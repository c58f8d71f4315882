r"""ANN-to-SNN conversion of a QCFS-trained twin (Bu et al., ICLR 2022; :mod:`.qcfs`).

The twin (``neuron="qcfs"``, one step) and the spiking network share every weight; conversion
swaps each ``q(x) = clip(⌊x·L + ½⌋/L, 0, 1)`` for an IF neuron with soft reset,

    u[t] = u[t-1] − V_th·o[t-1] + I[t],   o[t] = H(u[t] − V_th),   V_th = 1,   u[-1] = V_th/2,

run for T steps with the image current ``I`` repeated (the encoding layer). For a constant current
the spike count is ``⌊I·T + ½⌋`` clipped to ``[0, T]``: the QCFS activation with ``L = T``. Deeper
layers receive spike trains rather than constant currents, so the spiking network matches the
twin only in expectation; the residual error shrinks as T grows (measure it with
``snnzoo eval … --time-steps T``). The model's registered neuron constants must be these.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import click
from torch import nn

from ..runtime.models import CONFIG_FILE, WEIGHTS_FILE
from .qcfs import IF_SOFT_RESET


def convert_qcfs(folder: str | Path, time_steps: int) -> nn.Module:
    """The spiking network of the QCFS twin stored in checkpoint ``folder``, at ``time_steps``."""
    from .pretrained import load_folder, read_config

    folder = Path(folder)
    model = read_config(folder / CONFIG_FILE)["model"]
    if model.get("neuron") != "qcfs":
        raise ValueError(f"{folder}: not a QCFS twin (its config has neuron={model.get('neuron', 'lif')!r})")
    wrong = {k: model.get(k) for k, v in IF_SOFT_RESET.items() if model.get(k) != v}
    if wrong:
        raise ValueError(f"{folder}: the twin's neuron constants {wrong} are not the IF soft-reset "
                         f"neuron QCFS converts to ({IF_SOFT_RESET})")
    if time_steps < 1:
        raise ValueError(f"time steps must be >= 1, got {time_steps}")
    net = load_folder(folder, neuron="lif", time_steps=time_steps)
    weights = folder / WEIGHTS_FILE
    net.config["converted_from"] = {
        "method": "QCFS (Bu et al., ICLR 2022): same weights, QCFS activation -> IF neuron with soft reset, "
                  "V_th = 1, u0 = V_th/2",
        "qcfs_levels": model.get("qcfs_levels"), "twin_weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "twin_metrics": net.config.get("metrics"),
    }
    return net


@click.command("convert")
@click.argument("twin", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False), help="Folder for the spiking network.")
@click.option("-T", "--time-steps", type=int, default=8, show_default=True, help="Time steps of the spiking network.")
def convert_command(twin: str, out: str, time_steps: int) -> None:
    """Convert the QCFS-trained ANN twin in checkpoint folder TWIN (from `snnzoo train` with
    neuron = "qcfs") into its spiking network: a checkpoint folder usable by eval, export, push."""
    from .pretrained import PretrainedError
    from .training.checkpoint import export_folder

    try:
        net = convert_qcfs(twin, time_steps)
    except (ValueError, PretrainedError) as e:
        raise click.ClickException(str(e)) from None
    net.config.pop("metrics", None)  # the twin's training metrics stay under converted_from
    export_folder(net, out, {})
    click.echo(f"{out}: {net.config['name']} at T = {time_steps} (IF, soft reset) from {twin}")
