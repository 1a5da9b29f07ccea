"""The launch form's safety: "launch despite warnings" starts unticked, reads unticked without colour, and
is unticked again whenever the checks it was given for are voided (a field changed) or run again; the
pre-flight says that its gpu checks are of this machine when the GPU screen shows a replay."""

from __future__ import annotations

import pytest
from conftest import HEALTHY, make_options, wait_for
from screen_text import screen_text

from cep_console.app import CepConsole
from cep_console.screens.launch import LaunchScreen

pytestmark = pytest.mark.anyio


async def test_the_override_is_never_pre_ticked_and_never_carries_over(home):
    app = CepConsole(make_options(home, replay=HEALTHY))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2", "n")
        await wait_for(pilot, lambda: isinstance(app.screen, LaunchScreen), what="the form")
        form = app.screen
        override = form.query_one("#override")
        assert override.value is False and "▐ ▌ launch despite warnings" in screen_text(app)
        override.value = True
        await pilot.pause(0.1)
        assert "▐✓▌ launch despite warnings" in screen_text(app)
        await pilot.press("ctrl+k")
        await wait_for(pilot, lambda: bool(form.checks), timeout=90, what="the pre-flight")
        assert override.value is False  # a new pre-flight: a new decision about its warnings
        assert any(c.name.startswith("gpu") for c in form.checks), form.checks
        await pilot.pause(0.3)  # the checks' text is drawn on the next refresh
        text = screen_text(app)
        assert (
            "The gpu checks are of this machine; the GPU screen shows a REPLAY of healthy-8x-h100.json"
            in text
        )
        override.value = True
        form.query_one("#f-lora_r").value = "8"  # a changed field voids the checks and the tick
        await pilot.pause(0.1)
        assert form.checks == [] and override.value is False
        assert form.query_one("#launch").disabled
