"""Auto-resume: what to do with a crashed run. Used by the console and by `cep jobs supervise`.

A crashed run is relaunched (it resumes from its checkpoint) after a back-off that doubles with each attempt,
up to `max_attempts`. A run that uses GPUs is relaunched only when the GPUs are healthy; otherwise it waits,
with the health verdict as its reason, and is looked at again on every tick. A fatal Xid or a lost GPU keeps
the host unhealthy for the whole Xid window, so it can never cause a tight relaunch loop; the back-off and the
attempt limit hold as well. Every decision goes to the registry and to the run's progress.jsonl.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from cep_core.jobs.manager import JobManager, record_decision
from cep_core.jobs.registry import Job

HealthCheck = Callable[[Job], tuple[bool, str]]


@dataclass(slots=True)
class ResumePolicy:
    max_attempts: int = 3
    backoff_s: float = 30.0
    backoff_factor: float = 2.0
    max_backoff_s: float = 900.0

    def backoff(self, attempt: int) -> float:
        return min(self.backoff_s * self.backoff_factor ** max(attempt - 1, 0), self.max_backoff_s)


@dataclass(slots=True)
class Decision:
    job_id: str
    action: str  # relaunch | wait | give_up | scheduled
    reason: str
    new_job_id: str | None = None


def gpu_health_check(replay: str | None = None) -> HealthCheck:
    """Health from the GPU module for jobs that use GPUs; CPU-only jobs are always clear to relaunch."""

    def check(job: Job) -> tuple[bool, str]:
        if int(job.spec.get("gpus") or 0) <= 0:
            return True, "CPU job"
        from cep_core.checks import Status
        from cep_core.gpu.preflight import check_gpu

        source = None
        if replay:
            from cep_core.gpu.replay import ReplaySource

            source = ReplaySource(replay)
        checks = check_gpu(source=source)
        failing = [c for c in checks if c.status == Status.FAIL]
        if failing:
            return False, "; ".join(f"{c.name}: {c.detail}" for c in failing)
        return True, "GPUs healthy"

    return check


class Supervisor:
    """One `tick()` refreshes active jobs and decides for every crashed or waiting one."""

    def __init__(
        self,
        manager: JobManager,
        policy: ResumePolicy | None = None,
        health: HealthCheck | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.manager = manager
        self.policy = policy or ResumePolicy()
        self.health = health or gpu_health_check()
        self.clock = clock

    def tick(self) -> list[Decision]:
        self.manager.refresh_all()
        registry = self.manager.registry
        decisions: list[Decision] = []
        for job in registry.list(states=("crashed", "waiting")):
            if job.resumed_by:
                continue
            decision = self._decide(job)
            if decision is not None:
                decisions.append(decision)
        return decisions

    def _decide(self, job: Job) -> Decision | None:
        registry = self.manager.registry
        if job.attempt >= self.policy.max_attempts:
            if job.state == "crashed" and not (job.reason or "").startswith("gave up"):
                reason = f"gave up after {job.attempt} attempts: {job.reason}"
                registry.transition(job.id, "crashed", reason)
                record_decision(job, "give_up", reason)
                return Decision(job.id, "give_up", reason)
            return None
        healthy, why = self.health(job)
        if not healthy:
            reason = f"waiting for a healthy GPU: {why}"
            if job.state != "waiting" or job.reason != reason:
                registry.transition(job.id, "waiting", reason)
                record_decision(job, "wait", reason)
                return Decision(job.id, "wait", reason)
            return None
        now = self.clock()
        due = job.next_attempt_at
        if due is None:
            due = (job.ended or now) + self.policy.backoff(job.attempt)
            registry.transition(job.id, job.state, job.reason or "crashed", next_attempt_at=due)
            if due > now:
                reason = (
                    f"relaunch in {due - now:.0f}s (attempt {job.attempt + 1} of {self.policy.max_attempts})"
                )
                record_decision(job, "scheduled", reason)
                return Decision(job.id, "scheduled", reason)
        if due > now:
            return None
        reason = f"auto-resume after {job.state}: {job.reason} ({why})"
        new = self.manager.resume(job.id, reason=reason)
        return Decision(job.id, "relaunch", reason, new.id)

    def run(
        self,
        interval_s: float = 5.0,
        until: Callable[[], bool] | None = None,
        on_decision: Callable[[Decision], None] | None = None,
    ) -> None:
        """Tick forever (or until `until()` is true): the body of `cep jobs supervise`."""
        while until is None or not until():
            for decision in self.tick():
                if on_decision:
                    on_decision(decision)
            time.sleep(interval_s)
