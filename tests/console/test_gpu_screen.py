"""The GPUs screen driven by real GPU states: the recorded replays through the same sampler as NVML, and the
real no-driver path of this machine (NVML library not found)."""

from __future__ import annotations

import pynvml
import pytest
from conftest import FALLEN, HEALTHY, NO_DRIVER, make_options, wait_for
from screen_text import screen_text

from cep_console.app import CepConsole
from cep_console.messages import GpuUpdated
from cep_console.widgets.gpu_card import GpuCard
from cep_core.gpu.sources import FileFollower, KmsgReader

pytestmark = pytest.mark.anyio  # Pilot tests are async: anyio's plugin runs them on asyncio


def _nvml_present() -> bool:
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return False
    pynvml.nvmlShutdown()
    return True


async def test_healthy_host_shows_a_green_banner_and_a_card_per_gpu(home):
    app = CepConsole(make_options(home, replay=HEALTHY))
    seen: list[GpuUpdated] = []
    async with app.run_test(
        size=(160, 48), message_hook=lambda m: seen.append(m) if isinstance(m, GpuUpdated) else None
    ) as pilot:
        await wait_for(pilot, lambda: len(seen) >= 3 and len(app.screen.query(GpuCard)) == 8, what="8 cards")
        text = screen_text(app)
        assert "HOST OK · 8 GPU(s) · driver 550.54.15" in text
        # A replay says so, so that the demo's healthy host is never taken for this machine's GPUs.
        assert "REPLAY of healthy-8x-h100.json (a recording, not this machine's GPUs)" in text
        assert app.screen.query_one("#gpu-banner").has_class("-ok")
        assert "GPU 7 NVIDIA H100 80GB HBM3  OK" in text
        assert "python -m cep_core.training" in text  # the processes of the training job
        assert "no Xid events" in text
        # Histories grow with each poll (the sparklines' data), one value per sample.
        state = seen[-1].state
        assert len(state.history[0]["util"]) == len(seen)
        assert app.gpu_state is state


async def test_replayed_xid_79_turns_the_banner_red_and_notifies(home):
    app = CepConsole(make_options(home, replay=FALLEN))
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(
            pilot,
            lambda: app.gpu_state is not None and app.gpu_state.report.status == "fail",
            what="the fallen-off-the-bus snapshot",
        )
        await pilot.pause(0.2)
        text = screen_text(app)
        assert "HOST FAILING" in text
        assert "GPU 3: Xid 79: GPU has fallen off the bus" in text
        assert "Fix: Reboot the host, then check the GPU's power cables" in text
        assert "GPU 3 NVIDIA H100 80GB HBM3  FAIL" in text
        card = app.screen.query_one("#gpu-3", GpuCard)
        assert card.has_class("-fail")
        # The Xid log: meaning and what to do.
        assert "The GPU stopped answering on PCIe" in text
        assert "-> Reboot the host" in text
        titles = [n.title for n in app._notifications]
        assert any("New Xid 79 on PCI 0000:5d:00" in t for t in titles), titles


async def test_no_driver_recording_shows_nvml_missing_with_the_fix(home):
    app = CepConsole(make_options(home, replay=NO_DRIVER))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.gpu_state is not None)
        await pilot.pause(0.1)
        text = screen_text(app)
        assert "HOST FAILING" in text and "NVML library not found" in text
        assert "Fix: Install the NVIDIA driver" in text
        assert not app.screen.query(GpuCard)


async def test_the_real_nvml_path_of_this_machine(home):
    if _nvml_present():
        pytest.skip("this machine has a working NVIDIA driver")
    app = CepConsole(make_options(home))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.gpu_state is not None)
        await pilot.pause(0.1)
        text = screen_text(app)
        assert "NVML library not found" in text and "HOST FAILING · this machine (NVML)" in text
        assert app.screen.query_one("#gpu-banner").has_class("-fail")


async def test_an_unreadable_kernel_log_is_a_note_not_a_crash(home, tmp_path):
    unreadable = tmp_path / "kern.log"
    unreadable.write_text("")
    unreadable.chmod(0)
    readers = [KmsgReader(str(tmp_path / "no-kmsg")), FileFollower(tmp_path / "missing.log")]
    app = CepConsole(make_options(home, kernel_log_readers=readers))
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: app.gpu_state is not None)
        await pilot.pause(0.1)
        text = screen_text(app)
        assert "kernel log unreadable" in text
        assert "no-kmsg" in text
        assert app.is_running
