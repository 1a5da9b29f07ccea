"""The batch script of one run (RUN_DIR/job.sbatch): its #SBATCH options, its exported environment (secrets
left out) and the `exec` of the runner."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from cep_core.errors import CepError
from cep_core.jobs.backend import LOG_FILE, LaunchSpec, runner_command

SBATCH_FILE = "job.sbatch"
# Environment variables whose values must not be written into job.sbatch (they travel in sbatch's environment).
_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSW|CREDENTIAL|API_?KEY|PRIVATE|(^|_)KEY$", re.IGNORECASE)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def is_secret(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def sbatch_script(spec: LaunchSpec) -> str:
    """The batch script for one run: resources, output and requeue options, exported env, the runner command.

    Secret-looking variables (tokens, passwords, keys) are left out: they reach the job through sbatch's own
    environment (`--export=ALL`), so they never sit in a file in the run directory.
    """
    run_dir = Path(spec.run_dir)
    for what, value in (("run directory", str(run_dir)), ("job name", spec.name or spec.job_id)):
        if "\n" in value or "\r" in value:
            raise CepError(f"the {what} {value!r} contains a line break, which an sbatch script cannot hold")
    if "%" in str(run_dir):
        raise CepError(
            f"the run directory {str(run_dir)!r} contains '%', which Slurm reads as a file-name pattern"
        )
    options: list[str] = [
        f"--job-name={shlex.quote(spec.name or spec.job_id)}",
        f"--output={shlex.quote(str(run_dir / LOG_FILE))}",
        "--open-mode=append",
        "--requeue",
        "--export=ALL",
        "--nodes=1",
        "--ntasks=1",
        f"--cpus-per-task={max(int(spec.cpus or 1), 1)}",
    ]
    if spec.partition:
        options.append(f"--partition={shlex.quote(spec.partition)}")
    if spec.gpus and spec.gpus > 0:
        options.append(f"--gres=gpu:{int(spec.gpus)}")
    if spec.mem:
        options.append(f"--mem={shlex.quote(str(spec.mem))}")
    if spec.time_limit:
        options.append(f"--time={shlex.quote(str(spec.time_limit))}")
    for extra in spec.extra_sbatch:
        if "\n" in extra or "\r" in extra:
            raise CepError(f"the sbatch option {extra!r} contains a line break")
        options.append(extra)
    lines = ["#!/bin/bash", f"# cep job {spec.job_id} ({spec.kind}); written by cep_core.jobs.slurm"]
    lines += [f"#SBATCH {option}" for option in options]
    lines.append("")
    for name, value in spec.env.items():
        if not _ENV_NAME.match(name):
            raise CepError(f"environment variable name {name!r} is not a valid shell name")
        if is_secret(name):
            lines.append(f"# {name}: passed through sbatch's environment, not written here")
        else:
            lines.append(f"export {name}={shlex.quote(str(value))}")
    # exec: the runner becomes the batch step, so scancel --signal=TERM --full reaches the job's own process.
    lines.append("exec " + shlex.join(runner_command(run_dir, list(spec.command))))
    return "\n".join(lines) + "\n"
