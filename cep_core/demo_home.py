"""What `cep-console --demo` puts in its fresh home so every screen has something real to show and do.

- A trace store filled through `WorkflowTracer`, as a workflow calling a large model would fill it: calls of a
  `travel/planner` agent built from the packaged Hermes sample (its tools, the user's request and the large
  model's tool call, captured OpenAI-style), enough of them to make the agent ready to retrain (`t` on the
  Traces screen launches that training on the built-in tiny model); and a `support/search` agent, still short
  of its threshold, with a few failed calls.
- An evaluation job (the predictions backend: no model is loaded) of the 40 sample outputs `cep demo` scores
  (hand-made in the style of an untuned small model: fences, renamed parameters, prose), so the Evals screen
  shows F1, errors and worst examples beside the baselines, and the Runs screen an eval job. Twenty examples a
  track say nothing about any model: the name says "sample-outputs".

Only for a home `--demo` created itself: a user's own home is never written to.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from cep_core.store.private import write_private
from cep_core.store.tomlfile import dumps

PLANNER = ("travel", "planner", "gpt-4o")
SEARCH = ("support", "search", "gpt-4o-mini")
PLANNER_CALLS = 40
SEARCH_CALLS = 12
SPREAD_S = 7 * 86400.0  # the captures are stamped over the past week
THRESHOLD = 30  # the demo console's retraining threshold: the planner is past it, the search agent is not
PLANNER_PROMPT = "You are the planning agent of a travel assistant. Call the tool that answers the request."
SEARCH_PROMPT = "You are the search agent of a support desk. Call a tool when one answers the question."


def sample_calls() -> Iterator[tuple[list[dict[str, Any]], str, dict[str, Any]]]:
    """(tools, user request, the assistant's first tool call) of each packaged Hermes sample row with one."""
    from cep_core.data.convert import SkipRow, find_tools, row_to_messages
    from cep_core.data.sources import BUILTIN_SAMPLE, iter_rows
    from cep_core.formats.toolcalls import parse_tool_calls

    for raw in iter_rows(BUILTIN_SAMPLE):
        row = raw.data
        found = find_tools(row["conversations"][0]["value"])
        try:
            messages = row_to_messages(row)
        except SkipRow:
            continue
        user = next((m["content"] for m in messages if m["role"] == "user"), "")
        answer = next((m["content"] for m in messages if m["role"] == "assistant"), "")
        parsed = parse_tool_calls(answer, expected="target")
        if found and user and parsed.calls and not parsed.errors:
            call = parsed.calls[0]
            yield found[0], user, {"name": call.name, "arguments": call.arguments}


def capture_demo_traces(db_path: Path) -> int:
    """Fill a new trace store at `db_path` through WorkflowTracer; returns how many calls were captured."""
    from cep_core.tracer import WorkflowTracer

    calls = list(itertools.islice(sample_calls(), PLANNER_CALLS + SEARCH_CALLS))
    now = time.time()
    batch = []
    for i, (tools, user, call) in enumerate(calls):
        planner = i < PLANNER_CALLS
        # Each agent's calls spread over the past week, so the two interleave and time filters mean something.
        share = (i + 1) / PLANNER_CALLS if planner else (i + 1 - PLANNER_CALLS) / SEARCH_CALLS
        captured_at = now - SPREAD_S * (1 - share) - (i % 3) * 60.0
        agent_type, agent_name, model = PLANNER if planner else SEARCH
        failed = not planner and i % 4 == 0
        assistant: dict[str, Any] = {"role": "assistant", "content": ""}
        if not failed:
            assistant["tool_calls"] = [{"id": f"call_{i}", "type": "function", **call}]
        batch.append(
            {
                "messages": [
                    {"role": "system", "content": PLANNER_PROMPT if planner else SEARCH_PROMPT},
                    {"role": "user", "content": user},
                    assistant,
                ],
                "agent_type": agent_type,
                "agent_name": agent_name,
                "model_used": model,
                "tools": tools,
                "success": not failed,
                "error": "upstream timeout after 30 s" if failed else None,
                "cost": round((0.012 if planner else 0.002) * (1 + (i % 5) / 4), 5),
                "execution_time": round(0.6 + (i % 7) * 0.23, 2),
                "metadata": {"source": "cep-console --demo (packaged Hermes sample)"},
                "captured_at": captured_at,
            }
        )
    tracer = WorkflowTracer(db_path, strict=True, threshold=THRESHOLD)
    try:
        ids = tracer.capture_many(batch)
    finally:
        tracer.close()
    return len(ids)


def evaluation_config(home: Path) -> Path:
    """An eval config (predictions backend) of the shipped sample outputs on both tracks."""
    samples = resources.files("cep_core.data").joinpath("samples")
    tracks = ("toolcall", "structured")
    predictions = home / "demo" / "sample-predictions.jsonl"
    write_private(
        predictions,
        "".join(samples.joinpath(f"demo_{t}_predictions.jsonl").read_text(encoding="utf-8") for t in tracks),
    )
    config = home / "demo" / "eval-sample-outputs.toml"
    settings = {
        "name": "sample-outputs",
        "backend": "predictions",
        "model": "cep-demo-samples",
        "cep": "compact",
        "sets": [{"source": str(samples.joinpath(f"demo_{t}.jsonl"))} for t in tracks],
        "predictions": {"path": str(predictions)},
    }
    write_private(config, dumps(settings))
    return config


def seed_demo_home(home: Path, traces_db: Path) -> list[str]:
    """Fill a fresh demo home (traces and one evaluation job); returns what was done, for a notification."""
    from cep_core.jobs.manager import JobManager

    done = []
    if not traces_db.exists():
        done.append(f"{capture_demo_traces(traces_db)} traced calls of two agents (Traces)")
    job = JobManager(home=home).start_config(evaluation_config(home), kind="eval", name="sample-outputs")
    done.append(f"an evaluation of the sample outputs ({job.id}; Evals)")
    return done
