"""From traces to a training run: export an agent's data, write a run config from a template, record the trigger.

Launching belongs to the jobs layer. Until it exists, `prepare_retrain` stops at a config file and the exact
`cep train CONFIG` command; a `launch` callable (config path -> job reference) can be passed in and is then
called, and its outcome recorded, with no other change here.
"""

from __future__ import annotations

import shlex
import string
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from cep_core.errors import InputError
from cep_core.store.private import write_private
from cep_core.store.state import resolve_home
from cep_core.store.tomlfile import toml_value
from cep_core.tracer.export import ExportResult, export_dataset
from cep_core.tracer.ids import new_id
from cep_core.tracer.redact import Redactor
from cep_core.tracer.store import TraceStore
from cep_core.tracer.thresholds import DEFAULT_THRESHOLD, AgentKey, progress

Launcher = Callable[[Path], str]
DEFAULT_MODEL = "builtin:tiny"


@dataclass
class RetrainResult:
    trigger_id: str
    agent: AgentKey
    export: ExportResult
    config_path: Path
    command: str  # what to run to start training
    status: str  # exported | launched | launch_failed
    launch_ref: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "trigger_id": self.trigger_id,
            "agent": str(self.agent),
            "config_path": str(self.config_path),
            "command": self.command,
            "status": self.status,
            "launch_ref": self.launch_ref,
            "export": self.export.to_dict(),
        }


def default_template() -> str:
    return resources.files("cep_core.tracer").joinpath("retrain.toml").read_text(encoding="utf-8")


def render_config(template: str, values: dict[str, Any], source: str = "template") -> str:
    """Fill `$name` placeholders with TOML-quoted values; the result must parse as TOML.

    Every value is written as TOML (cep_core.store.tomlfile.toml_value), so a path cannot break out of its
    string, even in a comment line.
    """
    quoted = {k: toml_value(v) for k, v in values.items()}
    try:
        text = string.Template(template).substitute(quoted)
    except (KeyError, ValueError) as exc:
        raise InputError(
            f"unknown or malformed placeholder {exc} in the config template", path=source
        ) from None
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"the filled-in config template is not valid TOML: {exc}", path=source) from None
    return text


def prepare_retrain(
    store: TraceStore,
    agent: AgentKey,
    *,
    out_dir: str | Path | None = None,
    model: str = DEFAULT_MODEL,
    threshold: int = DEFAULT_THRESHOLD,
    force: bool = False,
    template_path: str | Path | None = None,
    launch: Launcher | None = None,
    redactor: Redactor | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> RetrainResult:
    """Export the agent's successful traces, write its run config, record the trigger, launch if given how."""
    state = next((p for p in progress(store, threshold) if p.key == agent), None)
    if state is None:
        raise InputError(f"no traces for agent {agent}", path=store.path)
    if not state.ready and not force:
        raise InputError(
            f"agent {agent} has {state.new_examples} new successful example(s) since its last export; "
            f"the threshold is {threshold} (use --force to retrain anyway)"
        )
    template = Path(template_path).read_text(encoding="utf-8") if template_path else default_template()
    trigger_id = new_id()
    out = (
        Path(out_dir)
        if out_dir
        else resolve_home() / "retrain" / f"{agent.agent_type}-{agent.agent_name}-{trigger_id}"
    )
    export = export_dataset(store, out / "data", agent=agent, redactor=redactor, on_progress=on_progress)
    if export.train == 0:
        raise InputError(
            f"agent {agent} has no exportable successful traces (skipped: {export.skipped or 'none'})",
            path=store.path,
        )
    config_path = out / "run.toml"
    values = {
        "agent": str(agent),
        "name": f"retrain-{agent.agent_type}-{agent.agent_name}",
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "config_path": str(config_path.resolve()),
        "model": model,
        "train_path": str(export.train_path.resolve()),
        "holdout_path": str(export.holdout_path.resolve()),
        "store": str(store.path.resolve()),
        "examples": export.examples,
        "last_id": export.last_ids.get(agent, ""),
    }
    write_private(config_path, render_config(template, values, str(template_path or "retrain.toml")))
    command = f"cep train {shlex.quote(str(config_path))}"
    status, ref = "exported", None
    if launch is not None:
        try:
            ref = str(launch(config_path))
            status = "launched"
        except Exception as exc:  # noqa: BLE001 — recorded, then re-raised for the caller to report
            _record(store, trigger_id, agent, export, config_path, "launch_failed", f"{type(exc).__name__}")
            raise
    _record(store, trigger_id, agent, export, config_path, status, ref)
    return RetrainResult(trigger_id, agent, export, config_path, command, status, ref)


def _record(
    store: TraceStore,
    trigger_id: str,
    agent: AgentKey,
    export: ExportResult,
    config: Path,
    status: str,
    ref: str | None,
) -> None:
    store.conn.execute(
        "INSERT INTO retrain_triggers (id, ts, agent_type, agent_name, examples, dataset, config, status, launch_ref)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            trigger_id,
            time.time(),
            agent.agent_type,
            agent.agent_name,
            export.examples,
            str(export.train_path),
            str(config),
            status,
            ref,
        ),
    )


def triggers(store: TraceStore, agent: AgentKey | None = None) -> list[dict[str, Any]]:
    """Recorded retrain triggers, newest first."""
    sql = "SELECT * FROM retrain_triggers"
    params: list[Any] = []
    if agent is not None:
        sql += " WHERE agent_type = ? AND agent_name = ?"
        params = [agent.agent_type, agent.agent_name]
    return [dict(r) for r in store.conn.execute(sql + " ORDER BY id DESC", params)]
