"""`cep gpu …` as a user runs it: real subprocesses, real exit codes, no NVML mocking."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
DATA = ROOT / "tests" / "data" / "gpu"
NO_DRIVER = not os.path.exists("/dev/nvidiactl")


def cep(*args: str, home: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "120", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "cep_core.cli", "--home", str(home), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        input=stdin,
    )


@pytest.mark.skipif(not NO_DRIVER, reason="an NVIDIA driver is present")
def test_status_without_a_driver_fails_clearly(tmp_path):
    r = cep("gpu", "status", home=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "GPU health: FAIL" in r.stdout
    assert "NVML library not found" in r.stdout and "libnvidia-ml.so.1" in r.stdout
    assert "Fix: Install the NVIDIA driver" in r.stdout
    assert "Traceback" not in r.stdout + r.stderr


@pytest.mark.skipif(not NO_DRIVER, reason="an NVIDIA driver is present")
def test_status_json_and_check_without_a_driver(tmp_path):
    r = cep("gpu", "status", "--json", home=tmp_path)
    assert r.returncode == 2
    d = json.loads(r.stdout)
    assert d["status"] == "fail" and d["sample"]["init_error"]["kind"] == "library_not_found"
    r = cep("gpu", "check", "--need-gb", "20", home=tmp_path)
    assert r.returncode == 2 and "fail gpu.nvml" in r.stdout and "Traceback" not in r.stderr


@pytest.mark.parametrize(
    "name, code, words",
    [
        ("healthy-8x-h100.json", 0, "GPU health: OK"),
        ("hot-8x-h100.json", 1, "temperature 85 C is near its slowdown at 87 C"),
        ("fallen-off-bus-8x-h100.json", 2, "GPU 3: GPU is lost"),
    ],
)
def test_status_exit_codes_on_replayed_hosts(tmp_path, name, code, words):
    r = cep("gpu", "status", "--replay", str(DATA / name), home=tmp_path)
    assert r.returncode == code, r.stdout + r.stderr
    assert words in r.stdout
    assert "H100 80GB HBM3" in r.stdout


def test_status_settings_from_the_cli(tmp_path):
    r = cep(
        "gpu",
        "status",
        "--replay",
        str(DATA / "hot-8x-h100.json"),
        "--temp-margin",
        "1",
        "--no-power-warn",
        "--json",
        home=tmp_path,
    )
    d = json.loads(r.stdout)
    reasons = " ".join(d["reasons"])
    assert "near its slowdown" not in reasons and "held by power" not in reasons
    assert "thermally throttled" in reasons and r.returncode == 1


def test_xid_file_json_lines(tmp_path):
    r = cep("gpu", "xid", "--file", str(DATA / "mixed-kernel.log"), "--json", home=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(x["xid"], x["pci"], x["pid"], x["process"], x["kind"], x["severity"]) for x in rows] == [
        (13, "0000:cb:00", None, None, "xid", "warn"),
        (109, "0000:cb:00", 1797828, "pt_main_thread", "xid", "warn"),
        (43, "0000:00:05", 1045242, "pt_main_thread", "xid", "warn"),
        (None, "0000:b3:00", None, None, "fallen_off_bus", "fatal"),
    ]
    assert rows[3]["action"].startswith("Reboot the host")


def test_xid_file_text_and_stdin(tmp_path):
    r = cep(
        "gpu",
        "xid",
        "--file",
        "-",
        home=tmp_path,
        stdin="[ 5107.644336] NVRM: Xid (PCI:0000:03:00): 79, GPU has fallen off the bus.\n",
    )
    assert r.returncode == 0
    assert "Xid 79 on 0000:03:00" in r.stdout and "fatal" in r.stdout and "PCIe" in r.stdout


def test_xid_missing_file_names_it(tmp_path):
    r = cep("gpu", "xid", "--file", str(tmp_path / "nope.log"), home=tmp_path)
    assert r.returncode == 2
    assert "nope.log: kernel log not found" in r.stderr and "Traceback" not in r.stderr


def test_xid_from_a_replay(tmp_path):
    r = cep("gpu", "xid", "--replay", str(DATA / "fallen-off-bus-8x-h100.json"), "--json", home=tmp_path)
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(x["xid"], x["kind"]) for x in rows] == [(79, "xid"), (None, "fallen_off_bus")]


def test_xid_live_sources_report_what_they_read(tmp_path):
    r = cep("gpu", "xid", home=tmp_path)
    assert "Traceback" not in r.stderr
    if r.returncode == 0:
        assert "reading " in r.stderr
    else:
        assert r.returncode == 2 and "no Xid source is readable; tried:" in r.stderr


def test_check_with_replay(tmp_path):
    r = cep(
        "gpu",
        "check",
        "--replay",
        str(DATA / "healthy-8x-h100.json"),
        "--need-gb",
        "20",
        "--devices",
        "4,5",
        "--json",
        home=tmp_path,
    )
    assert r.returncode == 0
    d = json.loads(r.stdout)
    assert d["status"] == "ok" and [c["name"] for c in d["checks"]][-1] == "gpu.5.memory"
    r = cep(
        "gpu",
        "check",
        "--replay",
        str(DATA / "healthy-8x-h100.json"),
        "--need-gb",
        "40",
        "--gpus",
        "1",
        home=tmp_path,
    )
    assert r.returncode == 2 and "pid 41230" in r.stdout  # GPU 0 is busy
    r = cep("gpu", "check", "--replay", str(DATA / "healthy-8x-h100.json"), "--devices", "a,b", home=tmp_path)
    assert r.returncode == 2 and "--devices takes comma-separated GPU indices" in r.stderr


def test_gpus_is_a_count_in_every_command(tmp_path):
    """`--gpus N` means how many GPUs (0..N-1) wherever it appears; a list of indices is --devices."""
    replay = str(DATA / "healthy-8x-h100.json")
    r = cep("gpu", "check", "--replay", replay, "--gpus", "3", "--json", home=tmp_path)
    names = [c["name"] for c in json.loads(r.stdout)["checks"]]
    assert [n for n in names if n.endswith(".health")] == ["gpu.0.health", "gpu.1.health", "gpu.2.health"]
    for argv in (
        ("gpu", "check", "--replay", replay, "--gpus", "0,1"),
        ("jobs", "start", "x.toml", "--gpus", "0,1"),
        ("traces", "retrain", "a/b", "--gpus", "0,1"),
    ):
        r = cep(*argv, home=tmp_path)
        assert r.returncode == 2
        assert "--gpus takes a number of GPUs, got '0,1' (it is a count; to pick GPUs by index:" in r.stderr


def test_watch_plays_the_fall_off_the_bus(tmp_path):
    r = cep(
        "gpu",
        "watch",
        "--replay",
        str(DATA / "fallen-off-bus-8x-h100.json"),
        "--interval",
        "0.05",
        "--count",
        "5",
        home=tmp_path,
    )
    assert r.returncode == 2, r.stdout + r.stderr
    blocks = r.stdout.split("cep gpu watch")
    assert len(blocks) == 6
    assert "GPU health: OK" in blocks[1] and "GPU health: FAIL" in blocks[5]
    assert "GPU 3: GPU is lost" in blocks[5]


def test_replay_errors_are_clean(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "cep-gpu-replay/1", "snapshots": [{"devices": [{"name": 1}]}]}')
    r = cep("gpu", "status", "--replay", str(bad), home=tmp_path)
    assert r.returncode == 2
    assert (
        "bad.json" in r.stderr and "snapshots[0].devices[0].index" in r.stderr and "Traceback" not in r.stderr
    )


def test_cli_import_stays_light():
    code = (
        "import sys, cep_core.cli; cep_core.cli.build_parser(); "
        "import cep_core.cli.gpu, cep_core.gpu.health, cep_core.gpu.sources, cep_core.gpu.watch; "
        "bad = [m for m in ('torch', 'transformers', 'peft', 'datasets') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


@pytest.mark.skipif(not NO_DRIVER, reason="an NVIDIA driver is present")
def test_watch_without_a_driver_shows_the_failure_and_the_xid_sources(tmp_path):
    r = cep("gpu", "watch", "--interval", "0.05", "--count", "2", home=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stdout.count("GPU health: FAIL") == 2 and "NVML library not found" in r.stdout
    # either it follows a kernel-log source, or it says why none could be read
    assert "following: " in r.stdout or "Xid watching off: no Xid source is readable" in r.stdout
    assert "NVML Xid events" in r.stdout
