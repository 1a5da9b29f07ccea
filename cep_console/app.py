"""The CEP Console App: four modes (GPUs, Runs, Evals, Traces), background feeds, notifications, palette.

Feeds run in thread workers that post messages back; the App keeps the latest state and publishes it on a
signal each screen subscribes to. Screens are imported when first shown, so start-up stays close to the cost
of importing Textual itself.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.scrollbar import ScrollBar, ScrollBarRender
from textual.signal import Signal
from textual.worker import get_current_worker

from cep_console.job_control import JobControl
from cep_console.messages import ActionDone, GpuUpdated, RunsUpdated, TracesUpdated
from cep_console.options import ConsoleOptions

MODE_TITLES = {"gpus": "GPUs", "runs": "Runs", "evals": "Evals", "traces": "Traces"}


class WholeCellScrollBar(ScrollBarRender):
    """Scrollbar thumbs in whole cells. Textual ends a thumb with half-block glyphs (`▁…▇`, `▉…▏`) for sub-cell
    precision; where the thumb's colour is lost (256-colour tmux, a plain-text capture) those glyphs stood
    alone at the right edge of the log and the tables, as stray `▅▅`."""

    VERTICAL_BARS = [" "] * 8
    HORIZONTAL_BARS = [" "] * 8


def _screen(mode: str) -> Screen:
    """Import a mode's screen on first use (keeps the first frame fast)."""
    if mode == "gpus":
        from cep_console.screens.gpus import GpuScreen

        return GpuScreen()
    if mode == "runs":
        from cep_console.screens.runs import RunsScreen

        return RunsScreen()
    if mode == "evals":
        from cep_console.screens.evals import EvalsScreen

        return EvalsScreen()
    from cep_console.screens.traces import TracesScreen

    return TracesScreen()


class CepConsole(App):
    """`cep-console`: GPU health, training runs, evaluations and traces in one keyboard-driven app."""

    CSS_PATH = str(Path(__file__).with_name("console.tcss"))  # absolute: found whatever runs the module
    TITLE = "CEP Console"
    MODES = {mode: (lambda m=mode: _screen(m)) for mode in MODE_TITLES}
    DEFAULT_MODE = "gpus"
    BINDINGS = [
        Binding("1", "show_mode('gpus')", "GPUs", id="mode.gpus"),
        Binding("2", "show_mode('runs')", "Runs", id="mode.runs"),
        Binding("3", "show_mode('evals')", "Evals", id="mode.evals"),
        Binding("4", "show_mode('traces')", "Traces", id="mode.traces"),
        Binding("question_mark", "help", "Help", id="help"),
        Binding("q", "quit", "Quit", id="quit", show=False),  # in help; keeps the 80-column footer for modes
    ]

    def __init__(
        self,
        options: ConsoleOptions | None,
        *,
        request: dict[str, Any] | None = None,
        feeds: bool = True,
    ):
        """`options`, or a `request` (resolve_options' arguments) resolved right after the first frame."""
        super().__init__()
        ScrollBar.renderer = WholeCellScrollBar  # Textual's documented hook, for every scrollbar of the app
        self.options: ConsoleOptions = options  # type: ignore[assignment]  # set by _ensure_options otherwise
        self.request = request or {}
        self.feeds_enabled = feeds
        self.gpu_state: Any = None
        self.runs_state: Any = None
        self.traces_overview: Any = None
        self.gpu_signal: Signal[Any] = Signal(self, "gpu")
        self.runs_signal: Signal[Any] = Signal(self, "runs")
        self.traces_signal: Signal[Any] = Signal(self, "traces")
        self._stop = threading.Event()
        self._wake = {name: threading.Event() for name in ("gpu", "runs", "traces")}
        self.pending_eval_filter: str | None = None  # set by `e` on the Runs screen
        self.keep_demo_home: bool | None = None  # the answer of the demo's quit dialog (None: not asked)
        self._first_frame_done = False
        self._jobs: JobControl | None = None

    @property
    def jobs(self) -> JobControl:
        """Launch, stop and resume for the home shown: screens reach job control only through this. Built on
        first use, since the options (and so the home) may be resolved only after the first frame."""
        if self._jobs is None:
            self._jobs = JobControl(self.options.home)
        return self._jobs

    # ------------------------------------------------------------------ lifecycle
    def on_mount(self) -> None:
        if self.options is not None:
            self._options_ready()

    def screen_painted(self) -> None:
        """A mode screen has been refreshed for the first time (ModeScreen calls this). One refresh later its
        frame is on the terminal: then load cep_core and resolve the options, so the user sees the screen
        before that ~60 ms is paid (benchmarks/console_startup.py reads the terminal to check it)."""
        if self._first_frame_done:
            return
        self._first_frame_done = True
        self.call_after_refresh(self._ensure_options)  # after the refresh that writes the frame

    def _ensure_options(self) -> bool:
        """Resolve the options (this loads cep_core) once; False when they are invalid (the app exits)."""
        if self.options is not None:
            return True
        from cep_console.options import resolve_options
        from cep_core.errors import CepError

        try:
            self.options = resolve_options(**self.request)
        except CepError as exc:
            self.exit(return_code=2, message=f"cep-console: {exc}")
            return False
        self._options_ready()
        return True

    def _options_ready(self) -> None:
        if self.options.keymap:
            self.set_keymap(self.options.keymap)
        self.sub_title = self._subtitle()
        if self.feeds_enabled:
            self.call_after_refresh(self.start_feeds)
            if self.options.temporary_home:
                self.seed_demo_home()

    def _subtitle(self) -> str:
        mode = MODE_TITLES.get(self.current_mode, "")
        if self.options is None:
            return mode
        extra = " · demo" if self.options.demo else ""
        return f"{mode} · {self.options.home}{extra}"

    def start_feeds(self) -> None:
        self.gpu_loop()
        self.runs_loop()
        self.traces_loop()

    def wake(self, feed: str) -> None:
        """Poll a feed now instead of at its next interval (after a launch, a stop, an export)."""
        self._wake[feed].set()

    def _sleep(self, feed: str, seconds: float) -> None:
        self._wake[feed].wait(seconds)
        self._wake[feed].clear()

    def on_unmount(self) -> None:
        self._stop.set()
        for event in self._wake.values():
            event.set()

    # ------------------------------------------------------------------ feeds (thread workers)
    @work(thread=True, exclusive=True, group="gpu", name="gpu sampler")
    def gpu_loop(self) -> None:
        from cep_console.gpu_feed import GpuFeed

        worker = get_current_worker()
        feed = GpuFeed(
            self.options.replay,
            self.options.home,
            read_kernel_log=self.options.read_kernel_log,
            kernel_log_readers=self.options.kernel_log_readers,
        )
        try:
            while not worker.is_cancelled and not self._stop.is_set():
                self.post_message(GpuUpdated(feed.poll()))
                self._sleep("gpu", self.options.gpu_interval_s)
        finally:
            feed.close()

    @work(thread=True, exclusive=True, group="runs", name="job refresher")
    def runs_loop(self) -> None:
        import time

        from cep_console.runs_feed import RunsFeed

        worker = get_current_worker()
        feed = RunsFeed(self.options.home, self.options.replay)
        last_tick = 0.0
        said = ""  # the last problem notified: said once, not every second
        while not worker.is_cancelled and not self._stop.is_set():
            now = time.monotonic()
            supervise = now - last_tick >= self.options.supervise_interval_s
            if supervise:
                last_tick = now
            try:
                state = feed.poll(supervise=supervise)
                problem = state.error
                self.post_message(RunsUpdated(state))
            except Exception as exc:  # noqa: BLE001 — a locked database must not end the feed
                problem = f"could not read the jobs: {exc}"
            if problem and problem != said:
                self.post_message(ActionDone("runs", False, problem))
            said = problem
            self._sleep("runs", self.options.runs_interval_s)

    @work(thread=True, exclusive=True, group="traces", name="trace statistics")
    def traces_loop(self) -> None:
        from cep_console.traces_feed import TracesFeed

        worker = get_current_worker()
        feed = TracesFeed(self.options.traces_db, self.options.home, self.options.retrain_threshold)
        while not worker.is_cancelled and not self._stop.is_set():
            try:
                overview = feed.overview()
                overview.newly_ready = feed.newly_ready(overview) if overview.available else []
                self.post_message(TracesUpdated(overview))
            except Exception as exc:  # noqa: BLE001
                self.post_message(ActionDone("traces", False, f"could not read the trace store: {exc}"))
            self._sleep("traces", self.options.traces_interval_s)

    @work(thread=True, exclusive=True, group="demo", name="demo home")
    def seed_demo_home(self) -> None:
        """`--demo`'s fresh home: traced calls for the Traces screen, an evaluation job for Evals (cep_core)."""
        from cep_core.demo_home import seed_demo_home
        from cep_core.errors import CepError

        try:
            done = seed_demo_home(self.options.home, self.options.traces_db)
        except (CepError, OSError) as exc:
            self.post_message(ActionDone("demo", False, f"could not fill the demo home: {exc}"))
            return
        self.post_message(ActionDone("demo", True, "Demo home: " + "; ".join(done) + "."))
        self.wake("traces")
        self.wake("runs")

    # ------------------------------------------------------------------ state in, notifications out
    def on_gpu_updated(self, message: GpuUpdated) -> None:
        from cep_core.gpu.xid_catalog import Severity, lookup

        self.gpu_state = message.state
        for ev in message.state.new_events:
            info = lookup(ev.xid)
            what = f"Xid {ev.xid}" if ev.xid is not None else "GPU fell off the bus"
            where = f" on PCI {ev.pci}" if ev.pci else ""
            self.notify(
                f"{info.name}. {info.action_text}",
                title=f"New {what}{where}",
                severity="error" if info.severity == Severity.FATAL else "warning",
                timeout=30,
            )
        self.gpu_signal.publish(message.state)

    def on_runs_updated(self, message: RunsUpdated) -> None:
        from cep_console.runs_feed import NOTIFY_STATES

        self.runs_state = message.state
        for row, before in message.state.changes:
            self.notify(
                f"{row.name} ({row.job_id}): {row.reason}",
                title=f"Run {row.state} (was {before})",
                severity=NOTIFY_STATES[row.state],
                timeout=20,
            )
        for decision in message.state.decisions:
            if decision.action in ("relaunch", "give_up", "wait"):
                self.notify(
                    decision.reason,
                    title=f"Auto-resume: {decision.action} {decision.job_id}",
                    severity="warning",
                    timeout=20,
                )
        self.runs_signal.publish(message.state)

    def on_traces_updated(self, message: TracesUpdated) -> None:
        self.traces_overview = message.overview
        for agent in getattr(message.overview, "newly_ready", []):
            self.notify(
                f"{agent.new_examples} new successful examples (threshold {agent.threshold}). "
                "Press t on the Traces screen to retrain it.",
                title=f"Agent {agent.key} is ready",
                timeout=30,
            )
        self.traces_signal.publish(message.overview)

    def on_action_done(self, message: ActionDone) -> None:
        self.notify(message.text, severity="information" if message.ok else "error", timeout=12)

    # ------------------------------------------------------------------ actions
    def action_show_mode(self, mode: str) -> None:
        if not self._ensure_options():
            return
        self.switch_mode(mode)
        self.sub_title = self._subtitle()

    async def action_quit(self) -> None:
        """Quit; in `--demo` with trained adapters in the temporary home, first ask whether to keep it."""
        if self.options is not None and self.options.temporary_home and self.keep_demo_home is None:
            from cep_console.options import demo_home_contents

            contents = demo_home_contents(self.options)
            if contents is not None and contents.worth_keeping:
                from cep_console.screens.demo_quit import DemoQuitScreen

                if not isinstance(self.screen, DemoQuitScreen):
                    self.push_screen(DemoQuitScreen(contents), self._demo_quit_answer)
                return
        self.exit()

    def _demo_quit_answer(self, choice: str | None) -> None:
        if choice is None:
            return  # cancelled: back to the console
        self.keep_demo_home = choice == "keep"
        self.exit()

    def action_help(self) -> None:
        from cep_console.screens.help import HelpScreen

        self.push_screen(HelpScreen())

    def run_screen_action(self, mode: str, action: str) -> None:
        """Switch to `mode` and run one of its screen's actions (the palette's entries use this)."""
        self.action_show_mode(mode)
        self.call_after_refresh(lambda: self.screen.run_action(action))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for mode, title in MODE_TITLES.items():
            yield SystemCommand(
                f"Show {title}", f"Switch to the {title} screen", lambda m=mode: self.action_show_mode(m)
            )
        yield SystemCommand("Help", "Every key and its binding id", self.action_help)
        from cep_core.tracer.filters import SYNTAX as FILTER_SYNTAX  # light: the traces feed imports it

        commands = [
            (
                "gpus",
                "history",
                "GPU history",
                "Utilisation, memory, temperature and power over time, charted",
            ),
            (
                "runs",
                "launch",
                "Launch a run",
                "Open the launch form (model, CEP, data, LoRA, backend, GPUs)",
            ),
            (
                "runs",
                "launch_demo",
                "Launch a ready-made run",
                "The tiny demo (about a minute) or SmolLM2-135M-Instruct, a real model (minutes on a CPU)",
            ),
            ("runs", "stop", "Stop the selected run", "SIGTERM: the job checkpoints and ends as stopped"),
            ("runs", "resume", "Resume the selected run", "A new attempt from its newest checkpoint"),
            ("runs", "evals", "Evaluations of the selected run", "Show the Evals screen for this run"),
            (
                "runs",
                "evaluate",
                "Evaluate the selected run",
                "An evaluation job of its adapter (or its base): CEP, eval sets, sample sizes",
            ),
            ("runs", "mark", "Mark a run", "Mark or unmark the selected run for comparing"),
            ("runs", "compare", "Compare marked runs", "Loss curves on one chart, key figures side by side"),
            ("runs", "log_scale", "Loss axis: log or linear", "Switch the loss chart's y axis"),
            (
                "evals",
                "evaluate",
                "Evaluate a model",
                "An evaluation job of a model folder or Hub id (with an optional adapter)",
            ),
            ("evals", "compare", "Compare marked evaluations", "Side by side, against both baselines"),
            ("evals", "mark", "Mark an evaluation", "Mark or unmark the selected evaluation for comparing"),
            ("traces", "search", "Search traces", "Full-text search of queries, responses and errors"),
            ("traces", "filter", "Filter traces", FILTER_SYNTAX),
            ("traces", "export", "Export traces", "Successful traces of the selected agent as Hermes JSONL"),
            ("traces", "retrain", "Retrain the selected agent", "Export its data and launch a training run"),
            ("traces", "next_page", "Next page of traces", "Older traces (keyset paging)"),
            ("traces", "prev_page", "Previous page of traces", "Newer traces"),
        ]
        for mode, action, title, help_text in commands:
            yield SystemCommand(title, help_text, lambda m=mode, a=action: self.run_screen_action(m, a))


class _Version(argparse.Action):
    """`--version`: reads cep_core's version only when asked (importing cep_core costs the first frame ~80 ms)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_args: Any) -> None:
        from cep_core import __version__

        print(f"cep-console {__version__}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cep-console", description="The CEP operations console (Textual, over SSH)."
    )
    p.add_argument("--version", action=_Version, help="print the version and exit")
    p.add_argument(
        "--home", metavar="DIR", help="CEP_HOME to show (default: $CEP_HOME or ~/.local/share/cep)"
    )
    p.add_argument(
        "--traces", metavar="DB", help="the trace store (default: $CEP_TRACES_DB or HOME/traces.db)"
    )
    p.add_argument("--replay", metavar="FILE", help="play recorded GPU snapshots instead of NVML")
    p.add_argument(
        "--demo",
        action="store_true",
        help="a fresh temporary home, a replayed healthy 8-GPU host and the demo run ready to launch",
    )
    p.add_argument(
        "--keys",
        metavar="FILE",
        help='key remaps: a TOML [keys] table of binding-id = "keys" '
        "(default: ~/.config/cep/console-keys.toml)",
    )
    p.add_argument(
        "--threshold",
        type=int,
        metavar="N",
        help="new successful traces that make an agent ready to retrain (default 100)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    """Validate the command line with the standard library, paint the first frame, then load cep_core."""
    from cep_console.options import OptionError, discard_temporary_home, precheck

    args = build_parser().parse_args(argv)
    os.umask(
        0o077
    )  # what the console writes under the home is private (cep_core.store.private, not imported yet)
    try:
        precheck(replay=args.replay, keys=args.keys, threshold=args.threshold)
    except OptionError as exc:
        print(f"cep-console: {exc}", file=sys.stderr)
        return 2
    request = {
        "home": args.home,
        "traces": args.traces,
        "replay": args.replay,
        "demo": args.demo,
        "keys": args.keys,
        "threshold": args.threshold,
    }
    app = CepConsole(None, request=request)
    app.run()
    if app.options is not None:
        note = discard_temporary_home(app.options, keep=app.keep_demo_home)
        if note:
            print(f"cep-console: {note}", file=sys.stderr)
    return app.return_code or 0


if __name__ == "__main__":
    sys.exit(main())
