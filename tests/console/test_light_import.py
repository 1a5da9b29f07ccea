"""The console process never imports torch, transformers, peft or datasets: not at start, not while its
feeds read every kind of state (GPU replay, jobs, traces, evaluations, the launch form's pre-flight), nor
while `--demo` fills its home."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from conftest import FALLEN, ROOT

HEAVY = ("torch", "transformers", "peft", "datasets")


def _run(code: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_the_app_loads_no_heavy_module():
    result = _run(f"""
        import json, sys
        import cep_console.app
        print(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))
    """)
    assert result == {m: False for m in HEAVY}


def test_every_feed_and_the_preflight_leave_heavy_modules_out(tmp_path):
    home = tmp_path / "home"
    result = _run(f"""
        import json, sys
        from pathlib import Path
        from cep_console.gpu_feed import GpuFeed
        from cep_console.runs_feed import RunsFeed
        from cep_console.traces_feed import TracesFeed
        from cep_console.evals_feed import load_evaluations
        from cep_console.launch_form import LaunchRequest, run_checks, write_config
        from cep_console.options import write_demo_config
        home = Path({str(home)!r})
        home.mkdir()
        GpuFeed(Path({str(FALLEN)!r}), home).poll()
        GpuFeed(None, home).poll()
        RunsFeed(home).poll(supervise=True)
        TracesFeed(home / "traces.db", home).overview()
        load_evaluations(home)
        from cep_core.demo_home import seed_demo_home
        seed_demo_home(home, home / "demo-traces.db")
        req = LaunchRequest.from_config(write_demo_config(home))
        checks = run_checks(write_config(req, home), home)
        assert checks and all(c.status in ("ok", "warn", "fail") for c in checks), checks
        print(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))
    """)
    assert result == {m: False for m in HEAVY}
