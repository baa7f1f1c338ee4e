"""The ``reasonlab`` console command. Each command lives in its own small module exposing
``register(app, train_app)``; this file only collects them."""

from __future__ import annotations

import importlib
import logging
import os

import typer

from reasonlab.cli.common import DEBUG_ENV

app = typer.Typer(help="reasonlab: build, improve and evaluate reasoning language models.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
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
