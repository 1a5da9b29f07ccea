"""A small real job that keeps the run-directory contract, for job-control tests that need no model.

    python step_job.py RUN_DIR

Reads `steps`, `delay` and `checkpoint_every` from RUN_DIR/run.toml; writes start/step/checkpoint/end events
to progress.jsonl; resumes from its newest checkpoint event; on SIGTERM writes a checkpoint and
end{status: "stopped"}; `fail_kind = "config"` makes it end with an error event instead.
"""

import json
import signal
import sys
import time
import tomllib
from pathlib import Path

run_dir = Path(sys.argv[1])
config = tomllib.loads((run_dir / "run.toml").read_text())
steps = int(config.get("steps", 5))
delay = float(config.get("delay", 0.2))
every = int(config.get("checkpoint_every", 1))
progress = run_dir / "progress.jsonl"


def emit(event, **fields):
    with progress.open("a") as handle:
        handle.write(json.dumps({"ts": time.time(), "event": event, **fields}) + "\n")


resumed = None
if progress.exists():
    for line in progress.read_text().splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if obj.get("event") == "checkpoint":
            resumed = obj["step"]
step = resumed or 0
stopping = False


def on_term(signum, frame):
    global stopping
    stopping = True


signal.signal(signal.SIGTERM, on_term)
emit(
    "start",
    total_steps=steps,
    world_size=1,
    model="step-job",
    cep_variant="none",
    cep_sha256="",
    resumed_from=resumed,
)
print(f"step job starting at {step}", flush=True)
if config.get("fail_kind"):
    emit("error", kind=config["fail_kind"], message="the config says to fail")
    sys.exit(1)
while step < steps:
    if stopping:
        emit("checkpoint", step=step, path=f"checkpoints/checkpoint-{step}")
        emit("end", status="stopped", step=step)
        print("stopped", flush=True)
        sys.exit(0)
    time.sleep(delay)
    step += 1
    emit(
        "step",
        step=step,
        total_steps=steps,
        epoch=step / steps,
        loss=1.0 / step,
        learning_rate=1e-3,
        grad_norm=1.0,
        tokens=100 * step,
        tokens_per_s=500.0,
        eta_s=(steps - step) * delay,
    )
    print(f"step {step}/{steps}", flush=True)
    if step % every == 0:
        emit("checkpoint", step=step, path=f"checkpoints/checkpoint-{step}")
emit("end", status="completed", step=step)
