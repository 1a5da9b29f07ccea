"""`cep prefix`: list, show and apply the Context Engineering Prefix variants."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cep_core.cli.options import print_json, stdout_console


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prefix", help="the CEP variants: list, show, apply to messages")
    psub = p.add_subparsers(dest="prefix_command", metavar="ACTION", required=True)
    ls = psub.add_parser("list", help="the built-in variants with their sha256")
    ls.add_argument("--json", action="store_true", help="machine output: JSON on stdout")
    ls.set_defaults(func=_list)
    show = psub.add_parser("show", help="print one variant's text (or a CEP file's)")
    show.add_argument("name", metavar="VARIANT|FILE", help="a CEP variant (cep prefix list) or a text file")
    show.set_defaults(func=_show)
    apply = psub.add_parser("apply", help="apply a CEP to a JSON messages list read from a file or stdin")
    apply.add_argument("name", metavar="VARIANT|FILE", help="a CEP variant (cep prefix list) or a text file")
    apply.add_argument(
        "messages",
        nargs="?",
        default="-",
        metavar="MESSAGES.json",
        help="a JSON list of chat messages (default: read from stdin)",
    )
    apply.set_defaults(func=_apply)


def _list(args: argparse.Namespace) -> int:
    from cep_core.prompts.prefix import VARIANTS, get_cep

    rows = [{"name": v, "sha256": get_cep(v).sha256, "chars": len(get_cep(v).text)} for v in VARIANTS]
    if args.json:
        print_json(rows)
        return 0
    from rich.table import Table

    table = Table("variant", "sha256", "chars", title="CEP variants", title_justify="left")
    for row in rows:
        table.add_row(row["name"], row["sha256"], str(row["chars"]))
    stdout_console().print(table)
    return 0


def _show(args: argparse.Namespace) -> int:
    from cep_core.prompts.prefix import get_cep

    cep = get_cep(args.name)
    sys.stdout.write(cep.text + "\n")
    return 0


def _apply(args: argparse.Namespace) -> int:
    from cep_core.errors import InputError
    from cep_core.prompts.prefix import apply_cep, get_cep

    cep = get_cep(args.name)
    source = "<stdin>" if args.messages == "-" else args.messages
    try:
        text = sys.stdin.read() if args.messages == "-" else Path(args.messages).read_text(encoding="utf-8")
        messages = json.loads(text)
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=source) from exc
    except ValueError as exc:
        raise InputError(f"not JSON: {exc}", path=source) from exc
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise InputError("expected a JSON list of {role, content} messages", path=source)
    print_json(apply_cep(messages, cep))
    return 0
