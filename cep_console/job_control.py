"""The console's one door to cep_core's job control: launch, stop, resume, and which jobs are still live.

Screens never build a JobManager: they call the app's `JobControl` (`app.jobs`) from a thread worker, since every
call blocks (a stop waits while the job writes its checkpoint). Each call opens its own manager, so a SQLite
connection stays in the thread that uses it and a 20-second stop never holds up the runs feed's poll. cep_core is
imported on first use, not with the console.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

STOP_GRACE_S = 20.0  # how long a stopped job has to write its checkpoint before it is killed


def open_manager(home: Path) -> Any:
    """A cep_core JobManager over HOME's cep.db: the only place the console builds one (RunsFeed polls through
    one it keeps; JobControl opens one per action)."""
    from cep_core.jobs.manager import JobManager

    return JobManager(home=home)


class JobControl:
    """Blocking job actions on one home, for thread workers; each returns cep_core's Job or raises CepError."""

    def __init__(self, home: Path) -> None:
        self.home = home

    def launch(self, config: Path, backend: str = "local", gpus: int = 0, name: str | None = None) -> Any:
        """Start a training run from CONFIG.toml (the launch form, a retrain from traces)."""
        return open_manager(self.home).start_config(
            config, kind="train", backend=backend, name=name, gpus=gpus
        )

    def stop(self, job_id: str) -> Any:
        """SIGTERM, then wait for the checkpoint; the job ends as stopped and can be resumed."""
        return open_manager(self.home).stop(job_id, grace_s=STOP_GRACE_S)

    def resume(self, job_id: str) -> Any:
        """A new attempt of the run from its newest valid checkpoint."""
        return open_manager(self.home).resume(job_id)

    def live_job_ids(self) -> list[str]:
        """Jobs still starting or running (refreshed from what is true, not what cep.db last said)."""
        from cep_core.jobs.registry import ACTIVE_STATES

        return [job.id for job in open_manager(self.home).refresh_all() if job.state in ACTIVE_STATES]
