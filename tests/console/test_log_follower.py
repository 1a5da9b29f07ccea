"""The log view writes through Textual's public Log.write: lines land in order with no blank line between
batches, the width covers the widest kept line, and a reader scrolled up is not pulled to the end."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult

from cep_console.widgets.log_follower import LogFollower

pytestmark = pytest.mark.anyio  # Pilot tests are async: anyio's plugin runs them on asyncio


class _LogApp(App):
    def compose(self) -> ComposeResult:
        yield LogFollower(max_lines=100)


async def test_batches_join_without_blank_lines_and_only_kept_lines_widen_the_view():
    app = _LogApp()
    async with app.run_test(size=(60, 12)) as pilot:
        log = app.query_one(LogFollower)
        log.append(["w" * 300] + [f"a{i}" for i in range(100)])  # the wide line is pruned before it is kept
        log.append(["", "b0", "b1"])
        await pilot.pause()
        assert list(log.lines[-4:]) == ["a99", "", "b0", "b1"]
        assert len(log.lines) == 100 and log.line_count == 100
        assert log.virtual_size.width < 300
        log.append(["x" * 120])
        await pilot.pause()
        assert log.virtual_size.width >= 120


async def test_a_reader_scrolled_up_stays_put_and_one_at_the_end_follows():
    app = _LogApp()
    async with app.run_test(size=(60, 12)) as pilot:
        log = app.query_one(LogFollower)
        log.append([f"line {i}" for i in range(60)])
        await pilot.pause()
        assert log.is_vertical_scroll_end
        log.scroll_to(y=0, animate=False, immediate=True)
        log.append([f"more {i}" for i in range(10)])
        await pilot.pause()
        assert log.scroll_y == 0
        log.scroll_end(animate=False, immediate=True)
        await pilot.pause()
        log.append([f"last {i}" for i in range(10)])
        await pilot.pause()
        assert log.is_vertical_scroll_end
