"""Sampling: the one NVML query function, init-error diagnosis, the real no-driver path and replayed hosts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pynvml
import pytest

from cep_core.errors import InputError
from cep_core.gpu.nvml import NA, DeviceFailure, NvmlSource, classify_init_error, query
from cep_core.gpu.replay import ReplaySource, bundled_recording
from cep_core.gpu.sample import Sampler, sample_once

DATA = Path(__file__).parent / "data" / "gpu"
HEALTHY = DATA / "healthy-8x-h100.json"
FALLEN = DATA / "fallen-off-bus-8x-h100.json"


def _raise(code: int):
    def f(*_a):
        raise pynvml.NVMLError(code)

    return f


# --- the query function -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        pynvml.NVML_ERROR_NOT_SUPPORTED,
        pynvml.NVML_ERROR_NO_PERMISSION,
        pynvml.NVML_ERROR_FUNCTION_NOT_FOUND,
        pynvml.NVML_ERROR_NO_DATA,
    ],
)
def test_query_turns_refusals_into_na(code):
    assert query(_raise(code)) == NA
    assert query(_raise(code), default=[]) == []


@pytest.mark.parametrize(
    "code, kind",
    [
        (pynvml.NVML_ERROR_GPU_IS_LOST, "gpu_lost"),
        (pynvml.NVML_ERROR_RESET_REQUIRED, "reset_required"),
        (pynvml.NVML_ERROR_UNKNOWN, "unknown_error"),
    ],
)
def test_query_raises_device_failures(code, kind):
    with pytest.raises(DeviceFailure) as info:
        query(_raise(code))
    assert info.value.kind == kind


def test_query_passes_values_and_arguments():
    assert query(lambda a, b: a + b, 2, 3) == 5


# --- init errors --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code, kind, words",
    [
        (pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, "library_not_found", "NVML library not found"),
        (pynvml.NVML_ERROR_DRIVER_NOT_LOADED, "driver_not_loaded", "not loaded"),
        (pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH, "version_mismatch", "version mismatch"),
        (pynvml.NVML_ERROR_UNKNOWN, "other", "fallen off the bus"),
    ],
)
def test_each_init_failure_has_its_own_message_and_fix(code, kind, words):
    err = classify_init_error(pynvml.NVMLError(code))
    assert err.kind == kind
    assert words in err.message
    assert err.fix and err.fix not in err.message


def test_the_real_no_driver_path():
    """No mocking: this machine has no libnvidia-ml, so real pynvml fails and the sample says why."""
    if os.path.exists("/dev/nvidiactl"):
        pytest.skip("an NVIDIA driver is present here")
    sample = sample_once(NvmlSource())
    assert sample.gpus == []
    assert sample.init_error is not None
    assert sample.init_error.kind == "library_not_found"
    assert "libnvidia-ml.so.1" in sample.init_error.message
    assert "Install the NVIDIA driver" in sample.init_error.fix


# --- replayed hosts -----------------------------------------------------------------------------------------


def test_healthy_8_gpu_replay_fills_every_field():
    with Sampler(ReplaySource(HEALTHY)) as sampler:
        s = sampler.sample()
    assert s.init_error is None and s.source == "replay"
    assert (s.driver_version, s.cuda_driver_version) == ("550.54.15", 12040)
    assert [g.index for g in s.gpus] == list(range(8))
    g0 = s.gpus[0]
    assert g0.name == "NVIDIA H100 80GB HBM3"
    assert g0.pci_key == "0000:18:00"
    assert (g0.temp_slowdown, g0.pstate, g0.pcie_gen, g0.pcie_width) == (87, 0, 5, 16)
    assert g0.power_w == 598.0 and g0.power_limit_w == 700.0  # mW -> W
    assert g0.fan == NA  # the recording says n/a: NotSupported became "n/a"
    assert g0.retired_pages == NA and g0.retired_pending == NA
    assert (g0.remapped_uncorrected, g0.remap_pending, g0.remap_failure) == (0, False, False)
    assert g0.throttle_reasons == []
    assert s.gpus[5].throttle_reasons == ["gpu_idle"]
    assert g0.mem_free == g0.mem_total - g0.mem_used
    (proc,) = g0.processes
    assert (proc.pid, proc.user) == (41230, "ml")
    assert "cep_core.training" in proc.command
    assert s.gpus[6].processes == []


def test_successive_samples_advance_and_the_last_repeats():
    src = ReplaySource(HEALTHY)
    with Sampler(src) as sampler:
        temps = [sampler.sample().gpus[0].temperature for _ in range(7)]
    assert temps[:5] == [63, 64, 65, 66, 63]
    assert temps[5:] == [63, 63]  # five snapshots: the last one repeats


def test_a_gpu_falling_off_the_bus_mid_session_marks_only_that_gpu():
    with Sampler(ReplaySource(FALLEN)) as sampler:
        samples = [sampler.sample() for _ in range(5)]
    assert all(g.error is None for g in samples[2].gpus)
    after = samples[3]
    lost = after.gpu(3)
    assert lost.error == "gpu_lost"
    assert lost.name == "NVIDIA H100 80GB HBM3" and lost.pci_key == "0000:5d:00"  # remembered identity
    assert lost.temperature == NA and lost.processes == []
    assert [g.error for g in after.gpus if g.index != 3] == [None] * 7
    assert after.gpu(2).temperature != NA


def test_reset_required_and_unknown_error_are_per_device(tmp_path):
    rec = json.loads(HEALTHY.read_text())
    rec["snapshots"] = rec["snapshots"][:1]
    rec["snapshots"][0]["devices"][1]["error"] = "reset_required"
    rec["snapshots"][0]["devices"][6]["error"] = "unknown_error"
    path = tmp_path / "r.json"
    path.write_text(json.dumps(rec))
    s = sample_once(ReplaySource(path))
    assert {g.index: g.error for g in s.gpus if g.error} == {1: "reset_required", 6: "unknown_error"}


def test_missing_fields_are_na_not_errors(tmp_path):
    rec = json.loads(HEALTHY.read_text())
    dev = rec["snapshots"][0]["devices"][0]
    for key in ("temperature", "power_mw", "remapped_rows", "processes", "pcie_gen"):
        dev.pop(key)
    path = tmp_path / "r.json"
    path.write_text(json.dumps(rec))
    g = sample_once(ReplaySource(path)).gpus[0]
    assert (g.temperature, g.power_w, g.remap_pending, g.pcie_gen) == (NA, NA, NA, NA)
    assert g.error is None and g.util_gpu != NA


def test_replayed_init_failure_goes_through_the_same_diagnosis():
    s = sample_once(ReplaySource(DATA / "no-driver.json"))
    assert s.init_error.kind == "library_not_found" and s.gpus == []


def test_start_snapshot_counts_from_the_end():
    s = sample_once(ReplaySource(FALLEN, start=-1))
    assert s.gpu(3).error == "gpu_lost"


def test_the_bundled_healthy_recording_is_the_tests_one():
    path = bundled_recording("healthy-8x-h100")
    assert path.exists()
    assert json.loads(path.read_text()) == json.loads(HEALTHY.read_text())
    assert len(sample_once(ReplaySource(path)).gpus) == 8


@pytest.mark.parametrize(
    "content, words",
    [
        ("{", "not valid JSON"),
        ('{"format": "other/1", "snapshots": []}', "unknown format"),
        ('{"format": "cep-gpu-replay/1", "snapshots": []}', "snapshots"),
        (
            '{"format": "cep-gpu-replay/1", "snapshots": [{"devices": [{"name": "x"}]}]}',
            "snapshots[0].devices[0].index",
        ),
        (
            '{"format": "cep-gpu-replay/1", "snapshots": [{"devices": [{"index": 0, "error": "melted"}]}]}',
            "melted",
        ),
    ],
)
def test_bad_recordings_name_the_file_and_field(tmp_path, content, words):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(InputError) as info:
        ReplaySource(path)
    assert str(path) in str(info.value) and words in str(info.value)


def test_missing_recording_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="not found"):
        ReplaySource(tmp_path / "nope.json")


def test_sampler_describes_real_processes_with_psutil():
    from cep_core.gpu.processes import ProcessDescriber

    user, command = ProcessDescriber().describe(os.getpid())
    assert user is not None and ("pytest" in command or "python" in command)
    assert ProcessDescriber().describe(2**22 + 12345) == (None, None)


def test_driver_that_stops_answering_mid_session_is_an_init_error_not_a_crash():
    src = ReplaySource(HEALTHY)
    with Sampler(src) as sampler:
        assert len(sampler.sample().gpus) == 8

        def gone():
            raise pynvml.NVMLError(pynvml.NVML_ERROR_UNKNOWN)

        src.api.nvmlDeviceGetCount = gone  # what NVML answers after a GPU took the bus down
        s = sampler.sample()
        assert s.gpus == [] and s.init_error.kind == "other"
        assert "fallen off the bus" in s.init_error.message
        del src.api.nvmlDeviceGetCount  # the driver is back (after a reboot): sampling resumes
        assert len(sampler.sample().gpus) == 8
