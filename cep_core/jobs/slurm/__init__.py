"""The Slurm backend: an sbatch script per run, followed with squeue / sacct / scontrol, stopped with scancel.

The job runs the same command as locally, under `cep_core.jobs.runner`, which writes RUN_DIR/exit.json. The
batch script `exec`s the runner, so the batch step *is* the runner: `scancel --signal=TERM --full` reaches the
job's process (which checkpoints and writes `end{stopped}`) while the runner, which ignores SIGTERM, stays to
record the exit. Jobs are submitted with `--requeue`: after a preemption or node failure Slurm runs the same job
id again and the job resumes from its checkpoint.

How a job ended comes from the scheduler (squeue while it is queued or running, then sacct where accounting is
on, else `scontrol show job`, which keeps finished jobs for MinJobAge seconds), refined by the runner's exit
record and the run's last `end` event. TIMEOUT, NODE_FAIL, PREEMPTED, OUT_OF_MEMORY and FAILED are crashes: the
run resumes from its checkpoint (a job that reports a non-retryable error in progress.jsonl is a failure; the
job manager reads that event first). CANCELLED is a stop.

parsers: what squeue, sacct, scontrol and sbatch print, read; script: the batch script; records: what the run left
on disk and how it ended by those; backend: SlurmBackend, which the job manager uses.
"""
