"""Results on disk and on a terminal: results.json, examples.jsonl, and the table `cep` prints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from cep_core.formats.taxonomy import DESCRIPTIONS, ErrorCategory
from cep_core.scoring.result import ExampleScore
from cep_core.store.private import write_json, write_jsonl


def write_results(out_dir: str | Path, results: dict[str, Any], scores: list[ExampleScore]) -> Path:
    """examples.jsonl then results.json in `out_dir`, each written whole or not at all, mode 0600: a failure
    midway leaves both as they were."""
    out = Path(out_dir)
    write_jsonl(out / "examples.jsonl", (score.to_dict() for score in scores))
    write_json(out / "results.json", results)
    return out


def pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def signed_pct(value: float) -> Text:
    text = f"{value * 100:+.1f} pts"
    return Text(text, style="green" if value > 0 else ("red" if value < 0 else ""))


def results_table(results: dict[str, Any], title: str | None = None) -> Table:
    """The headline figures of one track with both baselines beside them."""
    base = results["baseline"]
    table = Table(title=title or f"{results['track']} track — {results['n']} examples", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("vs LLM", justify="right")
    table.add_column("vs small model", justify="right")
    f1 = results["f1"]["macro"]
    headline = Text(pct(f1), style="bold green" if base["beats_llm"] else "bold")
    table.add_row(
        base["metric"],
        headline,
        Text.assemble(signed_pct(base["delta_llm"]), f"  ({pct(base['llm'])})"),
        Text.assemble(signed_pct(base["delta_small_model"]), f"  ({pct(base['small_model'])})"),
    )
    table.add_row("F1 (micro)", pct(results["f1"]["micro"]), "", "")
    strict = results["strict_f1"]
    table.add_row(
        "F1, format errors = fail",
        pct(strict),
        signed_pct(strict - base["llm"]),
        signed_pct(strict - base["small_model"]),
    )
    table.add_row(
        "precision / recall",
        f"{pct(results['precision']['macro'])} / {pct(results['recall']['macro'])}",
        "",
        "",
    )
    if "argument_f1" in results:
        table.add_row("argument F1", pct(results["argument_f1"]["macro"]), "", "")
    table.add_row(
        "accuracy" + (" (BFCL)" if results["track"] == "toolcall" else " (exact)"),
        pct(results["accuracy"]),
        "",
        "",
    )
    table.add_row("strict accuracy", pct(results["strict_accuracy"]), "", "")
    table.add_row("format compliance", pct(results["format_compliance"]), "", "")
    if results.get("missing_predictions"):
        table.add_row(
            Text("missing predictions", style="yellow"), str(results["missing_predictions"]), "", ""
        )
    return table


def errors_table(results: dict[str, Any]) -> Table | None:
    if not results["errors"]:
        return None
    table = Table(title="errors by category", title_justify="left")
    table.add_column("category")
    table.add_column("outputs", justify="right")
    table.add_column("share", justify="right")
    table.add_column("meaning")
    n = max(results["n"], 1)
    for category, count in results["errors"].items():
        table.add_row(category, str(count), pct(count / n), meaning_of(category))
    return table


def meaning_of(category: str) -> str:
    """What an error category means; '' for one this version does not know (results.json of another version)."""
    try:
        return DESCRIPTIONS.get(ErrorCategory(category), "")
    except ValueError:
        return ""


def categories_table(results: dict[str, Any]) -> Table | None:
    if len(results["by_category"]) < 2:
        return None
    table = Table(title="by category", title_justify="left")
    for col, justify in (
        ("category", "left"),
        ("n", "right"),
        ("accuracy", "right"),
        ("F1", "right"),
        ("format", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for category, row in results["by_category"].items():
        table.add_row(
            category, str(row["n"]), pct(row["accuracy"]), pct(row["f1"]), pct(row["format_compliance"])
        )
    return table


def ablation_table(ablation: Any) -> Table:
    """An ablation (cep_core.evaluation.ablation.Ablation) as one table that fits 80 columns: the three
    variants, the gains from the CEP and from training, and the trained model against both baselines."""
    from cep_core.scoring import baselines

    n = ablation.n
    llm, small = baselines.LLM, baselines.SMALL_MODEL
    table = Table(
        title=f"ablation {ablation.name} ({ablation.id}): tool calls n={n.get('toolcall') or 0}, "
        f"JSON n={n.get('structured') or 0}",
        title_justify="left",
        caption=f"bars: LLM {pct(llm['toolcall_f1'])} tool / {pct(llm['structured_f1'])} JSON F1; earlier "
        f"small model {pct(small['toolcall_f1'])} / {pct(small['structured_f1'])}",
        caption_justify="left",
    )
    table.add_column("variant", no_wrap=True)
    for header in ("tool F1", "JSON F1", "tool format", "JSON format"):
        table.add_column(header, justify="right", no_wrap=True)
    metrics = ("toolcall_f1", "structured_f1", "toolcall_format_compliance", "structured_format_compliance")

    def cell(value: float | None) -> str:
        return "—" if value is None else pct(value)

    def gain(value: float | None) -> Text | str:
        return "—" if value is None else signed_pct(value)

    for row in ablation.rows:
        label = row.title if row.state == "completed" else f"{row.title} ({row.state})"
        table.add_row(label, *(cell(row.figures[m]) for m in metrics))
    table.add_section()
    for key, label in (("cep", "gain: CEP"), ("training", "gain: training"), ("total", "gain: both")):
        table.add_row(label, *(gain(ablation.gains[m][key]) for m in metrics))
    table.add_section()
    for key, label in (("delta_llm", "vs LLM baseline"), ("delta_small_model", "vs earlier small model")):
        table.add_row(
            label, *(gain(ablation.baselines[m][key]) for m in ("toolcall_f1", "structured_f1")), "", ""
        )
    return table
