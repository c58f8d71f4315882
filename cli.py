"""The ``snnzoo`` command line. Subcommands live beside the code they drive and are
imported only when invoked, so ``snnzoo predict`` on the ONNX path never imports torch.
Errors are printed here, once: a command raises, and :func:`one_line_errors` prints the one line."""
from __future__ import annotations

import contextlib
import importlib
import sys
from typing import Iterator

import click

from ._version import __version__
from .errors import SnnzooError, error_line

# name -> "module:attribute" of a click command; one line per subcommand.
COMMANDS: dict[str, str] = {
    "models": "snnzoo.zoo.registry:models_command",
    "info": "snnzoo.runtime.info:info_command",
    "export": "snnzoo.export.cli:export_command",
    "predict": "snnzoo.runtime.predict:predict_command",
    "bench": "snnzoo.runtime.bench:bench_command",
    "push": "snnzoo.publish.hub:push_command",
    "pull": "snnzoo.publish.hub:pull_command",
    "card": "snnzoo.zoo.cards:card_command",
    "train": "snnzoo.zoo.training.cli:train_command",
    "eval": "snnzoo.zoo.training.cli:eval_command",
    "snapshot": "snnzoo.zoo.training.cli:snapshot_command",
    "emulate": "snnzoo.zoo.emulator:emulate_command",
    "convert": "snnzoo.zoo.convert:convert_command",
}


class LineError(click.ClickException):
    """A click error printed as the documented one line, ``snnzoo: error: MESSAGE``."""

    def show(self, file=None) -> None:
        click.echo(error_line(self.format_message()), err=True)


class LineUsageError(click.UsageError):
    """A usage error as one line, ``snnzoo: error: MESSAGE (see 'snnzoo CMD --help')`` (exit 2)."""

    def show(self, file=None) -> None:
        hint = f" (see '{self.ctx.command_path} --help')" if self.ctx is not None else ""
        click.echo(error_line(self.format_message()) + hint, err=True)


@contextlib.contextmanager
def one_line_errors() -> Iterator[None]:
    """Every error a command reports, in the project's format: click's usage errors (bad option,
    value or command) become :class:`LineUsageError`, other ``ClickException``s and every
    :class:`~snnzoo.errors.SnnzooError` :class:`LineError` with the same exit status."""
    try:
        yield
    except (click.exceptions.NoArgsIsHelpError, LineError, LineUsageError):
        raise  # a bare `snnzoo CMD` prints its help, as asked; converted errors pass through
    except SnnzooError as e:
        line = LineError(str(e))
        line.exit_code = e.exit_code
        raise line from None
    except click.UsageError as e:
        raise LineUsageError(e.format_message(), e.ctx) from None
    except click.ClickException as e:
        line = LineError(e.format_message())
        line.exit_code = e.exit_code
        raise line from None


class LazyGroup(click.Group):
    """Subcommands imported on first use; every click error reported on one line (the one place)."""

    def make_context(self, *args, **kwargs) -> click.Context:
        with one_line_errors():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: click.Context):
        with one_line_errors():
            return super().invoke(ctx)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as e:
            if (e.name or "snnzoo").split(".")[0] == "snnzoo":
                raise
            return needs_extra(name, e.name)


def needs_extra(name: str, missing: str) -> click.Command:
    """Stand-in for a command whose module needs a package this installation lacks (``pip install
    snnzoo`` has no torch): listed by ``--help``; run, it fails with one line naming the extra."""
    message = f"{name} needs {missing}, which this installation lacks: pip install 'snnzoo[train]'"

    def fail() -> None:
        raise SnnzooError(message)

    return click.Command(name, callback=fail, help=message, short_help="(needs pip install 'snnzoo[train]')",
                         context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                           "help_option_names": []})


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
