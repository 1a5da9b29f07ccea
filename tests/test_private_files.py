"""Everything under a home is its owner's only: folders 0700, files 0600 (issue #14 item 7).

Each way a home gets written — a WorkflowTracer in a user's process, `cep traces import`, `cep traces retrain`,
`cep train` (checkpoints, adapter and tiny base written by transformers and peft), `cep eval`, `cep score --out`,
`cep jobs start` — runs as a real process under umask 000 (the most permissive a service can have), and the
whole home is walked."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_runs import tiny_config

from cep_core.store import private

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "cep_core" / "data" / "samples"


def run_open(args: list[str], home: Path, umask: int = 0o000, **kw) -> subprocess.CompletedProcess:
    """A real process started with `umask`, CEP_HOME set to `home`."""
    return subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "CEP_HOME": str(home), "HF_HUB_OFFLINE": "1"},
        preexec_fn=lambda: os.umask(umask),  # noqa: PLW1509 - no threads in the child before exec
        check=False,
        **kw,
    )


def cep(home: Path, *args: str) -> subprocess.CompletedProcess:
    proc = run_open([sys.executable, "-m", "cep_core.cli", *args], home)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def not_private(home: Path) -> list[str]:
    """Every path under `home` (itself included) whose mode is not 0700 (folders) or 0600 (files)."""
    bad = []
    for path in [home, *home.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        want = private.DIR_MODE if path.is_dir() else private.FILE_MODE
        if mode != want:
            bad.append(f"{oct(mode)} {path.relative_to(home.parent)}")
    return bad


CAPTURE = """
import sys
from cep_core.tracer import WorkflowTracer
tracer = WorkflowTracer(sys.argv[1], strict=True)
for i in range(40):
    tracer.capture_call("travel", "planner", "gpt-4o", user_query=f"Weather in city {i}?",
                        assistant_response='<tool_call name="get_weather">{"city": "Oslo"}</tool_call>',
                        tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {
                            "type": "object", "properties": {"city": {"type": "string"}}}}}])
tracer.generate_training_dataset(out_dir=sys.argv[2])
tracer.close()
"""


def test_a_home_made_by_a_tracer_in_a_permissive_process_is_private(tmp_path):
    home = tmp_path / "made-by-tracer" / "home"  # two missing levels: both are made private
    proc = run_open(
        [sys.executable, "-c", CAPTURE, str(home / "traces.db"), str(home / "datasets" / "x")], tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert (home / "traces.db-wal").exists() or (home / "traces.db").stat().st_size > 0
    assert (home / "datasets" / "x" / "train.jsonl").is_file()
    assert not_private(tmp_path / "made-by-tracer") == []


def test_every_command_that_writes_a_home_keeps_it_private(tmp_path):
    home = tmp_path / "home"
    calls = tmp_path / "calls.jsonl"
    calls.write_text(
        "".join(
            f'{{"agent_type": "travel", "agent_name": "planner", "model_used": "gpt-4o", '
            f'"user_query": "Weather in city {i}?", "assistant_response": "It is sunny."}}\n'
            for i in range(12)
        )
    )
    cep(home, "traces", "import", str(calls))
    cep(home, "traces", "retrain", "travel/planner", "--force", "--no-launch")
    assert list(home.glob("retrain/*/data/train.jsonl"))
    cep(home, "train", str(tiny_config(tmp_path / "tiny.toml")))
    [run] = [r for r in (home / "runs").iterdir() if (r / "adapter").is_dir()]
    assert list((run / "checkpoints").glob("checkpoint-*/*.safetensors"))
    eval_config = tmp_path / "eval.toml"
    eval_config.write_text(
        'name = "perm"\nbackend = "predictions"\nmodel = "m"\n'
        f'[[sets]]\nsource = "{SAMPLES / "demo_toolcall.jsonl"}"\n'
        f'[predictions]\npath = "{SAMPLES / "demo_toolcall_predictions.jsonl"}"\n'
    )
    cep(home, "eval", str(eval_config))
    cep(
        home,
        "score",
        "--dataset",
        str(SAMPLES / "demo_toolcall.jsonl"),
        "--predictions",
        str(SAMPLES / "demo_toolcall_predictions.jsonl"),
        "--out",
        str(home / "scores"),
    )
    assert (home / "scores" / "results.json").is_file()
    assert not_private(home) == []


def test_a_detached_job_writes_privately(tmp_path):
    """The runner (what every backend starts) makes its job's files private, whatever umask it inherits."""
    from cep_core.jobs.backend import runner_command

    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    job = "import pathlib, sys; d = pathlib.Path(sys.argv[1]); (d / 'out').mkdir(); (d / 'out' / 'f').write_text('x')"
    proc = run_open(runner_command(run_dir, [sys.executable, "-c", job, str(run_dir)]), tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (run_dir / "exit.json").is_file() and (run_dir / "out" / "f").is_file()
    assert not_private(run_dir) == []


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077, 0o277])
def test_the_helpers_give_the_same_modes_under_any_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        folder = private.private_dir(tmp_path / "a" / "b")
        private.write_private(folder / "f.json", "{}")
        os.close(private.open_private(folder / "g.log"))
    finally:
        os.umask(old)
    assert not_private(tmp_path / "a") == []
    with pytest.raises(FileExistsError):
        private.private_dir(folder, exist_ok=False)


class Unserialisable:
    """A value whose str() fails, so serialising it raises (json's default=str calls it) midway."""

    def __str__(self) -> str:
        raise RuntimeError("cannot serialise")


def test_the_json_writers_are_atomic_strict_and_private(tmp_path):
    target = tmp_path / "home" / "results.json"
    private.write_json(target, {"f1": 0.5, "nan": float("nan"), "path": tmp_path, "text": "é"})
    assert target.read_text(encoding="utf-8").startswith("{\n")
    assert json.loads(target.read_text(encoding="utf-8")) == {
        "f1": 0.5,
        "nan": None,
        "path": str(tmp_path),
        "text": "é",
    }
    old = target.read_bytes()
    with pytest.raises(RuntimeError):
        private.write_json(target, {"bad": Unserialisable()})
    rows = tmp_path / "home" / "rows.jsonl"
    private.write_jsonl(rows, [{"a": 1}, {"b": float("inf")}])
    assert [json.loads(x) for x in rows.read_text().splitlines()] == [{"a": 1}, {"b": None}]
    with pytest.raises(
        RuntimeError
    ):  # the first row is written to the temporary file before the second fails
        private.write_jsonl(rows, iter([{"a": 2}, {"bad": Unserialisable()}]))
    assert target.read_bytes() == old
    assert [json.loads(x) for x in rows.read_text().splitlines()] == [{"a": 1}, {"b": None}]
    assert sorted(p.name for p in target.parent.iterdir()) == [
        "results.json",
        "rows.jsonl",
    ]  # no temporary file
    assert not_private(tmp_path / "home") == []


def test_write_results_never_leaves_half_a_file(tmp_path):
    from cep_core.scoring.report import write_results
    from cep_core.scoring.result import ExampleScore

    out = tmp_path / "out"
    score = ExampleScore("a", "simple", True, 1.0, 1.0, 1.0, [], True)
    write_results(out, {"n": 1}, [score])
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    broken = ExampleScore("b", "simple", False, 0.0, 0.0, 0.0, [], True, value=Unserialisable())
    with pytest.raises(RuntimeError):
        write_results(out, {"n": 2}, [score, broken])
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert set(after) == {"results.json", "examples.jsonl"}  # no temporary file left
    assert after == before  # the old files, not half the new ones
    assert not_private(out) == []
