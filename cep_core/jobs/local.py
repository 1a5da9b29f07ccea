"""The local backend: a detached process in its own session, found again by pid and start time."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from cep_core.errors import CepError
from cep_core.jobs.backend import LOG_FILE, Handle, LaunchSpec, Status, read_exit, runner_command
from cep_core.store.private import open_private, private_dir

# Start times from psutil are floats rounded by the kernel's clock ticks; a reused pid starts much later.
_START_TOLERANCE_S = 1.0


def job_command(spec: LaunchSpec) -> list[str]:
    """The command as run locally: through torchrun when more than one GPU is asked for."""
    command = list(spec.command)
    if spec.gpus > 1 and command[:2] == [sys.executable, "-m"]:
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={spec.gpus}",
            "-m",
            *command[2:],
        ]
    return runner_command(spec.run_dir, command)


class LocalBackend:
    name = "local"

    def __init__(self) -> None:
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    def start(self, spec: LaunchSpec) -> Handle:
        run_dir = private_dir(spec.run_dir)
        log = os.fdopen(open_private(run_dir / LOG_FILE), "ab")  # handed to the child, closed below
        try:
            proc = subprocess.Popen(
                job_command(spec),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, **spec.env},
                close_fds=True,
            )
        except OSError as exc:
            raise CepError(f"could not start the job: {exc}") from exc
        finally:
            log.close()
        self._children[proc.pid] = proc
        try:
            started = psutil.Process(proc.pid).create_time()
        except psutil.Error:
            started = time.time()
        return Handle(backend=self.name, pid=proc.pid, start_time=started)

    def _process(self, handle: Handle) -> psutil.Process | None:
        """The job's process, or None when it is gone (or its pid now belongs to another process)."""
        if handle.pid is None:
            return None
        child = self._children.get(handle.pid)
        if child is not None and child.poll() is not None:  # reap our own child
            return None
        try:
            proc = psutil.Process(handle.pid)
            if (
                handle.start_time is not None
                and abs(proc.create_time() - handle.start_time) > _START_TOLERANCE_S
            ):
                return None
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
        except psutil.Error:
            return None
        return proc

    def poll(self, handle: Handle, run_dir: Path) -> Status:
        if self._process(handle) is not None:
            return Status(alive=True, state="running")
        ended = read_exit(Path(run_dir))
        if ended is None:
            return Status(alive=False, reason="the job's process is gone and left no exit record (killed)")
        code = ended.get("returncode")
        sig = ended.get("signal")
        reason = f"exited with status {code}" if sig is None else f"killed by signal {_signal_name(sig)}"
        return Status(alive=False, exit_code=code, signal=sig, reason=reason)

    def stop(self, handle: Handle, grace_s: float = 30.0) -> None:
        """SIGTERM to the job (the training loop checkpoints), SIGKILL after `grace_s`."""
        proc = self._process(handle)
        if proc is None:
            return
        try:
            send = self._signaller(proc.pid)
            send(signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            if self._process(handle) is None:
                return
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            send(signal.SIGKILL)

    def _signaller(self, pid: int) -> Callable[[int], None]:
        """How a stop reaches the job: its whole process group (the runner and the job command in it)."""
        pgid = os.getpgid(pid)
        return lambda sig: os.killpg(pgid, sig)


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return str(sig)
