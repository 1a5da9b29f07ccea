"""The `cep` and `cep-console` command lines behave alike everywhere: --home after any subcommand, help text on
every option, --version on both, an empty trace store reported as zero. Through the real entry points."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

import cep_core
from cep_core.cli import build_parser

BIN = Path(sys.executable).parent


def run(*argv: str, home: Path | None = None, tool: str = "cep") -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home or Path.home()), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [str(BIN / tool), *argv], capture_output=True, text=True, timeout=120, env=env, check=False
    )


def every_parser() -> list[tuple[str, argparse.ArgumentParser]]:
    """The `cep` parser, each subcommand's (nested ones too) and the parsers `cep eval` reads its rest with."""
    from cep_core.cli import eval as eval_cmd

    out: list[tuple[str, argparse.ArgumentParser]] = []

    def walk(name: str, parser: argparse.ArgumentParser) -> None:
        out.append((name, parser))
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for child_name, child in action.choices.items():
                    walk(f"{name} {child_name}", child)

    walk("cep", build_parser())
    for maker in (eval_cmd._run_parser, eval_cmd._compare_parser, eval_cmd._show_parser):
        parser = maker()
        out.append((parser.prog, parser))
    from cep_console.app import build_parser as console_parser

    out.append(("cep-console", console_parser()))
    return out


def test_every_option_and_argument_has_help_text():
    missing = []
    for name, parser in every_parser():
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            if action.help == argparse.SUPPRESS:
                continue
            if not (action.help or "").strip():
                missing.append(f"{name}: {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


def test_home_works_before_and_after_the_subcommand(tmp_path):
    home = tmp_path / "home"
    for argv in (
        ("jobs", "list", "--home", str(home), "--json"),
        ("--home", str(home), "jobs", "list", "--json"),
        ("traces", "stats", "--home", str(home), "--json"),
        ("traces", "--home", str(home), "stats", "--json"),
        ("eval", "compare", "--home", str(home), "--json"),
    ):
        r = run(*argv, home=tmp_path)
        assert r.returncode == 0, (argv, r.stderr)
    # The state went to that home, not to ~/.local/share/cep.
    assert (home / "cep.db").is_file() and not (tmp_path / ".local" / "share" / "cep").exists()
    r = run("traces", "stats", "--home", str(home), "--json", home=tmp_path)
    assert json.loads(r.stdout)["store"] == str(home / "traces.db")
    # After the subcommand wins over before it (the nearer one is what the user meant last).
    other = tmp_path / "other"
    r = run("--home", str(home), "traces", "stats", "--home", str(other), "--json", home=tmp_path)
    assert json.loads(r.stdout)["store"] == str(other / "traces.db")


def test_traces_stats_on_a_home_without_a_store_reports_zero(tmp_path):
    home = tmp_path / "home"
    r = run("traces", "stats", "--home", str(home), home=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"0 traces in {home / 'traces.db'}")
    r = run("traces", "stats", "--home", str(home), "--json", home=tmp_path)
    data = json.loads(r.stdout)
    assert (r.returncode, data["total"], data["groups"], data["agents"]) == (0, 0, [], [])
    assert not (home / "traces.db").exists()  # reading never creates the store


@pytest.mark.parametrize("tool, prefix", [("cep", "cep"), ("cep-console", "cep-console")])
def test_both_commands_print_their_version(tool, prefix, tmp_path):
    r = run("--version", tool=tool, home=tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == f"{prefix} {cep_core.__version__}"
