"""The training job: `python -m cep_core.training RUN_DIR` trains what RUN_DIR/run.toml describes.

Plain transformers Trainer + peft LoRA. The job pre-flights, prepares and tokenises the data, resumes from
the newest valid checkpoint, reports every event to progress.jsonl, stops cleanly (checkpoint first) on
SIGTERM, and ends with an `error` event of a known kind when anything goes wrong.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cep_core.checks import Status
from cep_core.errors import InputError
from cep_core.jobs.entry import (
    EXIT_COMPLETED,
    EXIT_CONFIG,
    EXIT_ERROR,
    EXIT_STOPPED,
    StopFlag,
    job_main,
    report_error,
)
from cep_core.runs import ProgressWriter, RunPaths
from cep_core.store.private import write_json

if TYPE_CHECKING:
    from cep_core.data.prepare import Prepared
    from cep_core.training.callbacks import ProgressCallback
    from cep_core.training.config import TrainConfig
    from cep_core.training.dataset import Features


class PreflightFailed(Exception):
    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def _versions() -> dict[str, str]:
    from cep_core.versions import package_versions

    return {k: v for k, v in package_versions().items() if v is not None}


def run_job(run_dir: str | Path) -> int:
    """Run the job to its end; returns the process exit code (0 completed, 3 stopped, 2 pre-flight, 1 error)."""
    paths = RunPaths(Path(run_dir).resolve())
    writer = ProgressWriter(paths.progress)
    stop = StopFlag()
    stop.install(signal.SIGTERM, signal.SIGINT)
    try:
        from cep_core.training.model import quiet_peft_deprecations

        with quiet_peft_deprecations():
            return _train(paths, writer, stop)
    except PreflightFailed as exc:
        writer.emit("error", kind=exc.kind, message=str(exc))
        print(f"pre-flight failed: {exc}", flush=True)
        return EXIT_CONFIG
    except BaseException as exc:  # every failure ends with an error event the console can show
        if isinstance(exc, SystemExit | KeyboardInterrupt) and stop.requested:
            raise
        report_error(writer.emit, exc)
        return EXIT_ERROR


def _train(paths: RunPaths, writer: ProgressWriter, stop: StopFlag) -> int:
    """One training session, phase by phase; each phase raises a classified error when it fails."""
    started = time.time()
    config = _load_config(paths)
    prepared = _preflight(config, paths, writer)
    base = _load_base_and_data(config, paths, prepared, writer)
    setup = _make_trainer(config, paths, base, writer, stop)
    meta = _metadata(config, paths, prepared, base, setup, started)
    write_json(paths.metadata, meta)
    if stop.requested:  # signalled while preparing: nothing trained in this session
        step = setup.resumed_from or 0
        writer.emit("end", status="stopped", step=step)
        return EXIT_STOPPED
    return _train_and_finish(paths, writer, stop, base, setup, meta)


@dataclass(slots=True)
class _Base:
    """The base model and its tokenised training rows, as `_load_base_and_data` hands them on."""

    device: str
    bf16: bool
    model: Any
    tokenizer: Any
    source: str  # where the base weights came from (metadata.json's base_model)
    features: Features
    summary: dict[str, Any]  # the `data` event


@dataclass(slots=True)
class _Setup:
    """The Trainer ready to run, and what it was set up with (start event, metadata)."""

    trainer: Any
    callback: ProgressCallback
    model: Any  # the base with its LoRA adapter: what is trained and saved
    packing: bool
    cep_sha256: str | None
    resume: Path | None  # the checkpoint this session resumes from
    resumed_from: int | None  # its step


def _load_config(paths: RunPaths) -> TrainConfig:
    """run.toml, validated. A bad config is a ConfigError (kind `config`), so the job manager does not resume a
    run that would fail the same way."""
    from cep_core.training.config import load_config
    from cep_core.training.failures import ConfigError

    try:
        config = load_config(paths.run_toml)
    except InputError as exc:
        raise ConfigError(str(exc)) from exc
    print(f"run {paths.root.name}: model {config.model}, data {', '.join(config.data.sources)}", flush=True)
    return config


def _preflight(config: TrainConfig, paths: RunPaths, writer: ProgressWriter) -> Prepared:
    """The pre-flight checks, before torch loads anything: a failure ends the job in seconds with the check
    that failed (PreflightFailed). Returns the prepared data the checks read, so it is read only once."""
    from cep_core.training.preflight import failure_kind, run_preflight

    pre = run_preflight(config, paths.root)
    writer.emit("preflight", checks=[c.to_dict() for c in pre.checks])
    for check in pre.checks:
        print(f"  pre-flight {check.name}: {check.status} - {check.detail}", flush=True)
    if pre.status == Status.FAIL:
        first = pre.failed[0]
        raise PreflightFailed(failure_kind(first), f"{first.name}: {first.detail}")
    return pre.prepared


def _load_base_and_data(
    config: TrainConfig, paths: RunPaths, prepared: Prepared, writer: ProgressWriter
) -> _Base:
    """The base model and the tokenised rows, together: the tiny base's tokenizer is trained on the rows, and
    the rows are tokenised by the base's tokenizer. Reports the `data` event; no row left is a DataError."""
    from cep_core.training.dataset import tokenize_examples
    from cep_core.training.model import load_base, resolve_device, use_bf16
    from cep_core.training.tiny import tokenizer_corpus

    device = resolve_device(config.device)
    bf16 = use_bf16(config.train.bf16, device)
    corpus = tokenizer_corpus(ex.messages for ex in prepared.train)
    model, tokenizer, base_source = load_base(config, paths.tiny_base, corpus, bf16)
    features, token_skips = tokenize_examples(prepared.train, tokenizer, config.train.max_seq_length)
    skipped = Counter(prepared.skipped) + token_skips
    summary = {
        **prepared.summary(),
        "train_rows": len(features),
        "skipped": dict(sorted(skipped.items())),
        "train_tokens": features.tokens,
    }
    writer.emit("data", **summary)
    print(
        f"data: {summary['rows']} rows, {len(features)} train ({features.tokens} tokens), "
        f"{summary['holdout_rows']} holdout, skipped {summary['skipped'] or 'none'}",
        flush=True,
    )
    if len(features) == 0:
        from cep_core.training.failures import DataError

        raise DataError(
            f"no training rows left after tokenisation (skipped: {summary['skipped']}); raise "
            "train.max_seq_length or check the data",
            field="data.sources",
        )
    return _Base(device, bf16, model, tokenizer, base_source, features, summary)


def _make_trainer(
    config: TrainConfig, paths: RunPaths, base: _Base, writer: ProgressWriter, stop: StopFlag
) -> _Setup:
    """LoRA on the base, the checkpoint to resume from (unusable ones set aside) and the Trainer, with the
    callback that reports progress and honours the stop flag. Nothing is trained yet."""
    from transformers.trainer_callback import PrinterCallback

    from cep_core.prompts.prefix import NO_CEP, get_cep
    from cep_core.training.callbacks import JsonLogPrinter, ProgressCallback
    from cep_core.training.checkpoints import find_resume_checkpoint
    from cep_core.training.dataset import make_collator, use_packing
    from cep_core.training.loss import trainer_class
    from cep_core.training.model import apply_lora

    packing = use_packing(config.train.packing, base.model)
    model = apply_lora(base.model, config)
    cep = None if config.data.cep == NO_CEP else get_cep(config.data.cep)
    cep_sha256 = cep.sha256 if cep else None
    resume, rejected = find_resume_checkpoint(paths.checkpoints)
    for verdict in rejected:
        print(f"checkpoint {verdict.path.name} is unusable ({verdict.reason}); set aside", flush=True)
    resumed_from = int(resume.name.split("-")[-1]) if resume else None

    args = _training_arguments(config, paths, base, packing)
    start_fields = {
        "world_size": args.world_size,
        "model": config.model,
        "cep_variant": config.data.cep,
        "cep_sha256": cep_sha256,
        "resumed_from": resumed_from,
        "packing": packing,
        "device": base.device,
    }
    callback = ProgressCallback(writer, stop, start_fields, paths.checkpoints)
    if "tensorboard" in config.train.report_to:
        # Event files inside the run directory (`tensorboard --logdir CEP_HOME/runs` shows every run).
        os.environ.setdefault("TENSORBOARD_LOGGING_DIR", str(paths.root / "tensorboard"))
    if "wandb" in config.train.report_to:
        os.environ.setdefault("WANDB_PROJECT", "cep")
    trainer = trainer_class()(
        model=model,
        args=args,
        train_dataset=base.features,
        data_collator=make_collator(base.tokenizer, packing),
        processing_class=base.tokenizer,
        callbacks=[callback, JsonLogPrinter()],
    )
    trainer.remove_callback(PrinterCallback)  # JsonLogPrinter prints the same logs as JSON
    return _Setup(trainer, callback, model, packing, cep_sha256, resume, resumed_from)


def _training_arguments(config: TrainConfig, paths: RunPaths, base: _Base, packing: bool) -> Any:
    """The Trainer's arguments from the config: checkpoints in the run directory, every `save_steps`, seeded,
    logged as JSON lines (no progress bar), sampled by length unless rows are packed."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(paths.checkpoints),
        per_device_train_batch_size=config.train.batch_size,
        gradient_accumulation_steps=config.train.grad_accum,
        num_train_epochs=config.train.epochs,
        max_steps=config.train.max_steps or -1,
        learning_rate=config.train.learning_rate,
        lr_scheduler_type=config.train.lr_scheduler,
        warmup_steps=config.train.warmup_ratio,
        weight_decay=config.train.weight_decay,
        logging_steps=config.train.logging_steps,
        save_strategy="steps",
        save_steps=config.train.save_steps,
        save_total_limit=config.train.save_total_limit or None,
        bf16=base.bf16,
        use_cpu=base.device == "cpu",
        **checkpointing_args(TrainingArguments, config.train.gradient_checkpointing),
        seed=config.train.seed,
        data_seed=config.train.seed,
        report_to=config.train.report_to or "none",
        run_name=paths.root.name,  # the run's name in TensorBoard and W&B
        disable_tqdm=True,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        include_num_input_tokens_seen="non_padding",
        train_sampling_strategy="random" if packing else "group_by_length",
    )


def _metadata(
    config: TrainConfig, paths: RunPaths, prepared: Prepared, base: _Base, setup: _Setup, started: float
) -> dict[str, Any]:
    """metadata.json before training starts: what this run trains, on what data, with which versions (what a
    later comparison or export needs even if the run never ends)."""
    return {
        "run_id": paths.root.name,
        "model": config.model,
        "base_model": base.source,
        "cep_variant": config.data.cep,
        "cep_sha256": setup.cep_sha256,
        "data_fingerprint": prepared.fingerprint,
        "data": base.summary,
        "packing": setup.packing,
        "device": base.device,
        "bf16": base.bf16,
        "versions": _versions(),
        "started": started,
        "resumed_from": setup.resumed_from,
        "trainable_parameters": sum(p.numel() for p in setup.model.parameters() if p.requires_grad),
    }


def _train_and_finish(
    paths: RunPaths, writer: ProgressWriter, stop: StopFlag, base: _Base, setup: _Setup, meta: dict[str, Any]
) -> int:
    """Train (from the resume checkpoint, if any), then record how it ended: stopped by a signal (the
    callback saved a checkpoint to resume from) or completed (the adapter and tokenizer saved)."""
    trainer = setup.trainer
    trainer.train(resume_from_checkpoint=str(setup.resume) if setup.resume else None)
    step = trainer.state.global_step
    meta.update(
        {
            "total_steps": trainer.state.max_steps,
            "step": step,
            "first_loss": setup.callback.first_loss,
            "final_loss": setup.callback.last_loss,
            "tokens": int(trainer.state.num_input_tokens_seen),
            "finished": time.time(),
        }
    )
    if stop.requested and step < trainer.state.max_steps:
        meta["status"] = "stopped"
        write_json(paths.metadata, meta)
        writer.emit("end", status="stopped", step=step)
        print(f"stopped by {stop.signal_name} at step {step}; checkpoint saved", flush=True)
        return EXIT_STOPPED
    setup.model.save_pretrained(str(paths.adapter))
    base.tokenizer.save_pretrained(str(paths.adapter))
    meta["status"] = "completed"
    write_json(paths.metadata, meta)
    writer.emit("end", status="completed", step=step)
    print(f"completed {step} steps; adapter in {paths.adapter}", flush=True)
    return EXIT_COMPLETED


def main(argv: list[str] | None = None) -> int:
    return job_main(
        argv,
        prog="python -m cep_core.training",
        description="Run the training job of a run directory (its run.toml).",
        run=_run_quietly,
    )


def _run_quietly(paths: RunPaths) -> int:
    import warnings

    # peft reads the model's `is_gradient_checkpointing`, which transformers 5 deprecated: a warning the user
    # can do nothing about, in every run's log.
    warnings.filterwarnings(
        "ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning
    )
    return run_job(paths.root)


def checkpointing_args(arguments_class: type, enabled: bool) -> dict[str, Any]:
    """Activation (gradient) checkpointing under the name this transformers takes: 5.x renamed
    `gradient_checkpointing*` to `activation_checkpointing*` and warns on the old one (noise in every run's log)."""
    kwargs = {"use_reentrant": False} if enabled else None
    if "activation_checkpointing" in getattr(arguments_class, "__dataclass_fields__", {}):
        return {"activation_checkpointing": enabled, "activation_checkpointing_kwargs": kwargs}
    return {"gradient_checkpointing": enabled, "gradient_checkpointing_kwargs": kwargs}
