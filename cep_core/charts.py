"""Loss curves drawn with plotext, once for both faces: `cep runs compare` prints the chart on the terminal and
the console draws it in a textual-plotext widget. `plt` is either: the `plotext` module or a plotext figure
(textual-plotext's `PlotextPlot.plt`); they share these methods. Nothing is imported here.

Axes, not a sparkline: a step axis, a loss axis with its numbers (so 7.00-7.12 reads as the small range it is),
an optional log scale, one line per run, and a vertical marker where an evaluation of the run finished.
"""

from __future__ import annotations

from typing import Any

from cep_core.runs.summary import LossCurve

# Line colours by series, in order (plotext names; readable on dark and light themes).
SERIES_COLORS = ("cyan", "orange", "green", "magenta")


def draw_loss(plt: Any, series: list[tuple[str, LossCurve]], *, log_y: bool = False, title: str = "") -> bool:
    """Draw each (label, curve) on `plt` (cleared first). False when no series has a loss to draw."""
    plt.clear_figure()
    drawn = [(label, curve) for label, curve in series if curve.steps]
    plt.title(title or "training loss")
    plt.xlabel("step")
    plt.ylabel("loss (log)" if log_y else "loss")
    plt.yscale("log" if log_y and all(min(c.losses) > 0 for _, c in drawn) else "linear")
    if not drawn:
        return False
    for i, (label, curve) in enumerate(drawn):
        plt.plot(curve.steps, curve.losses, label=label, color=SERIES_COLORS[i % len(SERIES_COLORS)])
    first = min(c.steps[0] for _, c in drawn)
    last = max(c.steps[-1] for _, c in drawn)
    plt.xticks(step_ticks(first, last))
    top = max(max(c.losses) for _, c in drawn)
    for i, (_label, curve) in enumerate(drawn):
        for point in curve.evals:
            step = point.step if point.step is not None else curve.last_step
            if step is None:
                continue
            color = SERIES_COLORS[i % len(SERIES_COLORS)]
            plt.vline(step, color)
            plt.text(point.label(), step, top, color=color, alignment="right")
    return True


def step_ticks(first: int, last: int, count: int = 5) -> list[int]:
    """Whole-number ticks for a step axis (plotext would label steps 75.8, 150.5)."""
    if last <= first:
        return [first]
    return sorted({round(first + (last - first) * k / (count - 1)) for k in range(count)})
