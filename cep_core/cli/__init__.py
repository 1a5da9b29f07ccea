"""The `cep` command: every operation of the product, without a screen.

Each area registers its subcommands from a module in `cep_core.cli.options`; those modules import only
light things at top level so that `cep --help` stays fast, and do heavy imports inside handlers.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from cep_core import __version__
from cep_core.cli.options import HOME_HELP, add_home_option, use_home
from cep_core.errors import CepError

COMMAND_MODULES = [
    "cep_core.cli.score",
    "cep_core.cli.prefix",
    "cep_core.cli.demo",
    "cep_core.cli.jobs",
    "cep_core.cli.traces",
    "cep_core.cli.gpu",
    "cep_core.cli.train",
    "cep_core.cli.eval",
    "cep_core.cli.export",
    "cep_core.cli.serve",
    "cep_core.cli.models",
    "cep_core.cli.runs",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cep",
        description="CEP Console engine: train, evaluate and watch small models that emit clean tool calls.",
    )
    parser.add_argument("--version", action="version", version=f"cep {__version__}")
    parser.add_argument("--home", metavar="DIR", help=HOME_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    add_home_everywhere(parser)
    return parser


def add_home_everywhere(parser: argparse.ArgumentParser) -> None:
    """`--home DIR` after any subcommand too (`cep traces stats --home DIR`), as users type it. SUPPRESS as the
    default: a subcommand's parser leaves `home` alone unless it was given there."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for child in set(action.choices.values()):
            if not any("--home" in a.option_strings for a in child._actions):
                add_home_option(child)
            add_home_everywhere(child)


def main(argv: list[str] | None = None) -> int:
    from cep_core.store.private import restrict_umask

    restrict_umask()  # everything a command writes under a home is its owner's only (docs: permissions)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.home:
        use_home(args.home)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0
    try:
        return int(func(args) or 0)
    except CepError as exc:
        print(f"cep: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `cep … | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
