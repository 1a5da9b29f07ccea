"""The console's pure logic: the launch form (validation, pre-flight, the launch rule), options."""

from __future__ import annotations

import sys

import pytest

from cep_console.launch_form import CheckResult, LaunchRequest, can_launch, run_checks, write_config
from cep_console.options import home_is_empty, load_keymap, resolve_options
from cep_core.errors import InputError


def test_the_form_writes_a_config_the_training_job_accepts(tmp_path):
    from cep_core.training.config import load_config

    req = LaunchRequest(
        name="my run",
        cep="toolcall",
        dataset="builtin:sample, extra.jsonl",
        lora_r="8",
        max_steps="12",
        gpus="2",
    )
    path = write_config(req, tmp_path)
    config = load_config(path)
    assert config.name == "my run" and config.data.cep == "toolcall" and config.lora.r == 8
    assert config.train.max_steps == 12 and config.gpus == [0, 1]
    assert config.data.sources[0] == "builtin:sample"


@pytest.mark.parametrize(
    "field, value, named",
    [
        ("lora_r", "sixteen", "lora.r"),
        ("gpus", "-1", "gpus"),
        ("learning_rate", "fast", "train.learning_rate"),
        ("lora_dropout", "1.5", "lora.dropout"),
    ],
)
def test_bad_form_values_name_their_field(tmp_path, field, value, named):
    req = LaunchRequest()
    setattr(req, field, value)
    with pytest.raises(InputError) as info:
        write_config(req, tmp_path)
    assert named in str(info.value)
    assert not (tmp_path / "launch").exists() or not list((tmp_path / "launch").iterdir())


def test_launch_needs_checks_no_failure_and_an_override_for_warnings():
    ok = CheckResult("model", "ok", "")
    warn = CheckResult("disk", "warn", "little room")
    fail = CheckResult("data", "fail", "no rows")
    assert can_launch([], False)[0] is False
    assert can_launch([ok], False) == (True, "ready to launch")
    assert can_launch([ok, warn], False)[0] is False
    assert can_launch([ok, warn], True)[0] is True
    assert can_launch([ok, warn, fail], True)[0] is False


def test_the_preflight_runs_in_a_subprocess_and_reports_failures(tmp_path):
    good = write_config(LaunchRequest(name="good", max_steps="2"), tmp_path)
    checks = run_checks(good, tmp_path)
    assert [c.name for c in checks][:3] == ["config", "model", "data"]
    assert all(c.status == "ok" for c in checks[:3])
    missing = write_config(LaunchRequest(name="bad", model=str(tmp_path / "no-such-model")), tmp_path)
    checks = {c.name: c for c in run_checks(missing, tmp_path)}
    assert checks["model"].status == "fail" and "does not exist" in checks["model"].detail


def test_the_preflight_answer_is_read_past_stray_output_and_a_crash_is_a_failed_check(tmp_path, monkeypatch):
    """The form reads `cep train --check --json`: a library's print before the JSON is skipped; a pre-flight that
    could not answer (a crash) is one failed check that quotes stderr, never an exception."""
    from cep_console.launch_form import last_json_object

    out = 'loading… {not json}\n{\n  "checks": [\n    {\n      "name": "config"\n    }\n  ]\n}\n'
    assert last_json_object(out) == {"checks": [{"name": "config"}]}
    with pytest.raises(ValueError):
        last_json_object("nothing here\n")
    crashing = tmp_path / "python"  # stands in for the interpreter: a pre-flight that dies with a traceback
    crashing.write_text(
        "#!/bin/sh\necho 'Traceback (most recent call last):' >&2\necho 'RuntimeError: boom' >&2\nexit 1\n"
    )
    crashing.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(crashing))
    checks = run_checks(tmp_path / "some.toml", tmp_path)
    assert len(checks) == 1 and checks[0].name == "preflight" and checks[0].status == "fail"
    assert (
        checks[0].detail.startswith("the pre-flight did not answer")
        and "RuntimeError: boom" in checks[0].detail
    )


def test_the_preflight_speaks_of_the_home_the_job_will_use(tmp_path, monkeypatch):
    """builtin:smollm2 is converted under the job's home: the form's pre-flight names that folder, not the one of
    the console's own environment."""
    from cep_core.builtin_models import missing_reason

    if missing_reason():
        pytest.skip(missing_reason())
    monkeypatch.delenv("CEP_MODELS_DIR", raising=False)
    monkeypatch.setenv("CEP_HOME", str(tmp_path / "elsewhere"))
    home = tmp_path / "home"
    config = write_config(LaunchRequest(name="real", model="builtin:smollm2", max_steps="2"), home)
    checks = {c.name: c for c in run_checks(config, home)}
    assert checks["model"].status == "ok"
    assert str(home / "models") in checks["model"].detail
    assert "elsewhere" not in checks["model"].detail


def test_an_empty_home_gets_the_demo_run_and_keeps_the_real_gpus(tmp_path):
    opts = resolve_options(home=str(tmp_path / "fresh"))
    assert opts.demo and opts.replay is None
    assert opts.demo_config is not None and opts.demo_config.is_file()
    assert "builtin:tiny" in opts.demo_config.read_text()
    assert home_is_empty(opts.home)  # the demo config alone does not make the home "used"


def test_demo_mode_uses_a_temporary_home_and_the_healthy_replay(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    opts = resolve_options(demo=True)
    assert opts.home.parent == tmp_path
    assert opts.home.name.startswith("cep-demo-") and opts.replay.name == "healthy-8x-h100.json"


def test_missing_replay_and_bad_keymap_are_clear_errors(tmp_path):
    with pytest.raises(InputError, match="replay file not found"):
        resolve_options(home=str(tmp_path), replay=str(tmp_path / "nope.json"))
    keys = tmp_path / "keys.toml"
    keys.write_text('[keys]\n"runs.launch" = 3\n')
    with pytest.raises(InputError, match="keys"):
        load_keymap(keys)
    keys.write_text('[keys]\n"runs.launch" = "l,ctrl+n"\n')
    assert load_keymap(keys) == {"runs.launch": "l,ctrl+n"}


def test_the_progress_cache_rereads_only_a_changed_log(tmp_path):
    from cep_console.runs_feed import ProgressCache
    from cep_core.runs import ProgressWriter

    writer = ProgressWriter(tmp_path / "progress.jsonl")
    writer.emit("start", total_steps=10)
    writer.emit("step", step=1, total_steps=10, loss=2.0)
    cache = ProgressCache()
    first = cache.get(str(tmp_path))
    assert (first["step"], first["loss"]) == (1, 2.0)
    assert cache.get(str(tmp_path)) is first  # unchanged file: the same result, not re-read
    writer.emit("step", step=2, total_steps=10, loss=1.5)
    second = cache.get(str(tmp_path))
    assert (second["step"], second["loss"]) == (2, 1.5)
    assert cache.get(str(tmp_path / "missing"))["step"] is None
