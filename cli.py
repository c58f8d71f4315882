"""The ``snnzoo`` command line. Subcommands live beside the code they drive and are
imported only when invoked, so ``snnzoo predict`` on the ONNX path never imports torch."""
from __future__ import annotations

import importlib
import sys

import click

from ._version import __version__

# name -> "module:attribute" of a click command; one line per subcommand.
COMMANDS: dict[str, str] = {
    "models": "snnzoo.zoo.registry:models_command",
    "info": "snnzoo.runtime.info:info_command",
    "export": "snnzoo.export.cli:export_command",
    "predict": "snnzoo.runtime.predict:predict_command",
    "bench": "snnzoo.runtime.bench:bench_command",
    "push": "snnzoo.zoo.hub:push_command",
    "pull": "snnzoo.zoo.hub:pull_command",
    "card": "snnzoo.zoo.cards:card_command",
    "train": "snnzoo.zoo.training.cli:train_command",
    "eval": "snnzoo.zoo.training.cli:eval_command",
    "emulate": "snnzoo.zoo.emulator:emulate_command",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="snnzoo")
def cli() -> None:
    """Spiking neural networks: train, export to ONNX, predict on event streams."""


def main() -> None:
    try:
        cli(standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
