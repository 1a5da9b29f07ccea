"""The loop closes: traces -> `cep traces retrain` -> `cep train CONFIG` trains the built-in tiny model.

Exactly the command retrain prints, run as a user would (a subprocess of the real CLI, which starts the real
training job). About 25 s on two CPU cores: a real LoRA run of two steps.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cep_core.tracer import WorkflowTracer
from cep_core.tracer.retrain import default_template, prepare_retrain
from cep_core.tracer.thresholds import AgentKey

ROOT = Path(__file__).resolve().parents[1]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def test_an_exported_dataset_trains_the_tiny_model(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip("peft")
    monkeypatch.setenv("CEP_HOME", str(tmp_path / "home"))
    tracer = WorkflowTracer(tmp_path / "traces.db", strict=True, threshold=20)
    for i, city in enumerate(["Paris", "Oslo", "Lima", "Kyoto", "Quito"] * 5):
        tracer.capture_messages(
            [
                {"role": "user", "content": f"Weather in {city}? ({i})"},
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "c",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": json.dumps({"city": city})},
                        }
                    ],
                },
            ],
            agent_type="travel",
            agent_name="weather",
            model_used="gpt-4o",
            tools=[WEATHER],
        )
    # The built-in template, shortened to two steps so the test stays quick.
    template = tmp_path / "quick.toml"
    template.write_text(
        default_template()
        .replace("epochs = 3.0", "max_steps = 2")
        .replace("batch_size = 4", "batch_size = 2")
        .replace("grad_accum = 4", "grad_accum = 1")
    )
    result = prepare_retrain(
        tracer.store,
        AgentKey("travel", "weather"),
        out_dir=tmp_path / "retrain",
        threshold=20,
        template_path=template,
    )
    assert result.command == f"cep train {result.config_path}"
    env = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        CEP_HOME=str(tmp_path / "home"),
    )
    proc = subprocess.run(
        [sys.executable, "-m", "cep_core.cli", "train", str(result.config_path), "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["result"]["event"] == "end" and report["result"]["status"] == "completed"
    run_dir = Path(report["run_dir"])
    events = [json.loads(line) for line in (run_dir / "progress.jsonl").read_text().splitlines()]
    data = next(e for e in events if e["event"] == "data")
    assert data["rows"] == result.export.train and data["skipped"] == {}
    assert [e["step"] for e in events if e["event"] == "step"] == [1, 2]
    assert (run_dir / "adapter" / "adapter_model.safetensors").is_file()
