"""Health rules, the Xid catalog and the pre-flight checks, on replayed hosts and real kernel lines."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from cep_core.checks import Status, worst
from cep_core.gpu.health import HealthSettings, evaluate, host_health
from cep_core.gpu.kernel_log import parse_kernel_log
from cep_core.gpu.preflight import check_gpu
from cep_core.gpu.replay import ReplaySource
from cep_core.gpu.sample import sample_once
from cep_core.gpu.xid_catalog import FATAL_XIDS, Action, Severity, lookup

DATA = Path(__file__).parent / "data" / "gpu"
HEALTHY, HOT, FALLEN = (DATA / f"{n}-8x-h100.json" for n in ("healthy", "hot", "fallen-off-bus"))
NOW = 1_800_000_000.0


def healthy_sample():
    return sample_once(ReplaySource(HEALTHY))


def variant(tmp_path, **changes_by_gpu):
    """The healthy recording with some device fields changed: variant(tmp_path, g2={"temperature": 90})."""
    rec = json.loads(HEALTHY.read_text())
    rec["snapshots"] = rec["snapshots"][:1]
    for key, fields in changes_by_gpu.items():
        rec["snapshots"][0]["devices"][int(key[1:])].update(fields)
    path = tmp_path / "variant.json"
    path.write_text(json.dumps(rec))
    return sample_once(ReplaySource(path))


def xid(line: str):
    return parse_kernel_log(line, now=NOW)


# --- the catalog --------------------------------------------------------------------------------------------


def test_dcgm_fatal_list_is_fatal_and_others_are_not():
    assert {48, 74, 79, 95, 119, 120, 140} == FATAL_XIDS
    for n in FATAL_XIDS:
        assert lookup(n).severity == Severity.FATAL
    for n in (13, 31, 43, 63, 94):
        assert lookup(n).severity == Severity.WARN
    assert lookup(45).severity == Severity.INFO
    assert lookup(79).action == Action.CHECK_POWER_PCIE
    assert lookup(None).severity == Severity.FATAL  # fallen off the bus without a number
    unknown = lookup(9999)
    assert unknown.severity == Severity.WARN and "9999" in unknown.name
    assert all(lookup(n).action_text for n in (8, 13, 48, 64, 79))


# --- per-GPU rules ------------------------------------------------------------------------------------------


def test_healthy_host_is_ok_with_nothing_to_do():
    report = evaluate(healthy_sample(), [], now=NOW)
    assert report.status == Status.OK and report.exit_code == 0
    assert report.reasons == [] and report.remediation == "Nothing to do."
    assert [g.status for g in report.gpus] == [Status.OK] * 8


def test_hot_host_warns_on_temperature_and_throttling():
    report = evaluate(sample_once(ReplaySource(HOT)), [], now=NOW)
    assert report.status == Status.WARN and report.exit_code == 1
    assert {g.index for g in report.gpus if g.status == Status.WARN} == {1, 2}
    g2 = " ".join(f.reason for f in report.gpu(2).findings)
    assert "85 C" in g2 and "slowdown at 87 C" in g2 and "thermally throttled" in g2
    assert "power" in report.gpu(1).findings[0].reason


def test_temperature_margin_and_power_warning_are_settings():
    sample = sample_once(ReplaySource(HOT))
    quiet = HealthSettings(temp_margin_c=1.0, warn_on_power_throttle=False, warn_on_thermal_throttle=False)
    assert evaluate(sample, [], quiet, now=NOW).status == Status.OK
    strict = HealthSettings(temp_margin_c=25.0)  # 63-66 C on busy GPUs is now within 25 C of 87 C
    assert evaluate(healthy_sample(), [], strict, now=NOW).status == Status.WARN


def test_temperature_without_a_threshold_uses_the_fallback(tmp_path):
    sample = variant(tmp_path, g0={"temp_slowdown": "n/a", "temperature": 88})
    report = evaluate(sample, [], now=NOW)
    assert report.gpu(0).status == Status.WARN and "85 C" in report.gpu(0).findings[0].reason


@pytest.mark.parametrize(
    "fields, words",
    [
        ({"remapped_rows": [0, 1, 1, 0]}, "remapped rows pending"),
        ({"remapped_rows": [0, 3, 0, 1]}, "row remapping failed"),
        ({"retired_pending": 1, "retired_sbe": [1], "retired_dbe": []}, "retired pages pending"),
        ({"error": "reset_required"}, "needs a reset"),
        ({"error": "gpu_lost"}, "GPU is lost"),
        ({"error": "unknown_error"}, "unknown error"),
    ],
)
def test_conditions_that_need_a_reset_or_reboot_fail(tmp_path, fields, words):
    report = evaluate(variant(tmp_path, g4=fields), [], now=NOW)
    assert report.status == Status.FAIL and report.exit_code == 2
    assert report.gpu(4).status == Status.FAIL
    assert any(words in r for r in report.reasons), report.reasons
    assert report.remediation != "Nothing to do."
    assert [g.status for g in report.gpus if g.index != 4] == [Status.OK] * 7


def test_uncorrected_ecc_and_degraded_pcie_warn(tmp_path):
    report = evaluate(variant(tmp_path, g0={"ecc_uncorrected": 2}, g1={"pcie_width": 8}), [], now=NOW)
    assert report.gpu(0).status == Status.WARN and "2 uncorrected ECC" in report.gpu(0).findings[0].reason
    assert report.gpu(1).status == Status.WARN and "x8 of x16" in report.gpu(1).findings[0].reason


# --- Xids ---------------------------------------------------------------------------------------------------


def test_fatal_xid_on_a_gpu_fails_that_gpu():
    events = xid(
        "[ 5107.644336] NVRM: Xid (PCI:0000:2a:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen "
        "off the bus."
    )
    report = evaluate(healthy_sample(), events, now=NOW)
    assert report.status == Status.FAIL
    assert report.gpu(1).status == Status.FAIL  # 0000:2a:00 is GPU 1
    assert "Xid 79" in report.gpu(1).findings[0].reason
    assert "power" in report.remediation and "PCIe" in report.remediation


@pytest.mark.parametrize("n", [13, 31, 43, 63, 94])
def test_other_xids_warn(n):
    events = xid(f"NVRM: Xid (PCI:0000:18:00): {n}, pid=41230, name=python, something")
    report = evaluate(healthy_sample(), events, now=NOW)
    assert report.status == Status.WARN and report.gpu(0).status == Status.WARN
    assert "pid 41230, python" in report.gpu(0).findings[0].reason


def test_xids_outside_the_window_do_not_count():
    events = xid(
        "[Fri Aug 30 11:43:14 2024] NVRM: Xid (PCI:0000:18:00): 48, An uncorrectable double bit error"
    )
    assert evaluate(healthy_sample(), events, now=NOW).status == Status.OK  # 2024 is long gone by NOW
    wide = HealthSettings(xid_window_s=10 * 365 * 86400)
    assert evaluate(healthy_sample(), events, wide, now=NOW).status == Status.FAIL


def test_xid_on_an_unknown_bus_is_a_host_finding_and_bursts_count_once():
    line = "NVRM: Xid (PCI:0000:ee:00): 13, pid='<unknown>', name=<unknown>, Graphics Exception"
    report = evaluate(healthy_sample(), xid("\n".join([line] * 50)), now=NOW)
    assert report.status == Status.WARN
    assert len(report.host_findings) == 1 and "0000:ee:00" in report.host_findings[0].reason


def test_fallen_off_bus_three_line_form_fails_the_host():
    text = (
        "[ 1843.308145] NVRM: The NVIDIA GPU 0000:b3:00.0\n"
        "               NVRM: (PCI ID: 10de:26b5) installed in this system has\n"
        "               NVRM: fallen off the bus and is not responding to commands.\n"
    )
    report = evaluate(healthy_sample(), xid(text), now=NOW)
    assert report.status == Status.FAIL and "fell off the bus" in report.reasons[0]


# --- host level ---------------------------------------------------------------------------------------------


def test_init_failure_fails_the_host_with_its_fix():
    report = evaluate(sample_once(ReplaySource(DATA / "no-driver.json")), [], now=NOW)
    assert report.status == Status.FAIL and report.gpus == []
    assert "NVML library not found" in report.reasons[0]
    assert "Install the NVIDIA driver" in report.remediation


def test_no_gpu_found_fails():
    sample = replace(healthy_sample(), gpus=[])
    report = evaluate(sample, [], now=NOW)
    assert report.status == Status.FAIL and "found no GPU" in report.reasons[0]


def test_host_health_on_the_fallen_replay_sees_lost_gpu_and_recorded_xid():
    report = host_health(ReplaySource(FALLEN, start=-1))
    assert report.status == Status.FAIL
    assert any("GPU 3: GPU is lost" in r for r in report.reasons)
    assert any("Xid 79" in r for r in report.reasons)
    d = report.to_dict()
    assert d["status"] == "fail" and len(d["gpus"]) == 8 and d["events"][0]["xid"] == 79


# --- pre-flight ---------------------------------------------------------------------------------------------


def test_check_gpu_passes_with_enough_memory():
    checks = check_gpu(required_memory_bytes=20 * 2**30, gpu_indices=[4, 5], source=ReplaySource(HEALTHY))
    names = [c.name for c in checks]
    assert names == ["gpu.nvml", "gpu.4.health", "gpu.4.memory", "gpu.5.health", "gpu.5.memory"]
    assert worst(checks) == Status.OK


def test_check_gpu_fails_on_busy_memory_and_names_the_process():
    checks = check_gpu(required_memory_bytes=40 * 2**30, gpu_indices=[0], source=ReplaySource(HEALTHY))
    mem = next(c for c in checks if c.name == "gpu.0.memory")
    assert mem.status == Status.FAIL
    assert "pid 41230" in mem.detail and "ml" in mem.detail and "40.0 GiB needed" in mem.detail


def test_check_gpu_fails_on_missing_gpu_and_lost_gpu():
    checks = check_gpu(gpu_indices=[3, 8], source=ReplaySource(FALLEN, start=-1))
    by_name = {c.name: c for c in checks}
    assert by_name["gpu.devices"].status == Status.FAIL and "[8]" in by_name["gpu.devices"].detail
    assert by_name["gpu.3.health"].status == Status.FAIL
    assert "Fix:" in by_name["gpu.3.health"].detail


def test_check_gpu_without_a_driver_is_one_clear_failure():
    (check,) = check_gpu(required_memory_bytes=1, source=ReplaySource(DATA / "no-driver.json"))
    assert (check.name, check.status) == ("gpu.nvml", Status.FAIL)
    assert "NVML library not found" in check.detail and "Fix:" in check.detail
