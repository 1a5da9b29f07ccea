"""Charts with axes instead of one-row sparklines: the selected run's loss chart (step axis, loss numbers, log
scale, the marker of an evaluation), two runs compared on one chart with their key figures, a GPU's history
charts; and the Runs table's text fitting (columns that grow with their values, 80 columns without a
horizontal scrollbar). Real step jobs through the job manager; GPU states from the recorded replay."""

from __future__ import annotations

import pytest
from conftest import HEALTHY, make_options, start_step_run, wait_for, wait_job
from screen_text import screen_text

from cep_console.app import CepConsole
from cep_console.messages import RunsUpdated
from cep_console.runs_feed import RunRow, RunsState
from cep_console.widgets.loss_chart import LossChart

pytestmark = pytest.mark.anyio


def _rows(app):
    return {r.name: r for r in app.runs_state.rows} if app.runs_state else {}


async def test_the_loss_chart_has_axes_a_log_scale_and_the_evaluation_marker(home):
    from cep_core.runs import ProgressWriter

    job = start_step_run(home, "curve", steps=6)
    wait_job(home, job.id)
    # What an evaluation of the run writes into its log when it ends (cep_core.evaluation.job).
    ProgressWriter(f"{job.run_dir}/progress.jsonl").emit(
        "eval", step=None, metrics={"toolcall_f1": 0.625, "structured_f1": 0.8125}
    )
    app = CepConsole(make_options(home, replay=HEALTHY))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        chart = lambda: app.screen.query_one(LossChart)  # noqa: E731
        await wait_for(pilot, lambda: bool(chart().series), what="the chart")
        await pilot.pause(0.3)
        text = screen_text(app)
        # The title says where the loss is; the axes have a step label and numbers (the step job's loss is
        # 1/step: 1.0 at step 1 down to 0.1667 at step 6); the evaluation's marker names its figures.
        assert "loss 0.1667 (min 0.1667) at step 6" in text
        assert "step" in text and "1.00" in text and "0.17" in text
        assert "tool F1 0.62 · struct F1 0.81" in text
        assert "▁▂▃" not in text  # no sparkline
        await pilot.press("y")
        await pilot.pause(0.3)
        assert chart().log_y and "loss (log)" in screen_text(app)
        await pilot.press("y")
        await pilot.pause(0.3)
        assert not chart().log_y and "loss (log)" not in screen_text(app)


async def test_two_runs_compared_on_one_chart_with_their_figures(finished_home):
    from cep_console.screens.run_compare import RunCompareScreen

    app = CepConsole(make_options(finished_home, replay=HEALTHY))
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("2")
        await wait_for(pilot, lambda: len(_rows(app)) == 2, what="two runs")
        await pilot.press("c")
        await wait_for(
            pilot,
            lambda: any("Mark at least two runs" in n.message for n in app._notifications),
            what="needs two",
        )
        await pilot.press("space", "down", "space")
        await pilot.pause(0.2)
        assert screen_text(app).count("* ") >= 2  # both rows marked
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, RunCompareScreen), what="the comparison")
        await wait_for(pilot, lambda: "final loss" in screen_text(app), what="the figures")
        await pilot.pause(0.3)
        text = screen_text(app)
        assert "Comparing 2 runs" in text and "training loss" in text
        # One chart, a legend entry per run; the table has each run's figures (steps-ok ran 6 steps to
        # 0.1667; steps-bad failed with a config error before any step).
        assert "steps-ok" in text and "steps-bad" in text
        figures = next(line for line in text.splitlines() if "final loss" in line)
        assert "0.1667" in figures and "-" in figures
        assert "failed (config)" in text and "completed" in text
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, RunCompareScreen), what="closed")


def _row(**changes) -> RunRow:
    values = dict(
        job_id="j-fit-1",
        name="fit",
        kind="train",
        backend="local",
        state="running",
        step=10,
        total_steps=300,
        loss=None,
        tokens_per_s=None,
        eta_s=None,
        attempt=1,
        run_dir="/nonexistent/run",
        reason="started",
    )
    values.update(changes)
    return RunRow(**values)


@pytest.mark.parametrize("width", [80, 160])
async def test_runs_columns_grow_with_their_values_and_fit_80_columns(home, width):
    """An ETA of `-` then `5m00s`, a loss of `-` then `2.6612`: cut to `5m0` and `2.66` before, because a column
    kept the width of its first values. At 80 columns the table leaves out kind, backend, tok/s and try."""
    app = CepConsole(make_options(home, replay=HEALTHY), feeds=False)
    async with app.run_test(size=(width, 24)) as pilot:
        await pilot.press("2")
        await pilot.pause(0.1)
        app.post_message(RunsUpdated(RunsState(rows=[_row()], changes=[], decisions=[])))
        await pilot.pause(0.2)
        app.post_message(
            RunsUpdated(
                RunsState(
                    rows=[_row(loss=2.66124, eta_s=300.0, tokens_per_s=18607.2)], changes=[], decisions=[]
                )
            )
        )
        await pilot.pause(0.3)
        text = screen_text(app)
        row = next(line for line in text.splitlines() if "j-fit-1" in line)
        assert "2.6612" in row and "5m00s" in row and "10/300" in row
        assert ("18607" in row) is (width >= 100) and ("train" in row) is (width >= 100)
        table = app.screen.query_one("#jobs")
        assert table.virtual_size.width <= table.scrollable_content_region.width  # no horizontal scrolling


async def test_gpu_history_charts_each_metric_in_its_unit_against_its_limit(home):
    from cep_console.screens.gpu_history import GpuHistoryScreen

    app = CepConsole(make_options(home, replay=HEALTHY))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.gpu_state is not None and len(app.gpu_state.series[0]["t"]) >= 3)
        await pilot.press("h")
        await wait_for(pilot, lambda: isinstance(app.screen, GpuHistoryScreen), what="history")
        await pilot.pause(0.5)
        text = screen_text(app)
        assert "GPU 0 NVIDIA H100 80GB HBM3" in text and "source replay" in text
        # The recorded host: 80 GiB, slowdown at 87 C (the recording's), a 700 W limit; each chart titled with
        # its latest value, the limit drawn as a line, seconds on the x axis.
        assert "memory GiB 61 (line: total 80)" in text
        assert "power W" in text and "(line: limit 700)" in text
        assert "temp °C" in text and "(line: slowdown" in text and "util %" in text
        assert text.count("seconds ago") == 4
        await pilot.press("right")
        await pilot.pause(0.3)
        assert "GPU 1 NVIDIA H100" in screen_text(app)
        samples = len(app.gpu_state.series[1]["t"])
        await wait_for(pilot, lambda: len(app.gpu_state.series[1]["t"]) > samples, what="a new sample")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, GpuHistoryScreen), what="closed")


async def test_scrollbars_stay_visible_on_a_256_colour_terminal(home):
    """The thumb must stand out from its track once quantised to 256 colours (tmux's default), or only the
    half-block glyphs at its ends show, as stray `▅▅` at the right edge of the log and the tables."""
    from rich.color import ColorSystem
    from textual.widgets import DataTable

    from cep_console.widgets.log_follower import LogFollower

    def luminance(color) -> float:
        r, g, b = (c / 255 for c in color.rich_color.downgrade(ColorSystem.EIGHT_BIT).get_truecolor())
        lin = [(c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4) for c in (r, g, b)]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    app = CepConsole(make_options(home, replay=HEALTHY), feeds=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await pilot.pause(0.2)
        for widget in (app.screen.query_one(LogFollower), app.screen.query_one(DataTable)):
            thumb, track = (
                luminance(widget.styles.scrollbar_color),
                luminance(widget.styles.scrollbar_background),
            )
            contrast = (max(thumb, track) + 0.05) / (min(thumb, track) + 0.05)
            assert contrast >= 3, (widget, contrast)
            assert widget.styles.scrollbar_size_vertical == 1
        # A log longer than its pane has a scrollbar; its thumb is drawn in whole cells, no half-block glyphs.
        log = app.screen.query_one(LogFollower)
        log.write_lines([f"line {i}" for i in range(200)])
        await pilot.pause(0.2)
        log.scroll_to(y=37, animate=False)  # mid-way: the thumb's ends fall inside cells
        await pilot.pause(0.2)
        assert log.show_vertical_scrollbar
        edge = [line[-1:] for line in screen_text(app).splitlines()]
        assert not set("".join(edge)) & set("▁▂▃▄▅▆▇▉▊▋▌▍▎▏"), edge
