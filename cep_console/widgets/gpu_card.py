"""A card per GPU: name and verdict, bars for utilisation, memory, temperature and power, each with a
sparkline of the last samples on a fixed 0-100% scale, and its processes (or why it failed)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

from cep_console.formatting import bar, gib, level, num, spark

BAR_WIDTH = 10
SPARK_WIDTH = 20
LEVEL_STYLE = {"ok": "green", "warn": "yellow", "fail": "red", "na": "grey50"}
BADGE = {"ok": ("OK", "green"), "warn": ("WARN", "yellow"), "fail": ("FAIL", "bold red")}
# metric, label, warn and fail fractions for the bar colour
ROWS = (
    ("util", "util", 1.01, 1.01),
    ("mem", "mem ", 0.90, 0.97),
    ("temp", "temp", 0.85, 0.95),
    ("power", "pwr ", 0.95, 1.01),
)


def card_text(gpu: Any, health: Any, history: dict[str, list[float]]) -> Text:
    from cep_console.gpu_feed import metric_values

    status = str(health.status) if health is not None else "ok"
    text = Text()
    text.append(f"GPU {gpu.index} ", style="bold")
    text.append(str(gpu.name if gpu.name != "n/a" else "unknown GPU"))
    badge, style = BADGE[status]
    text.append(f"  {badge}", style=style)
    values = metric_values(gpu) if not gpu.error else {}
    figures = {
        "util": f"{num(gpu.util_gpu)}%",
        "mem": f"{gib(gpu.mem_used)}/{gib(gpu.mem_total)}",
        "temp": f"{num(gpu.temperature)} C",
        "power": f"{num(gpu.power_w)}/{num(gpu.power_limit_w)}W",
    }
    for metric, label, warn, fail in ROWS:
        value = values.get(metric)
        frac = value / 100 if value is not None else None
        text.append(f"\n{label} ")
        text.append(bar(frac, BAR_WIDTH), style=LEVEL_STYLE[level(frac, warn, fail)])
        shown = ("lost" if gpu.error == "gpu_lost" else "n/a") if gpu.error else figures[metric]
        text.append(f" {shown:>9} ")
        text.append(spark(history.get(metric, []), SPARK_WIDTH), style="cyan")
    text.append("\n")
    if health is not None and health.findings:
        text.append(health.findings[0].reason, style="bold red" if status == "fail" else "yellow")
    elif gpu.processes:
        first = gpu.processes[0]
        cmd = " ".join((first.command or "?").split()[:3])
        more = f" +{len(gpu.processes) - 1}" if len(gpu.processes) > 1 else ""
        text.append(f"pid {first.pid} {first.user or '?'} {gib(first.used_memory)} {cmd}{more}", style="dim")
    else:
        text.append("no processes", style="dim")
    return text


class GpuCard(Static):
    def __init__(self, index: int) -> None:
        super().__init__(id=f"gpu-{index}", classes="gpu-card")
        self.index = index

    def show(self, gpu: Any, health: Any, history: dict[str, list[float]]) -> None:
        status = str(health.status) if health is not None else "ok"
        self.set_class(status == "fail", "-fail")
        self.set_class(status == "warn", "-warn")
        self.update(card_text(gpu, health, history))
