"""`cep demo`: the product on its embedded defaults — score the built-in sample outputs on both tracks.

The samples are realistic outputs of an untuned small model (fenced JSON, self-closing tags, renamed
parameters, `arguments=` attributes, Hermes JSON, prose), so a newcomer sees every error category and the
baselines without a GPU, a model or a download.
"""

from __future__ import annotations

import argparse
from importlib import resources

from cep_core.cli.options import stdout_console


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="score the built-in sample outputs on both tracks (no model needed)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cep_core.data.evalset import load_examples
    from cep_core.data.predictions import load_predictions
    from cep_core.prompts.prefix import VARIANTS, get_cep
    from cep_core.scoring import score_all
    from cep_core.scoring.report import errors_table, results_table

    console = stdout_console()
    samples = resources.files("cep_core.data") / "samples"
    console.print("[bold]CEP Console demo[/bold] — scoring the built-in outputs of an untuned small model\n")
    for track in ("toolcall", "structured"):
        with (
            resources.as_file(samples / f"demo_{track}.jsonl") as data,
            resources.as_file(samples / f"demo_{track}_predictions.jsonl") as preds,
        ):
            examples = load_examples(data, track)
            results, _ = score_all(examples, load_predictions(preds, {e.id for e in examples}), track)
            console.print(results_table(results, title=f"{track} track — {results['n']} sample outputs"))
            table = errors_table(results)
            if table is not None:
                console.print(table)
            console.print()
    console.print("The CEP variants that teach the format (`cep prefix show universal`):")
    for name in VARIANTS:
        console.print(f"  {name:<11} sha256 {get_cep(name).sha256[:16]}…")
    console.print(
        "\nScore your own outputs: cep score --dataset BFCL_v4_simple_python.json --predictions preds.jsonl"
    )
    return 0
