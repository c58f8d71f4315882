"""``snnzoo train`` that also saves each process's final parameters to ``<out>/rank<R>.pt``.

Run as ``python tests/ddp_ranks.py train ...`` (one process) or under
``torchrun --nproc_per_node=N tests/ddp_ranks.py train ...``: ``test_ddp`` compares the ranks'
parameters with each other and with a one-process run at the same global batch."""
import os
import sys
from pathlib import Path

import torch

from snnzoo.cli import main
from snnzoo.zoo.training.trainer import Trainer

built: list[torch.nn.Module] = []
_build = Trainer._build_model


def _capture(self: Trainer) -> torch.nn.Module:
    model = _build(self)
    built.append(model)
    return model


def _save_params() -> None:
    out = Path(sys.argv[sys.argv.index("--out") + 1])
    state = {k: v.detach().cpu().clone() for k, v in built[0].state_dict().items()}
    torch.save(state, out / f"rank{os.environ.get('RANK', '0')}.pt")


Trainer._build_model = _capture
if __name__ == "__main__":
    try:
        main()
    except SystemExit as e:
        if e.code in (0, None) and built:
            _save_params()
        raise
