"""What Slurm prints, read: job states (and what they mean to the registry), exit codes, and the output of
`squeue`, `sacct`, `scontrol show job` and `sbatch --parsable`. Pure functions, tested without a cluster."""

from __future__ import annotations

import re

# Slurm job state -> (still alive, registry state). States not listed are treated as unknown.
SLURM_STATES: dict[str, tuple[bool, str]] = {
    "PENDING": (True, "queued"),
    "CONFIGURING": (True, "queued"),
    "REQUEUED": (True, "queued"),
    "REQUEUE_HOLD": (True, "queued"),
    "REQUEUE_FED": (True, "queued"),
    "RESV_DEL_HOLD": (True, "queued"),
    "RUNNING": (True, "running"),
    "COMPLETING": (True, "running"),
    "SUSPENDED": (True, "running"),
    "STOPPED": (True, "running"),
    "SIGNALING": (True, "running"),
    "STAGE_OUT": (True, "running"),
    "RESIZING": (True, "running"),
    "COMPLETED": (False, "succeeded"),
    "FAILED": (False, "crashed"),
    "CANCELLED": (False, "stopped"),
    "REVOKED": (False, "stopped"),
    "TIMEOUT": (False, "crashed"),
    "NODE_FAIL": (False, "crashed"),
    "PREEMPTED": (False, "crashed"),
    "OUT_OF_MEMORY": (False, "crashed"),
    "BOOT_FAIL": (False, "crashed"),
    "SPECIAL_EXIT": (False, "crashed"),
    "DEADLINE": (False, "failed"),
}
_STATE_WORD = re.compile(r"[A-Z_]+")
_SCONTROL_KEY = re.compile(r"(?:^|(?<=\s))([A-Za-z][A-Za-z0-9_:/.\-]*)=")


def normalize_state(text: object) -> str | None:
    """`CANCELLED by 0` -> CANCELLED, `running` -> RUNNING; None when there is no state word."""
    if not isinstance(text, str):
        return None
    match = _STATE_WORD.match(text.strip().upper())
    return match.group(0) if match else None


def map_state(slurm_state: object) -> tuple[bool, str] | None:
    """(alive, registry state) for a Slurm state, or None when the state is unknown."""
    state = normalize_state(slurm_state)
    return SLURM_STATES.get(state) if state else None


def parse_exit_code(text: object) -> tuple[int | None, int | None]:
    """Slurm's `ExitCode=2:0` / `0:9` -> (exit status, signal); (None, None) when unreadable."""
    if not isinstance(text, str):
        return None, None
    match = re.fullmatch(r"\s*(\d{1,3}):(\d{1,3})\s*", text)
    if not match:
        return None, None
    code, sig = int(match.group(1)), int(match.group(2))
    return code, (sig or None)


def parse_scontrol(text: object) -> dict[str, str]:
    """`scontrol show job` output (one-line `-o` or the multi-line form) as {key: value}.

    Values may contain spaces (paths, names); a value runs until the next `Key=` that follows whitespace.
    """
    if not isinstance(text, str):
        return {}
    out: dict[str, str] = {}
    matches = list(_SCONTROL_KEY.finditer(text))
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        key = match.group(1)
        if key not in out:
            out[key] = text[match.end() : end].strip()
    return out


def parse_squeue(text: object) -> tuple[str, str] | None:
    """The first line of `squeue -h -o %T|%r` as (state, reason); None when no job is listed."""
    if not isinstance(text, str):
        return None
    for line in text.splitlines():
        state, _, reason = line.strip().partition("|")
        state = normalize_state(state)
        if state:
            return state, reason.strip()
    return None


def parse_sacct(text: object) -> tuple[str, str] | None:
    """The allocation line of `sacct -n -P -X -o State,ExitCode` as (state, exit code text)."""
    if not isinstance(text, str):
        return None
    for line in text.splitlines():
        state, _, exit_code = line.strip().partition("|")
        state = normalize_state(state)
        if state:
            return state, exit_code.strip()
    return None


def parse_job_id(text: object) -> str | None:
    """`sbatch --parsable` prints `ID` or `ID;CLUSTER`; anything else is not a job id."""
    if not isinstance(text, str):
        return None
    first = text.strip().splitlines()[0] if text.strip() else ""
    job_id = first.split(";", 1)[0].strip()
    return job_id if re.fullmatch(r"\d+(_\d+)?", job_id) else None


def still_alive(slurm_state: str) -> bool:
    """Queued or running; a state this code does not know counts as alive (other witnesses decide the end)."""
    mapped = map_state(slurm_state)
    return mapped is None or mapped[0]


def is_unknown_job(stderr: str) -> bool:
    text = stderr.lower()
    return "invalid job id" in text or "job has already finished" in text or "does not exist" in text


def clean_reason(reason: str) -> str:
    return "" if reason in ("None", "(null)") else reason
