"""Eval sets: what the model is asked and what the right answer is, for both tracks.

A set's `source` names where its examples come from:

- `bfcl:CAT[,CAT...]` (toolcall) — BFCL v4 files: $CEP_BFCL_DIR, else the copy the bfcl-eval package ships,
  else ../shared/data/bfcl (see `bfcl_dir`); each category keeps BFCL's own rule (simple, multiple, parallel,
  irrelevance: no call is right, relevance: any call is right). `bfcl:all` is every single-turn category.
- `bfcl-json:CAT[,CAT...]` (structured) — BFCL entries of simple categories turned into "answer with the
  arguments as one JSON object matching this schema"; expected = the gold arguments, schema = the function's
  parameters in JSON-Schema types. Ids get a `json:` prefix so they never collide with the toolcall ones.
- `hermes:SOURCE` (toolcall) — Hermes function-calling rows (a file, a Hub name, builtin:sample or
  builtin:demo); the prompt is the conversation up to the first assistant turn with a tool call, the expected
  calls are that turn's. Held-out rows by default (the same hash split the training job uses).
- `json-mode:SOURCE` (structured) — Hermes json-mode rows (with a `schema`): prompt up to the answer, expected =
  the answer's JSON. Held-out rows by default.
- a path: a BFCL question file or folder, or a JSONL file in the project's eval format (cep_core.data.evalset).

Prompts carry the tools rendered into the system prompt by toolprompt.render_tools_prompt, exactly as the
training data does; the CEP is applied later, at generation, so one set serves both "with" and "without".
`sample = N` keeps N examples drawn with a fixed seed, round-robin over categories so each one is represented.
"""

from __future__ import annotations

import os
import random
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cep_core.data import bfcl
from cep_core.data.evalset import EvalExample, load_examples
from cep_core.errors import InputError
from cep_core.evaluation.config import SetSpec
from cep_core.formats.jsonish import loads_lenient
from cep_core.formats.toolcalls import CallFormat, parse_tool_calls
from cep_core.prompts.toolprompt import function_of, render_tools_prompt

KINDS = ("bfcl", "bfcl-json", "hermes", "json-mode")
DEFAULT_HOLDOUT = (0.1, 0)  # the training config's defaults: data.holdout_fraction, data.seed


@dataclass(slots=True)
class LoadedSet:
    """One set's examples (prompts ready, CEP not yet applied) and what was left out, by reason."""

    spec: SetSpec
    track: str
    examples: list[EvalExample]
    available: int  # examples before sampling
    skipped: Counter[str] = field(default_factory=Counter)
    data_dir: str = ""  # bfcl sets: the folder their files were read from (see bfcl_dir)

    def describe(self) -> dict[str, Any]:
        """The data spec as results.json and cep.db record it."""
        return {
            "source": self.spec.source,
            "track": self.track,
            "sample": self.spec.sample,
            "seed": self.spec.seed,
            "split": self.spec.split,
            "holdout_fraction": self.spec.holdout_fraction,
            "holdout_seed": self.spec.holdout_seed,
            "n": len(self.examples),
            "available": self.available,
            "skipped": dict(sorted(self.skipped.items())),
            "categories": dict(sorted(Counter(e.category for e in self.examples).items())),
            **({"data_dir": self.data_dir} if self.data_dir else {}),
        }


# The BFCL leaderboard's own package, which ships the BFCL v4 files (`bfcl_eval/data/`). `make` installs it
# with --no-deps (its runtime stack — vllm, API SDKs — is not needed to read its data or run its checker).
BFCL_EVAL_REQUIREMENT = "bfcl-eval==2026.3.23"
# The package also ships sets this evaluation does not score (multi-turn, memory and web-search conversations,
# Java and JavaScript calls, format-sensitivity prompts): they need BFCL's own harness. `bfcl:all` leaves them out.
UNSCORED_PREFIXES = ("multi_turn", "memory", "web_search", "format_sensitivity")
UNSCORED_SUFFIXES = ("java", "javascript")


def scored_category(category: str) -> bool:
    """A single-turn Python category, with an answer or under BFCL's relevance rule."""
    return not category.startswith(UNSCORED_PREFIXES) and not category.endswith(UNSCORED_SUFFIXES)


def bfcl_package_data() -> Path | None:
    """`bfcl_eval/data` of the installed bfcl-eval package (found from its metadata; never imported)."""
    from importlib import metadata

    try:
        dist = metadata.distribution("bfcl-eval")
    except metadata.PackageNotFoundError:
        return None
    data = Path(str(dist.locate_file("bfcl_eval/data")))
    return data if (data / "possible_answer").is_dir() else None


def bfcl_dir() -> Path:
    """Where `bfcl:` sets read from: $CEP_BFCL_DIR; else the BFCL files the bfcl-eval package ships (the
    leaderboard's own copy, at the version `make` pins); else ../shared/data/bfcl (or $CEP_SHARED_DATA/bfcl)."""
    env = os.environ.get("CEP_BFCL_DIR")
    if env:
        return Path(env).expanduser()
    packaged = bfcl_package_data()
    if packaged is not None:
        return packaged
    from cep_core.data.sources import shared_data_dir

    shared = shared_data_dir()
    if shared is None or not (shared / "bfcl").is_dir():
        raise InputError(
            f"no BFCL data: install BFCL's package, which ships it (`pip install --no-deps "
            f"{BFCL_EVAL_REQUIREMENT}`; `make` does), or set CEP_BFCL_DIR to a folder of BFCL_v4_*.json "
            "files (with possible_answer/), or give a file's path as the set's source",
            field="sets.source",
        )
    return shared / "bfcl"


def bfcl_files(categories: str) -> list[Path]:
    base = bfcl_dir()
    present = {bfcl.category_of(p): p for p in sorted(base.glob("BFCL_v*.json")) if bfcl.is_bfcl_file(p)}
    scored = sorted(c for c in present if scored_category(c))
    if categories.strip() in ("", "all"):
        if not scored:
            raise InputError("no BFCL_*.json files of single-turn categories here", path=base)
        return [present[c] for c in scored]
    files = []
    for cat in (c.strip() for c in categories.split(",")):
        if cat not in present:
            raise InputError(
                f"no BFCL category {cat!r} (here: {', '.join(scored)})", path=base, field="source"
            )
        if not scored_category(cat):
            raise InputError(
                f"BFCL category {cat!r} is not one this evaluation scores (multi-turn, memory, web search, "
                f"format sensitivity and other languages need BFCL's own harness); here: {', '.join(scored)}",
                path=base,
                field="source",
            )
        files.append(present[cat])
    return files


def load_set(
    spec: SetSpec, holdout: tuple[float, int] = DEFAULT_HOLDOUT, tool_format: str = "target"
) -> LoadedSet:
    """The examples of one set, filtered by split and sampled.

    `tool_format` is the call format Hermes rows are converted to (their prompt asks for it and their expected
    calls are read in it), as the training job converts them; BFCL prompts always describe the target format.
    """
    spec = _with_defaults(spec, holdout)
    kind, sep, rest = spec.source.partition(":")
    skipped: Counter[str] = Counter()
    if sep and kind == "bfcl":
        track, examples = "toolcall", _bfcl_toolcall(bfcl_files(rest), spec)
    elif sep and kind == "bfcl-json":
        track, examples = "structured", _bfcl_structured(bfcl_files(rest), spec, skipped)
    elif sep and kind == "hermes":
        track, examples = "toolcall", _hermes_toolcall(rest, spec, skipped, tool_format)
    elif sep and kind == "json-mode":
        track, examples = "structured", _json_mode(rest, spec, skipped)
    else:
        track, examples = _eval_file(spec)
    available = len(examples)
    data_dir = str(bfcl_dir()) if sep and kind in ("bfcl", "bfcl-json") else ""
    return LoadedSet(
        spec, track, sample_examples(examples, spec.sample, spec.seed), available, skipped, data_dir
    )


def load_sets(
    specs: list[SetSpec], holdout: tuple[float, int] = DEFAULT_HOLDOUT, tool_format: str = "target"
) -> list[LoadedSet]:
    """Every set; example ids must be unique across them (predictions are keyed by id)."""
    loaded = [load_set(s, holdout, tool_format) for s in specs]
    seen: dict[str, str] = {}
    for item in loaded:
        for ex in item.examples:
            if ex.id in seen:
                raise InputError(
                    f"example id {ex.id!r} is in both {seen[ex.id]!r} and {item.spec.source!r}; "
                    "an evaluation needs unique ids",
                    field="sets",
                )
            seen[ex.id] = item.spec.source
    return loaded


def _with_defaults(spec: SetSpec, holdout: tuple[float, int]) -> SetSpec:
    kind = spec.source.partition(":")[0]
    return SetSpec(
        source=spec.source,
        sample=spec.sample,
        seed=spec.seed,
        track=spec.track,
        split=spec.split or ("holdout" if kind in ("hermes", "json-mode") else "all"),
        holdout_fraction=holdout[0] if spec.holdout_fraction == -1.0 else spec.holdout_fraction,
        holdout_seed=holdout[1] if spec.holdout_seed == -1 else spec.holdout_seed,
    )


def _keep(row_id: str, spec: SetSpec) -> bool:
    if spec.split == "all":
        return True
    from cep_core.data.prepare import is_holdout

    held = is_holdout(row_id, spec.holdout_fraction, spec.holdout_seed)
    return held if spec.split == "holdout" else not held


def sample_examples(examples: list[EvalExample], n: int, seed: int) -> list[EvalExample]:
    """N examples drawn with `seed`, round-robin over categories (each shuffled); all of them when n is 0."""
    if n <= 0 or n >= len(examples):
        return list(examples)
    rng = random.Random(seed)
    groups: dict[str, list[EvalExample]] = defaultdict(list)
    for ex in examples:
        groups[ex.category].append(ex)
    queues = []
    for category in sorted(groups):
        items = sorted(groups[category], key=lambda e: e.id)
        rng.shuffle(items)
        queues.append(items)
    picked: list[EvalExample] = []
    while len(picked) < n:
        for queue in queues:
            if queue and len(picked) < n:
                picked.append(queue.pop())
    return picked


# ---------------------------------------------------------------- prompts


def tool_prompt(messages: list[dict[str, Any]], functions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation with the tools rendered into its system prompt (created when absent)."""
    system = next((m.get("content") for m in messages if m.get("role") == "system"), None)
    if isinstance(system, str) and "<tools>" in system:
        return [dict(m) for m in messages]  # already carries its tools block
    rest = [
        {"role": m.get("role"), "content": m.get("content")} for m in messages if m.get("role") != "system"
    ]
    return [{"role": "system", "content": render_tools_prompt(functions, system)}, *rest]


# ---------------------------------------------------------------- sources


def _bfcl_toolcall(files: list[Path], spec: SetSpec) -> list[EvalExample]:
    out = []
    for path in files:
        for ex in load_examples(path, "toolcall"):
            if _keep(ex.id, spec):
                ex.messages = tool_prompt(ex.messages, ex.functions)
                out.append(ex)
    return out


def _bfcl_structured(files: list[Path], spec: SetSpec, skipped: Counter[str]) -> list[EvalExample]:
    out = []
    for path in files:
        category = bfcl.category_of(path)
        if bfcl.rule_for(category) != "simple":
            raise InputError(
                f"bfcl-json takes simple categories only (one function, one call); {category!r} is "
                f"{bfcl.rule_for(category)}",
                path=path,
                field="source",
            )
        for entry in bfcl.load_bfcl(path):
            if not _keep(entry.id, spec):
                continue
            case = bfcl.structured_case(entry)
            if case is None:
                skipped["not_one_call"] += 1
                continue
            messages, schema, expected = case
            out.append(
                EvalExample(
                    id=f"json:{entry.id}",
                    track="structured",
                    category=f"json_{category}",
                    messages=messages,
                    rule="structured",
                    schema=schema,
                    expected=expected,
                )
            )
    return out


def _hermes_rows(source: str, spec: SetSpec, skipped: Counter[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(row id, row) of the rows of a Hermes source that the split keeps."""
    from cep_core.data.prepare import row_id
    from cep_core.data.sources import is_malformed, iter_rows

    for raw in iter_rows(source):
        if raw.kind != "hermes":
            skipped["not_a_hermes_row"] += 1
            continue
        if is_malformed(raw) or not isinstance(raw.data, dict):
            skipped["malformed_json"] += 1
            continue
        rid = row_id(raw)
        if not _keep(rid, spec):
            continue
        yield rid, raw.data


def _hermes_toolcall(
    source: str, spec: SetSpec, skipped: Counter[str], tool_format: str = "target"
) -> list[EvalExample]:
    from cep_core.data.convert import SkipRow, find_tools, row_to_messages

    fmt = CallFormat(tool_format)
    out = []
    for rid, row in _hermes_rows(source, spec, skipped):
        if row.get("schema"):
            skipped["json_mode_row"] += 1
            continue
        try:
            messages = row_to_messages(row, fmt.value)
        except SkipRow as skip:
            skipped[skip.reason] += 1
            continue
        turn = next(
            (i for i, m in enumerate(messages) if m["role"] == "assistant" and "<tool_call" in m["content"]),
            None,
        )
        if turn is None:
            skipped["no_tool_call"] += 1
            continue
        calls = parse_tool_calls(messages[turn]["content"], fmt).calls
        system = next((m["content"] for m in messages[:turn] if m["role"] == "system"), "")
        found = find_tools(system)
        if not calls or found is None:
            skipped["no_tools" if found is None else "no_tool_call"] += 1
            continue
        functions = [function_of(t) for t in found[0]]
        answers = [{c.name: {k: [v] for k, v in c.arguments.items()}} for c in calls]
        out.append(
            EvalExample(
                id=rid,
                track="toolcall",
                category="hermes",
                messages=tool_prompt(messages[:turn], functions),
                rule="parallel",
                functions=functions,
                answers=answers,
            )
        )
    return out


def _json_mode(source: str, spec: SetSpec, skipped: Counter[str]) -> list[EvalExample]:
    from cep_core.data.convert import SkipRow, row_to_messages

    out = []
    for rid, row in _hermes_rows(source, spec, skipped):
        if not row.get("schema"):
            skipped["not_json_mode"] += 1
            continue
        try:
            messages = row_to_messages(row, "target")
        except SkipRow as skip:
            skipped[skip.reason] += 1
            continue
        expected, _ = loads_lenient(messages[-1]["content"])
        schema = row["schema"]
        if isinstance(schema, str):
            schema, _ = loads_lenient(schema)
        if not isinstance(expected, dict | list):
            skipped["unparseable_json_answer"] += 1
            continue
        out.append(
            EvalExample(
                id=rid,
                track="structured",
                category="json_mode",
                messages=messages[:-1],
                rule="structured",
                schema=schema if isinstance(schema, dict) else None,
                expected=expected,
            )
        )
    return out


def _eval_file(spec: SetSpec) -> tuple[str, list[EvalExample]]:
    path = Path(spec.source).expanduser()
    if not path.exists():
        raise InputError(
            f"no such eval set: give a path, or one of {', '.join(k + ':…' for k in KINDS)}",
            path=path,
            field="source",
        )
    track = spec.track or _track_of(path)
    examples = load_examples(path, track)
    for ex in examples:
        if track == "toolcall":
            ex.messages = tool_prompt(ex.messages, ex.functions)
    return track, [ex for ex in examples if _keep(ex.id, spec)]


def _track_of(path: Path) -> str:
    if path.is_dir() or bfcl.is_bfcl_file(path):
        return "toolcall"
    for _lineno, row in bfcl.read_jsonl(path)[:1]:
        if row.get("track") in ("toolcall", "structured"):
            return row["track"]
        return "structured" if "expected" in row or "schema" in row else "toolcall"
    return "toolcall"
