"""The ``reasonlab`` console command. Each command lives in its own small module exposing
``register(app, train_app)``; this file only collects them."""

from __future__ import annotations

import importlib
import logging
import os
import sys

import typer
import typer.core
from rich.markup import escape

from reasonlab.cli.common import DEBUG_ENV, console

try:  # newer typer (0.29 here) carries its own copy of click; older ones use click itself
    from typer import _click as click
except ImportError:  # pragma: no cover
    import click


class _Returned:
    """What the root command's ``invoke`` returned, told apart from the exit code that
    non-standalone ``main`` returns for ``typer.Exit`` (a command may return an int too)."""

    def __init__(self, value):
        self.value = value


class OneLineErrors(typer.core.TyperGroup):
    """The root command: a usage error (a bad or missing option, a value out of range, a
    ``typer.BadParameter`` from a callback or a command body) is one line ``error: MESSAGE`` on
    stderr and exit code 2, instead of click's usage block and boxed message.

    ``main`` runs click with ``standalone_mode=False`` and does the rest as standalone mode does:
    the exit code of ``typer.Exit``/``ctx.exit`` (``--help`` exits 0), 0 after a command returns
    whatever it returns, other click errors shown as click shows them, Abort as "Aborted!" and 1."""

    def invoke(self, ctx):
        return _Returned(super().invoke(ctx))

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            rv = super().main(args=args, prog_name=prog_name, complete_var=complete_var,
                              standalone_mode=False, **extra)
        except click.exceptions.ClickException as exc:
            if not standalone_mode:
                raise
            if isinstance(exc, click.exceptions.UsageError) and type(exc).__name__ != "NoArgsIsHelpError":
                message = " ".join(exc.format_message().split())  # one line, whatever the message
                console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True, highlight=False)
                sys.exit(2)
            self._show(exc)  # e.g. no_args_is_help (click >= 8.2), or a FileError
            sys.exit(exc.exit_code)
        except typer.Abort:
            if not standalone_mode:
                raise
            self._show_abort()
            sys.exit(1)
        if not standalone_mode:  # as click returns it: the command's value, or an exit code
            return rv.value if isinstance(rv, _Returned) else rv
        sys.exit(0 if isinstance(rv, _Returned) else rv)

    def _rich(self) -> bool:
        return getattr(typer.core, "HAS_RICH", True) and self.rich_markup_mode is not None

    def _show(self, exc) -> None:
        if self._rich():
            from typer import rich_utils

            rich_utils.rich_format_error(exc)
        else:
            exc.show()

    def _show_abort(self) -> None:
        if self._rich():
            from typer import rich_utils

            rich_utils.rich_abort_error()
        else:
            click.echo("Aborted!", file=sys.stderr)


app = typer.Typer(help="reasonlab: build, improve and evaluate reasoning language models.",
                  cls=OneLineErrors, no_args_is_help=True, pretty_exceptions_enable=False)
train_app = typer.Typer(help="Train a model (grpo, sft, prm).", no_args_is_help=True)
app.add_typer(train_app, name="train")

# One module per command (or small group); add yours here.
COMMAND_MODULES = [
    "reasonlab.cli.eval_cmd",
    "reasonlab.cli.train_grpo",
    "reasonlab.cli.demo",
    "reasonlab.cli.scale",
    "reasonlab.cli.train_prm",
    "reasonlab.cli.serve",
    "reasonlab.cli.train_sft",
    "reasonlab.cli.generate",
    "reasonlab.cli.recipe",
    "reasonlab.cli.compare",
]

for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app, train_app)


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging."),
          debug: bool = typer.Option(False, "--debug", help="Show the full traceback of an error "
                                     "instead of one line (also: REASONLAB_DEBUG=1).")) -> None:
    if debug:  # the environment, so that friendly_errors and our subprocesses see it too
        os.environ[DEBUG_ENV] = "1"
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
