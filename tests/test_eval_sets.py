"""Eval sets and eval configs: every source kind on the real BFCL and Hermes data, sampling, splits, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cep_core.data import bfcl
from cep_core.data.prepare import prepare
from cep_core.errors import InputError
from cep_core.evaluation import sets
from cep_core.evaluation.config import SetSpec, eval_config_from_dict, load_eval_config, to_toml
from cep_core.evaluation.sets import load_set, load_sets, sample_examples
from cep_core.prompts.toolprompt import render_tools_prompt, to_json_schema

SAMPLES = Path(__file__).resolve().parents[1] / "cep_core" / "data" / "samples"


@pytest.fixture
def bfcl_dir(monkeypatch):
    """The default BFCL source (the bfcl-eval package's copy that `make` installs), as a user's clone has it."""
    monkeypatch.delenv("CEP_BFCL_DIR", raising=False)
    return sets.bfcl_dir()


@pytest.fixture
def no_shared_data(tmp_path, monkeypatch):
    """A clone without ../shared: CEP_SHARED_DATA names an empty folder, and no CEP_BFCL_DIR."""
    empty = tmp_path / "no-shared"
    empty.mkdir()
    monkeypatch.setenv("CEP_SHARED_DATA", str(empty))
    monkeypatch.delenv("CEP_BFCL_DIR", raising=False)
    return empty


def test_bfcl_sets_load_without_shared_data_from_the_bfcl_eval_package(no_shared_data):
    from cep_core.data.sources import shared_data_dir

    assert shared_data_dir() == no_shared_data.resolve()
    loaded = load_set(SetSpec("bfcl:simple_python,irrelevance", sample=6))
    assert len(loaded.examples) == 6 and loaded.available == 400 + 240
    where = Path(loaded.describe()["data_dir"])
    assert where.parts[-2:] == ("bfcl_eval", "data") and (where / "possible_answer").is_dir()
    everything = {ex.category for ex in load_set(SetSpec("bfcl:all", sample=40)).examples}
    assert everything == set(bfcl.ANSWER_CATEGORIES) | set(bfcl.NO_ANSWER_CATEGORIES)
    with pytest.raises(InputError) as err:
        load_set(SetSpec("bfcl:multi_turn_base"))
    assert "BFCL's own harness" in str(err.value) and "simple_python" in str(err.value)


def test_without_any_bfcl_data_the_error_says_what_to_install(no_shared_data, monkeypatch):
    monkeypatch.setattr(sets, "bfcl_package_data", lambda: None)
    with pytest.raises(InputError) as err:
        load_set(SetSpec("bfcl:simple_python"))
    assert f"pip install --no-deps {sets.BFCL_EVAL_REQUIREMENT}" in str(err.value)
    assert "CEP_BFCL_DIR" in str(err.value)


def test_the_makefile_installs_the_bfcl_eval_version_the_error_names():
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    assert f"--no-deps {sets.BFCL_EVAL_REQUIREMENT}" in makefile


def test_the_package_copy_and_the_shared_copy_give_the_same_sets(shared_data, monkeypatch):
    """Where both exist, every BFCL file of ../shared/data is byte-identical to the leaderboard's own copy, and
    a set loads the same examples from either."""
    shared = shared_data / "bfcl"
    packaged = sets.bfcl_package_data()
    files = sorted(shared.glob("BFCL_v4_*.json")) + sorted((shared / "possible_answer").glob("*.json"))
    assert len(files) == 19
    for path in files:
        assert path.read_bytes() == (packaged / path.relative_to(shared)).read_bytes(), path.name
    spec = SetSpec("bfcl:all", sample=50, seed=4)
    monkeypatch.setenv("CEP_BFCL_DIR", str(shared))
    from_shared = load_set(spec).examples
    monkeypatch.delenv("CEP_BFCL_DIR")
    from_package = load_set(spec).examples
    assert [(e.id, e.messages, e.answers) for e in from_shared] == [
        (e.id, e.messages, e.answers) for e in from_package
    ]


def test_bfcl_set_keeps_each_categorys_rule_and_renders_tools_into_the_system_prompt(bfcl_dir):
    loaded = load_set(SetSpec("bfcl:simple_python,multiple,parallel,irrelevance,live_relevance"))
    rules = {ex.category: ex.rule for ex in loaded.examples}
    assert rules == {
        "simple_python": "simple",
        "multiple": "multiple",
        "parallel": "parallel",
        "irrelevance": "irrelevance",
        "live_relevance": "relevance",
    }
    assert loaded.track == "toolcall"
    assert len(loaded.examples) == 400 + 200 + 200 + 240 + 16
    for ex in loaded.examples[::97]:
        system = ex.messages[0]
        assert system["role"] == "system"
        # Exactly the one rendering the training data uses.
        assert system["content"] == render_tools_prompt(ex.functions)
        assert [m["role"] for m in ex.messages[1:]] == ["user"] * (len(ex.messages) - 1)
    irrelevant = [ex for ex in loaded.examples if ex.category == "irrelevance"]
    assert all(ex.answers is None for ex in irrelevant)


def test_a_category_name_matches_exactly_not_as_a_suffix(bfcl_dir):
    # "multiple" must not pull in parallel_multiple or live_multiple.
    loaded = load_set(SetSpec("bfcl:multiple"))
    assert {ex.category for ex in loaded.examples} == {"multiple"}
    with pytest.raises(InputError) as err:
        load_set(SetSpec("bfcl:no_such_category"))
    assert "no_such_category" in str(err.value) and "simple_python" in str(err.value)


def test_sampling_is_fixed_by_the_seed_and_covers_every_category(bfcl_dir):
    spec = SetSpec("bfcl:simple_python,multiple,irrelevance", sample=9, seed=3)
    first = [ex.id for ex in load_set(spec).examples]
    again = [ex.id for ex in load_set(spec).examples]
    other = [ex.id for ex in load_set(SetSpec(spec.source, sample=9, seed=4)).examples]
    assert first == again
    assert first != other
    cats = [i.rsplit("_", 1)[0] for i in first]
    assert sorted(cats) == sorted(["simple_python", "multiple", "irrelevance"] * 3)
    assert load_set(spec).available == 840


def test_sample_examples_takes_all_when_the_sample_is_zero_or_larger():
    examples = load_set(SetSpec(str(SAMPLES / "demo_toolcall.jsonl"))).examples
    assert sample_examples(examples, 0, 1) == examples
    assert sample_examples(examples, 100, 1) == examples
    assert len(sample_examples(examples, 5, 1)) == 5


def test_bfcl_json_turns_simple_entries_into_structured_tasks_with_the_gold_arguments(bfcl_dir):
    loaded = load_set(SetSpec("bfcl-json:simple_python,live_simple"))
    assert loaded.track == "structured"
    assert len(loaded.examples) == 400 + 258
    entries = {e.id: e for e in bfcl.load_bfcl(bfcl_dir / "BFCL_v4_simple_python.json")}
    checked = 0
    for ex in loaded.examples:
        if not ex.id.startswith("json:simple_python_"):
            continue
        entry = entries[ex.id.removeprefix("json:")]
        assert ex.expected == bfcl.gold_calls(entry)[0].arguments
        assert ex.schema == to_json_schema(entry.functions[0]["parameters"])
        assert json.dumps(ex.schema, ensure_ascii=False) in ex.messages[0]["content"]
        assert ex.messages[-1] == entry.messages[-1]
        checked += 1
    assert checked == 400
    # BFCL type names became JSON-Schema ones, at every depth.
    assert not {t for ex in loaded.examples for t in _types(ex.schema)} & {"dict", "float", "tuple", "any"}


def _types(schema):
    if isinstance(schema, dict):
        if isinstance(schema.get("type"), str):
            yield schema["type"]
        for key in ("properties",):
            for sub in (schema.get(key) or {}).values():
                yield from _types(sub)
        if "items" in schema:
            yield from _types(schema["items"])


def test_bfcl_json_refuses_categories_that_are_not_simple(bfcl_dir):
    with pytest.raises(InputError) as err:
        load_set(SetSpec("bfcl-json:parallel"))
    assert "simple categories only" in str(err.value)


def test_hermes_set_is_the_training_jobs_holdout_with_the_calls_of_the_first_tool_turn():
    loaded = load_set(SetSpec("hermes:builtin:sample"), holdout=(0.25, 7))
    prepared = prepare(["builtin:sample"], cep=None, holdout_fraction=0.25, seed=7)
    holdout_ids = {ex.id for ex in prepared.holdout}
    train_ids = {ex.id for ex in prepared.train}
    ids = {ex.id for ex in loaded.examples}
    assert ids and ids <= holdout_ids and not ids & train_ids
    for ex in loaded.examples:
        assert ex.category == "hermes" and ex.rule == "parallel"
        assert ex.messages[-1]["role"] != "assistant"
        assert "<tools>" in ex.messages[0]["content"]
        # The expected calls are those of the held-out row's assistant turn, converted as training converts it.
        held = next(p for p in prepared.holdout if p.id == ex.id)
        turn = next(m for m in held.messages if m["role"] == "assistant" and "<tool_call" in m["content"])
        for answer in ex.answers:
            (name,) = answer
            assert f'<tool_call name="{name}">' in turn["content"]
    train_side = load_set(SetSpec("hermes:builtin:sample", split="train"), holdout=(0.25, 7))
    assert {ex.id for ex in train_side.examples} <= train_ids


def test_json_mode_rows_give_structured_examples_with_schema_and_expected(shared_data):
    source = shared_data / "hermes" / "card_examples.jsonl"
    loaded = load_set(SetSpec(f"json-mode:{source}", split="all"))
    assert loaded.track == "structured"
    assert len(loaded.examples) == 2
    assert loaded.skipped["not_json_mode"] == 2
    rows = [json.loads(line) for line in source.read_text().splitlines() if line.strip()]
    by_id = {r["id"]: r for r in rows}
    for ex in loaded.examples:
        answer = by_id[ex.id]["conversations"][-1]["value"]
        assert ex.expected == json.loads(answer)
        assert isinstance(ex.schema, dict) and ex.schema.get("type") == "object"
        assert ex.messages[-1]["role"] == "user"


def test_eval_format_files_keep_their_track_and_get_the_tools_prompt():
    tool = load_set(SetSpec(str(SAMPLES / "demo_toolcall.jsonl")))
    structured = load_set(SetSpec(str(SAMPLES / "demo_structured.jsonl")))
    assert tool.track == "toolcall" and structured.track == "structured"
    assert tool.examples[0].messages[0]["content"].endswith(render_tools_prompt(tool.examples[0].functions))
    assert all(ex.expected is not None for ex in structured.examples)


def test_the_same_example_in_two_sets_is_refused():
    path = str(SAMPLES / "demo_toolcall.jsonl")
    with pytest.raises(InputError) as err:
        load_sets([SetSpec(path), SetSpec(path, sample=2)])
    assert "unique ids" in str(err.value)


def test_a_missing_source_names_the_file_and_the_field(tmp_path):
    with pytest.raises(InputError) as err:
        load_set(SetSpec(str(tmp_path / "nope.jsonl")))
    assert "nope.jsonl" in str(err.value) and "source" in str(err.value)


# ---------------------------------------------------------------- config


def test_config_round_trips_through_run_toml(tmp_path):
    (tmp_path / "preds.jsonl").write_text("")
    config_path = tmp_path / "eval.toml"
    config_path.write_text(
        'name = "x"\nbackend = "predictions"\ncep = "compact"\n'
        '[[sets]]\nsource = "bfcl:simple_python"\nsample = 5\nseed = 2\n'
        '[[sets]]\nsource = "preds.jsonl"\ntrack = "structured"\n'
        '[predictions]\npath = "preds.jsonl"\n'
    )
    config = load_eval_config(config_path)
    assert config.predictions.path == str(tmp_path / "preds.jsonl")  # relative to the config's folder
    assert config.sets[1].source == str(tmp_path / "preds.jsonl")
    assert config.sets[0].source == "bfcl:simple_python"
    (tmp_path / "run.toml").write_text(to_toml(config))
    assert load_eval_config(tmp_path / "run.toml") == config


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (
            {"backend": "predictions", "predictions": {"path": "p"}, "sets": [{"source": "x"}], "modle": "m"},
            "modle",
        ),
        ({"backend": "vllm", "sets": [{"source": "x"}]}, "backend"),
        ({"backend": "hf", "sets": [{"source": "x"}]}, "model"),
        ({"backend": "hf", "model": "m", "sets": []}, "sets"),
        ({"backend": "hf", "model": "m", "sets": [{"source": "x", "sample": -1}]}, "sets[0].sample"),
        ({"backend": "hf", "model": "m", "sets": [{"source": "x", "smaple": 3}]}, "sets[0].smaple"),
        (
            {"backend": "openai", "model": "m", "sets": [{"source": "x"}], "openai": {"base_url": "x"}},
            "openai.base_url",
        ),
        ({"backend": "predictions", "sets": [{"source": "x"}]}, "predictions.path"),
        (
            {"backend": "hf", "model": "m", "sets": [{"source": "x"}], "hf": {"batch_size": "8"}},
            "hf.batch_size",
        ),
    ],
)
def test_config_mistakes_name_the_field(raw, field):
    with pytest.raises(InputError) as err:
        eval_config_from_dict(raw, "eval.toml")
    assert err.value.field == field
    assert "eval.toml" in str(err.value)


def test_hermes_rows_in_the_hermes_format_keep_their_own_prompt_and_score_hermes_calls():
    from cep_core.formats.toolcalls import ToolCall, render_hermes
    from cep_core.scoring import score_example

    target = {ex.id: ex for ex in load_set(SetSpec("hermes:builtin:sample", split="all")).examples}
    hermes = load_set(SetSpec("hermes:builtin:sample", split="all"), tool_format="hermes").examples
    assert {ex.id for ex in hermes} == set(target)
    for ex in hermes:
        assert ex.answers == target[ex.id].answers
        assert "<tool_call>" in ex.messages[0]["content"]  # the row's own (Hermes) call instructions
        assert 'name="FUNCTION_NAME"' in target[ex.id].messages[0]["content"]
        gold = [
            ToolCall(name, {k: v[0] for k, v in args.items()}) for a in ex.answers for name, args in a.items()
        ]
        assert score_example(ex, render_hermes(gold), expected_format="hermes").correct
