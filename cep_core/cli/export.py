"""`cep export RUN`: the run's adapter merged into its base model, one folder any transformers loads.

cep export RUN [--out DIR] [--force] [--gguf] [--json]
"""

from __future__ import annotations

import argparse

from cep_core.cli.options import print_json, quiet_library_progress, stderr_console, stdout_console


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="merge a run's LoRA adapter into its base model (a standalone folder; optional GGUF)",
        description="Merge the LoRA adapter of a completed training run into its base model and write one "
        "standalone Hugging Face folder (plain transformers, vLLM and `cep serve` load it), with "
        "cep-export.json recording the run, the base and the CEP to serve it with. The merge is checked "
        "(the merged model's logits equal the adapter's) before anything is written.",
    )
    p.add_argument("run", metavar="RUN", help="a training run: id, unique id prefix or directory")
    p.add_argument("--out", metavar="DIR", help="where to write the folder (default: RUN_DIR/merged)")
    p.add_argument("--force", action="store_true", help="replace the folder if it exists")
    p.add_argument(
        "--gguf",
        action="store_true",
        help="also write model.gguf (f16) into the folder (Llama-architecture models)",
    )
    p.add_argument("--json", action="store_true", help="print what was written as JSON on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cep_core.export.merge import export_run

    quiet_library_progress()
    err = stderr_console()
    with err.status("exporting") as status:
        result = export_run(args.run, args.out, force=args.force, log=lambda m: status.update(m))
        gguf_path = None
        if args.gguf:
            from cep_core.export.gguf import write_gguf

            status.update("writing model.gguf")
            gguf_path = write_gguf(result.folder)
    out = {**result.meta, "folder": str(result.folder), "gguf": str(gguf_path) if gguf_path else None}
    out.pop("cep", None)
    out["cep_variant"] = (result.meta.get("cep") or {}).get("variant")
    if args.json:
        print_json(out)
        return 0
    console = stdout_console()
    console.print(f"merged {result.meta['run_id']} into {result.folder}")
    console.print(
        f"  base {result.meta['model']}, CEP {out['cep_variant'] or 'none'}, "
        f"merge checked: max logit difference {result.meta['max_logit_difference']:.1e}"
    )
    if gguf_path:
        console.print(f"  GGUF: {gguf_path}")
    console.print(f"  serve it: cep serve {result.folder}")
    return 0
