"""GPUs: the host verdict as a banner (with the fix), a card per GPU, and the Xid log with meaning and action."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, VerticalScroll
from textual.widgets import DataTable, Header, Static

from cep_console.formatting import clip, when
from cep_console.screens.base import ModeScreen, mode_footer
from cep_console.widgets.gpu_card import GpuCard

CARD_WIDTH = 50


def source_text(sample_source: str, replay: Any = None) -> str:
    """Where the figures come from, said so that a replay is never taken for this machine's GPUs (the demo's
    healthy 8-GPU host is a recording; the launch form's pre-flight checks this machine)."""
    if replay is not None:
        return f"REPLAY of {replay.name} (a recording, not this machine's GPUs)"
    return "this machine (NVML)" if sample_source == "nvml" else f"source {sample_source}"


def banner_text(report: Any, sample_source: str, replay: Any = None) -> Text:
    """`HOST OK · 8 GPUs · driver …` or the failing reasons with the remediation line."""
    status = str(report.status)
    sample = report.sample
    text = Text()
    label = {"ok": "HOST OK", "warn": "HOST WARNING", "fail": "HOST FAILING"}[status]
    text.append(label, style="bold")
    source = source_text(sample_source, replay)
    if sample.init_error is None:
        text.append(f" · {len(sample.gpus)} GPU(s) · driver {sample.driver_version} · ")
    else:
        text.append(" · ")
    text.append(source, style="bold reverse" if replay is not None else "")
    reasons = report.reasons
    if reasons:
        shown = reasons[:3] + ([f"… and {len(reasons) - 3} more"] if len(reasons) > 3 else [])
        text.append("\n" + "\n".join(shown))
        text.append("\nFix: ", style="bold")
        text.append(report.remediation)
    return text


class GpuScreen(ModeScreen):
    FEED = "gpu"
    BINDINGS = [
        Binding(
            "h",
            "history",
            "History",
            id="gpus.history",
            tooltip="Charts of a GPU's utilisation, memory, temperature and power over the last ten minutes",
        ),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Sampling the GPUs…", id="gpu-banner", classes="banner -pending")
        yield Static("", id="gpu-note")
        with VerticalScroll(id="gpu-body"):
            yield Static("Xid events (last 24 h)", classes="section-title")
            yield DataTable(id="xid-log", cursor_type="row", zebra_stripes=True)
            yield Grid(id="gpu-cards")
        yield mode_footer()

    def on_mount(self) -> None:
        table = self.query_one("#xid-log", DataTable)
        table.add_columns("when", "PCI", "Xid", "what it means · what to do")
        super().on_mount()

    def on_resize(self) -> None:
        self._fit_grid()

    def _fit_grid(self) -> None:
        grid = self.query_one("#gpu-cards", Grid)
        columns = max(1, (self.size.width - 2) // CARD_WIDTH)
        grid.styles.grid_size_columns = columns

    def show_state(self, state: Any) -> None:
        report = state.report
        banner = self.query_one("#gpu-banner", Static)
        options = getattr(self.app, "options", None)
        banner.update(banner_text(report, state.source, options.replay if options is not None else None))
        note = self.query_one("#gpu-note", Static)
        note.update(state.kernel_log_note)
        note.display = bool(state.kernel_log_note)
        for cls in ("-pending", "-ok", "-warn", "-fail"):
            banner.remove_class(cls)
        banner.add_class(f"-{report.status}")
        grid = self.query_one("#gpu-cards", Grid)
        health = {g.index: g for g in report.gpus}
        cards = {c.index: c for c in grid.query(GpuCard)}
        new = [GpuCard(g.index) for g in report.sample.gpus if g.index not in cards]
        if new:
            grid.mount(*new)
            self._fit_grid()
            cards.update({c.index: c for c in new})
        for gpu in report.sample.gpus:
            cards[gpu.index].show(gpu, health.get(gpu.index), state.history.get(gpu.index, {}))
        gone = [c for i, c in cards.items() if report.sample.gpu(i) is None]
        for card in gone:
            card.remove()
        self._show_events(report.events)

    def _show_events(self, events: list[Any]) -> None:
        from cep_core.gpu.xid_catalog import Severity, lookup

        table = self.query_one("#xid-log", DataTable)
        table.clear()
        if not events:
            table.add_row("-", "-", "-", "no Xid events in the window")
            return
        room = max(self.size.width - 34, 30)
        for ev in reversed(events):
            info = lookup(ev.xid)
            style = "bold red" if info.severity == Severity.FATAL else "yellow"
            cell = Text(clip(f"{info.name}: {info.meaning}", room), style=style)
            cell.append("\n" + clip(f"-> {info.action_text}", room), style="")
            table.add_row(
                when(ev.ts, ev.uptime), ev.pci or "-", Text(str(ev.xid or "bus"), style=style), cell, height=2
            )

    def action_history(self) -> None:
        """The history charts (plotext is imported here, on first use, never for the first frame)."""
        from cep_console.screens.gpu_history import GpuHistoryScreen

        state = getattr(self.app, "gpu_state", None)
        indices = sorted(state.series) if state is not None and state.series else [0]
        self.app.push_screen(GpuHistoryScreen(indices[0]))
