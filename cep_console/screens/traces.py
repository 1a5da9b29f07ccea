"""Traces: statistics per agent with progress to the retraining threshold, the traces table paged by keyset,
filters, `/` full-text search, a detail view, `x` export and `t` retrain of a ready agent."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Header, Input, Static

from cep_console.formatting import as_json, bar, num, pct, when
from cep_console.messages import ActionDone
from cep_console.screens.base import ModeScreen, mode_footer
from cep_console.traces_feed import TraceQuery, TracesFeed
from cep_core.tracer.filters import SYNTAX as FILTER_SYNTAX


def agent_cells(group: Any, progress: Any) -> list[Any]:
    done = progress.new_examples if progress else 0
    threshold = progress.threshold if progress else 0
    frac = done / threshold if threshold else None
    ready = progress is not None and progress.ready
    meter = Text(bar(frac, 6), style="green" if ready else "cyan")
    meter.append(f" {done}/{threshold}" + (" READY" if ready else ""), style="bold green" if ready else "")
    return [
        group.agent,
        group.model,
        str(group.calls),
        pct(group.success_rate),
        num(group.total_cost, "${:.2f}", "-"),
        num(group.mean_time, "{:.2f}s", "-"),
        meter,
    ]


class TraceDetail(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,enter", "dismiss", "Close", id="trace.close")]

    def __init__(self, trace: Any) -> None:
        super().__init__()
        self.trace = trace

    def compose(self) -> ComposeResult:
        t = self.trace
        with Vertical(classes="dialog"):
            yield Static(
                f"Trace {t.id} · {t.agent} · {t.model} · {when(t.ts)} (esc closes)", classes="dialog-title"
            )
            with VerticalScroll(classes="detail-body"):
                yield Static(self._body(t))

    @staticmethod
    def _body(t: Any) -> Text:
        text = Text()

        def section(title: str, body: str) -> None:
            text.append(f"{title}\n", style="bold underline")
            text.append((body or "(empty)") + "\n\n")

        ok = "yes" if t.success else "no"
        text.append(
            f"success {ok} · cost {num(t.cost, '${:.4f}', '-')} · time {num(t.execution_time, '{:.2f}s', '-')}"
            f" · redactions {t.redactions}\n\n"
        )
        section("System prompt", t.system_prompt)
        section("Query", t.user_query)
        section("Response", t.response)
        calls = []
        for m in t.messages:
            for call in m.get("tool_calls") or []:
                fn = call.get("function", call)
                calls.append(f"{fn.get('name')} {as_json(fn.get('arguments'))}")
        section("Tool calls", "\n".join(calls) or "none")
        if t.error:
            section("Error", t.error)
        return text


class TracesScreen(ModeScreen):
    FEED = "traces"
    BINDINGS = [
        Binding(
            "slash",
            "search",
            "Search",
            id="traces.search",
            tooltip="Full-text search of queries, responses and errors",
        ),
        Binding(
            "f",
            "filter",
            "Filter",
            id="traces.filter",
            tooltip=f"Filter: {FILTER_SYNTAX}",
        ),
        Binding(
            "x",
            "export",
            "Export",
            id="traces.export",
            tooltip="Export the selected agent's successful traces (Hermes JSONL)",
        ),
        Binding(
            "t",
            "retrain",
            "Retrain",
            id="traces.retrain",
            tooltip="Retrain the selected agent when it is ready",
        ),
        # Paging keys are named in the status line when they apply (the footer must fit 80 columns).
        Binding(
            "right_square_bracket",
            "next_page",
            "Older",
            id="traces.next_page",
            show=False,
            tooltip="Older page of traces",
        ),
        Binding(
            "left_square_bracket",
            "prev_page",
            "Newer",
            id="traces.prev_page",
            show=False,
            tooltip="Newer page of traces",
        ),
        Binding(
            "escape", "clear", "Clear", id="traces.clear", show=False, tooltip="Clear the search and filters"
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.query_state = TraceQuery()
        self.next_before: str | None = None
        self.input_mode = ""  # "search" | "filter" while the input is open
        self.overview: Any = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Reading the trace store…", id="traces-message")
        yield DataTable(id="agents", cursor_type="row")
        yield Static("", id="trace-bar")
        yield Input(id="trace-input")
        yield DataTable(id="traces", cursor_type="row", zebra_stripes=True)
        yield mode_footer()

    def on_mount(self) -> None:
        self.query_one("#agents", DataTable).add_columns(
            "agent", "model", "calls", "ok", "cost", "time", "to retrain"
        )
        self.query_one("#traces", DataTable).add_columns("when", "agent", "model", "ok", "query", "response")
        self.feed = TracesFeed(
            self.app.options.traces_db, self.app.options.home, self.app.options.retrain_threshold
        )
        super().on_mount()
        self.load_page()

    # ------------------------------------------------------------------ stats
    def show_state(self, overview: Any) -> None:
        self.overview = overview
        message = self.query_one("#traces-message", Static)
        message.update(
            Text(overview.message, style="yellow")
            if not overview.available
            else f"{overview.total} traces in {self.app.options.traces_db} · retrain threshold "
            f"{overview.threshold} new successful examples"
        )
        table = self.query_one("#agents", DataTable)
        cursor = table.cursor_row
        table.clear()
        progress = {str(a.key): a for a in overview.agents}

        def ready_first(g: Any) -> tuple[bool, str, str]:
            state = progress.get(g.agent)
            return (not (state is not None and state.ready), g.agent, g.model)

        for g in sorted(overview.groups, key=ready_first):  # `t` acts on the first row without moving
            table.add_row(*agent_cells(g, progress.get(g.agent)), key=f"{g.agent}|{g.model}")
        if table.row_count:
            table.move_cursor(row=min(cursor, table.row_count - 1))
        if overview.available and self.query_one("#traces", DataTable).row_count == 0:
            self.load_page()

    def selected_agent(self) -> str | None:
        table = self.query_one("#agents", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return str(key).split("|", 1)[0] if key else None

    # ------------------------------------------------------------------ the table
    @work(thread=True, exclusive=True, group="trace-page")
    def load_page(self) -> None:
        from cep_core.errors import CepError

        q = self.query_state
        try:
            page = self.feed.page(q)
        except CepError as exc:
            self.post_message(ActionDone("page", False, str(exc)))
            return
        except Exception as exc:  # noqa: BLE001 — a store being rewritten; shown, not raised
            self.post_message(ActionDone("page", False, f"could not read the traces: {exc}"))
            return
        self.app.call_from_thread(self._show_page, page, q)

    def _show_page(self, page: Any, q: TraceQuery) -> None:
        self.next_before = page.next_before_id
        table = self.query_one("#traces", DataTable)
        table.clear()
        for t in page.rows:
            ok = Text("yes", style="green") if t.success else Text("no", style="red")
            table.add_row(
                when(t.ts),
                t.agent,
                t.model,
                ok,
                t.query_preview.replace("\n", " ")[:80],
                (t.error or t.response_preview).replace("\n", " ")[:80],
                key=t.id,
            )
        more = " · ] older" if page.has_next else ""
        newer = " · [ newer" if q.page_number > 1 else ""
        self.query_one("#trace-bar", Static).update(
            f"{q.describe()} · page {q.page_number} · {len(page.rows)} shown{more}{newer} · / search · f filter"
        )

    def action_next_page(self) -> None:
        if self.next_before:
            self.query_state.before_ids.append(self.next_before)
            self.load_page()

    def action_prev_page(self) -> None:
        if len(self.query_state.before_ids) > 1:
            self.query_state.before_ids.pop()
            self.load_page()

    @on(DataTable.RowSelected, "#traces")
    def _open(self, event: DataTable.RowSelected) -> None:
        self._load_detail(str(event.row_key.value))

    @work(thread=True, group="trace-detail")
    def _load_detail(self, trace_id: str) -> None:
        trace = self.feed.get(trace_id)
        if trace is not None:
            self.app.call_from_thread(self.app.push_screen, TraceDetail(trace))

    # ------------------------------------------------------------------ search and filters
    def _open_input(self, mode: str, placeholder: str, value: str) -> None:
        self.input_mode = mode
        box = self.query_one("#trace-input", Input)
        box.placeholder = placeholder
        box.value = value
        box.add_class("-visible")
        box.focus()

    def action_search(self) -> None:
        self._open_input(
            "search",
            "full-text search (every word must appear); enter runs, esc cancels",
            self.query_state.search,
        )

    def action_filter(self) -> None:
        self._open_input("filter", f"{FILTER_SYNTAX}; empty clears", "")

    @on(Input.Submitted, "#trace-input")
    def _submitted(self, event: Input.Submitted) -> None:
        from cep_core.errors import InputError
        from cep_core.tracer.filters import parse_terms

        text = event.value.strip()
        if self.input_mode == "search":
            self.query_state.search = text
        else:
            try:
                terms = parse_terms(text)
            except InputError as exc:
                self.notify(str(exc), severity="error")
                return
            self.query_state = TraceQuery(terms, self.query_state.search)
        self.query_state.before_ids = [None]
        self._close_input()
        self.load_page()

    def _close_input(self) -> None:
        box = self.query_one("#trace-input", Input)
        box.remove_class("-visible")
        self.input_mode = ""
        self.query_one("#traces", DataTable).focus()

    def action_clear(self) -> None:
        if self.input_mode:
            self._close_input()
            return
        self.query_state = TraceQuery()
        self.load_page()

    # ------------------------------------------------------------------ export and retrain
    def action_export(self) -> None:
        if self.overview is None or not self.overview.available:
            self.notify("No trace store to export from.", severity="warning")
            return
        self._export(self.selected_agent())

    @work(thread=True, exclusive=True, group="trace-export")
    def _export(self, agent: str | None) -> None:
        from cep_core.errors import CepError

        try:
            result = self.feed.export(agent)
        except CepError as exc:
            self.post_message(ActionDone("export", False, str(exc)))
            return
        self.post_message(
            ActionDone(
                "export",
                True,
                f"exported {result.train} train + {result.holdout} holdout "
                f"examples of {agent or 'all agents'} to {result.train_path}",
            )
        )
        self.app.wake("traces")

    def action_retrain(self) -> None:
        agent = self.selected_agent()
        if agent is None:
            self.notify("No agent selected.", severity="warning")
            return
        ready = {str(a.key): a for a in self.overview.agents} if self.overview else {}
        state = ready.get(agent)
        if state is None or not state.ready:
            have = state.new_examples if state else 0
            need = state.threshold if state else "?"
            self.notify(
                f"{agent} is not ready: {have} of {need} new successful examples.", severity="warning"
            )
            return
        self._retrain(agent)

    @work(thread=True, exclusive=True, group="trace-retrain")
    def _retrain(self, agent: str) -> None:
        from cep_core.errors import CepError

        def launch(config: Any) -> str:
            return self.app.jobs.launch(config, name=f"retrain-{agent.replace('/', '-')}").id

        try:
            result = self.feed.retrain(agent, launch)
        except CepError as exc:
            self.post_message(ActionDone("retrain", False, str(exc)))
            return
        self.post_message(
            ActionDone(
                "retrain",
                True,
                f"{agent}: {result.export.examples} examples exported, "
                f"run {result.launch_ref} launched (Runs screen)",
            )
        )
        self.app.wake("traces")
        self.app.wake("runs")

    def on_action_done(self, message: ActionDone) -> None:
        message.stop()
        self.notify(message.text, severity="information" if message.ok else "error", timeout=15)
