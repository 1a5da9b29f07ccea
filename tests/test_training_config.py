"""Training config: validation names the field; run.toml round-trips."""

from __future__ import annotations

import pytest

from cep_core.errors import InputError
from cep_core.training.config import TrainConfig, load_config, to_toml


def _write(tmp_path, text, name="c.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ("modle = 'x'", "modle", "unknown setting"),
        ("[train]\nlearning_rate = 'fast'", "train.learning_rate", "expected a number"),
        ("[train]\nbatch_size = 0", "train.batch_size", "must be positive"),
        ("[train]\npacking = 'sometimes'", "train.packing", "is not one of"),
        ("[data]\nholdout_fraction = 1.5", "data.holdout_fraction", "[0, 1)"),
        ("[lora]\nr = true", "lora.r", "expected an integer"),
        ("[train]\nmax_steps = 0\nepochs = 0", "train.epochs", "max_steps"),
        ("data = 3", "data", "expected a table"),
        ("[train]\nreport_to = 'mlflow'", "train.report_to", "is not one of none, tensorboard, wandb"),
        ("[train]\nreport_to = ['none', 'wandb']", "train.report_to", "cannot be combined"),
    ],
)
def test_bad_settings_name_the_file_and_field(tmp_path, text, field, message):
    path = _write(tmp_path, text)
    with pytest.raises(InputError) as info:
        load_config(path)
    assert info.value.field == field and info.value.path == str(path)
    assert message in str(info.value)


def test_invalid_toml_and_missing_file_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="invalid TOML"):
        load_config(_write(tmp_path, "name = "))
    with pytest.raises(InputError, match="no such config file"):
        load_config(tmp_path / "absent.toml")


def test_relative_data_paths_resolve_against_the_config_and_run_toml_round_trips(tmp_path):
    (tmp_path / "rows.jsonl").write_text("{}\n")
    path = _write(
        tmp_path,
        'name = "x"\n[data]\nsources = ["rows.jsonl", "org/hub-dataset"]\n'
        '[train]\nbf16 = true\n[lora]\ntarget_modules = ["q_proj", "v_proj"]\n',
    )
    config = load_config(path)
    assert config.data.sources == [str((tmp_path / "rows.jsonl").resolve()), "org/hub-dataset"]
    assert config.train.bf16 == "true"
    again = load_config(_write(tmp_path, to_toml(config), "run.toml"))
    assert again == config
    assert load_config(_write(tmp_path, to_toml(TrainConfig()), "d.toml")) == TrainConfig()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", []),
        ("report_to = 'none'", []),
        ("report_to = 'tensorboard'", ["tensorboard"]),
        ("report_to = ['tensorboard', 'wandb']", ["tensorboard", "wandb"]),
    ],
)
def test_report_to_takes_none_one_tracker_or_a_list(tmp_path, value, expected):
    config = load_config(_write(tmp_path, f"[train]\n{value}\n"))
    assert config.train.report_to == expected
    assert load_config(_write(tmp_path, to_toml(config), "run.toml")).train.report_to == expected
