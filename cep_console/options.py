"""What the console was started on: the home, the trace store, the GPU source, demo mode, key remaps.

Resolved once from the command line and the environment (kept apart from the App so tests build it directly).
Importing this module imports nothing from cep_core (importing cep_core costs ~80 ms): `precheck` validates
the command line with the standard library alone, so the console can paint its first frame before it loads
cep_core and resolves the rest.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEMO_RECORDING = "healthy-8x-h100"
DEMO_CONFIG_NAME = "demo.toml"


@dataclass(slots=True)
class ConsoleOptions:
    home: Path
    traces_db: Path
    replay: Path | None = None  # None = the real NVML
    demo: bool = False  # the demo run is offered in the launch form (and --demo replays a healthy host)
    demo_config: Path | None = None
    temporary_home: bool = False  # --demo without --home: a fresh home, removed at exit unless a run is live
    keymap: dict[str, str] = field(default_factory=dict)
    gpu_interval_s: float = 1.0
    runs_interval_s: float = 1.0
    supervise_interval_s: float = 5.0
    traces_interval_s: float = 15.0
    retrain_threshold: int | None = None  # new successful examples for retraining; None: cep_core's default
    read_kernel_log: bool = True
    kernel_log_readers: list | None = None  # None = cep_core's defaults (/dev/kmsg, journal, kern.log)

    @property
    def gpu_source_label(self) -> str:
        return f"replay {self.replay.name}" if self.replay else "NVML"


def home_is_empty(home: Path) -> bool:
    """No jobs database and no run yet: a newcomer's first start."""
    runs = home / "runs"
    has_runs = runs.is_dir() and any(runs.iterdir())
    return not (home / "cep.db").exists() and not has_runs


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "cep"


class OptionError(ValueError):
    """A bad command-line value, found before cep_core is loaded: `path` and `field` say where."""

    def __init__(self, message: str, path: Path | None = None, field: str | None = None):
        self.path, self.field = path, field
        where = f"{path}: " if path else ""
        super().__init__(f"{where}{message}" + (f" (field {field!r})" if field else ""))


def read_keymap(path: Path | None) -> dict[str, str]:
    """`[keys]` of a TOML file: binding id -> comma-separated keys (e.g. `"runs.launch" = "n,ctrl+n"`)."""
    import tomllib

    explicit = path is not None
    path = path or config_dir() / "console-keys.toml"
    if not path.is_file():
        if explicit:
            raise OptionError("key map file not found", path=path)
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise OptionError(f"cannot read the key map: {exc}", path=path) from None
    keys = data.get("keys", {})
    if not isinstance(keys, dict) or not all(isinstance(v, str) for v in keys.values()):
        raise OptionError(
            'expected a [keys] table of binding-id = "key,key" strings', path=path, field="keys"
        )
    return dict(keys)


def load_keymap(path: Path | None) -> dict[str, str]:
    """read_keymap with cep_core's InputError (the error every cep command prints)."""
    from cep_core.errors import InputError

    try:
        return read_keymap(path)
    except OptionError as exc:
        raise InputError(
            str(exc).split(": ", 1)[-1] if exc.path else str(exc), path=exc.path, field=exc.field
        ) from None


def precheck(replay: str | None = None, keys: str | None = None, threshold: int | None = None) -> None:
    """Validate the command line with the standard library only (OptionError names the file or field)."""
    if replay and not Path(replay).expanduser().is_file():
        raise OptionError("replay file not found", path=Path(replay).expanduser())
    read_keymap(Path(keys).expanduser() if keys else None)
    if threshold is not None and threshold <= 0:
        raise OptionError(f"--threshold must be positive, got {threshold}", field="threshold")


def bundled_recording(name: str) -> Path:
    """A GPU recording shipped with cep_core (found without importing the replay module and NVML bindings)."""
    from importlib import resources

    return Path(str(resources.files("cep_core.gpu.recordings").joinpath(f"{name}.json")))


def write_demo_config(home: Path, preset: str = "demo") -> Path:
    """A ready-to-launch run: a shipped preset's config (cep_core.training.presets; the demo is builtin:tiny on
    the CPU, smollm2 the real-model recipe), copied into the home so the user can see and edit it."""
    from cep_core.training.presets import preset as find_preset
    from cep_core.training.presets import preset_text

    target = home / "demo" / find_preset(preset).file
    if not target.is_file():
        from cep_core.store.private import write_private

        write_private(target, preset_text(preset))
    return target


@dataclass(slots=True)
class DemoHomeContents:
    """What a `--demo` session's home holds that the user made: what quitting would delete."""

    home: Path
    adapters: list[Path]  # trained LoRA adapters (runs/*/adapter)
    runs: int  # run directories (the seeded evaluation's included)

    @property
    def worth_keeping(self) -> bool:
        return bool(self.adapters)

    def describe(self) -> str:
        names = ", ".join(a.parent.name for a in self.adapters[:3]) + (" …" if len(self.adapters) > 3 else "")
        return f"{len(self.adapters)} trained adapter(s) ({names}) in {self.runs} run(s)"


def demo_home_contents(options: ConsoleOptions) -> DemoHomeContents | None:
    """The temporary home's trained adapters (a glob: cheap enough for the quit key); None for a real home."""
    if not options.temporary_home or not options.home.is_dir():
        return None
    runs = options.home / "runs"
    folders = sorted(p for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []
    return DemoHomeContents(
        options.home, [p / "adapter" for p in folders if (p / "adapter").is_dir()], len(folders)
    )


def discard_temporary_home(options: ConsoleOptions, keep: bool | None = None) -> str | None:
    """At exit: remove a `--demo` session's temporary home, unless a run in it is still live (its job writes
    there) or the user kept it. `keep=None` (no answer: the app was ended otherwise) keeps a home that holds a
    trained adapter. Returns what to tell the user — where the home is, or what was deleted with it."""
    contents = demo_home_contents(options)
    if contents is None:
        return None
    import shutil

    from cep_console.job_control import JobControl

    try:
        live = JobControl(options.home).live_job_ids()
    except Exception as exc:  # noqa: BLE001 — an unreadable jobs database: keep the home, say why
        return f"demo home kept at {options.home} (could not read its jobs: {exc})"
    if live:
        return f"demo home kept at {options.home}: run {', '.join(live)} is still going (CEP_HOME={options.home} cep jobs list)"
    if keep or (keep is None and contents.worth_keeping):
        what = f" with {contents.describe()}" if contents.adapters else ""
        return (
            f"demo home kept at {options.home}{what}: open it with cep-console --home {options.home}; "
            f"delete it with rm -r {options.home}"
        )
    shutil.rmtree(options.home, ignore_errors=True)
    if contents.adapters:
        return f"demo home {options.home} deleted, with {contents.describe()}"
    return None


def resolve_options(
    home: str | None = None,
    traces: str | None = None,
    replay: str | None = None,
    demo: bool = False,
    keys: str | None = None,
    threshold: int | None = None,
) -> ConsoleOptions:
    """The options of one console session. `--demo` uses a fresh temporary home and replays a healthy host."""
    import tempfile

    from cep_core.errors import InputError
    from cep_core.store.state import resolve_home

    home_path = Path(tempfile.mkdtemp(prefix="cep-demo-")) if demo and not home else resolve_home(home)
    if home_path.exists() and not home_path.is_dir():
        raise InputError("the home is not a directory", path=home_path)
    empty = home_is_empty(home_path)
    replay_path = Path(replay).expanduser() if replay else None
    if replay_path is not None and not replay_path.is_file():
        raise InputError("replay file not found", path=replay_path)
    if demo and replay_path is None:
        replay_path = bundled_recording(DEMO_RECORDING)
    if traces:
        traces_path = Path(traces).expanduser()
    elif os.environ.get("CEP_TRACES_DB"):
        traces_path = Path(os.environ["CEP_TRACES_DB"]).expanduser()
    else:
        traces_path = home_path / "traces.db"
    opts = ConsoleOptions(
        home=home_path,
        temporary_home=demo and not home,
        traces_db=traces_path,
        replay=replay_path,
        demo=demo or empty,
        keymap=load_keymap(Path(keys).expanduser() if keys else None),
    )
    if threshold is not None:
        if threshold <= 0:
            raise InputError(f"--threshold must be positive, got {threshold}", field="threshold")
        opts.retrain_threshold = threshold
    elif opts.temporary_home:
        from cep_core.demo_home import THRESHOLD

        opts.retrain_threshold = THRESHOLD  # the demo's traced planner is past it: `t` has something to do
    if opts.demo:
        from cep_core.store.private import private_dir

        private_dir(home_path)
        opts.demo_config = write_demo_config(home_path)
    return opts
