"""One GPU's history (`h` on the GPU screen): utilisation, memory, temperature and power over the last ten
minutes, each a chart with axes in its own unit and the limit it is judged against drawn as a line (memory
total, the slowdown temperature, the power limit). `left`/`right` switch GPUs; it follows the live samples.

Imported when first opened, so plotext never costs the first frame."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.screen import ModalScreen
from textual.widgets import Static
from textual_plotext import PlotextPlot

# chart id, title, series key, limit key (drawn as a dashed line), fixed y range when there is no limit
CHARTS = (
    ("util", "util %", "util", None, (0.0, 100.0)),
    ("mem", "memory GiB", "mem_gib", "mem_total_gib", None),
    ("temp", "temp °C", "temp_c", "temp_slowdown_c", None),
    ("power", "power W", "power_w", "power_limit_w", None),
)
LIMIT_NAMES = {"mem_total_gib": "total", "temp_slowdown_c": "slowdown", "power_limit_w": "limit"}


def draw_metric(
    plt: Any,
    title: str,
    times: list[float],
    values: list[Any],
    limit: float | None,
    fixed: Any,
    limit_name: str = "limit",
) -> None:
    """One metric's chart: x = seconds before the newest sample, y in the metric's unit, the limit as a line."""
    plt.clear_figure()
    points = [(t, v) for t, v in zip(times, values, strict=False) if isinstance(v, int | float)]
    now = times[-1] if times else 0.0
    plt.xlabel("seconds ago")
    if not points:
        plt.title(f"{title}: not reported")
        return
    latest = points[-1][1]
    # Short: plotext leaves out a title wider than its chart.
    plt.title(f"{title} {latest:,.0f}" + (f" (line: {limit_name} {limit:,.0f})" if limit else ""))
    xs = [t - now for t, _ in points]
    plt.plot(xs, [v for _, v in points], color="cyan")
    if limit:
        plt.hline(limit, "red")
        plt.ylim(0, limit * 1.05)
    elif fixed:
        plt.ylim(*fixed)


class GpuHistoryScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,q,h", "dismiss", "Close", id="gpu_history.close"),
        Binding("right,l", "step(1)", "Next GPU", id="gpu_history.next"),
        Binding("left", "step(-1)", "Previous GPU", id="gpu_history.previous"),
    ]

    def __init__(self, index: int = 0) -> None:
        super().__init__()
        self.index = index
        self.state: Any = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("GPU history", id="gpu-history-title", classes="dialog-title")
            with Grid(id="gpu-history-chart"):
                for chart_id, *_ in CHARTS:
                    yield PlotextPlot(id=f"hist-{chart_id}")

    def on_mount(self) -> None:
        self.app.gpu_signal.subscribe(self, self.show_state)
        if self.app.gpu_state is not None:
            self.show_state(self.app.gpu_state)

    def show_state(self, state: Any) -> None:
        self.state = state
        self._draw()

    def action_step(self, delta: int) -> None:
        indices = sorted(self.state.series) if self.state is not None else []
        if indices:
            position = indices.index(self.index) if self.index in indices else 0
            self.index = indices[(position + delta) % len(indices)]
            self._draw()

    def _draw(self) -> None:
        title = self.query_one("#gpu-history-title", Static)
        series = self.state.series.get(self.index) if self.state is not None else None
        if not series:
            title.update(f"GPU {self.index}: no samples yet (esc closes)")
            return
        name = self.state.names.get(self.index, "")
        seconds = series["t"][-1] - series["t"][0] if len(series["t"]) > 1 else 0
        title.update(
            f"GPU {self.index} {name} · last {len(series['t'])} samples ({seconds:.0f} s) · "
            f"source {self.state.source} · left/right other GPU · esc closes"
        )
        for chart_id, label, key, limit_key, fixed in CHARTS:
            plot = self.query_one(f"#hist-{chart_id}", PlotextPlot)
            limit = series.get(limit_key) if limit_key else None
            name = LIMIT_NAMES.get(limit_key or "", "")
            draw_metric(plot.plt, label, series["t"], series[key], limit, fixed, name)
            plot.refresh()
