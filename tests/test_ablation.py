"""The CEP ablation: three evaluations of one trained model on the same examples, their gains, and the table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cep_core.errors import InputError
from cep_core.evaluation.ablation import VARIANT_NAMES, summarize
from cep_core.evaluation.config import eval_config_from_dict
from cep_core.evaluation.store import EvalRecord

SAMPLES = Path(__file__).resolve().parents[1] / "cep_core" / "data" / "samples"


def _record(variant: str, tool: float | None, structured: float | None, fmt: float, state: str = "completed"):
    return EvalRecord(
        id=f"e-{variant}",
        run_dir="r",
        eval_dir="d",
        created=0.0,
        backend="hf",
        state=state,
        name=f"abl:{variant}",
        ablation="abl-1",
        variant=variant,
        toolcall_f1=tool,
        structured_f1=structured,
        toolcall_format_compliance=fmt,
        structured_format_compliance=fmt,
        toolcall_n=30,
        structured_n=10,
    )


def test_gains_are_the_steps_between_variants_and_the_baselines_are_both():
    ablation = summarize(
        [
            _record("lora+cep", 0.81, 0.5, 0.9),
            _record("base", 0.0, 0.1, 0.0),
            _record("base+cep", 0.2, 0.3, 0.4),
        ]
    )
    assert [r.variant for r in ablation.rows] == list(VARIANT_NAMES)
    assert ablation.gains["toolcall_f1"]["cep"] == pytest.approx(0.2)
    assert ablation.gains["toolcall_f1"]["training"] == pytest.approx(0.61)
    assert ablation.gains["toolcall_f1"]["total"] == pytest.approx(0.81)
    assert ablation.gains["structured_format_compliance"]["training"] == pytest.approx(0.5)
    assert ablation.baselines["toolcall_f1"]["delta_llm"] == pytest.approx(0.81 - 0.74)
    assert ablation.baselines["structured_f1"]["delta_small_model"] == pytest.approx(0.5 - 0.32)
    assert ablation.complete and ablation.name == "abl" and ablation.n == {"toolcall": 30, "structured": 10}


def test_a_missing_or_failed_variant_leaves_its_gains_unknown():
    ablation = summarize(
        [_record("base", 0.0, 0.0, 0.0), _record("base+cep", None, None, 0.0, state="failed")]
    )
    assert not ablation.complete
    assert ablation.row("lora+cep").state == "missing"
    assert ablation.gains["toolcall_f1"] == {"cep": None, "training": None, "total": None}


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"backend": "predictions", "predictions": {"path": "p.jsonl"}}, "backend"),
        ({"backend": "hf", "model": "m"}, "run"),
        ({"backend": "hf", "run": "r", "cep": "none"}, "cep"),
    ],
)
def test_an_ablation_that_cannot_measure_the_cep_is_refused_by_field(raw, field):
    with pytest.raises(InputError) as err:
        eval_config_from_dict({**raw, "ablation": True, "sets": [{"source": "x.jsonl"}]}, "abl.toml")
    assert err.value.field == field and "abl.toml" in str(err.value)


def test_cep_eval_ablation_runs_three_variants_on_the_same_examples(tiny_run, tmp_path, monkeypatch, capsys):
    from cep_core.cli import main as cep
    from cep_core.evaluation import store

    monkeypatch.setenv("CEP_HOME", str(tmp_path / "home"))
    config = tmp_path / "abl.toml"
    config.write_text(
        f'name = "abl"\nbackend = "hf"\nrun = "{tiny_run}"\n'
        f'[[sets]]\nsource = "{SAMPLES / "demo_toolcall.jsonl"}"\nsample = 4\n'
        f'[[sets]]\nsource = "{SAMPLES / "demo_structured.jsonl"}"\nsample = 2\n'
        '[hf]\nmax_new_tokens = 12\ndevice = "cpu"\n'
    )
    assert cep(["eval", "ablation", str(config), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    records = {r.variant: r for r in store.list_evaluations()}
    assert set(records) == set(VARIANT_NAMES)
    assert len({r.ablation for r in records.values()}) == 1 and shown["id"] == records["base"].ablation
    assert records["base"].cep_variant == "none" and records["base"].adapter is None
    assert records["base+cep"].cep_variant == "compact" and records["base+cep"].adapter is None
    assert records["lora+cep"].cep_variant == "compact" and records["lora+cep"].adapter.endswith("adapter")
    ids = set()
    for record in records.values():
        assert record.state == "completed" and record.toolcall_n == 4 and record.structured_n == 2
        rows = (Path(record.eval_dir) / "examples.jsonl").read_text().splitlines()
        ids.add(frozenset(json.loads(line)["id"] for line in rows))
    assert len(ids) == 1  # every variant scored the very same examples
    assert [v["variant"] for v in shown["variants"]] == list(VARIANT_NAMES)
    assert shown["gains"]["toolcall_f1"]["total"] == pytest.approx(
        records["lora+cep"].toolcall_f1 - records["base"].toolcall_f1
    )
    assert cep(["eval", "ablation", "show"]) == 0
    table = capsys.readouterr().out
    for text in (
        "base, no CEP",
        "base + CEP",
        "LoRA + CEP",
        "gain: CEP",
        "gain: training",
        "vs LLM baseline",
        "vs earlier small model",
        "LLM 74.0% tool / 60.0% JSON F1",
    ):
        assert text in table
    assert max(len(line) for line in table.splitlines()) <= 80
    # The job's log says which variant each eval event is.
    run_dir = Path(records["base"].run_dir)
    events = [json.loads(line) for line in (run_dir / "progress.jsonl").read_text().splitlines()]
    assert [e["metrics"]["variant"] for e in events if e["event"] == "eval"] == list(VARIANT_NAMES)
    assert events[-1] == {**events[-1], "event": "end", "status": "completed", "step": 18}


def test_no_ablation_yet_is_said_plainly(tmp_path, monkeypatch, capsys):
    from cep_core.cli import main as cep

    monkeypatch.setenv("CEP_HOME", str(tmp_path / "home"))
    assert cep(["eval", "ablation", "show"]) == 2
    assert "no ablation yet" in capsys.readouterr().err


def test_the_evaluation_forms_ablation_mode_is_one_job_of_three_variants(tiny_run, tmp_path):
    from cep_core.evaluation.launch import EVAL_MODES, EvalRequest, configs_for

    assert "ablation" in EVAL_MODES
    (config,) = configs_for(EvalRequest(target=str(tiny_run), kind="run", mode="ablation"))
    assert config.ablation and config.run == str(tiny_run)
    with pytest.raises(InputError) as err:
        configs_for(EvalRequest(target=str(tmp_path), kind="model", mode="ablation"))
    assert err.value.field == "run" and "evaluation form" in str(err.value)
