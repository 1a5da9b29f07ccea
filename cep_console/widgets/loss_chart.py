"""A loss chart with axes (textual-plotext): step on x, loss on y (linear or log), a line per run and a marker
where an evaluation finished. The drawing is cep_core.charts.draw_loss, shared with `cep runs compare`.

Imported only by the screens that show it (Runs, the runs comparison), never before the first frame."""

from __future__ import annotations

from typing import Any

from textual_plotext import PlotextPlot

from cep_core.charts import draw_loss


class LossChart(PlotextPlot):
    """`show(series)` with [(label, cep_core.runs.summary.LossCurve)]; `log_y` switches the loss axis."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.series: list[tuple[str, Any]] = []
        self.log_y = False
        self.empty_title = "training loss: no steps yet"

    def show(self, series: list[tuple[str, Any]], title: str = "") -> None:
        self.series = series
        self._title = title
        self._draw()

    def toggle_log(self) -> bool:
        self.log_y = not self.log_y
        self._draw()
        return self.log_y

    def _draw(self) -> None:
        title = getattr(self, "_title", "")
        if not draw_loss(self.plt, self.series, log_y=self.log_y, title=title):
            self.plt.title(self.empty_title)
        self.refresh()
