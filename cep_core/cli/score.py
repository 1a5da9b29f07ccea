"""`cep score`: score a predictions file against a BFCL file or an eval-format dataset."""

from __future__ import annotations

import argparse
import time

from cep_core.cli.options import print_json, stderr_console, stdout_console


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score",
        help="score model outputs (BFCL-compatible tool calls, or structured JSON)",
        description="Score PREDS.jsonl ({id, output} per line) against a dataset. PATH is a BFCL "
        "question file (answers from possible_answer/ beside it), a folder of them, or a JSONL "
        "file in the project's eval format.",
    )
    p.add_argument(
        "--track",
        choices=["toolcall", "structured"],
        default="toolcall",
        help="tool calls (BFCL rules, toolcall F1) or one JSON object (structured F1); default toolcall",
    )
    p.add_argument(
        "--dataset",
        required=True,
        metavar="PATH",
        help="a BFCL question file or folder, or a JSONL file in the eval format",
    )
    p.add_argument(
        "--predictions",
        required=True,
        metavar="PREDS.jsonl",
        help='one {"id": …, "output": "<raw model text>"} per line',
    )
    p.add_argument(
        "--format",
        dest="call_format",
        choices=["target", "hermes"],
        default="target",
        help="the tool-call format the model was asked for (default: target)",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="score any output with a format error as unparseable (default: score what is recovered)",
    )
    p.add_argument("--out", metavar="DIR", help="write results.json and examples.jsonl here")
    p.add_argument("--json", action="store_true", help="print results.json to stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cep_core.data.evalset import load_examples
    from cep_core.data.predictions import load_predictions
    from cep_core.errors import InputError
    from cep_core.scoring import score_all
    from cep_core.scoring.report import categories_table, errors_table, results_table, write_results
    from cep_core.versions import provenance

    started = time.time()
    examples = load_examples(args.dataset, args.track)
    if not examples:  # nothing to score is not a perfect score
        raise InputError(
            f"no {args.track} examples in the dataset: nothing to score (is it the right file and --track?)",
            path=args.dataset,
        )
    outputs = load_predictions(args.predictions, {ex.id for ex in examples})
    results, scores = score_all(examples, outputs, args.track, args.call_format, args.strict)
    results = {**provenance(started, time.time()), **results}
    results["dataset"] = str(args.dataset)
    results["predictions"] = str(args.predictions)
    if args.out:
        write_results(args.out, results, scores)
    if args.json:
        print_json(results)
    else:
        console = stdout_console()
        console.print(results_table(results))
        for table in (errors_table(results), categories_table(results)):
            if table is not None:
                console.print(table)
        if args.out:
            console.print(f"wrote {args.out}/results.json and {args.out}/examples.jsonl")
    if results["missing_predictions"]:
        shown = ", ".join(results["missing_ids"][:5])
        stderr_console().print(
            f"[yellow]{results['missing_predictions']} example(s) had no prediction and were "
            f"scored as empty outputs: {shown}{' …' if results['missing_predictions'] > 5 else ''}"
        )
    return 0
