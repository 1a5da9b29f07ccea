"""The evaluation job: `python -m cep_core.evaluation RUN_DIR` evaluates what RUN_DIR/run.toml describes.

It loads the eval sets, applies the CEP (or not), generates with the configured backend, scores both tracks
with cep_core.scoring, and writes `evals/<eval-id>/` (predictions.jsonl, examples.jsonl, results.json) under
the training run it evaluates, or under its own run directory. Progress goes to RUN_DIR/progress.jsonl
(start, step, eval, end or error); a training run also gets the `eval` event in its own log, so its page shows
the figures. A row in cep.db (table `evaluations`) follows the evaluation from running to its end.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cep_core.data.evalset import EvalExample
from cep_core.errors import InputError
from cep_core.evaluation import store
from cep_core.evaluation.backends import Backend, Generation, Request
from cep_core.evaluation.config import EvalConfig, load_eval_config
from cep_core.evaluation.sets import DEFAULT_HOLDOUT, LoadedSet, load_sets
from cep_core.jobs.entry import (
    EXIT_COMPLETED,
    EXIT_CONFIG,
    EXIT_ERROR,
    EXIT_STOPPED,
    StopFlag,
    job_main,
    report_error,
)
from cep_core.prompts.prefix import NO_CEP, Cep, apply_cep, get_cep
from cep_core.runs import ProgressWriter, RunPaths, new_run_id
from cep_core.scoring import baselines
from cep_core.store.private import write_json, write_jsonl
from cep_core.store.state import resolve_home
from cep_core.versions import provenance

_STEP_INTERVAL_S = 0.5

EventHook = Callable[[dict[str, Any]], None]


@dataclass(slots=True)
class Plan:
    """Everything resolved before any model is loaded: what to evaluate, on what, and where results go."""

    config: EvalConfig
    paths: RunPaths  # the job's own run directory
    training: RunPaths | None
    model: str
    adapter: str | None
    tiny_base: Path | None
    cep: Cep | None
    holdout: tuple[float, int]
    eval_id: str
    eval_dir: Path
    ablation: str | None = None  # set on each variant of an ablation
    variant: str | None = None

    @property
    def cep_variant(self) -> str:
        return self.cep.name if self.cep else NO_CEP


def make_plan(config: EvalConfig, paths: RunPaths, home: str | Path | None = None) -> Plan:
    model, adapter, tiny_base = config.model, config.adapter or None, None
    cep_name = config.cep
    holdout = DEFAULT_HOLDOUT
    training = None
    if config.run:
        from cep_core.training.trained import load_trained

        trained = load_trained(config.run, home)
        training = trained.run
        model = model or trained.model
        cep_name = cep_name or trained.cep
        holdout = (trained.config.data.holdout_fraction, trained.config.data.seed)
        tiny_base = training.tiny_base
        if config.use_adapter and not adapter:
            adapter = str(
                trained.require_adapter(
                    "evaluate it when it has completed, or set use_adapter = false for its base model"
                )
            )
    cep = None if (cep_name or NO_CEP) == NO_CEP else get_cep(cep_name)
    eval_id = new_run_id(config.name)
    eval_dir = (training or paths).evals / eval_id
    return Plan(config, paths, training, model, adapter, tiny_base, cep, holdout, eval_id, eval_dir)


def make_backend(plan: Plan) -> Backend:
    config = plan.config
    if config.backend == "hf":
        from cep_core.evaluation.backends.hf import HfBackend

        return HfBackend(
            plan.model,
            plan.adapter,
            tiny_base=plan.tiny_base,
            batch_size=config.hf.batch_size,
            max_new_tokens=config.hf.max_new_tokens,
            device=config.hf.device,
            dtype=config.hf.dtype,
        )
    if config.backend == "openai":
        from cep_core.evaluation.backends.openai import OpenAIBackend

        o = config.openai
        return OpenAIBackend(
            o.base_url,
            plan.model,
            api_key_env=o.api_key_env,
            concurrency=o.concurrency,
            max_retries=o.max_retries,
            timeout_s=o.timeout_s,
            max_tokens=o.max_tokens,
            temperature=o.temperature,
            backoff_s=o.backoff_s,
            max_backoff_s=o.max_backoff_s,
        )
    from cep_core.evaluation.backends.predictions import PredictionsBackend

    return PredictionsBackend(config.predictions.path, plan.model)


class _Reporter:
    """Step events, throttled, and the same events to an in-process hook (the CLI's progress bar)."""

    def __init__(self, writer: ProgressWriter, total: int, hook: EventHook | None):
        self.writer, self.total, self.hook = writer, total, hook
        self.done = 0
        self.started = time.monotonic()
        self.last_emit = 0.0

    def emit(self, event: str, **fields: Any) -> None:
        record = self.writer.emit(event, **fields)
        if self.hook:
            self.hook(record)

    def advance(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if now - self.last_emit < _STEP_INTERVAL_S and self.done < self.total:
            if self.hook:
                self.hook({"event": "step", "step": self.done, "total_steps": self.total})
            return
        self.last_emit = now
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else None
        self.emit(
            "step",
            step=self.done,
            total_steps=self.total,
            examples_per_s=round(rate, 3),
            eta_s=round(eta, 1) if eta is not None else None,
        )


def run_evaluation(
    run_dir: str | Path,
    home: str | Path | None = None,
    hook: EventHook | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[int, dict[str, Any] | None]:
    """Run the evaluation of RUN_DIR to its end: (exit code, results or None). Never raises for job errors;
    they end as an `error` event, a failed cep.db row and a non-zero code.

    An ablation (`ablation = true`) runs its variants one after another in this one job, on the same examples;
    the results returned are the last variant's, and every variant has its own results and cep.db row."""
    paths = RunPaths(Path(run_dir).resolve())
    writer = ProgressWriter(paths.progress)
    reporter = _Reporter(writer, 0, hook)
    plan: Plan | None = None
    recorded = False
    try:
        config = load_eval_config(paths.run_toml)
        plans = make_plans(config, paths, home)
        first = plans[0]
        sets = load_sets(config.sets, first.holdout, config.tool_format)
        examples = [ex for loaded in sets for ex in loaded.examples]
        if not examples:
            raise InputError(
                "the eval sets hold no examples (check the sources, split and sample)", field="sets"
            )
        reporter.total = len(examples) * len(plans)
        reporter.emit(
            "start",
            total_steps=reporter.total,
            world_size=1,
            model=first.model,
            cep_variant=first.cep_variant if len(plans) == 1 else plans[-1].cep_variant,
            cep_sha256=(plans[-1].cep.sha256 if plans[-1].cep else None),
            resumed_from=None,
            eval_id=first.eval_id,
            eval_dir=str(first.eval_dir),
            backend=config.backend,
            adapter=plans[-1].adapter,
            **(
                {"ablation": first.ablation, "variants": [p.variant for p in plans]} if first.ablation else {}
            ),
        )
        results: dict[str, Any] | None = None
        for plan in plans:
            recorded = False
            requests = [Request(ex.id, apply_cep(ex.messages, plan.cep)) for ex in examples]
            created = time.time()
            store.record_start(_record(plan, paths, sets, created), home)
            recorded = True
            backend = make_backend(plan)
            generations = backend.generate(requests, reporter.advance, should_stop)
            plan.eval_dir.mkdir(parents=True, exist_ok=True)
            write_jsonl(plan.eval_dir / store.PREDICTIONS, (g.to_dict() for g in generations))
            if len(generations) < len(requests):
                reporter.emit("end", status="stopped", step=reporter.done)
                store.record_end(plan.eval_id, "stopped", home)
                return EXIT_STOPPED, None
            results = score_and_write(plan, sets, examples, generations, backend, created)
            del backend  # the next variant loads its own model
            metrics = {**store.headline_figures(results), "eval_id": plan.eval_id}
            if plan.variant:
                metrics.update({"ablation": plan.ablation, "variant": plan.variant})
            reporter.emit("eval", step=reporter.done, metrics=metrics)
            if plan.training is not None:
                ProgressWriter(plan.training.progress).emit("eval", step=None, metrics=metrics)
            store.record_end(plan.eval_id, "completed", home, results)
        reporter.emit("end", status="completed", step=reporter.done)
        return EXIT_COMPLETED, results
    except BaseException as exc:  # every failure ends with an error event the console can show
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            if plan is not None and recorded:
                store.record_end(plan.eval_id, "stopped", home)
            reporter.emit("end", status="stopped", step=reporter.done)
            raise
        kind, message = report_error(reporter.emit, exc, traceback=not isinstance(exc, InputError))
        if plan is not None and recorded:
            store.record_end(plan.eval_id, "failed", home, error=f"{kind}: {message}")
        print(f"evaluation failed ({kind}): {message}", file=sys.stderr, flush=True)
        return (EXIT_CONFIG if isinstance(exc, InputError) else EXIT_ERROR), None


def make_plans(config: EvalConfig, paths: RunPaths, home: str | Path | None = None) -> list[Plan]:
    """One plan, or one per variant of an ablation (all planned before any model loads, so a bad run or
    adapter fails before the first variant spends time)."""
    if not config.ablation:
        return [make_plan(config, paths, home)]
    from cep_core.evaluation.ablation import VARIANTS, variant_config

    reference = make_plan(config, paths, home)  # resolves the run's CEP and checks its adapter exists
    cep = config.cep or (reference.cep.name if reference.cep else NO_CEP)
    ablation_id = new_run_id(config.name)
    plans = []
    for variant in VARIANTS:
        plan = make_plan(variant_config(config, variant, cep), paths, home)
        plan.ablation, plan.variant = ablation_id, variant.name
        plans.append(plan)
    return plans


def _record(plan: Plan, paths: RunPaths, sets: list[LoadedSet], created: float) -> store.EvalRecord:
    return store.EvalRecord(
        id=plan.eval_id,
        run_dir=str(paths.root),
        eval_dir=str(plan.eval_dir),
        created=created,
        backend=plan.config.backend,
        state="running",
        training_run=str(plan.training.root) if plan.training else None,
        name=plan.config.name,
        model=plan.model or None,
        adapter=plan.adapter,
        cep_variant=plan.cep_variant,
        cep_sha256=plan.cep.sha256 if plan.cep else None,
        data_spec=[s.describe() for s in sets],
        ablation=plan.ablation,
        variant=plan.variant,
    )


def score_and_write(
    plan: Plan,
    sets: list[LoadedSet],
    examples: list[EvalExample],
    generations: list[Generation],
    backend: Backend,
    created: float,
) -> dict[str, Any]:
    """Score both tracks, write results.json and examples.jsonl; return the results."""
    from cep_core.scoring import score_all

    config = plan.config
    by_id = {g.id: g for g in generations}
    outputs = {g.id: g.output for g in generations if g.output is not None}
    tracks: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    for track in ("toolcall", "structured"):
        track_examples = [ex for ex in examples if ex.track == track]
        if not track_examples:
            continue
        figures, scores = score_all(track_examples, outputs, track, config.tool_format, config.strict)
        # Each track carries what it measured, so a track's figures read alone still say what they are.
        figures.update(
            {
                "model": plan.model or None,
                "adapter": plan.adapter,
                "cep_variant": plan.cep_variant,
                "cep_sha256": plan.cep.sha256 if plan.cep else None,
                "data_spec": [s.describe() for s in sets if s.track == track],
            }
        )
        tracks[track] = figures
        for ex, score in zip(track_examples, scores, strict=True):
            generation = by_id.get(ex.id)
            row = {"track": track, **score.to_dict()}
            row["prompt"] = ex.messages
            row["expected"] = ex.expected if track == "structured" else ex.answers
            row["output"] = generation.output if generation else None
            if generation and generation.error:
                row["generation_error"] = generation.error
            rows.append(row)
    failed = [g for g in generations if g.error]
    finished = time.time()
    results = {
        **provenance(created, finished),
        "eval_id": plan.eval_id,
        "name": config.name,
        "created": created,
        "finished": finished,
        "model": plan.model or None,
        "adapter": plan.adapter,
        "training_run": str(plan.training.root) if plan.training else None,
        "backend": backend.describe(),
        "cep": {"variant": plan.cep_variant, "sha256": plan.cep.sha256 if plan.cep else None},
        "tool_format": config.tool_format,
        "strict": config.strict,
        "data_spec": [s.describe() for s in sets],
        "generation_errors": {
            "count": len(failed),
            "examples": [{"id": g.id, "error": g.error} for g in failed[:20]],
        },
        "baselines": {"llm": baselines.LLM, "small_model": baselines.SMALL_MODEL},
        "tracks": tracks,
    }
    write_json(plan.eval_dir / store.RESULTS, results)
    write_jsonl(plan.eval_dir / store.EXAMPLES, rows)
    return results


def main(argv: list[str] | None = None) -> int:
    return job_main(
        argv,
        prog="python -m cep_core.evaluation",
        description="Run the evaluation of a run directory (its run.toml).",
        run=_run_until_stopped,
    )


def _run_until_stopped(paths: RunPaths) -> int:
    stop = StopFlag()
    stop.install(signal.SIGTERM, announce="stopping after the current batch")
    code, _ = run_evaluation(paths.root, resolve_home(None), should_stop=lambda: stop.requested)
    return code
