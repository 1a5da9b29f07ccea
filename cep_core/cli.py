"""The `cep` command: every operation of the product, without a screen.

Each area registers its subcommands from a module in `cep_core.commands`; those modules import only
light things at top level so that `cep --help` stays fast, and do heavy imports inside handlers.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from cep_core import __version__
from cep_core.errors import CepError

COMMAND_MODULES = [
    "cep_core.commands.score",
    "cep_core.commands.prefix",
    "cep_core.commands.demo",
    "cep_core.commands.jobs",
    "cep_core.commands.traces",
    "cep_core.commands.gpu",
    "cep_core.commands.train",
    "cep_core.commands.eval",
    "cep_core.commands.export",
    "cep_core.commands.serve",
    "cep_core.commands.models",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cep",
        description="CEP Console engine: train, evaluate and watch small models that emit clean tool calls.",
    )
    parser.add_argument("--version", action="version", version=f"cep {__version__}")
    parser.add_argument(
        "--home", metavar="DIR", help="state directory (default: $CEP_HOME, else ~/.local/share/cep)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from cep_core.private import restrict_umask

    restrict_umask()  # everything a command writes under a home is its owner's only (docs: permissions)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.home:
        # Through the environment, so jobs started from here see the same home.
        os.environ["CEP_HOME"] = os.path.abspath(os.path.expanduser(args.home))
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
